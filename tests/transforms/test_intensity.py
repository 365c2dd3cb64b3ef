"""One intensity scaling for every path that feeds a network: pretraining, fine-tuning and propagation agree."""

import numpy as np
import torch

from monai_cover.data import pretrain_transforms, seg_preprocessing
from monai_cover.transforms import percentile_scaling, percentile_scalingd


def test_percentiles_map_to_0_and_1_and_modalities_scale_on_their_own():
    x = torch.stack([torch.linspace(0, 1000, 4096), torch.linspace(-5, 5, 4096)]).reshape(2, 64, 64)
    together, apart = percentile_scaling()(x), percentile_scaling(channel_wise=True)(x)
    assert float(together.min()) == 0 and float(together.max()) == 1
    for c in range(2):  # each modality spans [0, 1] on its own, 0.5% of its voxels clipped at each end
        assert float(apart[c].min()) == 0 and float(apart[c].max()) == 1
        assert abs(float((apart[c] == 0).float().mean()) - 0.005) < 0.001
    assert float(together[1].max()) < 0.05  # scaled together, the small-range channel stays near 0
    assert torch.equal(percentile_scalingd("image", channel_wise=True)({"image": x})["image"], apart)


def test_pretraining_and_fine_tuning_scale_a_file_the_same_way(tmp_path):
    from PIL import Image

    img = (np.random.default_rng(0).gamma(2.0, 30.0, (40, 40))).clip(0, 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "x.png")
    Image.fromarray((img > 60).astype(np.uint8)).save(tmp_path / "y.png")
    pre = pretrain_transforms(spatial_dims=2, load_size=40)({"image": str(tmp_path / "x.png")})["image"]
    seg = seg_preprocessing(2, image_size=(40, 40))({"image": str(tmp_path / "x.png"),
                                                     "label": str(tmp_path / "y.png")})["image"]
    assert torch.allclose(torch.as_tensor(pre), torch.as_tensor(seg), atol=1e-6)


def test_ct_window_maps_hu_to_0_1_and_an_unknown_setting_is_one_line():
    import pytest

    from monai_cover.errors import BadSettingError
    from monai_cover.transforms import intensity_scalingd

    hu = torch.tensor([[-3000.0, -1000.0, 0.0, 500.0, 1000.0, 3000.0]])
    out = intensity_scalingd("image", "ct")({"image": hu})["image"]
    assert torch.allclose(torch.as_tensor(out), torch.tensor([[0.0, 0.0, 0.5, 0.75, 1.0, 1.0]]))
    with pytest.raises(BadSettingError, match=r"^--intensity 'mri': expected one of percentile, ct"):
        intensity_scalingd("image", "mri")
    with pytest.raises(BadSettingError, match=r"^--modalities 2 with --intensity ct: each modality is scaled by"):
        seg_preprocessing(3, modalities=2, intensity="ct")  # a HU window would flatten the PET of a PET/CT pair


def test_a_window_given_as_the_setting_maps_it_to_0_1_and_a_bad_window_is_one_line():
    """``--intensity "[-160, 240]"`` (a soft-tissue CT window) scales as "ct" does with that window; a window that
    is not two finite increasing numbers stops in one line naming it."""
    import pytest

    from monai_cover.errors import BadSettingError
    from monai_cover.transforms import intensity_scalingd

    hu = torch.tensor([[-1000.0, -160.0, 40.0, 240.0, 1000.0]])
    out = intensity_scalingd("image", [-160, 240])({"image": hu})["image"]
    assert torch.allclose(torch.as_tensor(out), torch.tensor([[0.0, 0.0, 0.5, 1.0, 1.0]]))
    for bad in ([240, -160], [0, float("nan")], ["low", 1], [1, 2, 3]):
        with pytest.raises(BadSettingError, match=r"^--intensity \[.*(a window is two finite numbers|expected one of)"):
            intensity_scalingd("image", bad)
    with pytest.raises(BadSettingError, match=r"^--modalities 2 with --intensity \[-160, 240\]"):
        seg_preprocessing(3, modalities=2, intensity=[-160, 240])


def test_a_ct_volume_is_scaled_alike_by_pretraining_and_fine_tuning(tmp_path):
    import nibabel as nib

    hu = np.random.default_rng(0).uniform(-1200, 1500, (20, 18, 16)).astype(np.float32)
    nib.save(nib.Nifti1Image(hu, np.eye(4)), tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image((hu > 0).astype(np.uint8), np.eye(4)), tmp_path / "y.nii.gz")
    pre = pretrain_transforms(spatial_dims=3, load_size=(20, 18, 16), intensity="ct")({"image": str(tmp_path /
                                                                                                  "ct.nii.gz")})
    seg = seg_preprocessing(3, intensity="ct")({"image": str(tmp_path / "ct.nii.gz"),
                                                "label": str(tmp_path / "y.nii.gz")})["image"]
    expected = torch.as_tensor(np.clip((hu + 1000) / 2000, 0, 1))[None]
    assert torch.allclose(torch.as_tensor(seg), expected, atol=1e-6)  # RAS of an identity affine: same axes
    assert torch.allclose(torch.as_tensor(pre["image"]), expected, atol=1e-6)  # the crop is the whole volume


def test_a_hu_window_on_an_8_bit_picture_is_one_line(tmp_path):
    """--intensity ct on PNGs squeezed their 0..255 into 0.50-0.63 without a word; a NIfTI in HU is scaled."""
    import nibabel as nib
    import pytest
    from PIL import Image

    from monai_cover.errors import BadSettingError, find_cover_error

    Image.fromarray(np.arange(1600).reshape(40, 40).astype(np.uint8)).save(tmp_path / "x.png")
    for intensity in ("ct", [-160, 240]):
        with pytest.raises(Exception) as err:  # MONAI's Compose wraps it, the bundles' hook finds it
            pretrain_transforms(spatial_dims=2, load_size=40, intensity=intensity)({"image": str(tmp_path / "x.png")})
        found = find_cover_error(err.value)
        assert isinstance(found, BadSettingError) and str(found).startswith(
            f"--intensity {intensity}: a window in Hounsfield units, but {tmp_path / 'x.png'} is an 8-bit picture")
    hu = np.linspace(-1000, 1000, 1600, dtype=np.float32).reshape(40, 40)
    nib.save(nib.Nifti1Image(hu, np.eye(4)), tmp_path / "ct.nii.gz")
    out = pretrain_transforms(spatial_dims=2, load_size=40, intensity="ct")({"image": str(tmp_path / "ct.nii.gz")})
    assert float(out["image"].min()) == 0.0 and float(out["image"].max()) == 1.0
