"""SeVR view generation for a whole batch on the training device (draw on CPU, apply anywhere), from three parts:
:class:`ViewGeometry` (field and crop), :class:`ViewAppearance` (view a's changes) and :class:`ViewPairs` (the
views' sources)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from monai.transforms import Randomizable
from monai.utils import convert_to_tensor

from monai_cover.networks.blocks.warp import warp
from monai_cover.transforms import functional as Fn
from monai_cover.transforms.appearance import ViewAppearance
from monai_cover.transforms.geometry import ViewGeometry
from monai_cover.transforms.pairs import ViewPairs
from monai_cover.transforms.params import ViewParams

__all__ = ["CoverViewSampler"]

_Part = TypeVar("_Part", ViewGeometry, ViewAppearance, ViewPairs)


def _part(cls: type[_Part], name: str, value: _Part | Mapping[str, Any]) -> _Part:
    """A part given as itself or as a mapping of its arguments (a bundle config section, a recorded ``config``)."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"CoverViewSampler: {name} takes a {cls.__name__} or a mapping of its arguments, got "
                        f"{type(value).__name__}.")
    known = list(inspect.signature(cls).parameters)
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ValueError(f"CoverViewSampler: {name} has no argument {', '.join(map(repr, unknown))}; "
                         f"{cls.__name__} takes {', '.join(known)}.")
    return cls(**value)


