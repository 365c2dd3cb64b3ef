"""The spatial part of COVER views: a random affine (+ elastic) field with its ground truth, and the shared crop."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import Randomizable
from monai.utils import look_up_option

from monai_cover.transforms import functional as Fn
from monai_cover.transforms.params import ViewParams

__all__ = ["ROTATION_SAMPLINGS", "ViewGeometry", "default_ranges", "load_size_for", "slab_view_ranges"]

logger = logging.getLogger(__name__)

# Authors' ranges (per axis): see docs/cover-method.md, "The authors' per-axis ranges".
_DEFAULTS = {
    2: {"rotate_deg": 60.0, "scale_range": (0.25, 1.75), "shear_deg": 8.4, "translate_frac": 0.3},
    3: {"rotate_deg": 15.0, "scale_range": (0.75, 1.25), "shear_deg": 10.0, "translate_frac": 0.1},
}
#: ``rotation_sampling`` choices of :class:`ViewGeometry`
ROTATION_SAMPLINGS = ("uniform", "reference")


def default_ranges(spatial_dims: int) -> dict:
    """The authors' spatial ranges for 2D or 3D."""
    return dict(_DEFAULTS[spatial_dims])


def slab_view_ranges(crop_size: int | Sequence[int], spatial_dims: int, stride: int) -> dict:
    """``rotate_deg``, ``shear_deg`` and ``translate_frac`` for :class:`ViewGeometry` that hold the slab axes of a
    volume crop still: an axis of at most one network ``stride`` and at most half the longest axis (e.g. the 16 of
    ``[80, 80, 16]`` for a stack of 12 thick slices) gets no rotation or shear involving it and no translation along
    it, because out-of-plane motion across a few thick slices is mostly interpolation, not anatomy. All ``None``
    (the defaults) when no axis is a slab, so cubic crops keep exactly the authors' ranges."""
    sizes = [crop_size] * spatial_dims if isinstance(crop_size, int) else list(crop_size)
    slabs = [a for a, c in enumerate(sizes) if c <= stride and 2 * c <= max(sizes)] if spatial_dims == 3 else []
    if not slabs:
        return {"rotate_deg": None, "shear_deg": None, "translate_frac": None}
    dflt = _DEFAULTS[spatial_dims]
    pairs = [(i, j) for i in range(spatial_dims) for j in range(i + 1, spatial_dims)]  # Fn.affine_matrices' order
    off = [(i, j) for i in range(spatial_dims) for j in range(spatial_dims) if i != j]
    still = set(slabs)
    logger.info(f"views: axis {', '.join(map(str, slabs))} of the crop {sizes} is a slab, so views rotate and shear "
                "in-plane only and do not shift along it (override with --train#sampler#geometry#rotate_deg and "
                "friends)")
    return {
        "rotate_deg": [0.0 if still & {i, j} else dflt["rotate_deg"] for i, j in pairs],
        "shear_deg": [0.0 if still & {i, j} else dflt["shear_deg"] for i, j in off],
        "translate_frac": [0.0 if a in still else dflt["translate_frac"] for a in range(spatial_dims)],
    }


def load_size_for(crop_size: Sequence[int] | int, factor: float = 1.5) -> list[int] | int:
    """The grid views are cut from: ``factor`` times the crop size, per axis (the authors load 1.5x the crop, so
    shifted and rotated views still find image content). An int for an int, a list for per-axis sizes such as a
    thick-slice ``[96, 96, 16]``."""
    if isinstance(crop_size, int):
        return int(round(crop_size * factor))
    return [int(round(c * factor)) for c in crop_size]


def _per(name: str, value: float | Sequence[float], n: int) -> np.ndarray:
    """A range given once (shape ``()``) or once per item (shape ``(n,)``); numpy broadcasts either when drawing,
    and a single value draws exactly what it drew before per-item ranges existed."""
    v = np.asarray(value, dtype=float)
    if v.ndim > 1 or (v.ndim == 1 and len(v) != n):
        raise ValueError(f"ViewGeometry: {name} takes one value or {n}, got {value!r}.")
    return v


