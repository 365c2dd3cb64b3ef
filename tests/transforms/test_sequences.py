"""Sequence loading (issue 17): NIfTI 2D+t / 3D+t, multi-frame DICOM and video as ``(T, *S)``, frames as channels;
one-line errors for unreadable, wrong-dimensionality and single-frame inputs. Files are written in the tests."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_cover.errors import BadInputError
from monai_cover.transforms import LoadSequenced, load_sequence


def moving_blob(frames: int, shape, seed: int = 0) -> np.ndarray:
    """``(T, *S)``: a bright blob moving one voxel per frame along the first axis (frame t differs from t + 1)."""
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    centre = np.asarray(shape, dtype=float) / 3
    out = []
    for t in range(frames):
        c = centre + np.eye(len(shape))[0] * t
        out.append(100 * np.exp(-sum((g - ci) ** 2 for g, ci in zip(grids, c)) / 8.0) + seed)
    return np.stack(out).astype(np.float32)


@pytest.mark.parametrize("layout", ["xyt", "xy1t"])
def test_nifti_2d_plus_time(tmp_path, layout):
    seq = moving_blob(5, (12, 10))
    data = np.moveaxis(seq, 0, -1)  # (X, Y, T)
    data = data[:, :, None] if layout == "xy1t" else data
    affine = np.diag([0.8, 0.7, 5.0, 1.0])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "cine.nii.gz")
    out = load_sequence(tmp_path / "cine.nii.gz", spatial_dims=2)
    assert out.shape == (5, 12, 10) and out.meta["num_frames"] == 5
    np.testing.assert_allclose(out.numpy(), seq, rtol=1e-6)
    assert torch.allclose(out.affine, torch.as_tensor(affine))


def test_nifti_3d_plus_time_through_the_dict_transform(tmp_path):
    seq = moving_blob(4, (10, 9, 8))
    nib.save(nib.Nifti1Image(np.moveaxis(seq, 0, -1), np.eye(4)), tmp_path / "heart.nii.gz")
    d = LoadSequenced("image", spatial_dims=3)({"image": str(tmp_path / "heart.nii.gz"), "other": 1})
    assert d["image"].shape == (4, 10, 9, 8) and d["other"] == 1
    np.testing.assert_allclose(d["image"].numpy(), seq, rtol=1e-6)
    assert not torch.equal(d["image"][0], d["image"][1])  # frames stay apart, in order


def _multiframe_dicom(path, frames: np.ndarray) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # ultrasound multi-frame
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.NumberOfFrames = frames.shape[0]
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelSpacing = [0.3, 0.4]
    ds.PixelData = frames.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_multiframe_dicom(tmp_path):
    seq = moving_blob(6, (14, 12)).round()
    _multiframe_dicom(tmp_path / "loop.dcm", seq)
    out = load_sequence(tmp_path / "loop.dcm")
    assert out.shape == (6, 14, 12)
    np.testing.assert_array_equal(out.numpy(), seq)
    assert out.affine[0, 0] == pytest.approx(0.3) and out.affine[1, 1] == pytest.approx(0.4)


def test_video(tmp_path):
    iio = pytest.importorskip("imageio.v3", reason="video needs the [video] extra (PyAV + imageio)")
    pytest.importorskip("av", reason="video needs the [video] extra (PyAV + imageio)")
    seq = moving_blob(8, (32, 48)) * 2
    rgb = np.repeat(seq.clip(0, 255).astype(np.uint8)[..., None], 3, -1)
    iio.imwrite(tmp_path / "endo.mp4", rgb, plugin="pyav", codec="libx264", fps=10)
    out = load_sequence(tmp_path / "endo.mp4")
    assert out.shape == (8, 32, 48)
    # lossy codec: the gray frames come back close to what was written, and the blob still moves
    assert np.abs(out.numpy() - rgb[..., 0]).mean() < 4
    assert out[0].argmax() != out[-1].argmax()


def test_one_line_errors_name_the_file(tmp_path):
    one = tmp_path / "still.nii.gz"
    nib.save(nib.Nifti1Image(moving_blob(1, (8, 8)).transpose(1, 2, 0), np.eye(4)), one)
    with pytest.raises(BadInputError, match=r"still.nii.gz: 1 frame: a sequence needs at least 2"):
        load_sequence(one)
    vol = tmp_path / "volume.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), vol)
    with pytest.raises(BadInputError, match=r"volume.nii.gz: shape \(8, 8, 8\) is not a 3D\+t NIfTI"):
        load_sequence(vol, spatial_dims=3)
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"not a dicom file")
    with pytest.raises(BadInputError, match=r"broken.dcm: cannot read a sequence"):
        load_sequence(bad)
    with pytest.raises(BadInputError, match=r"missing.mp4: file not found"):
        load_sequence(tmp_path / "missing.mp4")
    _multiframe_dicom(tmp_path / "loop.dcm", moving_blob(3, (8, 8)).round())
    with pytest.raises(BadInputError, match="a multi-frame DICOM is a 2D\\+t sequence"):
        load_sequence(tmp_path / "loop.dcm", spatial_dims=3)
    # a picture given as a sequence: what a sequence is, not pydicom's "use force=True"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "frame.png")
    with pytest.raises(BadInputError) as err:
        load_sequence(tmp_path / "frame.png")
    assert str(err.value).startswith(f"{tmp_path / 'frame.png'}: not a sequence file (.png is one image); sequences "
                                     "are NIfTI 2D+t / 3D+t") and "force" not in str(err.value)
    # a multi-frame DICOM without a .dcm name is still found by its header
    (tmp_path / "loop.dcm").rename(tmp_path / "loop.bin")
    assert load_sequence(tmp_path / "loop.bin").shape == (3, 8, 8)


def test_a_probability_map_as_a_frame_label_is_refused_not_rounded_to_background(tmp_path):
    from monai_cover.transforms import load_frame_label

    prob = tmp_path / "prob.nii.gz"
    nib.save(nib.Nifti1Image(np.full((8, 8), 0.37, np.float32), np.eye(4)), prob)
    with pytest.raises(BadInputError, match=r"prob.nii.gz: label values such as 0.37 are not class numbers .*"
                                            r"threshold it into a label first"):
        load_frame_label(prob, (8, 8))
    whole = tmp_path / "whole.nii.gz"  # float storage of class numbers is fine
    nib.save(nib.Nifti1Image(np.eye(8, dtype=np.float32) * 2, np.eye(4)), whole)
    assert load_frame_label(whole, (8, 8)).unique().tolist() == [0, 2]


def test_real_ultrasound_cine_loop_that_pydicom_ships():
    """pydicom's ``examples_ybr_color.dcm``: a real 30-frame colour (YBR, JPEG) ultrasound loop, 240 x 320."""
    from pathlib import Path

    import pydicom

    path = Path(pydicom.__file__).parent / "data" / "test_files" / "examples_ybr_color.dcm"
    if not path.is_file():
        pytest.skip(f"{path}: not in this pydicom release")
    out = load_sequence(path)
    assert out.shape == (30, 240, 320) and out.meta["num_frames"] == 30
    assert 0 <= float(out.min()) < float(out.max()) <= 255
    assert float((out[0] - out[10]).abs().mean()) > 1  # the loop moves


