"""SeVR view generation for a whole batch on the training device (draw on CPU, apply anywhere)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from monai.transforms import Randomizable
from monai.utils import convert_to_tensor, look_up_option

from monai_cover.networks.blocks.warp import warp
from monai_cover.transforms import functional as Fn

__all__ = [
    "PAIR_KINDS", "CoverViewSampler", "ViewParams", "default_ranges", "load_size_for", "slab_view_ranges",
    "APPEARANCE_PRESETS", "ROTATION_SAMPLINGS",
]

logger = logging.getLogger(__name__)

# Authors' ranges (per axis): see docs/cover-method.md, "The authors' per-axis ranges".
_DEFAULTS = {
    2: {"rotate_deg": 60.0, "scale_range": (0.25, 1.75), "shear_deg": 8.4, "translate_frac": 0.3},
    3: {"rotate_deg": 15.0, "scale_range": (0.75, 1.25), "shear_deg": 10.0, "translate_frac": 0.1},
}


def default_ranges(spatial_dims: int) -> dict:
    """The authors' spatial ranges for 2D or 3D."""
    return dict(_DEFAULTS[spatial_dims])


def slab_view_ranges(crop_size: int | Sequence[int], spatial_dims: int, stride: int) -> dict:
    """``rotate_deg``, ``shear_deg`` and ``translate_frac`` for :class:`CoverViewSampler` that hold the slab axes of
    a volume crop still: an axis of at most one network ``stride`` and at most half the longest axis (e.g. the 16
    of ``[80, 80, 16]`` for a stack of 12 thick slices) gets no rotation or shear involving it and no translation
    along it, because out-of-plane motion across a few thick slices is mostly interpolation, not anatomy. All
    ``None`` (the sampler's defaults) when no axis is a slab, so cubic crops keep exactly the authors' ranges."""
    sizes = [crop_size] * spatial_dims if isinstance(crop_size, int) else list(crop_size)
    slabs = [a for a, c in enumerate(sizes) if c <= stride and 2 * c <= max(sizes)] if spatial_dims == 3 else []
    if not slabs:
        return {"rotate_deg": None, "shear_deg": None, "translate_frac": None}
    dflt = _DEFAULTS[spatial_dims]
    pairs = [(i, j) for i in range(spatial_dims) for j in range(i + 1, spatial_dims)]  # Fn.affine_matrices' order
    off = [(i, j) for i in range(spatial_dims) for j in range(spatial_dims) if i != j]
    still = set(slabs)
    logger.info(f"views: axis {', '.join(map(str, slabs))} of the crop {sizes} is a slab, so views rotate and shear "
                "in-plane only and do not shift along it (override with --train#sampler#rotate_deg and friends)")
    return {
        "rotate_deg": [0.0 if still & {i, j} else dflt["rotate_deg"] for i, j in pairs],
        "shear_deg": [0.0 if still & {i, j} else dflt["shear_deg"] for i, j in off],
        "translate_frac": [0.0 if a in still else dflt["translate_frac"] for a in range(spatial_dims)],
    }


def _per(name: str, value: float | Sequence[float], n: int) -> np.ndarray:
    """A range given once (shape ``()``) or once per item (shape ``(n,)``); numpy broadcasts either when drawing,
    and a single value draws exactly what it drew before per-item ranges existed."""
    v = np.asarray(value, dtype=float)
    if v.ndim > 1 or (v.ndim == 1 and len(v) != n):
        raise ValueError(f"CoverViewSampler: {name} takes one value or {n}, got {value!r}.")
    return v


def load_size_for(crop_size: Sequence[int] | int, factor: float = 1.5) -> list[int] | int:
    """The grid views are cut from: ``factor`` times the crop size, per axis (the authors load 1.5x the crop, so
    shifted and rotated views still find image content). An int for an int, a list for per-axis sizes such as a
    thick-slice ``[96, 96, 16]``."""
    if isinstance(crop_size, int):
        return int(round(crop_size * factor))
    return [int(round(c * factor)) for c in crop_size]


