"""The next image to label by COVER features: farthest from the labeled ones, each image described once per content."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_cover.labeling import FeatureIndex, farthest_unlabeled
from monai_cover.networks import CoverUNet
from monai_cover.weights import save_backbone
from tests.bundles.conftest import blob_case

CHANNELS, DECODER = [4, 8, 8, 16, 16], [16, 8, 8, 8]


def test_the_farthest_unlabeled_image_from_the_labeled_ones_and_the_most_typical_without_labels():
    e = np.eye(3)
    near, far = np.array([1.0, 0.1, 0.0]), e[2]
    features = {"a": e[0], "b": near / np.linalg.norm(near), "c": far, "d": e[0]}
    assert farthest_unlabeled(features, ["a"])[0] == "c"
    assert farthest_unlabeled(features, ["a", "c"])[0] == "b"  # d equals a: nothing new
    assert farthest_unlabeled(features, [])[0] in ("a", "d")  # the mean leans to the two identical ones
    with pytest.raises(ValueError, match="every image is labeled"):
        farthest_unlabeled(features, list(features))


@pytest.fixture
def volumes(tmp_path):
    """Three blob volumes like the labeled ones, one of another kind (a high-frequency pattern), and a backbone."""
    torch.manual_seed(0)
    config = {"spatial_dims": 3, "in_channels": 1, "channels": CHANNELS, "decoder_channels": DECODER}
    backbone = save_backbone(tmp_path / "backbone", CoverUNet(**config), config)["pt"]
    paths = {}
    for i in range(3):
        image, _ = blob_case((24, 20, 16), i)
        paths[f"blobs_{i}"] = tmp_path / f"blobs_{i}.nii.gz"
        nib.save(nib.Nifti1Image(image.astype(np.float32), np.eye(4)), paths[f"blobs_{i}"])
    grids = np.meshgrid(*[np.arange(s) for s in (30, 30, 30)], indexing="ij")
    stripes = 100 + 80 * np.sign(np.sin(grids[0] * 1.3) * np.sin(grids[1] * 0.9))
    paths["stripes"] = tmp_path / "stripes.nii.gz"
    nib.save(nib.Nifti1Image(stripes.astype(np.float32), np.diag([0.7, 0.7, 3.0, 1.0])), paths["stripes"])
    return backbone, {k: str(v) for k, v in paths.items()}


def test_the_image_unlike_the_labeled_ones_comes_next_and_each_content_is_described_once(volumes, tmp_path):
    backbone, paths = volumes
    index = FeatureIndex(backbone, tmp_path / "cache")
    features = index.features(paths)
    assert farthest_unlabeled(features, ["blobs_0"])[0] == "stripes"
    assert farthest_unlabeled(features, ["blobs_0", "stripes"])[0] in ("blobs_1", "blobs_2")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 4

    # a new index over the same files, one copied under another name: everything from the cache, no network
    shutil.copy(paths["stripes"], tmp_path / "copy.nii.gz")
    again = FeatureIndex(backbone, tmp_path / "cache")
    cached = again.features({**paths, "copy": str(tmp_path / "copy.nii.gz")})
    assert again._net is None and len(list((tmp_path / "cache").glob("*.npy"))) == 4
    np.testing.assert_array_equal(cached["copy"], features["stripes"])


def test_an_unreadable_image_is_left_out_with_one_line(volumes, tmp_path, caplog):
    backbone, paths = volumes
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not an image")
    features = FeatureIndex(backbone, tmp_path / "cache").features({**paths, "broken": str(broken)})
    assert set(features) == set(paths)
    assert any(str(broken) in r.getMessage() and "left out" in r.getMessage() for r in caplog.records)
