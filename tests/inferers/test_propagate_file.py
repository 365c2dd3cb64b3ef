"""Label propagation from files (issue 17): a pretrained field model, a sequence file and one frame's label in, the
labels of every frame out in the sequence's geometry; through the function and the bundle config, with one-line
errors and nothing replaced without ``--overwrite``."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_cover.errors import BadInputError, CoverError, WeightsError
from monai_cover.inferers import propagate_file
from monai_cover.networks import CoverNet
from monai_cover.weights import load_field_model, save_backbone, save_field_model
from tests.bundles.conftest import REPO, bundle_error, run_bundle

TINY = {"channels": (4, 8, 8, 16, 16), "decoder_channels": (16, 8, 8, 8), "heads": (2, 2, 2, 1, 1)}
AFFINE = np.diag([0.8, 0.9, 1.0, 1.0])


@pytest.fixture
def model(tmp_path) -> Path:
    torch.manual_seed(0)
    net = CoverNet(spatial_dims=2, **TINY)
    return save_field_model(tmp_path / "models", net, net.config)


def _blob_sequence(tmp_path: Path, frames: int = 5) -> tuple[Path, Path]:
    """A 2D+t NIfTI ``(40, 36, T)`` of a blob moving one voxel a frame, and frame 0's label."""
    grid = np.stack(np.meshgrid(np.arange(40), np.arange(36), indexing="ij"))
    seq = np.stack([(((grid - np.array([14 + t, 15]).reshape(2, 1, 1)) ** 2).sum(0) < 36) for t in range(frames)], -1)
    nib.save(nib.Nifti1Image(seq.astype(np.float32) * 100, AFFINE), tmp_path / "cine.nii.gz")
    nib.save(nib.Nifti1Image(seq[..., 0].astype(np.uint8), AFFINE), tmp_path / "label0.nii.gz")
    return tmp_path / "cine.nii.gz", tmp_path / "label0.nii.gz"


def test_field_model_round_trip_and_refusal_of_a_backbone_only_file(tmp_path, model):
    net = load_field_model(model)
    torch.manual_seed(0)
    ref = CoverNet(spatial_dims=2, **TINY).eval()
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(net(x, x.flip(-1))[0], ref(x, x.flip(-1))[0])
    save_backbone(tmp_path / "bb", ref.backbone, ref.backbone.config)
    with pytest.raises(WeightsError, match=r"model\.pt: not a field model .*cover_net\.pt"):
        load_field_model(tmp_path / "bb" / "model.pt")
    with pytest.raises(CoverError, match="no pretrained field model"):
        load_field_model(tmp_path / "missing.pt")


def test_propagate_file_writes_every_frame_in_the_input_geometry_and_never_replaces(tmp_path, model):
    seq, lab = _blob_sequence(tmp_path)
    out = propagate_file(model, seq, lab, tmp_path / "out", reference_frame=0, mode="chain")
    assert out == tmp_path / "out" / "cine_labels.nii.gz"
    img = nib.load(out)
    assert img.shape == (40, 36, 5) and np.allclose(img.affine, AFFINE)
    data = np.asarray(img.dataobj)
    assert np.array_equal(data[..., 0], np.asarray(nib.load(lab).dataobj))
    assert (tmp_path / "out" / "cine_labels.png").stat().st_size > 1000
    before = out.stat().st_mtime_ns
    with pytest.raises(CoverError, match="cine_labels.nii.gz: exists .* nothing was replaced"):
        propagate_file(model, seq, lab, tmp_path / "out")
    assert out.stat().st_mtime_ns == before
    propagate_file(model, seq, lab, tmp_path / "out", reference_frame=4, overwrite=True)
    assert out.stat().st_mtime_ns != before
    nib.save(nib.Nifti1Image(np.zeros((40, 30), np.uint8), AFFINE), tmp_path / "small.nii.gz")
    with pytest.raises(BadInputError, match=r"small\.nii\.gz: label of shape \(40, 30\) does not match .*\(40, 36\)"):
        propagate_file(model, seq, tmp_path / "small.nii.gz", tmp_path / "out2")
    with pytest.raises(CoverError, match="reference frame 7 is outside"):
        propagate_file(model, seq, lab, tmp_path / "out3", reference_frame=7)
    with pytest.raises(CoverError, match="--mode 'forward': one of direct, chain"):
        propagate_file(model, seq, lab, tmp_path / "out3", mode="forward")


def test_bundle_config_propagates_pydicoms_real_ultrasound_loop(tmp_path, model):
    """The real 30-frame colour ultrasound loop pydicom ships (240 x 320), a disk drawn on frame 0 as its label."""
    import pydicom
    from PIL import Image

    path = Path(pydicom.__file__).parent / "data" / "test_files" / "examples_ybr_color.dcm"
    if not path.is_file():
        pytest.skip(f"{path}: not in this pydicom release")
    rows, cols = np.meshgrid(np.arange(240), np.arange(320), indexing="ij")
    Image.fromarray((((rows - 120) ** 2 + (cols - 160) ** 2) < 900).astype(np.uint8)).save(tmp_path / "disk.png")
    config = str(REPO / "bundles" / "cover_pretrain" / "configs" / "propagate.json")
    proc = run_bundle("run", "--config_file", config, "--model_path", str(model), "--sequence", str(path),
                      "--label", str(tmp_path / "disk.png"), "--output_dir", str(tmp_path / "prop"))
    out = nib.load(tmp_path / "prop" / "examples_ybr_color_labels.nii.gz")
    assert out.shape == (240, 320, 30)
    assert "propagate: 29/29 fields" in proc.stdout + proc.stderr
    line = bundle_error("run", "--config_file", config, "--model_path", str(model), "--output_dir", str(tmp_path))
    assert "propagate needs --sequence <file> and --label <label of one frame>" in line
