"""SeVR as a MONAI dictionary transform."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable

from monai_cover.transforms.appearance import ViewAppearance
from monai_cover.transforms.array import RandCoverViews
from monai_cover.transforms.geometry import ViewGeometry
from monai_cover.transforms.pairs import ViewPairs

__all__ = ["RandCoverViewsd", "RandCoverViewsD", "RandCoverViewsDict"]


class RandCoverViewsd(Randomizable, MapTransform):
    """Dictionary form of :class:`RandCoverViews`: reads one image key, writes the four view keys.

    Args:
        keys: the image key (exactly one).
        geometry, appearance, pairs: the parts of the :class:`~monai_cover.transforms.CoverViewSampler` that makes
            the views, each as itself or as a mapping of its arguments.
        view_a_key, view_b_key, ddf_key, mask_key: output keys.
        allow_missing_keys: leave the dict unchanged when the image key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        geometry: ViewGeometry | Mapping[str, Any],
        appearance: ViewAppearance | Mapping[str, Any] | str = "reference",
        pairs: ViewPairs | Mapping[str, Any] | None = None,
        view_a_key: str = "view_a",
        view_b_key: str = "view_b",
        ddf_key: str = "ddf",
        mask_key: str = "mask",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError(f"RandCoverViewsd: exactly one image key expected, got {list(self.keys)}.")
        self.out_keys = (view_a_key, view_b_key, ddf_key, mask_key)
        self.views = RandCoverViews(geometry, appearance, pairs)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.views.set_random_state(state=self.R)
        return self

    def randomize(self, data=None) -> None:
        self.views.randomize(data)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            for out_key, value in zip(self.out_keys, self.views(d[key])):
                d[out_key] = value
        return d


RandCoverViewsD = RandCoverViewsDict = RandCoverViewsd
