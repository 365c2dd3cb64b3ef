"""Files given as weights that hold no weights at all: each ends in one line that says what the file is."""

import collections

import pytest
import torch

from monai_cover.errors import WeightsError
from monai_cover.networks import CoverUNet
from monai_cover.weights import load_backbone_state, load_model_file, save_backbone

LFS = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a21\nsize 1325\n"


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("content, says", [
    (LFS, "(a Git LFS pointer, not the weights; fetch them with `git lfs pull` in its repository)."),
    ('{"spatial_dims": 2}\n', "(a text file beginning '{\"spatial_dims\": 2}', not torch.save or safetensors weights"),
    ("hello\n", "(a text file beginning 'hello', not torch.save or safetensors weights; give the weights file)."),
    ("", "(an empty file (0 bytes); copy or export it again)."),
])
def test_text_given_as_weights_is_named_as_text(tmp_path, suffix, content, says):
    path = tmp_path / f"model{suffix}"
    path.write_text(content)
    with pytest.raises(WeightsError) as err:
        load_backbone_state(path)
    assert str(err.value).startswith(f"{path}: not a readable weights file {says}")
    assert "pickled" not in str(err.value)


def test_lfs_pointer_as_segmentation_model(tmp_path):
    path = tmp_path / "model.pt"
    path.write_text(LFS)
    with pytest.raises(WeightsError, match="Git LFS pointer"):
        load_model_file(torch.nn.Linear(1, 1), path)


def test_real_torch_files_are_still_told_apart(tmp_path):
    """The sniffing leaves binary files to the loader: refused pickles and truncated zips keep their messages."""
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    pickled = tmp_path / "pickled.pt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "payload": Payload(), "c": collections.Counter()}, pickled)
    with pytest.raises(WeightsError, match="it holds pickled Python objects"):
        load_backbone_state(pickled)
    save_backbone(tmp_path, CoverUNet(2, 1, [4, 8, 8, 16, 16], [16, 8, 8, 8]), {"spatial_dims": 2})
    truncated = tmp_path / "model.pt"
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(WeightsError, match=r"truncated or not written by torch.save"):
        load_backbone_state(truncated)
