"""HD95 in millimetres: MONAI's Hausdorff handler with each case's voxel spacing."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from ignite.metrics.metric import reinit__is_reduced
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.handlers import HausdorffDistance

__all__ = ["SpacedHausdorffDistance"]

_NO_SPACING = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class SpacedHausdorffDistance(HausdorffDistance):
    """``monai.handlers.HausdorffDistance`` measured in millimetres: every case's voxel spacing (from its affine
    after preprocessing) goes to the metric. MONAI's handler passes prediction and label only, so its distances are
    in voxels whatever the spacing: a 95th-percentile distance of 2 voxels on 8 mm slices would read as 2.

    Cases read from formats without spacing (PNG, JPEG, ...) are measured in pixels, said once in the log. Same
    arguments as ``HausdorffDistance``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._warned = False

    def _spacing(self, pred: torch.Tensor) -> list[float] | None:
        if not isinstance(pred, MetaTensor):
            return None
        name = str(pred.meta.get("filename_or_obj", ""))
        if name.lower().endswith(_NO_SPACING):
            if not self._warned:
                logging.getLogger(type(self).__name__).warning(
                    f"{name}: no pixel spacing in this format, so HD95 is in pixels")
                self._warned = True
            return None
        return [float(s) for s in affine_to_spacing(pred.affine, r=pred.ndim - 1)]

    @reinit__is_reduced
    def update(self, output: Sequence) -> None:
        y_pred, y = output
        for p, t in zip(y_pred, y):  # one case at a time: each with its own spacing
            self.metric_fn([p], [t], spacing=self._spacing(p))
