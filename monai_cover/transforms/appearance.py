"""The appearance part of COVER views: contrast, brightness, blur, noise, colour jitter and in-painting of view a."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import Randomizable
from monai.utils import look_up_option

from monai_cover.transforms import functional as Fn
from monai_cover.transforms.params import ViewParams

__all__ = ["APPEARANCE_PRESETS", "ViewAppearance"]

#: The values of :class:`ViewAppearance`, per preset; ``overrides`` replaces some. "mild" is this package's original
#: setting; "reference" the authors' published code (brightness: std of a normal shift; blocks: the cap of a
#: geometric count and the side range ``[floor(3 size / 30), floor(4 size / 30))``).
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
_BLOCK_CONTINUE = 0.95  # reference in-painting: one more block while U(0, 1) < 0.95 (up to max_blocks)
_BLOCK_MARGIN = 3  # reference in-painting: block starts in [3, size - side - 3)


class ViewAppearance(Randomizable):
    """Draw and apply the appearance changes of view a: contrast, brightness, blur, noise, colour jitter (RGB) and
    noise-filled blocks (in-painting), each per batch item.

    ``randomize(batch_size, crop_size)`` draws with this object's ``R`` on the CPU and returns the draw (the
    appearance fields of :class:`~monai_cover.transforms.ViewParams`; nothing is kept); calling the object with
    ``(images, draw)`` applies it on the images' device. Inside :class:`~monai_cover.transforms.CoverViewSampler` the
    sampler's ``R`` draws, in two steps around the geometry (:meth:`draw_block_shapes`, :meth:`draw_changes`).

    The preset fixes the kind of each step and their order, and gives every value (:data:`APPEARANCE_PRESETS`):

    - ``"mild"``: contrast/brightness, blur, noise, blocks. Each step with its probability; contrast
      ``U(contrast_range)``; brightness ``U(-brightness, brightness)``; blocks: ``U{1..max_blocks}`` blocks of
      ``round(U(block_frac) * crop)`` voxels per axis anywhere in the crop, filled with ``mean + std * N(0, 1)`` of
      the image. Values: 0.5, (0.7, 1.3), 0.5, 0.1, blur 0.3, (0.5, 1.5), noise 0.5, 0.05, blocks 0.5, 3, (0.05, 0.2).
    - ``"reference"`` (the authors' choice): noise, blur, contrast, brightness, blocks. Brightness
      ``N(0, brightness)``; blocks: added one after another while ``U(0, 1) < 0.95``, at most ``max_blocks``;
      sides integers in ``[floor(block_frac[0] * crop), floor(block_frac[1] * crop))`` (at least 1), starts in
      ``[3, crop - side - 3)`` (no margin if the crop is too small), filled with ``U[0, 1)`` (the intensity range of
      images scaled to [0, 1], as in the bundles). Values: every step always applied except blur (prob 0: the
      authors' blur is a no-op), contrast (0.5, 1.5), brightness std 0.1, noise std ``U(0, 0.02)``, blocks up to 10
      of 10%-13% of the crop.

    The values one may override (``overrides`` keys): ``prob_contrast``, ``contrast_range`` (probability and range
    of the contrast factor, about the image mean); ``prob_brightness``, ``brightness`` (probability and size of the
    additive shift in image intensity units: max absolute value with "mild", std with "reference"); ``prob_blur``,
    ``blur_sigma`` (probability and ``(min, max)`` Gaussian sigma, voxels); ``prob_noise``, ``noise_std``
    (probability and max std of additive Gaussian noise, the std drawn ``U(0, noise_std)``); ``prob_blocks``,
    ``max_blocks``, ``block_frac`` (probability, max count and ``(min, max)`` side as a fraction of the crop of the
    noise-filled blocks; ``prob_blocks=0`` switches in-painting off with either preset).

    Why a mapping of overrides rather than eleven arguments or a dataclass: the preset stays one argument and the
    constructor small; a mapping is what a bundle config holds (``train#sampler#appearance#overrides#noise_std``
    reaches one value from the command line, no ``_target_`` needed) and what :attr:`config` records as plain JSON;
    its keys are checked against the preset's, so a misspelt one fails in one line instead of being ignored.

    Args:
        preset: ``"reference"`` (default; the authors') or ``"mild"``. The default follows validation results
            (``benchmarks/results/tuning/jsrt_scr_views.md``).
        overrides: preset values to replace, by name (above); a ``None`` value keeps the preset's. An unknown name
            is a ``ValueError`` naming it and the known ones.
        inpainting: ``False`` switches in-painting off whatever the preset and overrides (``prob_blocks`` 0).
        color_jitter: RGB views: each channel of view a is multiplied by its own ``U(1 - j, 1 + j)`` factor (after
            the contrast/brightness change shared by all channels), so colours shift as well as intensities. 0 (the
            default; gray images) draws nothing, so gray runs see exactly the views they saw before.
    """

    def __init__(
        self,
        preset: str = "reference",
        overrides: Mapping[str, Any] | None = None,
        inpainting: bool = True,
        color_jitter: float = 0.0,
    ) -> None:
        self.preset = look_up_option(preset, tuple(APPEARANCE_PRESETS))
        values = APPEARANCE_PRESETS[self.preset]
        unknown = sorted(set(overrides or {}) - set(values))
        if unknown:
            raise ValueError(f"ViewAppearance: unknown override {', '.join(map(repr, unknown))}; the preset's values "
                             f"are {', '.join(values)}.")
        self._config = {"preset": self.preset, "overrides": dict(overrides or {}), "inpainting": bool(inpainting),
                        "color_jitter": float(color_jitter)}
        for name, value in values.items():
            given = (overrides or {}).get(name)
            value = value if given is None else given
            setattr(self, name, tuple(value) if isinstance(value, Sequence) else value)
        if not inpainting:
            self.prob_blocks = 0.0
        self.color_jitter = float(color_jitter)

    @property
    def config(self) -> dict[str, Any]:
        """The constructor's arguments: ``ViewAppearance(**config)`` draws the same kind of changes."""
        return {**self._config, "overrides": dict(self._config["overrides"])}

    @property
    def values(self) -> dict[str, Any]:
        """Every value in use, by name: the preset's with the overrides (and ``inpainting=False``) applied."""
        return {name: getattr(self, name) for name in APPEARANCE_PRESETS[self.preset]}

    def _gate(self, p: float, values: np.ndarray, neutral: float) -> np.ndarray:
        """``values`` per item with probability ``p``, else ``neutral`` (one ``U(0, 1)`` draw per item)."""
        return np.where(self.R.uniform(size=values.shape[:1]) < p, values, neutral)

    def draw_block_shapes(self, batch_size: int, crop_size: Sequence[int]) -> np.ndarray | None:
        """"mild" only (``None`` and no draw with "reference"): the block count and sides, ``(B, max_blocks, d)``
        voxels, 0 for absent blocks. They come first: the "mild" views were pinned with this order."""
        if self.preset != "mild":
            return None
        r, b, crop = self.R, batch_size, np.asarray(crop_size)
        n_blk = np.where(r.uniform(size=b) < self.prob_blocks, r.randint(1, self.max_blocks + 1, size=b), 0)
        sizes = np.round(r.uniform(*self.block_frac, size=(b, self.max_blocks, len(crop))) * crop).astype(np.int64)
        sizes[np.arange(self.max_blocks)[None, :] >= n_blk[:, None]] = 0
        return sizes

    def draw_changes(self, batch_size: int, crop_size: Sequence[int], block_sizes: np.ndarray | None = None
                     ) -> dict[str, Any]:
        """Every other draw, in this order: the preset's steps, the colour gains and the noise images' seed
        (``ViewParams`` fields). ``block_sizes``: :meth:`draw_block_shapes`' result."""
        b, r, crop = batch_size, self.R, np.asarray(crop_size)
        if self.preset == "mild":
            look = {
                "contrast": self._gate(self.prob_contrast, r.uniform(*self.contrast_range, size=b), 1.0),
                "brightness": self._gate(self.prob_brightness, r.uniform(-self.brightness, self.brightness, size=b),
                                         0.0),
                "blur_sigma": self._gate(self.prob_blur, r.uniform(*self.blur_sigma, size=b), 0.0),
                "noise_std": self._gate(self.prob_noise, r.uniform(0, self.noise_std, size=b), 0.0),
                "block_starts": (r.uniform(size=(b, self.max_blocks, len(crop))) * (crop - block_sizes + 1)
                                 ).astype(np.int64),
                "block_sizes": block_sizes,
            }
        else:
            look = self._draw_reference(b, crop)
        gain = r.uniform(1 - self.color_jitter, 1 + self.color_jitter, size=(b, 3)) if self.color_jitter else None
        seed = int(r.randint(0, 2**31 - 1))
        return {**look, "channel_gain": gain, "seed": seed, "preset": self.preset}

    def _draw_reference(self, b: int, crop: np.ndarray) -> dict[str, np.ndarray]:
        """The authors' appearance parameters (see the class docstring), in their order of application."""
        r, d, nb = self.R, len(crop), self.max_blocks
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

    def randomize(self, batch_size: int, crop_size: Sequence[int]) -> ViewParams:  # type: ignore[override]
        """Draw the changes of ``batch_size`` views of ``crop_size`` voxels per axis (its length is the spatial
        dimension)."""
        return ViewParams(**self.draw_changes(batch_size, crop_size, self.draw_block_shapes(batch_size, crop_size)))

    def __call__(self, x: torch.Tensor, params: ViewParams) -> torch.Tensor:
        """Apply the drawn contrast, brightness, blur, noise, colour jitter (RGB) and noise blocks to ``(B, C, *S)``
        images (``S`` the crop size the blocks were drawn for); returns ``(B, C, *S)`` of ``x``'s dtype.

        Order and block fill follow the draw's preset: "mild" contrast/brightness, blur, noise, blocks filled with
        ``mean + std * N(0, 1)``; "reference" noise, blur, contrast/brightness, blocks filled with ``U[0, 1)``. The
        noise images come from ``torch.Generator(x.device).manual_seed(params.seed)``.
        """
        p = params
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
