"""``python -m monai_cover.deploy``: a MONAI Deploy application from a DICOM folder (two studies, one with pydicom's
real CT) to one DICOM SEG + NIfTI per series, each SEG referencing its own series; a missing model is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("monai.deploy.core", reason="monai-deploy-app-sdk not installed (monai-cover[deploy])")
hd = pytest.importorskip("highdicom", reason="highdicom not installed (monai-cover[dicom])")
pydicom = pytest.importorskip("pydicom")

from monai_cover.networks import CoverSegNet  # noqa: E402
from tests.bundles.conftest import REPO  # noqa: E402
from tests.bundles.test_dicom_seg_output import _ct_series, _nifti_at_source_pixels  # noqa: E402
from tests.data.test_dicom_series import write_series  # noqa: E402


def _deploy(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("MONAI_COVER_FULL_TRACEBACK", None)
    return subprocess.run([sys.executable, "-m", "monai_cover.deploy", *args], env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture()
def bundle(tmp_path):
    """A cover_seg bundle folder as training leaves it: model.pt and model.json with the settings."""
    (tmp_path / "bundle" / "models").mkdir(parents=True)
    torch.manual_seed(3)
    net = CoverSegNet(3, 1, 3, [4, 8, 8, 16, 16], [16, 8, 8, 8])
    torch.save(net.state_dict(), tmp_path / "bundle" / "models" / "model.pt")
    settings = {"spatial_dims": 3, "label_names": ["liver", "kidney"], "multilabel": False, "roi_size": [16, 16, 16],
                "channels": [4, 8, 8, 16, 16], "decoder_channels": [16, 8, 8, 8], "slicewise": False,
                "image_size": None, "pixdim": None, "head_levels": None, "color": "gray", "modalities": 1,
                "intensity": "percentile"}
    (tmp_path / "bundle" / "models" / "model.json").write_text(json.dumps({"best": 0.5, "settings": settings}))
    return tmp_path / "bundle"


def test_dicom_folder_in_one_dicom_seg_per_series_out(tmp_path, bundle):
    series = [_ct_series(tmp_path / "in" / "study1" / "ct", slices=4),
              write_series(tmp_path / "in" / "study2" / "mixed", [0, 2, 4, 6, 8], rows=24, cols=20)]
    proc = _deploy("-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(bundle), "-w",
                   str(tmp_path / "work"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for folder in series:
        sources = sorted((pydicom.dcmread(f) for f in folder.iterdir()),
                         key=lambda ds: float(ds.ImagePositionPatient[2]))
        name = str(sources[0].SeriesInstanceUID) + "_seg"
        seg = hd.seg.segread(tmp_path / "out" / f"{name}.dcm")
        assert [s.SegmentLabel for s in seg.SegmentSequence] == ["liver", "kidney"]
        frames = seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in sources], combine_segments=True)
        expected = np.stack([_nifti_at_source_pixels(tmp_path / "out" / f"{name}.nii.gz", ds) for ds in sources])
        np.testing.assert_array_equal(frames, expected)
    assert len(list((tmp_path / "out").glob("*_seg.dcm"))) == 2


def test_missing_model_is_one_line(tmp_path):
    write_series(tmp_path / "in" / "ct", [0, 2, 4])
    proc = _deploy("-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(tmp_path / "in"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"MissingFileError: {tmp_path / 'in'}: no cover_seg model")
    assert "Traceback" not in proc.stderr
