"""Bad input files give one-line BadInputError messages naming the file and the problem."""

from __future__ import annotations

import json
import logging
import re
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from monai_cover.data import filter_readable, find_images, load_datalist, pretrain_transforms, seg_preprocessing
from monai_cover.errors import BadInputError
from monai_cover.transforms import CheckImaged, SafeLoadImaged


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return str(path)


def _gray_png(path, seed=0):
    return _png(path, np.random.default_rng(seed).integers(0, 256, (16, 16), dtype=np.uint8))


def _nii(path, arr, affine=None):
    nib.save(nib.Nifti1Image(np.asarray(arr), np.eye(4) if affine is None else affine), str(path))
    return str(path)


def _vol(seed=0, shape=(8, 8, 8)):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _raises(fn, path_or_name, *words):
    """``fn()`` raises BadInputError, one line, with the file name then each of ``words``."""
    name = str(path_or_name).rsplit("/", 1)[-1]
    pattern = re.escape(name) + "".join(".*" + w for w in words)
    with pytest.raises(BadInputError, match=pattern) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert info.value.__cause__ is None  # no chained torch/MONAI traceback under it
    return msg


def _load2d(path):
    return pretrain_transforms(spatial_dims=2, load_size=16)({"image": path})


def _load3d(path):
    return pretrain_transforms(spatial_dims=3, load_size=8)({"image": path})


# -- unreadable files ---------------------------------------------------------------------------------------------