#: Values taken by the individual appearance arguments of :class:`CoverViewSampler` left at ``None``, per preset.
#: "mild" is this package's original setting; "reference" the authors' published code (brightness: std of a normal
#: shift; blocks: the cap of a geometric count and the side range ``[floor(3 size / 30), floor(4 size / 30))``).
APPEARANCE_PRESETS = {
    "mild": {
        "prob_contrast": 0.5, "contrast_range": (0.7, 1.3), "prob_brightness": 0.5, "brightness": 0.1,
        "prob_blur": 0.3, "blur_sigma": (0.5, 1.5), "prob_noise": 0.5, "noise_std": 0.05,
        "prob_blocks": 0.5, "max_blocks": 3, "block_frac": (0.05, 0.2),
    },
    "reference": {
        "prob_contrast": 1.0, "contrast_range": (0.5, 1.5), "prob_brightness": 1.0, "brightness": 0.1,
        "prob_blur": 0.0, "blur_sigma": (0.5, 1.5), "prob_noise": 1.0, "noise_std": 0.02,
        "prob_blocks": 1.0, "max_blocks": 10, "block_frac": (3 / 30, 4 / 30),
    },
}
#: ``rotation_sampling`` choices of :class:`CoverViewSampler`
ROTATION_SAMPLINGS = ("uniform", "reference")
_BLOCK_CONTINUE = 0.95  # reference in-painting: one more block while U(0, 1) < 0.95 (up to max_blocks)
_BLOCK_MARGIN = 3  # reference in-painting: block starts in [3, size - side - 3)
_REMAP_KNOTS = 6  # synthetic contrast: curve values at 6 equally spaced normalised intensities
#: pair kinds of :meth:`ViewParams.pair_kinds`, by code
PAIR_KINDS = ("same", "cross", "synthetic", "temporal")


@dataclass
class ViewParams:
    """One random draw for a batch (numpy arrays, first axis = batch item). Angles in radians, lengths in voxels."""

    rotate: np.ndarray  # (B, d(d-1)/2)
    shear: np.ndarray  # (B, d(d-1))
    scale: np.ndarray  # (B, d)
    translate: np.ndarray  # (B, d)
    elastic: np.ndarray | None  # (B, d, *control grid)
    crop_starts: np.ndarray  # (B, d)
    contrast: np.ndarray  # (B,)
    brightness: np.ndarray  # (B,)
    blur_sigma: np.ndarray  # (B,)
    noise_std: np.ndarray  # (B,)
    block_starts: np.ndarray  # (B, n_blocks, d)
    block_sizes: np.ndarray  # (B, n_blocks, d)
    seed: int  # torch generator seed for the noise images
    preset: str = "mild"  # appearance preset: order of the steps and block fill (mild: mean + std * randn)
    channel_gain: np.ndarray | None = None  # (B, 3): colour jitter, each RGB channel's factor (None: no jitter)
    modality: np.ndarray | None = None  # (B, 2) U[0, 1): picks view a's channel and view b's other one (cross-modal)
    cross: np.ndarray | None = None  # (B,) bool: view b from another channel (modality) than view a
    remap_knots: np.ndarray | None = None  # (B, K): synthetic-contrast curve of view b (None: option off)
    remap: np.ndarray | None = None  # (B,) bool: apply that curve
    frames: np.ndarray | None = None  # (B, 2) U[0, 1): picks the gap and view a's frame (temporal option)
    moving: np.ndarray | None = None  # (B,) bool: view b from another frame than view a (gap != 0)

    def pair_kinds(self) -> np.ndarray:
        """``(B,)`` int, codes of :data:`PAIR_KINDS`: 0 same-modality pair, 1 cross-modal (two channels), 2 synthetic
        contrast, 3 temporal (two frames, motion between them unknown)."""
        kinds = np.zeros(len(self.crop_starts), dtype=np.int64)
        if self.cross is not None:
            kinds[self.cross] = 1
        if self.remap is not None:
            kinds[self.remap] = 2
        if self.moving is not None:
            kinds[self.moving] = 3
        return kinds