class ViewGeometry(Randomizable):
    """Draw a random spatial field per batch item (affine, optionally plus a smooth elastic term) and the crop that
    both views share; build the field on the image grid (its ground truth) and cut the crop.

    ``randomize(batch_size, spatial_shape)`` draws with this object's ``R`` on the CPU and returns the draw (the
    geometry fields of :class:`~monai_cover.transforms.ViewParams`; nothing is kept); ``field`` and ``crop`` apply a
    draw on any device. Inside :class:`~monai_cover.transforms.CoverViewSampler` the sampler's ``R`` draws.

    Args:
        spatial_dims: 2 or 3.
        crop_size: view size (voxels per axis); the image grid must be at least this large (authors: 1.5x,
            :func:`load_size_for`).
        rotate_deg: max rotation per axis pair, degrees (default: authors' 60 in 2D, 15 in 3D); one value, or one
            per pair (0,1), (0,2), (1,2) in 3D: ``[15, 0, 0]`` rotates thick-slice stacks in-plane only (slice axis 2,
            :func:`slab_view_ranges`).
        scale_range: per-axis scale factor range (default (0.25, 1.75) in 2D, (0.75, 1.25) in 3D).
        shear_deg: max shear angle per off-diagonal term, degrees (8.4 in 2D, 10 in 3D); one value or ``d(d-1)``.
        translate_frac: max translation as a fraction of the grid size per axis (0.3 in 2D, 0.1 in 3D); one value
            or one per axis.
        elastic_magnitude: std of the smooth elastic component, voxels (0 = off: the authors' 2D choice; their 3D
            class defaults switch an elastic term on, which the bundles leave off).
        elastic_spacing: control-point spacing of the elastic component, voxels.
        rotation_sampling: ``"reference"`` (default; the authors' 2D script): the sum of two independent
            ``U(-rotate / 2, rotate / 2)`` draws (triangular on ``+-rotate``; mean ``|angle|`` is ``rotate / 3``
            instead of ``rotate / 2``). In 3D the authors draw one uniform angle per axis, so there ``"reference"``
            is the same as ``"uniform"``. ``"uniform"``: each angle ``U(-rotate, rotate)`` (harder views: mean
            ``|angle|`` 30° instead of 20° in 2D).
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        crop_size: Sequence[int] | int = 128,
        rotate_deg: float | Sequence[float] | None = None,
        scale_range: Sequence[float] | None = None,
        shear_deg: float | Sequence[float] | None = None,
        translate_frac: float | Sequence[float] | None = None,
        elastic_magnitude: float = 0.0,
        elastic_spacing: int = 16,
        rotation_sampling: str = "reference",
    ) -> None:
        self._config = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        if spatial_dims not in (2, 3):
            raise ValueError(f"ViewGeometry: spatial_dims must be 2 or 3, got {spatial_dims}.")
        dflt, d = _DEFAULTS[spatial_dims], spatial_dims
        self.spatial_dims = spatial_dims
        self.crop_size = (crop_size,) * d if isinstance(crop_size, int) else tuple(crop_size)
        # one value for all, or one per axis pair / off-diagonal term / axis (e.g. in-plane rotation only for slabs)
        self.rotate = np.radians(_per("rotate_deg", dflt["rotate_deg"] if rotate_deg is None else rotate_deg,
                                      d * (d - 1) // 2))
        self.scale_range = tuple(dflt["scale_range"] if scale_range is None else scale_range)
        self.shear = np.radians(_per("shear_deg", dflt["shear_deg"] if shear_deg is None else shear_deg, d * (d - 1)))
        self.translate_frac = _per("translate_frac", dflt["translate_frac"] if translate_frac is None
                                   else translate_frac, d)
        self.elastic_magnitude, self.elastic_spacing = elastic_magnitude, elastic_spacing
        self.rotation_sampling = look_up_option(rotation_sampling, ROTATION_SAMPLINGS)

    @property
    def config(self) -> dict[str, Any]:
        """The constructor's arguments as given: ``ViewGeometry(**config)`` draws the same kind of fields."""
        return dict(self._config)

    def check_shape(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        """``spatial_shape`` as ints; refused in one line with the wrong dimension or smaller than the crop."""
        shape = tuple(int(s) for s in spatial_shape)
        if len(shape) != self.spatial_dims or any(s < c for s, c in zip(shape, self.crop_size)):
            raise ValueError(
                f"ViewGeometry: image grid {shape} is smaller than the {self.spatial_dims}D crop {self.crop_size}; "
                "resize or pad images to at least the crop size (1.5x recommended)."
            )
        return shape

    def draw_elastic(self, batch_size: int, spatial_shape: Sequence[int]) -> np.ndarray | None:
        """Control-point values of the elastic term, ``(B, d, *control grid)`` float32 ``N(0, 1)`` (scaled by
        ``elastic_magnitude`` when applied), or ``None`` (no draw) when it is off."""
        if self.elastic_magnitude <= 0:
            return None
        grid = [max(2, math.ceil(s / self.elastic_spacing) + 1) for s in spatial_shape]
        return self.R.standard_normal((batch_size, self.spatial_dims, *grid)).astype(np.float32)

    def draw_affine(self, batch_size: int, spatial_shape: Sequence[int]) -> dict[str, np.ndarray]:
        """Rotation, shear, scale, translation (voxels) and crop starts, drawn in this order (``ViewParams`` fields)."""
        b, d, r = batch_size, self.spatial_dims, self.R
        n_rot, n_shear = d * (d - 1) // 2, d * (d - 1)
        if self.rotation_sampling == "reference" and d == 2:  # 3D: the authors draw one uniform angle per axis
            half = self.rotate / 2
            rotate = r.uniform(-half, half, size=(b, n_rot)) + r.uniform(-half, half, size=(b, n_rot))
        else:
            rotate = r.uniform(-self.rotate, self.rotate, size=(b, n_rot))
        return {
            "rotate": rotate,
            "shear": r.uniform(-self.shear, self.shear, size=(b, n_shear)),
            "scale": r.uniform(*self.scale_range, size=(b, d)),
            "translate": r.uniform(-1, 1, size=(b, d)) * self.translate_frac * np.asarray(spatial_shape),
            "crop_starts": np.stack([r.randint(0, s - c + 1, size=b) for s, c in zip(spatial_shape, self.crop_size)],
                                    1),
        }

    def randomize(self, batch_size: int = 1, spatial_shape: Sequence[int] | None = None) -> ViewParams:  # type: ignore[override]
        """Draw the fields and crops of ``batch_size`` items on a ``spatial_shape`` grid (default: the crop size)."""
        shape = self.check_shape(spatial_shape if spatial_shape is not None else self.crop_size)
        elastic = self.draw_elastic(batch_size, shape)
        return ViewParams(**self.draw_affine(batch_size, shape), elastic=elastic)

    def field(self, params: ViewParams, spatial_shape: Sequence[int], device: torch.device | str | None = None
              ) -> torch.Tensor:
        """The drawn ground-truth field on the full grid, ``(B, d, *spatial_shape)`` float32 in voxels."""
        p = params
        t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        ddf_full = Fn.affine_field(Fn.affine_matrices(t(p.rotate), t(p.shear), t(p.scale)), t(p.translate),
                                   spatial_shape)
        if p.elastic is not None:
            ddf_full = ddf_full + Fn.elastic_field(t(p.elastic), spatial_shape, self.elastic_magnitude)
        return ddf_full

    def crop(self, x: torch.Tensor, params: ViewParams) -> torch.Tensor:
        """The drawn crop of ``(B, C, *S)`` images or fields: ``(B, C, *crop_size)``."""
        return Fn.crop(x, params.crop_starts, self.crop_size)
