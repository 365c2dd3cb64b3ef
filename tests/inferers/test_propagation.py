"""Label propagation through a sequence (issue 17): with the true (oracle) field between frames a moving structure's
label stays on it over 10 frames (Dice >= 0.9, sub-voxel motion included); without motion it is left behind."""

from __future__ import annotations

import pytest
import torch

from monai_cover.inferers import propagate_labels


def blob_labels(shape, centres, radius: float) -> list[torch.Tensor]:
    """``(1, *S)`` class maps: class 1 inside a ball around each centre, class 2 a fixed box (does not move)."""
    grid = torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape], indexing="ij"))
    out = []
    for c in centres:
        lab = torch.zeros(shape, dtype=torch.long)
        lab[((grid - torch.tensor(c).view(-1, *[1] * len(shape))) ** 2).sum(0) <= radius**2] = 1
        lab[(slice(0, 4),) * len(shape)] = 2
        out.append(lab[None])
    return out


def dice(a: torch.Tensor, b: torch.Tensor, k: int) -> float:
    a, b = a == k, b == k
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize("dims,velocity", [(2, (0.7, 0.4)), (3, (0.6, 0.0, 0.5))])
def test_oracle_field_keeps_the_label_on_a_moving_structure(dims, velocity):
    shape = (40, 36) if dims == 2 else (28, 24, 26)
    v = torch.tensor(velocity)
    centres = [(torch.tensor(shape, dtype=torch.float32) / 3 + t * v).tolist() for t in range(11)]
    truth = blob_labels(shape, centres, radius=5.0)
    # frame t+1 at p shows frame t at p - v: the field is -v everywhere (the static box moves too, as a
    # translation of the whole frame would, so only class 1 is scored)
    ddf = -v.view(-1, *[1] * dims).expand(dims, *shape)
    labels = propagate_labels(truth[0], [ddf] * 10, num_classes=3)
    assert len(labels) == 11 and torch.equal(labels[0], truth[0])
    scores = [dice(lab, t, 1) for lab, t in zip(labels, truth)]
    assert min(scores) >= 0.9, scores
    # a zero field leaves the label where it was: by frame 10 the structure has moved away from it
    still = propagate_labels(truth[0], [torch.zeros_like(ddf)] * 10, num_classes=3)
    assert dice(still[10], truth[10], 1) < 0.5


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="label must be"):
        propagate_labels(torch.zeros(8, 8, dtype=torch.long), [], num_classes=2)
    with pytest.raises(ValueError, match="does not fit label"):
        propagate_labels(torch.zeros(1, 8, 8, dtype=torch.long), [torch.zeros(2, 8, 9)], num_classes=2)


class CentroidNet(torch.nn.Module):
    """A field "network" for rigidly translated blobs: the constant field ``centroid(a) - centroid(b)`` is exact
    (``b(p) = a(p + ddf)``), whatever the frames' order, so propagation itself is what is tested."""

    config = {"channels": [1, 2, 4, 8, 16]}  # 4 poolings: inputs padded to multiples of 16

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[int, ...]] = []

    def forward(self, a, b):
        self.seen.append(tuple(a.shape[2:]))
        grid = torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in a.shape[2:]],
                                          indexing="ij"))[None]
        cen = lambda x: (grid * x).flatten(2).sum(-1) / x.flatten(2).sum(-1)  # noqa: E731
        ddf = (cen(a) - cen(b)).view(*a.shape[:1], -1, *[1] * (a.ndim - 2))
        return ddf.expand(-1, -1, *a.shape[2:]), None, None


@pytest.mark.parametrize("mode", ["direct", "chain"])
def test_propagate_sequence_from_a_middle_frame_both_ways_on_unpadded_sizes(mode):
    from monai_cover.inferers import propagate_sequence

    shape, centres = (37, 45), [(12 + 2 * t, 14 + 3 * t) for t in range(6)]  # integer motion: exact labels
    labels = torch.cat([(lab == 1).long() for lab in blob_labels(shape, centres, 5.0)])  # (T, *S): the moving blob
    frames = labels.float()
    net = CentroidNet()
    done = []
    out = propagate_sequence(net, frames, labels[2:3], reference=2, mode=mode, batch_size=2,
                             progress=lambda d, n: done.append((d, n)))
    assert out.shape == labels.shape and out.dtype == torch.int64
    assert torch.equal(out[2], labels[2])
    for t in range(6):
        assert dice(out[t : t + 1], labels[t : t + 1], 1) == pytest.approx(1.0), t
    assert set(net.seen) == {(48, 48)}  # padded to multiples of 16, cropped back
    assert done[-1] == (5, 5)
    zero_motion = propagate_sequence(net, frames[[2] * 6], labels[2:3], reference=2, mode=mode)
    assert dice(zero_motion[5:], labels[5:], 1) < 0.5  # the frames decide the result
    with pytest.raises(Exception, match="reference frame 6 is outside the sequence's frames 0..5"):
        propagate_sequence(net, frames, labels[2:3], reference=6)