class CoverViewSampler(Randomizable):
    """Generate COVER views ``(x_a, x_b, ddf, eps)`` from a batch of images.

    ``randomize(batch_size, spatial_shape)`` draws every parameter with this object's ``R`` (seedable with
    ``set_random_state``, which every part then draws from too); ``generate(images)`` applies the draw on
    ``images.device``, so one CPU draw can produce the views of a whole batch on a GPU. Steps
    (docs/cover-method.md, "View generation (SeVR)"): the views' sources (:class:`ViewPairs`), affine (+ optional
    elastic) field on the full grid, ``x_b = warp(x, field)``, one shared crop of ``x``, ``x_b`` and the field
    (``ddf``) (:class:`ViewGeometry`), view b's synthetic contrast (:class:`ViewPairs`), appearance changes on
    ``x_a`` only (:class:`ViewAppearance`), valid mask ``eps``.

    Each part is given as itself or as a plain mapping of its arguments, so a bundle config holds three small
    sections (``train#sampler#geometry#rotate_deg``) and ``CoverViewSampler(**sampler.config)`` builds a sampler
    that draws the same kind of views.

    Args:
        geometry: the spatial field and crop, :class:`ViewGeometry` or its arguments (``{"spatial_dims": 2,
            "crop_size": 64}``: the authors' ranges and rotations).
        appearance: view a's changes, :class:`ViewAppearance`, its arguments, or a preset name (``"reference"``,
            the default and the authors' choice, or ``"mild"``).
        pairs: the views' sources, :class:`ViewPairs` or its arguments; ``None``: both views from the whole image.
        seed: seed of ``R`` for reproducible runs. Without it ``R`` is MONAI's shared class-level generator, which
            ``monai.utils.set_determinism`` does not reseed, so the bundles always pass their ``seed``.
    """

    def __init__(
        self,
        geometry: ViewGeometry | Mapping[str, Any],
        appearance: ViewAppearance | Mapping[str, Any] | str = "reference",
        pairs: ViewPairs | Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        self.view_geometry = _part(ViewGeometry, "geometry", geometry)
        #: the appearance part (``self.appearance`` is the method applying a draw)
        self.view_appearance = _part(ViewAppearance, "appearance",
                                     {"preset": appearance} if isinstance(appearance, str) else appearance)
        self.view_pairs = _part(ViewPairs, "pairs", {} if pairs is None else pairs)
        if seed is not None:
            self.set_random_state(seed)
        self.params: ViewParams | None = None

    @property
    def config(self) -> dict[str, dict[str, Any]]:
        """The parts' arguments (plain JSON-able mappings) but the seed: ``CoverViewSampler(**config)`` draws the same
        kind of views (the seed is not part of the kind: DDP ranks draw with ``seed + rank``, and a run's settings
        must match across ranks)."""
        return {"geometry": self.view_geometry.config, "appearance": self.view_appearance.config,
                "pairs": self.view_pairs.config}

    def with_pairs(self, **changes: Any) -> CoverViewSampler:
        """A new, unseeded sampler of the same geometry and appearance whose pairs have ``changes`` (e.g.
        ``synthetic_contrast=1.0``: the validation measures unseen contrasts). The pair draws come after every other
        draw, so with the same seed it draws the same geometry and appearance as this one."""
        return CoverViewSampler(**{**self.config, "pairs": self.view_pairs.replace(**changes)})

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None
                         ) -> CoverViewSampler:
        super().set_random_state(seed, state)
        self._share_random_state()
        return self

    def _share_random_state(self) -> None:
        """Every part draws from this sampler's one ``R`` (also after ``R`` was assigned directly)."""
        for part in (self.view_geometry, self.view_appearance, self.view_pairs):
            part.R = self.R

    def randomize(self, batch_size: int = 1, spatial_shape: Sequence[int] | None = None) -> None:  # type: ignore[override]
        g, a = self.view_geometry, self.view_appearance
        shape = g.check_shape(spatial_shape if spatial_shape is not None else g.crop_size)
        self._share_random_state()
        b = batch_size
        # One generator, the draws in the order of the sampler before it had parts, so that seeded runs keep their
        # views: elastic, the "mild" preset's block counts and sizes, rotate/shear/scale/translate/crop starts, the
        # appearance, colour gains and noise seed, the pairs last (runs without pair options draw nothing there).
        elastic = g.draw_elastic(b, shape)
        block_sizes = a.draw_block_shapes(b, g.crop_size)
        geometry = g.draw_affine(b, shape)
        look = a.draw_changes(b, g.crop_size, block_sizes)
        self.params = ViewParams(**geometry, elastic=elastic, **look, **self.view_pairs.draw(b))

    def forced(self, kind: str, params: ViewParams | None = None) -> ViewParams:
        """The same draw with every item of one pair kind (``"same"``, ``"cross"``, ``"synthetic"`` or
        ``"temporal"``): the validation compares the kinds on identical geometry (:meth:`ViewPairs.forced`)."""
        p = params or self.params
        if p is None:
            raise RuntimeError("CoverViewSampler.forced: call randomize() first.")
        return self.view_pairs.forced(kind, p)

    def field(self, spatial_shape: Sequence[int], device: torch.device | str | None = None,
              params: ViewParams | None = None) -> torch.Tensor:
        """The drawn ground-truth field on the full grid, ``(B, d, *S)`` in voxels."""
        return self.view_geometry.field(params or self.params, spatial_shape, device)

    def appearance(self, x: torch.Tensor, params: ViewParams | None = None) -> torch.Tensor:
        """Apply the drawn appearance changes to ``(B, C, *crop)`` images (:class:`ViewAppearance`)."""
        return self.view_appearance(x, params or self.params)

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
        g = self.view_geometry
        shape = g.check_shape(images.shape[2:])
        if p.batch_size != images.shape[0]:
            raise ValueError(f"CoverViewSampler: drew {p.batch_size} items, got a batch of {images.shape[0]}.")
        x = convert_to_tensor(images, track_meta=False)
        x = x if x.is_floating_point() else x.float()
        x_a, x_b, frames = self.view_pairs.sources(x, p)
        ddf_full = g.field(p, shape, x.device).to(x.dtype)
        view_b = self.view_pairs.remap(g.crop(warp(x_b, ddf_full), p), p)
        ddf = g.crop(ddf_full, p)
        clean_a = g.crop(x_a, p)
        out = {
            "view_a": self.view_appearance(clean_a, p),
            "view_b": view_b,
            "ddf": ddf,
            "mask": Fn.valid_mask(ddf),
            "pair": torch.as_tensor(p.pair_kinds()),  # on the CPU: bookkeeping, no copy to the device every step
        }
        if frames is not None:  # what image matching needs: the clean view a, where view b shows image content
            out.update(frame=frames[0], gap=frames[1], clean_a=clean_a, clean_b=g.crop(x_b, p),
                       content_b=g.crop(Fn.valid_mask(ddf_full), p))
        return out

    def __call__(self, images: torch.Tensor, randomize: bool = True) -> dict[str, torch.Tensor]:
        """Draw (unless ``randomize=False``) and generate views for a ``(B, C, *S)`` batch."""
        if randomize:
            self.randomize(images.shape[0], images.shape[2:])
        return self.generate(images)
