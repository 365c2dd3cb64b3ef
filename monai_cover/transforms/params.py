"""One random draw of COVER views (:class:`ViewParams`), shared by the sampler's parts."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

__all__ = ["PAIR_KINDS", "ViewParams"]

#: pair kinds of :meth:`ViewParams.pair_kinds`, by code
PAIR_KINDS = ("same", "cross", "synthetic", "temporal")


@dataclass
class ViewParams:
    """One random draw for a batch (numpy arrays, first axis = batch item). Angles in radians, lengths in voxels.

    :class:`~monai_cover.transforms.CoverViewSampler` fills the fields of all three parts; a part drawing alone
    (e.g. ``ViewGeometry.randomize``) fills its own and leaves the others ``None``.
    """

    # geometry (ViewGeometry)
    rotate: np.ndarray | None = None  # (B, d(d-1)/2)
    shear: np.ndarray | None = None  # (B, d(d-1))
    scale: np.ndarray | None = None  # (B, d)
    translate: np.ndarray | None = None  # (B, d)
    elastic: np.ndarray | None = None  # (B, d, *control grid); None: no elastic component
    crop_starts: np.ndarray | None = None  # (B, d)
    # appearance (ViewAppearance)
    contrast: np.ndarray | None = None  # (B,)
    brightness: np.ndarray | None = None  # (B,)
    blur_sigma: np.ndarray | None = None  # (B,)
    noise_std: np.ndarray | None = None  # (B,)
    block_starts: np.ndarray | None = None  # (B, n_blocks, d)
    block_sizes: np.ndarray | None = None  # (B, n_blocks, d)
    seed: int | None = None  # torch generator seed for the noise images
    preset: str | None = None  # appearance preset: order of the steps and block fill (mild: mean + std * randn)
    channel_gain: np.ndarray | None = None  # (B, 3): colour jitter, each RGB channel's factor (None: no jitter)
    # pairs (ViewPairs)
    modality: np.ndarray | None = None  # (B, 2) U[0, 1): picks view a's channel and view b's other one (cross-modal)
    cross: np.ndarray | None = None  # (B,) bool: view b from another channel (modality) than view a
    remap_knots: np.ndarray | None = None  # (B, K): synthetic-contrast curve of view b (None: option off)
    remap: np.ndarray | None = None  # (B,) bool: apply that curve
    frames: np.ndarray | None = None  # (B, 2) U[0, 1): picks the gap and view a's frame (temporal option)
    moving: np.ndarray | None = None  # (B,) bool: view b from another frame than view a (gap != 0)

    @property
    def batch_size(self) -> int:
        """Items in the draw: the length of its first array."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                return len(value)
        raise ValueError("ViewParams: the draw holds no array, so it has no batch size.")

    def pair_kinds(self) -> np.ndarray:
        """``(B,)`` int, codes of :data:`PAIR_KINDS`: 0 same-modality pair, 1 cross-modal (two channels), 2 synthetic
        contrast, 3 temporal (two frames, motion between them unknown)."""
        kinds = np.zeros(self.batch_size, dtype=np.int64)
        if self.cross is not None:
            kinds[self.cross] = 1
        if self.remap is not None:
            kinds[self.remap] = 2
        if self.moving is not None:
            kinds[self.moving] = 3
        return kinds
