"""SeVR view generation for a whole batch on the training device (draw on CPU, apply anywhere)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.transforms import Randomizable
from monai.utils import convert_to_tensor

from monai_cover.networks.blocks.warp import warp
from monai_cover.transforms import functional as Fn

__all__ = ["CoverViewSampler", "ViewParams", "default_ranges"]

# Authors' ranges (per axis): see docs/cover-method.md, section 1.
_DEFAULTS = {
    2: {"rotate_deg": 60.0, "scale_range": (0.25, 1.75), "shear_deg": 8.4, "translate_frac": 0.3},
    3: {"rotate_deg": 15.0, "scale_range": (0.75, 1.25), "shear_deg": 10.0, "translate_frac": 0.1},
}


def default_ranges(spatial_dims: int) -> dict:
    """The authors' spatial ranges for 2D or 3D."""
    return dict(_DEFAULTS[spatial_dims])


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


class CoverViewSampler(Randomizable):
    """Generate COVER views ``(x_a, x_b, psi, eps)`` from a batch of images.

    ``randomize(batch_size, spatial_shape)`` draws every parameter with this object's ``R`` (seedable with
    ``set_random_state``); ``generate(images)`` applies the draw on ``images.device``, so one CPU draw can
    produce the views of a whole batch on a GPU. Steps (spec section 1): affine (+ optional elastic) field
    ``psi`` on the full grid, ``x_b = warp(x, psi)``, one shared crop of ``x``, ``x_b``, ``psi``, appearance
    changes on ``x_a`` only, valid mask ``eps``.

    Args:
        spatial_dims: 2 or 3.
        crop_size: view size (voxels per axis); the input grid must be at least this large (authors: 1.5x).
        rotate_deg: max rotation per axis pair, degrees (default: authors' 60 in 2D, 15 in 3D).
        scale_range: per-axis scale factor range (default (0.25, 1.75) in 2D, (0.75, 1.25) in 3D).
        shear_deg: max shear angle per off-diagonal term, degrees (8.4 in 2D, 10 in 3D).
        translate_frac: max translation as a fraction of the grid size per axis (0.3 in 2D, 0.1 in 3D).
        elastic_magnitude: std of the smooth elastic component, voxels (0 = off, the authors' choice).
        elastic_spacing: control-point spacing of the elastic component, voxels.
        prob_contrast, contrast_range: probability and range of the contrast factor.
        prob_brightness, brightness: probability and max absolute additive shift (image intensity units).
        prob_blur, blur_sigma: probability and ``(min, max)`` Gaussian sigma in voxels.
        prob_noise, noise_std: probability and max std of additive Gaussian noise.
        prob_blocks, max_blocks, block_frac: probability, max count and ``(min, max)`` size (fraction of the crop)
            of noise-filled blocks (in-painting).
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
        prob_contrast: float = 0.5,
        contrast_range: Sequence[float] = (0.7, 1.3),
        prob_brightness: float = 0.5,
        brightness: float = 0.1,
        prob_blur: float = 0.3,
        blur_sigma: Sequence[float] = (0.5, 1.5),
        prob_noise: float = 0.5,
        noise_std: float = 0.05,
        prob_blocks: float = 0.5,
        max_blocks: int = 3,
        block_frac: Sequence[float] = (0.05, 0.2),
        seed: int | None = None,
    ) -> None:
        if seed is not None:
            self.set_random_state(seed)
        if spatial_dims not in (2, 3):
            raise ValueError(f"CoverViewSampler: spatial_dims must be 2 or 3, got {spatial_dims}.")
        dflt = _DEFAULTS[spatial_dims]
        self.spatial_dims = spatial_dims
        self.crop_size = (crop_size,) * spatial_dims if isinstance(crop_size, int) else tuple(crop_size)
        self.rotate = math.radians(dflt["rotate_deg"] if rotate_deg is None else rotate_deg)
        self.scale_range = tuple(dflt["scale_range"] if scale_range is None else scale_range)
        self.shear = math.radians(dflt["shear_deg"] if shear_deg is None else shear_deg)
        self.translate_frac = dflt["translate_frac"] if translate_frac is None else translate_frac
        self.elastic_magnitude, self.elastic_spacing = elastic_magnitude, elastic_spacing
        self.prob_contrast, self.contrast_range = prob_contrast, tuple(contrast_range)
        self.prob_brightness, self.brightness = prob_brightness, brightness
        self.prob_blur, self.blur_sigma = prob_blur, tuple(blur_sigma)
        self.prob_noise, self.noise_std = prob_noise, noise_std
        self.prob_blocks, self.max_blocks, self.block_frac = prob_blocks, max_blocks, tuple(block_frac)
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

        def gate(p: float, values: np.ndarray, neutral: float) -> np.ndarray:
            return np.where(r.uniform(size=values.shape[:1]) < p, values, neutral)

        elastic = None
        if self.elastic_magnitude > 0:
            grid = [max(2, math.ceil(s / self.elastic_spacing) + 1) for s in shape]
            elastic = r.standard_normal((b, d, *grid)).astype(np.float32)
        n_blk = np.where(r.uniform(size=b) < self.prob_blocks, r.randint(1, self.max_blocks + 1, size=b), 0)
        blk_sizes = np.round(r.uniform(*self.block_frac, size=(b, self.max_blocks, d)) * crop).astype(np.int64)
        blk_sizes[np.arange(self.max_blocks)[None, :] >= n_blk[:, None]] = 0
        self.params = ViewParams(
            rotate=r.uniform(-self.rotate, self.rotate, size=(b, n_rot)),
            shear=r.uniform(-self.shear, self.shear, size=(b, n_shear)),
            scale=r.uniform(*self.scale_range, size=(b, d)),
            translate=r.uniform(-1, 1, size=(b, d)) * self.translate_frac * np.asarray(shape),
            elastic=elastic,
            crop_starts=np.stack([r.randint(0, s - c + 1, size=b) for s, c in zip(shape, self.crop_size)], 1),
            contrast=gate(self.prob_contrast, r.uniform(*self.contrast_range, size=b), 1.0),
            brightness=gate(self.prob_brightness, r.uniform(-self.brightness, self.brightness, size=b), 0.0),
            blur_sigma=gate(self.prob_blur, r.uniform(*self.blur_sigma, size=b), 0.0),
            noise_std=gate(self.prob_noise, r.uniform(0, self.noise_std, size=b), 0.0),
            block_starts=(r.uniform(size=(b, self.max_blocks, d)) * (crop - blk_sizes + 1)).astype(np.int64),
            block_sizes=blk_sizes,
            seed=int(r.randint(0, 2**31 - 1)),
        )

    def field(self, spatial_shape: Sequence[int], device=None, params: ViewParams | None = None) -> torch.Tensor:
        """The drawn ground-truth field on the full grid, ``(B, d, *S)`` in voxels."""
        p = params or self.params
        t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        psi = Fn.affine_field(Fn.affine_matrices(t(p.rotate), t(p.shear), t(p.scale)), t(p.translate), spatial_shape)
        if p.elastic is not None:
            psi = psi + Fn.elastic_field(t(p.elastic), spatial_shape, self.elastic_magnitude)
        return psi

    def appearance(self, x: torch.Tensor, params: ViewParams | None = None) -> torch.Tensor:
        """Apply the drawn contrast, brightness, blur, noise and noise blocks to ``(B, C, *S)`` images."""
        p = params or self.params
        dev = x.device
        t = lambda a: torch.as_tensor(a, dtype=x.dtype, device=dev)  # noqa: E731
        gen = torch.Generator(device=dev).manual_seed(p.seed)
        x = Fn.adjust_contrast_brightness(x, t(p.contrast), t(p.brightness))
        if (p.blur_sigma > 0).any():
            x = Fn.gaussian_blur(x, t(p.blur_sigma))
        noise = torch.randn(x.shape, generator=gen, device=dev, dtype=x.dtype)
        x = x + noise * t(p.noise_std).view(-1, *([1] * (x.ndim - 1)))
        if (p.block_sizes > 0).any():
            blocks = Fn.noise_blocks_mask(torch.as_tensor(p.block_starts, device=dev),
                                          torch.as_tensor(p.block_sizes, device=dev), x.shape[2:])
            dims = tuple(range(1, x.ndim))
            fill = x.mean(dims, keepdim=True) + x.std(dims, keepdim=True) * torch.randn(
                x.shape, generator=gen, device=dev, dtype=x.dtype)
            x = torch.where(blocks, fill, x)
        return x

    def generate(self, images: torch.Tensor, params: ViewParams | None = None) -> dict[str, torch.Tensor]:
        """Apply a draw to ``(B, C, *S)`` images on their device.

        Returns:
            dict with ``view_a`` ``(B, C, *crop)`` (appearance-changed crop of ``x``), ``view_b`` ``(B, C, *crop)``
            (crop of ``warp(x, psi)``), ``dvf`` ``(B, d, *crop)`` ground truth in voxels with
            ``view_b(p) ~ clean view_a(p + dvf(p))``, ``mask`` ``(B, 1, *crop)`` valid mask.
        """
        p = params or self.params
        if p is None:
            raise RuntimeError("CoverViewSampler.generate: call randomize() first.")
        shape = self._check_shape(images.shape[2:])
        if len(p.crop_starts) != images.shape[0]:
            raise ValueError(f"CoverViewSampler: drew {len(p.crop_starts)} items, got a batch of {images.shape[0]}.")
        x = convert_to_tensor(images, track_meta=False)
        x = x if x.is_floating_point() else x.float()
        psi = self.field(shape, x.device, p).to(x.dtype)
        x_b = warp(x, psi)
        dvf = Fn.crop(psi, p.crop_starts, self.crop_size)
        return {
            "view_a": self.appearance(Fn.crop(x, p.crop_starts, self.crop_size), p),
            "view_b": Fn.crop(x_b, p.crop_starts, self.crop_size),
            "dvf": dvf,
            "mask": Fn.valid_mask(dvf),
        }

    def __call__(self, images: torch.Tensor, randomize: bool = True) -> dict[str, torch.Tensor]:
        """Draw (unless ``randomize=False``) and generate views for a ``(B, C, *S)`` batch."""
        if randomize:
            self.randomize(images.shape[0], images.shape[2:])
        return self.generate(images)
