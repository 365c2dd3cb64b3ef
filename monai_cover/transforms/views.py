"""The parts of cover_pretrain's view sampler from the bundle's settings: the rules that pick a part's values from
other settings live here, and every value given under ``train#sampler#<part>#<name>`` wins over them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai_cover.transforms.appearance import ViewAppearance
from monai_cover.transforms.geometry import ViewGeometry, slab_view_ranges
from monai_cover.transforms.pairs import ViewPairs

__all__ = ["RGB_COLOR_JITTER", "MODALITY_SHARE", "view_appearance", "view_geometry", "view_pairs"]

#: colour jitter of RGB views (per-channel gain range of view a); gray views have none
RGB_COLOR_JITTER = 0.1
#: share of pairs across modalities when co-registered modalities are given without ``--cross_modal``
MODALITY_SHARE = 0.5


def view_geometry(view_sizes: Sequence[Any], spatial_dims: int, channels: Sequence[int], **given: Any
                  ) -> ViewGeometry:
    """The views' spatial field and crop: the crop of ``view_sizes`` (``(crop_size, load_size)``,
    :func:`~monai_cover.data.auto_view_sizes`) for a ``spatial_dims`` network of ``len(channels)`` levels.
    ``rotate_deg``, ``shear_deg`` and ``translate_frac`` not given (or ``None``) hold slab axes still
    (:func:`~monai_cover.transforms.geometry.slab_view_ranges`: the authors' ranges for other crops); the other
    ``given`` values are :class:`ViewGeometry`'s own."""
    crop_size = given.pop("crop_size", None) or view_sizes[0]
    slabs = slab_view_ranges(crop_size, spatial_dims, 2 ** (len(channels) - 1))
    ranges = {k: v if given.get(k) is None else given[k] for k, v in slabs.items()}
    return ViewGeometry(spatial_dims=spatial_dims, crop_size=crop_size, **{**given, **ranges})


def view_appearance(color: str, color_jitter: float | None = None, **given: Any) -> ViewAppearance:
    """View a's appearance changes; ``color_jitter`` unless given: :data:`RGB_COLOR_JITTER` for ``rgb`` images,
    none for gray ones."""
    jitter = (RGB_COLOR_JITTER if color == "rgb" else 0.0) if color_jitter is None else color_jitter
    return ViewAppearance(color_jitter=jitter, **given)


def view_pairs(modalities: int, cross_modal: float | None = None, **given: Any) -> ViewPairs:
    """The views' sources. With two or more ``modalities`` a ``cross_modal`` share of pairs takes view b from
    another modality (:data:`MODALITY_SHARE` unless given); with one there is none."""
    share = (MODALITY_SHARE if cross_modal is None else cross_modal) if modalities > 1 else None
    return ViewPairs(cross_modal=share, **given)
