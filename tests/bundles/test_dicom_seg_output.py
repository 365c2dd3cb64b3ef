"""DICOM in, DICOM SEG out: cover_seg inference on a DICOM series (real CT header and pixels from pydicom's test
files) writes a DICOM SEG beside the NIfTI whose frames, read back with highdicom, equal the NIfTI prediction at
each source pixel; reruns skip both files. A 2D DICOM image (real MR) gives a one-frame SEG."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

pydicom = pytest.importorskip("pydicom", reason="pydicom not installed: DICOM SEG tests skipped")
hd = pytest.importorskip("highdicom", reason="highdicom not installed (monai-cover[dicom]): DICOM SEG tests skipped")

from pydicom.data import get_testdata_file  # noqa: E402

from monai_cover.networks import CoverSegNet  # noqa: E402
from tests.bundles.conftest import REPO, TINY_NET, bundle_error, run_bundle  # noqa: E402
from tests.data.test_dicom_seg import _pixel_lps  # noqa: E402

INFER = str(REPO / "bundles" / "cover_seg" / "configs" / "inference.json")


def _model(root, dims: int) -> None:
    torch.manual_seed(3)
    net = CoverSegNet(dims, 1, 3, [4, 8, 8, 16, 16], [16, 8, 8, 8])
    (root / "models").mkdir()
    torch.save(net.state_dict(), root / "models" / "model.pt")


def _ct_series(folder, slices: int = 4):
    """pydicom's real CT slice as a series: the same pixels at ``slices`` positions 5 mm apart, new UIDs."""
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True)
    series, frame_of_reference = generate_uid(), generate_uid()
    for k in range(slices):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series, frame_of_reference
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], float(ds.ImagePositionPatient[2]) + 5.0 * k]
        ds.InstanceNumber = k + 1
        ds.save_as(folder / f"slice{slices - k:02d}.dcm")  # names in reverse: only positions give the order
    return folder


def _nifti_at_source_pixels(nifti_file, ds) -> np.ndarray:
    """The NIfTI prediction looked up at every pixel of one DICOM slice (its header's geometry)."""
    img = nib.load(nifti_file)
    data = np.asarray(img.dataobj)
    lps = _pixel_lps(ds)
    ras = np.stack([-lps[0], -lps[1], lps[2]]).reshape(3, -1)
    ijk = np.rint(np.linalg.inv(img.affine)[:3, :3] @ ras + np.linalg.inv(img.affine)[:3, 3:]).astype(int)
    data = data.reshape(*data.shape[:2], -1)
    return data[ijk[0], ijk[1], ijk[2]].reshape(ds.Rows, ds.Columns)


def test_series_in_dicom_seg_out(tmp_path):
    _model(tmp_path, 3)
    series = _ct_series(tmp_path / "scans" / "patient1" / "CT")
    args = ["run", "--config_file", INFER, "--bundle_root", str(tmp_path), "--dataset_dir", str(tmp_path / "scans"),
            "--spatial_dims", "3", "--roi_size", "[16,16,16]", "--label_names", "['liver','kidney']", *TINY_NET]
    proc = run_bundle(*args)
    pred = tmp_path / "predictions"  # one input: named below the common folder of the inputs
    assert sorted(p.name for p in pred.iterdir()) == ["CT_seg.dcm", "CT_seg.nii.gz"]
    assert "1 written, 0 skipped" in proc.stdout + proc.stderr

    seg = hd.seg.segread(pred / "CT_seg.dcm")
    sources = sorted((pydicom.dcmread(f) for f in series.iterdir()), key=lambda ds: float(ds.ImagePositionPatient[2]))
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["liver", "kidney"]
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID and seg.PatientID == sources[0].PatientID
    referenced = {r.ReferencedSOPInstanceUID for item in seg.ReferencedSeriesSequence
                  for r in item.ReferencedInstanceSequence}
    assert referenced == {s.SOPInstanceUID for s in sources}
    position = {s.SOPInstanceUID: [float(v) for v in s.ImagePositionPatient] for s in sources}
    for frame in seg.PerFrameFunctionalGroupsSequence:  # each frame lies where the slice it references lies
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        np.testing.assert_allclose([float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient],
                                   position[uid], atol=1e-4)
    frames = seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in sources], combine_segments=True)
    expected = np.stack([_nifti_at_source_pixels(pred / "CT_seg.nii.gz", ds) for ds in sources])
    assert len(np.unique(expected)) > 1  # the random network predicts more than one class: a real comparison
    np.testing.assert_array_equal(frames, expected)

    proc = run_bundle(*args)  # a rerun keeps both files
    assert "0 written, 1 skipped" in proc.stdout + proc.stderr

    run_bundle(*args, "--overwrite", "True", "--dicom_seg", "False", "--output_dir", str(tmp_path / "nifti_only"))
    assert sorted(p.name for p in (tmp_path / "nifti_only").iterdir()) == ["CT_seg.nii.gz"]


