"""DICOM SEG from a prediction: every frame references its source slice and holds the labels at that slice's
pixel positions, whatever the series' orientation; read back with highdicom."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pydicom", reason="pydicom not installed: DICOM SEG tests skipped")
hd = pytest.importorskip("highdicom", reason="highdicom not installed (monai-cover[dicom]): DICOM SEG tests skipped")

from monai.transforms import LoadImage  # noqa: E402

from monai_cover.capabilities import resolve_dicom_seg  # noqa: E402
from monai_cover.data import dicom_segmentation, dicom_sources  # noqa: E402
from monai_cover.errors import BadInputError, BadSettingError  # noqa: E402
from tests.data.test_dicom_series import write_radiograph, write_series  # noqa: E402


def _world_labels(lps: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Labels defined in patient space (LPS mm, ``(3, ...)``): 1 where x > cut[0], 2 where z > cut[2] (wins)."""
    out = np.where(lps[0] > cut[0], 1, 0)
    return np.where(lps[2] > cut[2], 2, out).astype(np.uint8)


def _voxel_lps(img) -> np.ndarray:
    """LPS position of every voxel of a MONAI-loaded volume, ``(3, X, Y, Z)``."""
    affine = np.asarray(img.meta["affine"], float)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in img.shape], indexing="ij")).reshape(3, -1)
    ras = affine[:3, :3] @ ijk + affine[:3, 3:]
    return (np.diag([-1.0, -1.0, 1.0]) @ ras).reshape(3, *img.shape)


def _pixel_lps(ds) -> np.ndarray:
    """LPS position of every pixel of a DICOM slice, ``(3, rows, cols)``, from its header alone."""
    ori, (dr, dc) = np.asarray(ds.ImageOrientationPatient, float), (float(v) for v in ds.PixelSpacing)
    r, c = np.meshgrid(np.arange(ds.Rows), np.arange(ds.Columns), indexing="ij")
    return (np.asarray(ds.ImagePositionPatient, float)[:, None, None] + ori[:3, None, None] * c * dc
            + ori[3:, None, None] * r * dr)


def _read_back(seg_file, sources, combine=True) -> np.ndarray:
    seg = hd.seg.segread(seg_file)
    return seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in sources], combine_segments=combine)


@pytest.mark.parametrize("orientation", [(1, 0, 0, 0, 1, 0), (0, 1, 0, -1, 0, 0), (-1, 0, 0, 0, 0, -1)],
                         ids=["axial", "rotated", "coronal-flipped"])
def test_frames_hold_the_labels_at_their_source_pixels(tmp_path, orientation):
    folder = write_series(tmp_path / "ct", [0, 2, 4, 6], rows=12, cols=10, orientation=orientation)
    img = LoadImage(image_only=True)(str(folder))
    lps = _voxel_lps(img)
    cut = lps.reshape(3, -1).mean(1) + 0.25  # mid-volume, off the 1 mm grid: no ties from rounding
    label = _world_labels(lps, cut)
    assert set(np.unique(label)) == {0, 1, 2}  # the check below sees every class
    sources = dicom_sources(folder)
    seg = dicom_segmentation(label, np.asarray(img.meta["affine"]), sources, ["left", "top"])
    seg.save_as(tmp_path / "seg.dcm")
    expected = np.stack([_world_labels(_pixel_lps(ds), cut) for ds in sources])
    np.testing.assert_array_equal(_read_back(tmp_path / "seg.dcm", sources), expected)
    back = hd.seg.segread(tmp_path / "seg.dcm")
    assert [s.SegmentLabel for s in back.SegmentSequence] == ["left", "top"]
    assert back.StudyInstanceUID == sources[0].StudyInstanceUID
    assert back.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert back.PatientBirthDate == ""  # missing in the (anonymised) sources: written empty, not a crash


def test_multilabel_channels_may_overlap(tmp_path):
    folder = write_series(tmp_path / "ct", [0, 2, 4], rows=8, cols=6)
    img = LoadImage(image_only=True)(str(folder))
    channels = np.zeros((2, *img.shape), np.uint8)
    channels[0, 1:4] = 1
    channels[1, 2:5] = 1  # overlaps channel 0 on x = 2..3
    sources = dicom_sources(folder)
    dicom_segmentation(channels, np.asarray(img.meta["affine"]), sources, ["a", "b"], multilabel=True).save_as(
        tmp_path / "seg.dcm")
    back = _read_back(tmp_path / "seg.dcm", sources, combine=False)  # (frames, rows, cols, segments)
    # axial series: MONAI's X axis runs along the columns, Y along the rows, Z over the slices in order
    expected = np.stack([np.moveaxis(channels[:, :, :, k], 0, -1).swapaxes(0, 1) for k in range(3)])
    np.testing.assert_array_equal(back, expected)
    assert back[..., 0].any() and (back[..., 0] & back[..., 1]).any()


def test_radiograph_without_position_takes_the_label_as_read(tmp_path):
    path = write_radiograph(tmp_path / "x.dcm", rows=24, cols=20)
    img = LoadImage(image_only=True)(str(path))
    assert tuple(img.shape) == (20, 24)  # columns, rows
    label = np.zeros(img.shape, np.uint8)
    label[2:7, 10:20] = 1
    sources = dicom_sources(path)
    dicom_segmentation(label, np.asarray(img.meta["affine"]), sources, ["lung"]).save_as(tmp_path / "seg.dcm")
    np.testing.assert_array_equal(_read_back(tmp_path / "seg.dcm", sources), label.T[None])


def test_wrong_prediction_shape_names_the_source(tmp_path):
    path = write_radiograph(tmp_path / "x.dcm", rows=24, cols=20)
    with pytest.raises(BadInputError, match=r"x.dcm: prediction of shape \(24, 20\) does not match its 24 x 20"):
        dicom_segmentation(np.zeros((24, 20), np.uint8), np.eye(4), dicom_sources(path), ["lung"])


def test_dicom_seg_setting_and_writer_without_highdicom(tmp_path, monkeypatch, caplog):
    from monai.data import MetaTensor

    from monai_cover.transforms import SaveDicomSegd

    assert resolve_dicom_seg("auto") is True and resolve_dicom_seg(True) is True and resolve_dicom_seg(False) is False
    with pytest.raises(BadSettingError, match=r"--dicom_seg 'yes': auto, True or False"):
        resolve_dicom_seg("yes")
    import monai_cover.capabilities as capabilities

    monkeypatch.setattr(capabilities, "_has_highdicom", lambda: False)
    assert resolve_dicom_seg("auto") is True  # the writer is in the chain and says what is missing
    with pytest.raises(BadSettingError, match=r"--dicom_seg True: needs highdicom"):
        resolve_dicom_seg(True)

    series = write_series(tmp_path / "ct", [0, 2, 4])
    saver = SaveDicomSegd("pred", str(tmp_path / "out"), ["a"])
    assert saver.applies(str(series)) and not saver.applies(str(tmp_path / "a.png"))
    saver.available = False  # as without highdicom: no SEG expected, none written, one hint
    assert not saver.applies(str(series))
    pred = MetaTensor(np.zeros((1, 10, 12, 3), np.uint8), meta={"filename_or_obj": str(series), "affine": np.eye(4)})
    with caplog.at_level("INFO"):
        saver({"pred": pred})
        saver({"pred": pred})
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert sum("adds a DICOM SEG" in r.message for r in caplog.records) == 1
