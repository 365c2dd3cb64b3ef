"""SeVR as a per-image MONAI array transform (one image ``(C, *S)`` in, four tensors out)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.transforms import Randomizable, Transform
from monai.utils import convert_to_tensor

from monai_cover.transforms.appearance import ViewAppearance
from monai_cover.transforms.geometry import ViewGeometry
from monai_cover.transforms.pairs import ViewPairs
from monai_cover.transforms.sampler import CoverViewSampler

__all__ = ["RandCoverViews"]


class RandCoverViews(Randomizable, Transform):
    """Generate one COVER view pair from one image.

    ``__call__(img)`` with ``img`` ``(C, *S)`` returns ``(view_a (C, *crop), view_b (C, *crop), ddf (d, *crop),
    mask (1, *crop))``, float tensors, ``ddf`` in voxels. For training on a GPU prefer generating views for
    the whole batch on the device with :class:`CoverViewSampler` (see :mod:`monai_cover.engines`).

    Args:
        geometry, appearance, pairs: the parts of the :class:`CoverViewSampler` that makes the views, each as itself
            or as a mapping of its arguments (``RandCoverViews({"spatial_dims": 2, "crop_size": 64})``).
    """

    backend = [torch.Tensor.__name__, np.ndarray.__name__]

    def __init__(
        self,
        geometry: ViewGeometry | Mapping[str, Any],
        appearance: ViewAppearance | Mapping[str, Any] | str = "reference",
        pairs: ViewPairs | Mapping[str, Any] | None = None,
    ) -> None:
        self.sampler = CoverViewSampler(geometry, appearance, pairs)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.sampler.set_random_state(state=self.R)
        return self

    def randomize(self, data: NdarrayOrTensor) -> None:
        self.sampler.R = self.R
        self.sampler.randomize(1, data.shape[1:])

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> tuple[torch.Tensor, ...]:
        img_t = convert_to_tensor(img, track_meta=False)
        dims = self.sampler.view_geometry.spatial_dims
        if img_t.ndim != dims + 1:
            raise ValueError(
                f"RandCoverViews: expected a channel-first {dims}D image (C, *S), "
                f"got shape {tuple(img_t.shape)}."
            )
        if randomize:
            self.randomize(img_t)
        out = self.sampler.generate(img_t[None])
        return out["view_a"][0], out["view_b"][0], out["ddf"][0], out["mask"][0]