class CoverViewSampler(Randomizable):
    """Generate COVER views ``(x_a, x_b, ddf, eps)`` from a batch of images.

    ``randomize(batch_size, spatial_shape)`` draws every parameter with this object's ``R`` (seedable with
    ``set_random_state``); ``generate(images)`` applies the draw on ``images.device``, so one CPU draw can
    produce the views of a whole batch on a GPU. Steps (docs/cover-method.md, "View generation (SeVR)"): affine
    (+ optional elastic) field on the full grid, ``x_b = warp(x, field)``, one shared crop of ``x``, ``x_b`` and the
    field (``ddf``), appearance changes on ``x_a`` only, valid mask ``eps``.

    Args:
        spatial_dims: 2 or 3.
        crop_size: view size (voxels per axis); the input grid must be at least this large (authors: 1.5x).
        rotate_deg: max rotation per axis pair, degrees (default: authors' 60 in 2D, 15 in 3D); one value, or one
            per pair (0,1), (0,2), (1,2) in 3D: ``[15, 0, 0]`` rotates thick-slice stacks in-plane only (slice axis 2).
        scale_range: per-axis scale factor range (default (0.25, 1.75) in 2D, (0.75, 1.25) in 3D).
        shear_deg: max shear angle per off-diagonal term, degrees (8.4 in 2D, 10 in 3D); one value or ``d(d-1)``.
        translate_frac: max translation as a fraction of the grid size per axis (0.3 in 2D, 0.1 in 3D); one value
            or one per axis.
        elastic_magnitude: std of the smooth elastic component, voxels (0 = off: the authors' 2D choice; their 3D
            class defaults switch an elastic term on, which the bundles leave off).
        elastic_spacing: control-point spacing of the elastic component, voxels.
        rotation_sampling: ``"reference"`` (default; the authors' 2D script): the sum of two independent
            ``U(-rotate / 2, rotate / 2)`` draws (triangular on ``+-rotate``; mean ``|angle|`` is ``rotate / 3``
            instead of ``rotate / 2``). In 3D the authors draw one
            uniform angle per axis, so there ``"reference"`` is the same as ``"uniform"``. ``"uniform"``: each angle
            ``U(-rotate, rotate)`` (harder views: mean ``|angle|`` 30° instead of 20° in 2D).
        appearance: appearance preset of ``view_a``, ``"reference"`` (default; the authors') or ``"mild"``. The
            defaults follow validation results (``benchmarks/results/tuning/jsrt_scr_views.md``). The preset fixes
            the kind of each step and their order, and gives the default of every individual argument below
            (:data:`APPEARANCE_PRESETS`); an individual argument that is not ``None`` overrides the preset's value.

            - ``"mild"``: contrast/brightness, blur, noise, blocks. Each step with its probability; contrast
              ``U(contrast_range)``; brightness ``U(-brightness, brightness)``; blocks: ``U{1..max_blocks}`` blocks
              of ``round(U(block_frac) * crop)`` voxels per axis anywhere in the crop, filled with
              ``mean + std * N(0, 1)`` of the image. Defaults: 0.5, (0.7, 1.3), 0.5, 0.1, blur 0.3, (0.5, 1.5),
              noise 0.5, 0.05, blocks 0.5, 3, (0.05, 0.2).
            - ``"reference"`` (the authors' choice): noise, blur, contrast, brightness, blocks. Brightness
              ``N(0, brightness)``; blocks: added one after another while ``U(0, 1) < 0.95``, at most
              ``max_blocks``; sides integers in ``[floor(block_frac[0] * crop), floor(block_frac[1] * crop))``
              (at least 1), starts in ``[3, crop - side - 3)`` (no margin if the crop is too small), filled with
              ``U[0, 1)`` (the intensity range of images scaled to [0, 1], as in the bundles).
              Defaults: every step always applied except blur (prob 0: the authors' blur is a no-op), contrast
              (0.5, 1.5), brightness std 0.1, noise std ``U(0, 0.02)``, blocks up to 10 of 10%-13% of the crop.
        prob_contrast, contrast_range: probability and range of the contrast factor (about the image mean).
        prob_brightness, brightness: probability and size of the additive shift (image intensity units): max
            absolute value ("mild") or std ("reference").
        prob_blur, blur_sigma: probability and ``(min, max)`` Gaussian sigma in voxels.
        prob_noise, noise_std: probability and max std of additive Gaussian noise (std drawn ``U(0, noise_std)``).
        prob_blocks, max_blocks, block_frac: probability, max count and ``(min, max)`` side (fraction of the crop)
            of noise-filled blocks (in-painting). ``prob_blocks=0`` switches in-painting off with either preset.
        inpainting: ``False`` switches in-painting off whatever the preset (``prob_blocks`` 0).
        color_jitter: RGB views: each channel of view a is multiplied by its own ``U(1 - j, 1 + j)`` factor (after
            the contrast/brightness change shared by all channels), so colours shift as well as intensities.
            0 (the default; gray images) draws nothing, so gray runs see exactly the views they saw before.
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
            frames that leave room for the gap. Not together with ``cross_modal``.
        temporal_share: share of temporal pairs with a gap (the rest pair a frame with itself: frame-wise COVER
            when 0).
        seed: seed of ``R`` for reproducible runs. Without it ``R`` is MONAI's shared class-level generator, which
            ``monai.utils.set_determinism`` does not reseed, so the bundles always pass their ``seed``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        crop_size: Sequence[int] | int = 128,
        rotate_deg: float | None = None,
        scale_range: Sequence[float] | None = None,
        shear_deg: float | None = None,
        translate_frac: float | None = None,
        elastic_magnitude: float = 0.0,
        elastic_spacing: int = 16,
        prob_contrast: float | None = None,
        contrast_range: Sequence[float] | None = None,
        prob_brightness: float | None = None,
        brightness: float | None = None,
        prob_blur: float | None = None,
        blur_sigma: Sequence[float] | None = None,
        prob_noise: float | None = None,
        noise_std: float | None = None,
        prob_blocks: float | None = None,
        max_blocks: int | None = None,
        block_frac: Sequence[float] | None = None,
        seed: int | None = None,
        appearance: str = "reference",
        rotation_sampling: str = "reference",
        inpainting: bool = True,
        color_jitter: float = 0.0,
        cross_modal: float | None = None,
        synthetic_contrast: float = 0.0,
        temporal_gap: int = 0,
        temporal_share: float = 0.5,
    ) -> None:
        #: constructor arguments but the seed: ``CoverViewSampler(**config)`` draws the same kind of views (the seed
        #: is not part of the kind: DDP ranks draw with ``seed + rank``, and a run's settings must match across ranks)
        self.config = {k: v for k, v in locals().items() if k not in ("self", "__class__", "seed")}
        self.color_jitter = float(color_jitter)
        if cross_modal is not None and not 0.0 <= cross_modal <= 1.0:
            raise ValueError(f"CoverViewSampler: cross_modal must be None or in [0, 1], got {cross_modal}.")
        if not 0.0 <= synthetic_contrast <= 1.0:
            raise ValueError(f"CoverViewSampler: synthetic_contrast must be in [0, 1], got {synthetic_contrast}.")
        self.cross_modal = None if cross_modal is None else float(cross_modal)
        self.synthetic_contrast = float(synthetic_contrast)
        if int(temporal_gap) < 0 or not 0.0 <= temporal_share <= 1.0:
            raise ValueError(f"CoverViewSampler: temporal_gap must be >= 0 and temporal_share in [0, 1], got "
                             f"{temporal_gap}, {temporal_share}.")
        if temporal_gap and cross_modal is not None:
            raise ValueError("CoverViewSampler: temporal_gap and cross_modal both choose the views' channels; use one.")
        self.temporal_gap, self.temporal_share = int(temporal_gap), float(temporal_share)
        if seed is not None:
            self.set_random_state(seed)
        if spatial_dims not in (2, 3):
            raise ValueError(f"CoverViewSampler: spatial_dims must be 2 or 3, got {spatial_dims}.")
        dflt = _DEFAULTS[spatial_dims]
        self.spatial_dims = spatial_dims
        self.crop_size = (crop_size,) * spatial_dims if isinstance(crop_size, int) else tuple(crop_size)
        d = spatial_dims
        # one value for all, or one per axis pair / off-diagonal term / axis (e.g. in-plane rotation only for slabs)
        self.rotate = np.radians(_per("rotate_deg", dflt["rotate_deg"] if rotate_deg is None else rotate_deg,
                                      d * (d - 1) // 2))
        self.scale_range = tuple(dflt["scale_range"] if scale_range is None else scale_range)
        self.shear = np.radians(_per("shear_deg", dflt["shear_deg"] if shear_deg is None else shear_deg, d * (d - 1)))
        self.translate_frac = _per("translate_frac", dflt["translate_frac"] if translate_frac is None
                                   else translate_frac, d)
        self.elastic_magnitude, self.elastic_spacing = elastic_magnitude, elastic_spacing
        self.rotation_sampling = look_up_option(rotation_sampling, ROTATION_SAMPLINGS)
        #: appearance preset name (``self.appearance`` is the method applying a draw)
        self.appearance_preset = look_up_option(appearance, tuple(APPEARANCE_PRESETS))
        given = {
            "prob_contrast": prob_contrast, "contrast_range": contrast_range, "prob_brightness": prob_brightness,
            "brightness": brightness, "prob_blur": prob_blur, "blur_sigma": blur_sigma, "prob_noise": prob_noise,
            "noise_std": noise_std, "prob_blocks": prob_blocks, "max_blocks": max_blocks, "block_frac": block_frac,
        }
        for name, value in APPEARANCE_PRESETS[self.appearance_preset].items():
            value = value if given[name] is None else given[name]
            setattr(self, name, tuple(value) if isinstance(value, Sequence) else value)
        if not inpainting:
            self.prob_blocks = 0.0
        self.params: ViewParams | None = None

    def _check_shape(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        shape = tuple(int(s) for s in spatial_shape)
        if len(shape) != self.spatial_dims or any(s < c for s, c in zip(shape, self.crop_size)):
            raise ValueError(
                f"CoverViewSampler: image grid {shape} is smaller than the {self.spatial_dims}D crop {self.crop_size}; "
                "resize or pad images to at least the crop size (1.5x recommended)."
            )
        return shape

    def randomize(self, batch_size: int = 1, spatial_shape: Sequence[int] | None = None) -> None:  # type: ignore[override]
        shape = self._check_shape(spatial_shape if spatial_shape is not None else self.crop_size)
        b, d, r = batch_size, self.spatial_dims, self.R
        n_rot, n_shear = d * (d - 1) // 2, d * (d - 1)
        crop = np.asarray(self.crop_size)
        mild = self.appearance_preset == "mild"
        # the draw order of "mild" with "uniform" rotations is the original one: seeded views must not change
        elastic = None
        if self.elastic_magnitude > 0:
            grid = [max(2, math.ceil(s / self.elastic_spacing) + 1) for s in shape]
            elastic = r.standard_normal((b, d, *grid)).astype(np.float32)
        if mild:
            n_blk = np.where(r.uniform(size=b) < self.prob_blocks, r.randint(1, self.max_blocks + 1, size=b), 0)
            blk_sizes = np.round(r.uniform(*self.block_frac, size=(b, self.max_blocks, d)) * crop).astype(np.int64)
            blk_sizes[np.arange(self.max_blocks)[None, :] >= n_blk[:, None]] = 0
        if self.rotation_sampling == "reference" and d == 2:  # 3D: the authors draw one uniform angle per axis
            half = self.rotate / 2
            rotate = r.uniform(-half, half, size=(b, n_rot)) + r.uniform(-half, half, size=(b, n_rot))
        else:
            rotate = r.uniform(-self.rotate, self.rotate, size=(b, n_rot))
        geometry = {
            "rotate": rotate,
            "shear": r.uniform(-self.shear, self.shear, size=(b, n_shear)),
            "scale": r.uniform(*self.scale_range, size=(b, d)),
            "translate": r.uniform(-1, 1, size=(b, d)) * self.translate_frac * np.asarray(shape),
            "elastic": elastic,
            "crop_starts": np.stack([r.randint(0, s - c + 1, size=b) for s, c in zip(shape, self.crop_size)], 1),
        }
        if mild:
            look = {
                "contrast": self._gate(self.prob_contrast, r.uniform(*self.contrast_range, size=b), 1.0),
                "brightness": self._gate(self.prob_brightness, r.uniform(-self.brightness, self.brightness, size=b),
                                         0.0),
                "blur_sigma": self._gate(self.prob_blur, r.uniform(*self.blur_sigma, size=b), 0.0),
                "noise_std": self._gate(self.prob_noise, r.uniform(0, self.noise_std, size=b), 0.0),
                "block_starts": (r.uniform(size=(b, self.max_blocks, d)) * (crop - blk_sizes + 1)).astype(np.int64),
                "block_sizes": blk_sizes,
            }
        else:
            look = self._draw_reference_appearance(b, crop)
        gain = r.uniform(1 - self.color_jitter, 1 + self.color_jitter, size=(b, 3)) if self.color_jitter else None
        seed = int(r.randint(0, 2**31 - 1))
        pairs = self._draw_pairs(b)  # after every earlier draw: runs without these options keep their views
        self.params = ViewParams(**geometry, **look, seed=seed, preset=self.appearance_preset, channel_gain=gain,
                                 **pairs)

    def _draw_pairs(self, b: int) -> dict[str, np.ndarray]:
        """Cross-modal, synthetic-contrast and temporal draws (nothing when the options are off)."""
        r, out = self.R, {}
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

    def forced(self, kind: str, params: ViewParams | None = None) -> ViewParams:
        """The same draw with every item of one pair kind (``"same"``, ``"cross"``, ``"synthetic"`` or
        ``"temporal"``): the validation compares the kinds on identical geometry."""
        p = params or self.params
        if p is None:
            raise RuntimeError("CoverViewSampler.forced: call randomize() first.")
        kind = look_up_option(kind, PAIR_KINDS)
        if kind == "cross" and p.cross is None:
            raise ValueError("CoverViewSampler: cross-modal pairs need cross_modal set (channels as modalities).")
        if kind == "synthetic" and p.remap_knots is None:
            raise ValueError("CoverViewSampler: synthetic-contrast pairs need synthetic_contrast > 0.")
        if kind == "temporal" and p.moving is None:
            raise ValueError("CoverViewSampler: temporal pairs need temporal_gap >= 1 (frames as channels).")
        b = len(p.crop_starts)
        full = lambda a, k: None if a is None else np.full(b, kind == k)  # noqa: E731
        return replace(p, cross=full(p.cross, "cross"), remap=full(p.remap, "synthetic"),
                       moving=full(p.moving, "temporal"))

    def _gate(self, p: float, values: np.ndarray, neutral: float) -> np.ndarray:
        """``values`` per item with probability ``p``, else ``neutral`` (one ``U(0, 1)`` draw per item)."""
        return np.where(self.R.uniform(size=values.shape[:1]) < p, values, neutral)

    def _draw_reference_appearance(self, b: int, crop: np.ndarray) -> dict[str, np.ndarray]:
        """The authors' appearance parameters (see the class docstring), in their order of application."""
        r, d, nb = self.R, self.spatial_dims, self.max_blocks
        look = {
            "noise_std": self._gate(self.prob_noise, r.uniform(0, self.noise_std, size=b), 0.0),
            "blur_sigma": self._gate(self.prob_blur, r.uniform(*self.blur_sigma, size=b), 0.0),
            "contrast": self._gate(self.prob_contrast, r.uniform(*self.contrast_range, size=b), 1.0),
            "brightness": self._gate(self.prob_brightness, r.normal(0.0, self.brightness, size=b), 0.0),
        }
        # count: successes of U(0, 1) < 0.95 before the first failure, at most max_blocks
        n_blk = np.cumprod(r.uniform(size=(b, nb)) < _BLOCK_CONTINUE, axis=1).sum(1)
        n_blk = self._gate(self.prob_blocks, n_blk, 0)
        side_lo = np.maximum(1, np.floor(self.block_frac[0] * crop + 1e-6).astype(np.int64))
        side_hi = np.minimum(crop + 1, np.maximum(side_lo + 1, np.floor(self.block_frac[1] * crop + 1e-6)))
        sizes = r.randint(side_lo, side_hi.astype(np.int64), size=(b, nb, d)).astype(np.int64)
        start_lo, start_hi = np.full_like(sizes, _BLOCK_MARGIN), crop - sizes - _BLOCK_MARGIN
        small = start_hi <= start_lo  # crop too small for the margins: anywhere inside it
        start_lo[small], start_hi[small] = 0, (crop - sizes + 1)[small]
        starts = r.randint(start_lo, start_hi, size=(b, nb, d)).astype(np.int64)
        sizes[np.arange(nb)[None, :] >= n_blk[:, None]] = 0
        look.update(block_starts=starts, block_sizes=sizes)
        return look

    def field(self, spatial_shape: Sequence[int], device=None, params: ViewParams | None = None) -> torch.Tensor:
        """The drawn ground-truth field on the full grid, ``(B, d, *S)`` in voxels."""
        p = params or self.params
        t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        ddf_full = Fn.affine_field(Fn.affine_matrices(t(p.rotate), t(p.shear), t(p.scale)), t(p.translate),
                                   spatial_shape)
        if p.elastic is not None:
            ddf_full = ddf_full + Fn.elastic_field(t(p.elastic), spatial_shape, self.elastic_magnitude)
        return ddf_full

    def appearance(self, x: torch.Tensor, params: ViewParams | None = None) -> torch.Tensor:
        """Apply the drawn contrast, brightness, blur, noise, colour jitter (RGB) and noise blocks to ``(B, C, *S)``
        images.

        Order and block fill follow the draw's preset: "mild" contrast/brightness, blur, noise, blocks filled with
        ``mean + std * N(0, 1)``; "reference" noise, blur, contrast/brightness, blocks filled with ``U[0, 1)``.
        """
        p = params or self.params
        dev = x.device
        t = lambda a: torch.as_tensor(a, dtype=x.dtype, device=dev)  # noqa: E731
        gen = torch.Generator(device=dev).manual_seed(p.seed)

        blur = (lambda y: Fn.gaussian_blur(y, t(p.blur_sigma))) if (p.blur_sigma > 0).any() else (lambda y: y)
        noise = torch.randn(x.shape, generator=gen, device=dev, dtype=x.dtype)
        noise = noise * t(p.noise_std).view(-1, *([1] * (x.ndim - 1)))
        mild = p.preset == "mild"
        if mild:
            x = blur(Fn.adjust_contrast_brightness(x, t(p.contrast), t(p.brightness))) + noise
        else:
            x = Fn.adjust_contrast_brightness(blur(x + noise), t(p.contrast), t(p.brightness))
        if p.channel_gain is not None and x.shape[1] == 3:
            x = x * t(p.channel_gain).view(*p.channel_gain.shape, *([1] * (x.ndim - 2)))
        if (p.block_sizes > 0).any():
            blocks = Fn.noise_blocks_mask(torch.as_tensor(p.block_starts, device=dev),
                                          torch.as_tensor(p.block_sizes, device=dev), x.shape[2:])
            if mild:
                dims = tuple(range(1, x.ndim))
                fill = x.mean(dims, keepdim=True) + x.std(dims, keepdim=True) * torch.randn(
                    x.shape, generator=gen, device=dev, dtype=x.dtype)
            else:
                fill = torch.rand(x.shape, generator=gen, device=dev, dtype=x.dtype)
            x = torch.where(blocks, fill, x)
        return x

    def generate(self, images: torch.Tensor, params: ViewParams | None = None) -> dict[str, torch.Tensor]:
        """Apply a draw to ``(B, C, *S)`` images on their device.

        Returns:
            dict with ``view_a`` ``(B, C, *crop)`` (appearance-changed crop of ``x``), ``view_b`` ``(B, C, *crop)``
            (crop of ``warp(x, ddf_full)``), ``ddf`` ``(B, d, *crop)`` ground truth in voxels with
            ``view_b(p) ~ clean view_a(p + ddf(p))``, ``mask`` ``(B, 1, *crop)`` valid mask, ``pair`` ``(B,)`` int64
            CPU pair kind (:meth:`ViewParams.pair_kinds`: 0 same modality, 1 cross-modal, 2 synthetic contrast, 3
            temporal). With ``cross_modal`` or ``temporal_gap`` set the views have one channel (view a's modality or
            frame, view b's), else ``C``; synthetic contrast remaps view b after the crop. With ``temporal_gap`` also
            ``frame`` and ``gap`` ``(B,)`` int64 CPU (view a's frame; view b's frame minus it), ``clean_a``
            ``(B, 1, *crop)`` (view a before its appearance changes: what a predicted field should carry onto view b),
            ``clean_b`` ``(B, 1, *crop)`` (view b's frame cropped where view a is, not deformed: ``view_b(p) =
            clean_b(p + ddf(p))``, what the transitivity constraint compares against) and ``content_b``
            ``(B, 1, *crop)`` (1 where view b's source lies in the image, 0 where it is padding).
        """
        p = params or self.params
        if p is None:
            raise RuntimeError("CoverViewSampler.generate: call randomize() first.")
        shape = self._check_shape(images.shape[2:])
        if len(p.crop_starts) != images.shape[0]:
            raise ValueError(f"CoverViewSampler: drew {len(p.crop_starts)} items, got a batch of {images.shape[0]}.")
        x = convert_to_tensor(images, track_meta=False)
        x = x if x.is_floating_point() else x.float()
        x_a, x_b, frames = self._sources(x, p)
        ddf_full = self.field(shape, x.device, p).to(x.dtype)
        view_b = Fn.crop(warp(x_b, ddf_full), p.crop_starts, self.crop_size)
        if p.remap is not None and p.remap.any():
            on = torch.as_tensor(p.remap, device=x.device)
            remapped = Fn.intensity_remap(view_b, torch.as_tensor(p.remap_knots, dtype=x.dtype))
            view_b = torch.where(on.view(-1, *([1] * (view_b.ndim - 1))), remapped, view_b)
        ddf = Fn.crop(ddf_full, p.crop_starts, self.crop_size)
        clean_a = Fn.crop(x_a, p.crop_starts, self.crop_size)
        out = {
            "view_a": self.appearance(clean_a, p),
            "view_b": view_b,
            "ddf": ddf,
            "mask": Fn.valid_mask(ddf),
            "pair": torch.as_tensor(p.pair_kinds()),  # on the CPU: bookkeeping, no copy to the device every step
        }
        if frames is not None:  # what image matching needs: the clean view a, where view b shows image content
            out.update(frame=frames[0], gap=frames[1], clean_a=clean_a,
                       clean_b=Fn.crop(x_b, p.crop_starts, self.crop_size),
                       content_b=Fn.crop(Fn.valid_mask(ddf_full), p.crop_starts, self.crop_size))
        return out

    def _sources(self, x: torch.Tensor, p: ViewParams) -> tuple[torch.Tensor, torch.Tensor, tuple | None]:
        """Sources of view a and view b: the whole image, or one channel each (a modality, or a frame: then also
        view a's frames and the gaps, on the CPU)."""
        if p.frames is not None:
            return self._frames(x, p)
        return (*self._modalities(x, p), None)

    def _frames(self, x: torch.Tensor, p: ViewParams) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """View a's frame ``t`` and view b's ``t + gap`` of ``(B, T, *S)`` sequences (gap 0 unless ``moving``)."""
        t_len = x.shape[1]
        if t_len < 2 and p.moving.any():
            raise ValueError(f"CoverViewSampler: temporal pairs need sequences of 2 or more frames as channels, got "
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
            raise ValueError(f"CoverViewSampler: cross-modal pairs need images with 2 or more co-registered channels "
                             f"(modalities), got {m}; stack the modalities as channels or set cross_modal to 0.")
        u = torch.as_tensor(p.modality, dtype=torch.float64)
        i = (u[:, 0] * m).long().clamp(max=m - 1)
        other = (i + 1 + (u[:, 1] * max(m - 1, 1)).long().clamp(max=max(m - 2, 0))) % m
        j = torch.where(torch.as_tensor(p.cross), other, i)
        rows = torch.arange(x.shape[0], device=x.device)
        return x[rows, i.to(x.device)].unsqueeze(1), x[rows, j.to(x.device)].unsqueeze(1)

    def __call__(self, images: torch.Tensor, randomize: bool = True) -> dict[str, torch.Tensor]:
        """Draw (unless ``randomize=False``) and generate views for a ``(B, C, *S)`` batch."""
        if randomize:
            self.randomize(images.shape[0], images.shape[2:])
        return self.generate(images)