def test_pretraining_pipeline_takes_consecutive_frame_windows_of_3d_sequences(tmp_path):
    """3D+t through the pretraining transforms: RAS, scaling over the whole sequence, pad/crop, then a window of
    consecutive frames; a sequence shorter than the window is named in one line."""
    from monai_cover.data import find_sequences, pretrain_transforms

    seq = moving_blob(6, (20, 18, 16))
    nib.save(nib.Nifti1Image(np.moveaxis(seq, 0, -1), np.eye(4)), tmp_path / "heart.nii.gz")
    nib.save(nib.Nifti1Image(np.moveaxis(seq[:2], 0, -1), np.eye(4)), tmp_path / "short.nii.gz")
    (tmp_path / "readme.txt").write_text("not a sequence")
    items = find_sequences(tmp_path)
    assert [p["image"].split("/")[-1] for p in items] == ["heart.nii.gz", "short.nii.gz"]
    xform = pretrain_transforms(spatial_dims=3, load_size=16, frames=3)
    xform.set_random_state(0)
    out = xform(items[0])["image"]
    assert out.shape == (3, 16, 16, 16) and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # consecutive frames: the blob moves one voxel a frame along the first axis
    peaks = [int(out[t].sum((1, 2)).argmax()) for t in range(3)]
    assert peaks[1] - peaks[0] == 1 and peaks[2] - peaks[1] == 1
    with pytest.raises(BadInputError, match="short.nii.gz: 2 frames, fewer than the 3"):
        xform(items[1])
    # the check is in the decoding, so a cache made before training finds it, not the batch that first draws it
    from monai.data import CacheDataset

    with pytest.raises(BadInputError, match="short.nii.gz: 2 frames, fewer than the 3"):
        CacheDataset(items, xform, progress=False, num_workers=0)
