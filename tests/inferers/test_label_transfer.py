"""Label transfer by feature matching: exact with position-encoding features, chance-level with random ones."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from monai_cover.inferers import LabelTransferInferer, transfer_labels
from monai_cover.networks.blocks import hypercolumn


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def position_code(coords: torch.Tensor, freqs: int = 6) -> torch.Tensor:
    """``(N, d)`` positions -> ``(N, 2 * d * freqs)`` unit vectors whose dot product peaks only at equal positions."""
    ang = coords.float().unsqueeze(-1) * torch.tensor([2 * math.pi / 64 * 2**k / 2 for k in range(freqs)])
    code = torch.cat([ang.cos(), ang.sin()], -1).flatten(1)
    return nn.functional.normalize(code, dim=1)


def disk_label(shape, centre, radius) -> torch.Tensor:
    grid = torch.stack(torch.meshgrid(*[torch.arange(s) for s in shape], indexing="ij"), -1).float()
    return ((grid - torch.tensor(centre)).norm(dim=-1) < radius)


@pytest.mark.parametrize("shape", [(40, 36), (16, 18, 14)])
def test_position_features_transfer_a_shifted_copy_exactly(shape):
    """The query is the atlas shifted by ``t``: its content at q came from atlas position q - t, so features that
    encode the source position must reproduce the shifted label exactly (Dice 1), in 2D and 3D."""
    d = len(shape)
    shift = torch.tensor([3, -2, 1][:d])
    coords = torch.stack(torch.meshgrid(*[torch.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, d)
    atlas_label = disk_label(shape, [s / 2 for s in shape], min(shape) / 4)
    query_label = disk_label(shape, [s / 2 + float(t) for s, t in zip(shape, shift)], min(shape) / 4)
    onehot = nn.functional.one_hot(atlas_label.reshape(-1).long(), 2).float()
    vote = transfer_labels(position_code(coords - shift), [position_code(coords)], [onehot], top_n=1,
                           max_elements=4096)  # small blocks: many chunks
    pred = vote.argmax(1).reshape(shape).bool()
    assert dice(pred, query_label) == 1.0
    # random features carry no correspondence: far from exact
    torch.manual_seed(0)
    rand = nn.functional.normalize(torch.randn(len(coords), 24), dim=1)
    vote = transfer_labels(rand, [nn.functional.normalize(torch.randn(len(coords), 24), dim=1)], [onehot], top_n=8)
    assert dice(vote.argmax(1).reshape(shape).bool(), query_label) < 0.6


def test_votes_merge_the_best_positions_over_atlases():
    """top_n is over all atlases together, and the softmax weights follow the similarities."""
    q = torch.tensor([[1.0, 0.0]])
    a1 = torch.tensor([[0.0, 1.0], [0.6, 0.8]])  # similarities 0, 0.6
    a2 = torch.tensor([[1.0, 0.0], [0.8, 0.6]])  # similarities 1, 0.8
    l1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    l2 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    vote = transfer_labels(q, [a1, a2], [l1, l2], top_n=2, temperature=0.1)
    w = torch.softmax(torch.tensor([1.0, 0.8]) / 0.1, 0)
    assert torch.allclose(vote, torch.tensor([[w[1], w[0]]]), atol=1e-6)
    assert torch.allclose(vote.sum(1), torch.ones(1))
    with pytest.raises(ValueError, match="one label per atlas"):
        transfer_labels(q, [a1], [], top_n=1)


def test_hypercolumn_is_the_mean_of_level_cosines():
    levels = [torch.randn(1, 3, 8, 8), torch.randn(1, 5, 4, 4)]
    f = hypercolumn(levels, (8, 8))
    assert f.shape == (1, 8, 8, 8)
    assert torch.allclose(f.norm(dim=1), torch.ones(1, 8, 8), atol=1e-5)  # unit vectors: dot = mean level cosine
    assert hypercolumn(levels, (8, 8), use_levels=[1]).shape == (1, 5, 8, 8)


class _Identity(nn.Module):
    """'Backbone' whose only level is the image itself: with a one-hot 'image', matching is label copying."""

    def forward(self, x):
        return [x]


@pytest.mark.parametrize("multilabel", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_inferer_outputs_logits_of_the_transferred_labels(multilabel, stride):
    shape = (12, 10)
    label = disk_label(shape, (6, 5), 3.5)
    image = torch.stack([label, ~label]).float()  # features that identify the structure exactly
    atlas = {"image": image, "label": label[None].float()}
    inferer = LabelTransferInferer([atlas], transform=lambda d: d, num_classes=1 if multilabel else 2,
                                   multilabel=multilabel, stride=stride, top_n=4)
    out = inferer(image[None], _Identity())
    assert out.shape == (1, 1 if multilabel else 2, *shape)
    pred = out[0, 0] > 0 if multilabel else out[0].argmax(0) == 1
    assert dice(pred, label) > (0.999 if stride == 1 else 0.9)
    if not multilabel:  # log-probabilities: they exponentiate to votes that sum to 1
        assert torch.allclose(out.exp().sum(1), torch.ones(1, *shape), atol=1e-4)
    with pytest.raises(ValueError, match="no atlases"):
        LabelTransferInferer([], transform=lambda d: d, num_classes=2)
