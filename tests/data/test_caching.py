"""The ``cache`` modes give the same items; a disk cache is reused, and a changed file or setting is decoded again."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.utils import set_determinism

from monai_cover.data import pretrain_transforms, training_dataset


@pytest.fixture()
def volumes(tmp_path):
    items = []
    for i in range(3):
        f = tmp_path / f"vol_{i}.nii.gz"
        nib.save(nib.Nifti1Image(np.random.default_rng(i).random((20, 22, 18)).astype(np.float32), np.eye(4)), f)
        items.append({"image": str(f)})
    return items


def first_items(items, cache, cache_dir=None, settings=None, load_size=16):
    set_determinism(0)  # the random crop after the cache draws the same in every mode
    ds = training_dataset(items, pretrain_transforms(3, load_size=load_size), cache=cache, cache_dir=cache_dir,
                          settings=settings or {"load_size": load_size})
    return [ds[i]["image"] for i in range(len(items))]


def test_every_cache_mode_gives_the_same_items(volumes, tmp_path):
    memory = first_items(volumes, "memory")
    for mode, cache_dir in (("disk", tmp_path / "cache"), ("none", None)):
        for a, b in zip(memory, first_items(volumes, mode, cache_dir)):
            assert a.shape == (1, 16, 16, 16)
            torch.testing.assert_close(torch.as_tensor(b), torch.as_tensor(a))


def test_disk_cache_is_reused_and_follows_files_and_settings(volumes, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = first_items(volumes, "disk", cache)
    entries = sorted(cache.glob("*.pt"))
    assert len(entries) == 3

    import monai_cover.transforms.io as loading

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an image the cache holds")

    with monkeypatch.context() as m:  # a second run reads the cache, decodes nothing
        m.setattr(loading, "_safe_load", no_decoding)
        again = first_items(volumes, "disk", cache)
    for a, b in zip(first, again):
        torch.testing.assert_close(torch.as_tensor(b), torch.as_tensor(a))

    # a file replaced under the same name: decoded again (new entry), its new pixels used
    nib.save(nib.Nifti1Image(np.full((20, 22, 18), 5.0, np.float32) + np.eye(20, 22)[..., None],
                             np.eye(4)), volumes[0]["image"])
    changed = first_items(volumes, "disk", cache)
    assert len(list(cache.glob("*.pt"))) == 4
    assert not torch.equal(torch.as_tensor(changed[0]), torch.as_tensor(first[0]))
    # another setting that shapes the cached arrays: decoded again, never read at the old size
    bigger = first_items(volumes, "disk", cache, load_size=24)
    assert bigger[0].shape == (1, 24, 24, 24) and len(list(cache.glob("*.pt"))) == 7


def test_unknown_cache_mode_names_the_choices(volumes):
    with pytest.raises(ValueError, match="memory, disk, none"):
        training_dataset(volumes, pretrain_transforms(3, load_size=16), cache="ram")


def test_several_crops_per_volume_are_different_crops_of_one_decode(volumes):
    from monai.data import DataLoader

    set_determinism(0)
    ds = training_dataset(volumes, pretrain_transforms(3, load_size=12, num_crops=3), cache="none")
    crops = ds[0]
    assert isinstance(crops, list) and len(crops) == 3
    assert not torch.equal(torch.as_tensor(crops[0]["image"]), torch.as_tensor(crops[1]["image"]))
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (6, 1, 12, 12, 12)  # MONAI's collate flattens the crops into the batch


def test_a_cache_folder_that_cannot_be_made_is_one_line(volumes):
    from monai_cover.errors import OutputWriteError

    with pytest.raises(OutputWriteError, match="/proc/no_cache: cannot create the disk cache folder .* --cache_dir"):
        training_dataset(volumes, pretrain_transforms(3, load_size=16), cache="disk", cache_dir="/proc/no_cache")
