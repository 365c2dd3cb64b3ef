"""The pair part of COVER views: where view a and view b come from (the image, two modalities, two frames) and
whether view b's contrast is synthetic."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from monai.transforms import Randomizable
from monai.utils import look_up_option

from monai_cover.transforms import functional as Fn
from monai_cover.transforms.params import PAIR_KINDS, ViewParams

__all__ = ["ViewPairs"]

_REMAP_KNOTS = 6  # synthetic contrast: curve values at 6 equally spaced normalised intensities


class ViewPairs(Randomizable):
    """Draw and pick the sources of the two views of each batch item: both from the whole image (the default: gray or
    RGB), from two co-registered modalities, from two frames of a sequence, or view b with a synthetic contrast.

    ``randomize(batch_size)`` draws with this object's ``R`` on the CPU and returns the draw (the pair fields of
    :class:`~monai_cover.transforms.ViewParams`; nothing is kept); :meth:`sources` picks the views' images and
    :meth:`remap` gives view b its synthetic contrast, on any device. Inside
    :class:`~monai_cover.transforms.CoverViewSampler` the sampler's ``R`` draws, after every other draw, so that
    runs without these options keep their views. With every option off nothing is drawn.

    Args:
        cross_modal: ``None`` (default): the image's channels are one image (gray or RGB) and both views keep them.
            A share in ``[0, 1]``: the channels are co-registered modalities (T1/T2/FLAIR, PET/CT, ...) and the views
            are single-channel: view a from a random channel, view b from another channel with probability
            ``cross_modal`` (else the same one), so the network must match anatomy across contrasts. Needs images
            with at least 2 channels when the share is above 0.
        synthetic_contrast: probability that view b (of a same-modality pair) has its intensities remapped through a
            random curve (:func:`~monai_cover.transforms.functional.intensity_remap`): half of the curves monotonic
            (increasing or decreasing, equally likely), half not, each through 6 random values, as contrast-agnostic
            registration trains on synthetic contrasts. Cross-modal learning for single-modality archives.
        temporal_gap: 0 (default): off. A maximum frame gap ``G >= 1``: the image's channels are the frames of a
            sequence (:func:`~monai_cover.transforms.load_sequence`) and the views are single-channel: view a from frame
            ``t``, view b from frame ``t + gap`` (warped by the drawn field as always). ``gap`` is 0 (then ``ddf`` is
            the exact target, as for images) or, for ``temporal_share`` of the pairs, uniform on ``+-1..+-G``
            (capped by the sequence length); for those the true field also holds the unknown motion between the
            frames, so ``ddf`` is only the synthetic part and the pair is of kind ``"temporal"``
            (:class:`~monai_cover.losses.TemporalCoverLoss` trains them without it). ``t`` is uniform over the
            frames that leave room for the gap. Synthetic contrast applies to a frame paired with itself only. Not
            together with ``cross_modal``.
        temporal_share: share of temporal pairs with a gap (the rest pair a frame with itself: frame-wise COVER
            when 0).
    """

    def __init__(
        self,
        cross_modal: float | None = None,
        synthetic_contrast: float = 0.0,
        temporal_gap: int = 0,
        temporal_share: float = 0.5,
    ) -> None:
        self._config = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        if cross_modal is not None and not 0.0 <= cross_modal <= 1.0:
            raise ValueError(f"ViewPairs: cross_modal must be None or in [0, 1], got {cross_modal}.")
        if not 0.0 <= synthetic_contrast <= 1.0:
            raise ValueError(f"ViewPairs: synthetic_contrast must be in [0, 1], got {synthetic_contrast}.")
        if int(temporal_gap) < 0 or not 0.0 <= temporal_share <= 1.0:
            raise ValueError(f"ViewPairs: temporal_gap must be >= 0 and temporal_share in [0, 1], got "
                             f"{temporal_gap}, {temporal_share}.")
        if temporal_gap and cross_modal is not None:
            raise ValueError("ViewPairs: temporal_gap and cross_modal both choose the views' channels; use one.")
        self.cross_modal = None if cross_modal is None else float(cross_modal)
        self.synthetic_contrast = float(synthetic_contrast)
        self.temporal_gap, self.temporal_share = int(temporal_gap), float(temporal_share)

    @property
    def config(self) -> dict[str, Any]:
        """The constructor's arguments as given: ``ViewPairs(**config)`` draws the same kind of pairs."""
        return dict(self._config)

    def replace(self, **changes: Any) -> ViewPairs:
        """A new part with some settings changed (e.g. ``synthetic_contrast=1.0`` for validation), the rest kept."""
        return ViewPairs(**{**self._config, **changes})

    def draw(self, batch_size: int) -> dict[str, np.ndarray]:
        """Cross-modal, synthetic-contrast and temporal draws, in this order (``ViewParams`` fields; nothing for an
        option that is off)."""
        r, b, out = self.R, batch_size, {}
        cross = np.zeros(b, dtype=bool)
        if self.cross_modal is not None:
            cross = r.uniform(size=b) < self.cross_modal
            out.update(modality=r.uniform(size=(b, 2)), cross=cross)
        if self.synthetic_contrast > 0:
            knots = r.uniform(size=(b, _REMAP_KNOTS))
            monotonic = r.uniform(size=b) < 0.5
            decreasing = r.uniform(size=b) < 0.5
            knots[monotonic] = np.sort(knots[monotonic], axis=1)
            knots[monotonic & decreasing] = knots[monotonic & decreasing, ::-1]
            out.update(remap_knots=knots, remap=(r.uniform(size=b) < self.synthetic_contrast) & ~cross)
        if self.temporal_gap:
            moving = r.uniform(size=b) < self.temporal_share
            out.update(frames=r.uniform(size=(b, 2)), moving=moving)
            if "remap" in out:  # synthetic contrast only for a frame paired with itself (known field)
                out["remap"] = out["remap"] & ~moving
        return out

    def randomize(self, batch_size: int) -> ViewParams:  # type: ignore[override]
        """Draw the pairs of ``batch_size`` items (all ``None`` with every option off)."""
        return ViewParams(**self.draw(batch_size))

    @staticmethod
    def forced(kind: str, params: ViewParams) -> ViewParams:
        """The same draw with every item of one pair kind (``"same"``, ``"cross"``, ``"synthetic"`` or
        ``"temporal"``): the validation compares the kinds on identical geometry."""
        p = params
        kind = look_up_option(kind, PAIR_KINDS)
        if kind == "cross" and p.cross is None:
            raise ValueError("ViewPairs: cross-modal pairs need cross_modal set (channels as modalities).")
        if kind == "synthetic" and p.remap_knots is None:
            raise ValueError("ViewPairs: synthetic-contrast pairs need synthetic_contrast > 0.")
        if kind == "temporal" and p.moving is None:
            raise ValueError("ViewPairs: temporal pairs need temporal_gap >= 1 (frames as channels).")
        b = p.batch_size
        full = lambda a, k: None if a is None else np.full(b, kind == k)  # noqa: E731
        return dataclasses.replace(p, cross=full(p.cross, "cross"), remap=full(p.remap, "synthetic"),
                       moving=full(p.moving, "temporal"))

    def sources(self, x: torch.Tensor, params: ViewParams) -> tuple[torch.Tensor, torch.Tensor, tuple | None]:
        """Sources of view a and view b from ``(B, C, *S)`` images: the whole images ``(B, C, *S)`` each, or one
        channel each ``(B, 1, *S)`` (a modality, or a frame: then also view a's frames and the gaps, ``(B,)`` int64
        on the CPU, else ``None``)."""
        if params.frames is not None:
            return self._frames(x, params)
        return (*self._modalities(x, params), None)

    def _frames(self, x: torch.Tensor, p: ViewParams) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """View a's frame ``t`` and view b's ``t + gap`` of ``(B, T, *S)`` sequences (gap 0 unless ``moving``)."""
        t_len = x.shape[1]
        if t_len < 2 and p.moving.any():
            raise ValueError(f"ViewPairs: temporal pairs need sequences of 2 or more frames as channels, got "
                             f"{t_len}; load them with monai_cover.transforms.LoadSequenced or set temporal_gap to 0.")
        g = max(1, min(self.temporal_gap, t_len - 1))
        u = torch.as_tensor(p.frames, dtype=torch.float64)
        k = (u[:, 0] * 2 * g).long().clamp(max=2 * g - 1)  # 0..2g-1 -> -g..-1, 1..g
        gap = torch.where(torch.as_tensor(p.moving), torch.where(k < g, k - g, k - g + 1), torch.zeros_like(k))
        lo, hi = (-gap).clamp(min=0), t_len - 1 - gap.clamp(min=0)
        t = lo + (u[:, 1] * (hi - lo + 1)).long().clamp(max=(hi - lo))
        rows = torch.arange(x.shape[0], device=x.device)
        return x[rows, t.to(x.device)].unsqueeze(1), x[rows, (t + gap).to(x.device)].unsqueeze(1), (t, gap)

    @staticmethod
    def _modalities(x: torch.Tensor, p: ViewParams) -> tuple[torch.Tensor, torch.Tensor]:
        """Sources of view a and view b: the whole image, or (cross-modal option) one channel each."""
        if p.modality is None:
            return x, x
        m = x.shape[1]
        if m < 2 and p.cross.any():
            raise ValueError(f"ViewPairs: cross-modal pairs need images with 2 or more co-registered channels "
                             f"(modalities), got {m}; stack the modalities as channels or set cross_modal to 0.")
        u = torch.as_tensor(p.modality, dtype=torch.float64)
        i = (u[:, 0] * m).long().clamp(max=m - 1)
        other = (i + 1 + (u[:, 1] * max(m - 1, 1)).long().clamp(max=max(m - 2, 0))) % m
        j = torch.where(torch.as_tensor(p.cross), other, i)
        rows = torch.arange(x.shape[0], device=x.device)
        return x[rows, i.to(x.device)].unsqueeze(1), x[rows, j.to(x.device)].unsqueeze(1)

    @staticmethod
    def remap(view_b: torch.Tensor, params: ViewParams) -> torch.Tensor:
        """View b ``(B, C, *S)`` with the drawn synthetic contrast on the items that have it (unchanged without)."""
        p = params
        if p.remap is None or not p.remap.any():
            return view_b
        on = torch.as_tensor(p.remap, device=view_b.device)
        remapped = Fn.intensity_remap(view_b, torch.as_tensor(p.remap_knots, dtype=view_b.dtype))
        return torch.where(on.view(-1, *([1] * (view_b.ndim - 1))), remapped, view_b)