def test_truncated_nifti(tmp_path):
    good = _nii(tmp_path / "vol.nii.gz", _vol())
    data = open(good, "rb").read()
    bad = tmp_path / "truncated.nii.gz"
    bad.write_bytes(data[: len(data) // 2])
    _raises(lambda: _load3d(str(bad)), bad, "cannot read")


def test_corrupt_png(tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    _raises(lambda: _load2d(str(bad)), bad, "cannot read")


def test_truncated_png(tmp_path):
    good = _gray_png(tmp_path / "full.png")
    data = open(good, "rb").read()
    bad = tmp_path / "cut.png"
    bad.write_bytes(data[: len(data) // 2])
    _raises(lambda: _load2d(str(bad)), bad, "cannot read", "truncated")


def test_missing_file(tmp_path):
    _raises(lambda: _load2d(str(tmp_path / "gone.png")), "gone.png", "not found")


def test_safe_load_direct_outside_compose(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not a png")
    _raises(lambda: SafeLoadImaged("image", image_only=True)({"image": str(bad)}), bad, "cannot read")


# -- content checks -----------------------------------------------------------------------------------------------


def test_rgb_png_becomes_gray_mean(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    path = _png(tmp_path / "rgb.png", rgb)
    out = pretrain_transforms(spatial_dims=2, load_size=16, intensity=[0, 255])({"image": path})
    assert out["image"].shape == (1, 16, 16)
    # PIL reader gives (W, H) spatial order: compare with the transposed mean
    expected = rgb.astype(np.float32).mean(-1).T / 255.0
    np.testing.assert_allclose(out["image"][0].numpy(), expected, atol=1e-5)


def test_rgb_png_error_when_disabled(tmp_path):
    path = _png(tmp_path / "rgb.png", np.zeros((16, 16, 3), dtype=np.uint8) + np.arange(3, dtype=np.uint8))
    _raises(lambda: pretrain_transforms(2, 16, rgb_to_gray=False)({"image": path}), "rgb.png", "RGB", "1 channel")


def test_4d_nifti_where_one_channel_expected(tmp_path):
    path = _nii(tmp_path / "dwi.nii.gz", _vol(shape=(8, 8, 8, 3)))
    _raises(lambda: _load3d(path), "dwi.nii.gz", "3 channels", "expected 1 channel")


def test_2d_file_in_3d_pipeline(tmp_path):
    path = _gray_png(tmp_path / "slice.png")
    _raises(lambda: _load3d(path), "slice.png", "2D image", "expected 3D")


@pytest.mark.parametrize("value,word", [(np.nan, "1 NaN"), (np.inf, "1 Inf")])
def test_non_finite(tmp_path, value, word):
    arr = _vol()
    arr[2, 3, 4] = value
    path = _nii(tmp_path / "bad_values.nii.gz", arr)
    _raises(lambda: _load3d(path), "bad_values.nii.gz", "non-finite", word)


def test_constant_image(tmp_path):
    path = _nii(tmp_path / "flat.nii.gz", np.full((8, 8, 8), 5.0, np.float32))
    _raises(lambda: _load3d(path), "flat.nii.gz", re.escape("constant intensity: nothing to learn (empty valid mask)"))


def test_constant_png(tmp_path):
    path = _png(tmp_path / "black.png", np.zeros((16, 16), np.uint8))
    _raises(lambda: _load2d(path), "black.png", "constant intensity")


# -- labels -------------------------------------------------------------------------------------------------------


def _seg(tmp_path, lab, img=None, lab_affine=None, **kw):
    image = _nii(tmp_path / "img.nii.gz", _vol() if img is None else img)
    label = _nii(tmp_path / "lab.nii.gz", lab, lab_affine)
    return lambda: seg_preprocessing(spatial_dims=3, **kw)({"image": image, "label": label})


def test_label_value_out_of_range(tmp_path):
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[:2] = 1
    lab[3, 3, 3] = 7
    _raises(_seg(tmp_path, lab, num_classes=3), "lab.nii.gz", r"label values \[7\]", "num_classes=3")


def test_label_multilabel_values(tmp_path):
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[0] = 128
    _raises(_seg(tmp_path, lab, multilabel=True), "lab.nii.gz", r"\[128\]", "multi-label")


def test_label_valid_passes(tmp_path):
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[:3] = 2
    out = _seg(tmp_path, lab, num_classes=3)()
    assert out["image"].shape == out["label"].shape == (1, 8, 8, 8)


def test_label_shape_mismatch(tmp_path):
    _raises(_seg(tmp_path, np.zeros((8, 8, 6), np.uint8)), "lab.nii.gz", "shape", "does not match image", "img.nii.gz")


def test_label_affine_mismatch(tmp_path):
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    _raises(_seg(tmp_path, np.zeros((8, 8, 8), np.uint8), lab_affine=aff), "lab.nii.gz", "affine", "img.nii.gz")


def test_check_imaged_plain_arrays():
    """Without meta data the key names the item; arrays skip the geometry check."""
    chk = CheckImaged("image", 2, label_key="label", num_classes=2)
    ok = chk({"image": torch.rand(1, 8, 8), "label": torch.zeros(1, 8, 8)})
    assert ok["image"].shape == (1, 8, 8)
    with pytest.raises(BadInputError, match="label: label values"):
        chk({"image": torch.rand(1, 8, 8), "label": torch.full((1, 8, 8), 2.0)})


# -- sources and datalists ----------------------------------------------------------------------------------------


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no images found") as info:
        find_images(tmp_path / "empty")
    assert "\n" not in str(info.value)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*does not exist") as info:
        find_images(tmp_path / "nowhere")
    assert "\n" not in str(info.value)


def test_datalist_missing_key(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"training": [{"image": "a.nii.gz", "label": "b.nii.gz"}, {"image": "c.nii.gz"}]}))
    with pytest.raises(ValueError, match=r"data\.json.*item 1.*no 'label'") as info:
        load_datalist(path, "training")
    assert "\n" not in str(info.value)


def test_unicode_path_with_spaces(tmp_path):
    path = _gray_png(tmp_path / "données patient" / "ïmage 1.png")
    assert [d["image"] for d in find_images(tmp_path / "données patient")] == [path]
    assert _load2d(path)["image"].shape == (1, 16, 16)


def test_dicom_mixed_series(tmp_path):
    pydicom_data = pytest.importorskip("pydicom.data", reason="pydicom not installed: DICOM series check not tested")
    folder = tmp_path / "series"
    folder.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(pydicom_data.get_testdata_file(name), folder / name)
    _raises(lambda: _load3d(str(folder)), "series", "2 DICOM series")


def test_dicom_folder_without_dicom(tmp_path):
    pytest.importorskip("pydicom", reason="pydicom not installed")
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    _raises(lambda: _load3d(str(folder)), "notes", "no DICOM files")


# -- opt-in skipping ----------------------------------------------------------------------------------------------


def test_filter_readable_skips_bad(tmp_path, caplog):
    good = [_gray_png(tmp_path / f"good{i}.png", seed=i) for i in range(2)]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG garbage")
    items = [{"image": good[0]}, {"image": str(bad)}, {"image": good[1]}]
    with caplog.at_level(logging.WARNING, logger="monai_cover.data"):
        kept, skipped = filter_readable(items, pretrain_transforms(spatial_dims=2, load_size=16))
    assert kept == [items[0], items[2]]
    assert len(skipped) == 1 and skipped[0][0] == str(bad) and "cannot read" in skipped[0][1]
    assert "skipped 1 of 3 files" in caplog.text and "bad.png" in caplog.text


def test_filter_readable_all_bad(tmp_path):
    bad = tmp_path / "only.png"
    bad.write_bytes(b"junk")
    _raises(lambda: filter_readable([{"image": str(bad)}]), "only.png", "unusable")