def test_2d_dicom_image_gives_a_one_frame_seg(tmp_path):
    _model(tmp_path, 2)
    data = tmp_path / "mr"
    data.mkdir()
    (data / "MR_small.dcm").write_bytes(open(get_testdata_file("MR_small.dcm"), "rb").read())
    run_bundle("run", "--config_file", INFER, "--bundle_root", str(tmp_path), "--dataset_dir", str(data),
               "--image_size", "[32,32]", "--roi_size", "[32,32]", "--label_names", "['a','b']", *TINY_NET)
    pred = tmp_path / "predictions"
    seg = hd.seg.segread(pred / "MR_small_seg.dcm")
    source = pydicom.dcmread(data / "MR_small.dcm")
    frames = seg.get_pixels_by_source_instance([source.SOPInstanceUID], combine_segments=True)
    assert frames.shape == (1, 64, 64)
    np.testing.assert_array_equal(frames[0], _nifti_at_source_pixels(pred / "MR_small_seg.nii.gz", source))


def test_asking_for_a_seg_of_inputs_none_of_which_is_dicom_is_one_line(tmp_path):
    """--dicom_seg True on PNG inputs wrote no SEG and said nothing; auto writes their NIfTI/PNG as usual."""
    from PIL import Image

    _model(tmp_path, 2)
    data = tmp_path / "pngs"
    data.mkdir()
    Image.fromarray(np.arange(32 * 32).reshape(32, 32).astype(np.uint8)).save(data / "x.png")
    args = ["run", "--config_file", INFER, "--bundle_root", str(tmp_path), "--dataset_dir", str(data),
            "--image_size", "[32,32]", "--roi_size", "[32,32]", "--label_names", "['a','b']", *TINY_NET]
    last = bundle_error(*args, "--dicom_seg", "True")
    assert last.startswith(f"BadSettingError: --dicom_seg True: none of the 1 inputs (e.g. {data / 'x.png'}) is "
                           "DICOM, so no DICOM SEG would be written")
    assert not [p for p in (tmp_path / "predictions").rglob("*") if p.is_file()]  # nothing written
    run_bundle(*args)
    assert (tmp_path / "predictions" / "x_seg.nii.gz").is_file()


def test_a_series_the_seg_cannot_reference_is_one_line_and_the_nifti_stays(tmp_path):
    _model(tmp_path, 3)
    series = _ct_series(tmp_path / "CT", slices=3)
    for f in series.iterdir():  # a CT without its frame of reference (a broken anonymiser)
        ds = pydicom.dcmread(f)
        del ds.FrameOfReferenceUID
        ds.save_as(f)
    last = bundle_error("run", "--config_file", INFER, "--bundle_root", str(tmp_path), "--dataset_dir", str(series),
                        "--spatial_dims", "3", "--roi_size", "[16,16,16]", "--label_names", "['a','b']", *TINY_NET)
    assert f"{series}: cannot write a DICOM SEG (ValueError: Source images have no Frame Of Reference UID" in last
    assert "--dicom_seg False writes NIfTI only" in last
    assert (tmp_path / "predictions" / "CT_seg.nii.gz").is_file()


def test_series_folders_named_by_uid_keep_their_whole_names(tmp_path):
    """PACS exports name series folders by UID: MONAI would cut each name at its last dot (one shared name and a
    refused run); every series gets its own prediction, named by its whole folder name."""
    _model(tmp_path, 3)
    for uid in ("1.2.826.0.1.3680043.8.498.11", "1.2.826.0.1.3680043.8.498.12"):
        _ct_series(tmp_path / "export" / uid, slices=3)
    proc = run_bundle("run", "--config_file", INFER, "--bundle_root", str(tmp_path), "--dataset_dir",
                      str(tmp_path / "export"), "--spatial_dims", "3", "--roi_size", "[16,16,16]", "--label_names",
                      "['a','b']", *TINY_NET)
    assert "2 written, 0 skipped" in proc.stdout + proc.stderr
    assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == [
        "1.2.826.0.1.3680043.8.498.11_seg.dcm", "1.2.826.0.1.3680043.8.498.11_seg.nii.gz",
        "1.2.826.0.1.3680043.8.498.12_seg.dcm", "1.2.826.0.1.3680043.8.498.12_seg.nii.gz"]
