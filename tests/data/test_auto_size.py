"""``auto`` sizes from the data: median grid of the training volumes fitted to the network's stride and budget."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pytest

from monai_cover.data import auto_roi_size, auto_view_sizes
from monai_cover.data.auto_size import fit_to_network, median_grid
from monai_cover.errors import BadSettingError


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """Three thick-slice stacks (x, y, 11-13 slices of 8 mm), one an unreadable file that must be passed over."""
    root = tmp_path_factory.mktemp("auto")
    items = []
    for i, shape in enumerate([(96, 90, 12), (100, 96, 11), (90, 100, 13)]):
        f = root / f"s{i}.nii.gz"
        nib.save(nib.Nifti1Image(np.random.rand(*shape).astype(np.float32), np.diag([1.0, 1.0, 8.0, 1.0])), f)
        items.append({"image": str(f)})
    (root / "broken.nii.gz").write_bytes(b"not an image")
    return items + [{"image": str(root / "broken.nii.gz")}]


@pytest.mark.parametrize("grid,round_up,budget,expected", [
    ([35, 50, 36], True, 64**3, [48, 64, 48]),      # pads less than one stride per axis
    ([35, 50, 36], False, 48**3, [32, 48, 32]),     # crops less than one stride per axis
    ([96, 96, 12], False, 48**3, [80, 80, 16]),     # a slab keeps one stride; the longest axes pay for the budget
    ([512, 512, 300], True, 64**3, [64, 64, 64]),   # large volumes shrink to the budget, longest axis first
    ([5, 7], True, 256**2, [16, 16]),               # never below one stride
])
def test_fit_to_network(grid, round_up, budget, expected):
    assert fit_to_network(grid, 5, budget, round_up=round_up) == expected


def test_median_grid_skips_unreadable_files_and_follows_pixdim(stacks):
    assert median_grid(stacks) == [96, 96, 12]
    assert median_grid(stacks, pixdim=(2.0, 2.0, 4.0)) == [48, 48, 24]  # Spacingd's grid, not resampled here


def test_auto_roi_size_covers_the_median_volume_and_logs_it(stacks, caplog):
    with caplog.at_level(logging.INFO, logger="monai_cover.data.auto_size"):
        assert auto_roi_size("auto", stacks, 3, 5) == [96, 96, 16]
    assert "--roi_size auto: [96, 96, 16] from the median grid [96, 96, 12]" in caplog.text
    assert auto_roi_size("auto", stacks, 2, 5, slicewise=True) == [96, 96]  # in-plane axes of the volumes
    assert auto_roi_size("auto", [], 2, 5, image_size=[250, 200]) == [256, 208]  # 2D images resized first
    assert auto_roi_size([64, 64, 16], stacks, 3, 5) == [64, 64, 16]  # given sizes are kept


def test_auto_view_sizes(stacks):
    # crop within the data; the grid views are cut from is 1.5x the crop but no larger than the data
    assert auto_view_sizes("auto", None, stacks, 3, 5) == ([80, 80, 16], [96, 96, 16])
    assert auto_view_sizes([32, 32, 16], None, stacks, 3, 5) == ([32, 32, 16], [48, 48, 24])
    assert auto_view_sizes(48, [60, 60, 60], stacks, 3, 5) == (48, [60, 60, 60])
    with pytest.raises(BadSettingError, match="--crop_size auto: sizes from the data are for volumes"):
        auto_view_sizes("auto", None, stacks, 2, 5)


def test_median_grid_of_nothing_readable_is_one_line(stacks):
    from monai_cover.errors import BadInputError

    with pytest.raises(BadInputError, match="none readable"):
        median_grid(stacks[-1:])


@pytest.mark.parametrize("size,message", [
    ("abc", "whole numbers of voxels expected"), ([48, "x"], "whole numbers of voxels expected"),
    (0, "whole numbers of voxels expected"), ([48, 40, 16], "2 values expected"),
])
def test_sizes_that_are_not_voxel_counts_are_one_line(size, message):
    from monai_cover.config import fit_patch_size

    with pytest.raises(BadSettingError, match=message):
        fit_patch_size("roi_size", size, 2, 5)
