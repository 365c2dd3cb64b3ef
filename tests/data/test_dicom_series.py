"""DICOM series folders: a valid series loads in slice order through the pretraining pipeline; a series with
missing slices is reported with the gap, naming the folder."""

from __future__ import annotations

import numpy as np
import pytest

from monai_cover.data import find_images, pretrain_transforms
from monai_cover.errors import BadInputError

pydicom = pytest.importorskip("pydicom", reason="pydicom not installed: DICOM series tests skipped")


def _dataset(sop_class: str, study_uid: str, series_uid: str, modality: str):
    """An empty DICOM image instance of ``sop_class`` with its file meta, study, series and modality set."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = study_uid, series_uid, modality
    return ds


def write_series(folder, z_mm, rows=12, cols=10, series_uid=None, orientation=(1, 0, 0, 0, 1, 0)):
    """One CT slice per position ``z_mm`` along the slice normal of ``orientation`` (ImageOrientationPatient;
    1 x 1 mm pixels); slice k is filled with 100 * k + column index.

    Files are named in reverse order so that only the positions, not the names, give the slice order."""
    from pydicom.uid import CTImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid, study_uid, frame_of_reference = series_uid or generate_uid(), generate_uid(), generate_uid()
    for k, z in enumerate(z_mm):
        ds = _dataset(CTImageStorage, study_uid, series_uid, "CT")
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PatientName, ds.PatientID, ds.InstanceNumber = "Test^Series", "0001", k + 1
        ds.Rows, ds.Columns, ds.PixelSpacing, ds.SliceThickness = rows, cols, [1.0, 1.0], 2.0
        normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [float(v) for v in z * normal], list(orientation)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = (100 * k + np.tile(np.arange(cols, dtype=np.int16), (rows, 1))).astype(np.int16).tobytes()
        ds.save_as(folder / f"IM{len(z_mm) - k:04d}", enforce_file_format=True)
    return folder


def test_series_folder_is_found_and_loads_in_slice_order(tmp_path):
    folder = write_series(tmp_path / "patient 1" / "CT series", [0, 2, 4, 6, 8, 10])
    assert find_images(tmp_path) == [{"image": str(folder)}]  # one item per series folder, files have no suffix
    out = pretrain_transforms(3, load_size=(10, 12, 6), intensity=[0, 1000])({"image": str(folder)})
    img = out["image"]
    assert img.shape == (1, 10, 12, 6)
    # slices ordered by position: slice k holds 100 k + column, i.e. the mean rises by 100 HU (0.1 here) per slice
    means = img[0].mean(dim=(0, 1))
    assert np.allclose(np.diff(means.numpy()), 0.1, atol=1e-4)


def test_series_with_missing_slices_names_folder_and_gap(tmp_path):
    folder = write_series(tmp_path / "gappy", [0, 2, 4, 10, 12, 14])  # 6 and 8 mm missing
    with pytest.raises(BadInputError, match=r"gappy: DICOM series is missing about 2 slice\(s\): gap of 6.0 mm "
                                            r"between 4.0 and 10.0 mm") as info:
        pretrain_transforms(3, load_size=8)({"image": str(folder)})
    assert "\n" not in str(info.value) and info.value.__cause__ is None


def test_two_series_in_one_folder(tmp_path):
    write_series(tmp_path / "mixed", [0, 2, 4])
    for p in (tmp_path / "mixed").iterdir():
        p.rename(p.with_name("a_" + p.name))
    write_series(tmp_path / "mixed", [0, 2, 4])
    with pytest.raises(BadInputError, match="mixed: folder mixes 2 DICOM series"):
        pretrain_transforms(3, load_size=8)({"image": str(tmp_path / "mixed")})


def write_radiograph(path, rows=24, cols=20, value=0):
    """A single-file 2D DICOM image (its own series, no slice position), as digital X-ray archives hold them."""
    from pydicom.uid import generate_uid

    dx_storage = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    ds = _dataset(dx_storage, generate_uid(), generate_uid(), "DX")
    ds.PatientName, ds.PatientID = "Test^Radiograph", "0002"
    ds.Rows, ds.Columns, ds.PixelSpacing = rows, cols, [0.5, 0.5]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    pixels = value + np.add.outer(np.arange(rows), np.arange(cols)).astype(np.uint16)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_folder_of_single_file_radiographs_lists_each_file(tmp_path):
    files = [write_radiograph(tmp_path / "xrays" / f"{name}.dcm", value=100 * k)
             for k, name in enumerate(["a", "b", "c"])]
    items = find_images(tmp_path)
    assert items == [{"image": str(f)} for f in files]  # not one "series" that mixes 3 series
    img = pretrain_transforms(2, load_size=(16, 16))(items[1])["image"]
    assert img.shape == (1, 16, 16) and float(img.max()) > float(img.min())


def test_series_folder_stays_one_item_beside_radiographs(tmp_path):
    series = write_series(tmp_path / "ct", [0, 2, 4])
    xray = write_radiograph(tmp_path / "xr" / "x.dcm")
    assert find_images(tmp_path) == [{"image": str(series)}, {"image": str(xray)}]


def test_a_folder_mixing_images_and_dicom_files_is_listed_whole(tmp_path, caplog):
    """The scan used to decide a folder's kind from its first files: PNGs beside a DICOM file were dropped, and a
    DICOM file without a suffix among images was never looked at."""
    import logging

    from PIL import Image

    mixed = tmp_path / "mixed"
    pngs = []
    for i in range(10):
        pngs.append(mixed / f"img_{i:02d}.png")
        mixed.mkdir(exist_ok=True)
        Image.fromarray(np.full((8, 8), 10 * i, np.uint8)).save(pngs[-1])
    early = write_radiograph(mixed / "a_first.dcm", value=10)  # sorts before the PNGs
    late = write_radiograph(mixed / "zz_no_suffix.dcm", value=20)
    late = late.rename(mixed / "zz_no_suffix")  # found by its DICM magic, after the first 8 files
    with caplog.at_level(logging.INFO, logger="monai_cover.data"):
        items = [it["image"] for it in find_images(mixed)]
    assert sorted(items) == sorted(str(p) for p in [*pngs, early, late])
    assert f"{mixed}: 10 image file(s) and 2 DICOM series or file(s)" in caplog.text
