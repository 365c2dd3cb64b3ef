"""Training-free segmentation by dense feature matching ("label transfer").

Each query pixel/voxel takes the soft vote of the labels at its ``top_n`` most similar positions (cosine similarity
of backbone features) among ``k`` labeled atlas images. No training: it measures how well the features alone put
corresponding anatomy at the same place in feature space, which is what COVER's pretext task asks of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.inferers import Inferer
from monai.utils import convert_to_tensor

from monai_cover.networks.blocks.hypercolumn import hypercolumn

__all__ = ["transfer_labels", "LabelTransferInferer"]


def transfer_labels(
    query: torch.Tensor,
    atlas_features: Sequence[torch.Tensor],
    atlas_labels: Sequence[torch.Tensor],
    top_n: int = 8,
    temperature: float = 0.05,
    max_elements: int = 2**24,
) -> torch.Tensor:
    """Soft vote of the labels at each query's ``top_n`` most similar atlas positions.

    Similarities are dot products (cosines for unit-norm features); the ``top_n`` best over all atlases are
    weighted by ``softmax(similarity / temperature)``. Memory stays bounded: queries are processed in chunks so
    that one similarity block holds at most ``max_elements`` values, whatever the number of voxels.

    Args:
        query: ``(N, C)`` query features.
        atlas_features: one ``(M_i, C)`` tensor per atlas.
        atlas_labels: one ``(M_i, K)`` tensor per atlas (one-hot or soft labels, or binary channels).
        top_n: positions that vote.
        temperature: softmax temperature on the similarities.
        max_elements: size of the largest similarity block.

    Returns:
        ``(N, K)`` votes; rows sum to 1 when the labels are one-hot.
    """
    if len(atlas_features) != len(atlas_labels) or not atlas_features:
        raise ValueError(f"need one label per atlas and at least one atlas, got {len(atlas_features)} feature maps "
                         f"and {len(atlas_labels)} labels")
    largest = max(a.shape[0] for a in atlas_features)
    chunk = max(1, max_elements // largest)
    out = []
    for q in query.split(chunk):
        best_sim = best_lab = None
        for feats, labels in zip(atlas_features, atlas_labels):
            sim, idx = (q @ feats.T).topk(min(top_n, feats.shape[0]), dim=1)  # (Q, n)
            lab = labels[idx]  # (Q, n, K)
            if best_sim is not None:  # keep the best top_n over the atlases seen so far
                sim, lab = torch.cat([best_sim, sim], 1), torch.cat([best_lab, lab], 1)
                sim, keep = sim.topk(min(top_n, sim.shape[1]), dim=1)
                lab = lab.gather(1, keep.unsqueeze(-1).expand(-1, -1, lab.shape[-1]))
            best_sim, best_lab = sim, lab
        weights = torch.softmax(best_sim / temperature, dim=1)
        out.append((weights.unsqueeze(-1) * best_lab).sum(1))
    return torch.cat(out, 0)


class LabelTransferInferer(Inferer):
    """MONAI inferer that segments by :func:`transfer_labels` from labeled atlases (no trained head).

    Use it wherever a trained segmentation network would be evaluated (e.g. a ``SupervisedEvaluator``): the
    ``network`` it is called with provides the features (a backbone returning finest-first levels, or any module
    with such a ``backbone``). Atlas features are computed on the first call and reused.

    Args:
        atlases: datalist items (``image``, ``label``) of the labeled atlases.
        transform: deterministic loading of an atlas item (the evaluation preprocessing, labels included).
        num_classes: output channels: classes with background (multi-class) or structures (``multilabel``).
        multilabel: labels are binary channels (output logits, sigmoid > 0.5) instead of one class index
            (output log-probabilities, argmax).
        levels: backbone levels that make the features (finest = 0; default: every level).
        stride: matching grid = input grid / ``stride`` per axis (votes are upsampled back); 2 costs 4x (2D) or
            8x (3D) less.
        top_n, temperature, max_elements: see :func:`transfer_labels`.

    Call: ``(B, C, *S)`` images -> ``(B, num_classes, *S)`` logits (the atlases may have other sizes).
    """

    def __init__(
        self,
        atlases: Sequence[Mapping],
        transform: Callable[[Mapping], Mapping],
        num_classes: int,
        multilabel: bool = False,
        levels: Sequence[int] | None = None,
        stride: int = 1,
        top_n: int = 8,
        temperature: float = 0.05,
        max_elements: int = 2**24,
        image_key: str = "image",
        label_key: str = "label",
    ) -> None:
        super().__init__()
        if not atlases:
            raise ValueError("LabelTransferInferer: no atlases (labeled images) given")
        self.atlases, self.transform = list(atlases), transform
        self.num_classes, self.multilabel = num_classes, multilabel
        self.levels = None if levels is None else list(levels)
        self.stride, self.top_n, self.temperature, self.max_elements = stride, top_n, temperature, max_elements
        self.image_key, self.label_key = image_key, label_key
        self._atlas_cache: tuple[int, list[torch.Tensor], list[torch.Tensor]] | None = None

    def _grid(self, shape: Sequence[int]) -> list[int]:
        return [max(1, math.ceil(s / self.stride)) for s in shape]

    def _features(self, backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *S) -> (B, F, *grid)``."""
        return hypercolumn(backbone(x), self._grid(x.shape[2:]), self.levels)

    def _labels(self, label: torch.Tensor, grid: list[int]) -> torch.Tensor:
        """``(1 or K, *S)`` label -> ``(K, *grid)`` fractions (area-averaged one-hot or binary channels)."""
        label = convert_to_tensor(label, track_meta=False).float()
        if not self.multilabel:
            label = F.one_hot(label[0].long(), self.num_classes).movedim(-1, 0).float()
        return F.adaptive_avg_pool2d(label, grid) if len(grid) == 2 else F.adaptive_avg_pool3d(label, grid)

    def _atlas(self, backbone: nn.Module, device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if self._atlas_cache is None or self._atlas_cache[0] != id(backbone):
            feats, labels = [], []
            for item in self.atlases:
                d = self.transform(dict(item))
                x = convert_to_tensor(d[self.image_key], track_meta=False).float().unsqueeze(0).to(device)
                f = self._features(backbone, x)[0]
                feats.append(f.flatten(1).T)
                labels.append(self._labels(d[self.label_key], list(f.shape[1:])).to(device).flatten(1).T)
            self._atlas_cache = (id(backbone), feats, labels)
        return self._atlas_cache[1], self._atlas_cache[2]

    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args, **kwargs) -> torch.Tensor:  # type: ignore[override]
        backbone = getattr(network, "backbone", network)
        x = convert_to_tensor(inputs, track_meta=False).float()
        atlas_feats, atlas_labels = self._atlas(backbone, x.device)
        query = self._features(backbone, x)  # (B, F, *grid)
        out = []
        for q in query:
            vote = transfer_labels(q.flatten(1).T, atlas_feats, atlas_labels, self.top_n, self.temperature,
                                   self.max_elements)  # (N, K)
            out.append(vote.T.reshape(-1, *q.shape[1:]))
        mode = "bilinear" if x.ndim == 4 else "trilinear"
        prob = F.interpolate(torch.stack(out), size=x.shape[2:], mode=mode, align_corners=False)
        prob = prob.clamp(1e-6, 1 - 1e-6)
        return torch.logit(prob) if self.multilabel else prob.log()
