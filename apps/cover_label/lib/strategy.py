"""MONAI Label's next-sample strategy ``cover_farthest``: the unlabeled image least like the labeled ones in the COVER
backbone's feature space (:mod:`monai_cover.labeling.features`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.strategy import Strategy

from monai_cover.labeling import FeatureIndex, farthest_unlabeled

logger = logging.getLogger(__name__)


class CoverFarthest(Strategy):
    """Next image: the unlabeled one whose nearest labeled image (cosine of pooled COVER decoder features) is farthest
    away; with nothing labeled yet, the most typical one. Each image is described once per content and cached in
    ``cache_dir``, so only new images cost a forward pass (on this server's CPU or GPU) when a sample is asked for.

    Args:
        backbone: the COVER backbone (``--conf pretrained``).
        cache_dir: where the descriptors are kept.
    """

    def __init__(self, backbone: str | Path, cache_dir: str | Path) -> None:
        super().__init__("Unlabeled image least like the labeled ones (COVER features)")
        self.index = FeatureIndex(backbone, cache_dir)

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any] | None:
        label_tag, labels = request.get("label_tag"), request.get("labels")
        unlabeled = datastore.get_unlabeled_images(label_tag, labels)
        if not unlabeled:
            return None
        labeled = datastore.get_labeled_images(label_tag, labels)
        features = self.index.features({i: datastore.get_image_uri(i) for i in [*unlabeled, *labeled]})
        if not any(i in features for i in unlabeled):
            return None  # every unlabeled image was unreadable (each logged)
        image, distance = farthest_unlabeled(features, [i for i in labeled if i in features])
        logger.info(f"cover_farthest: {image} (cosine distance {distance:.4f} to the nearest of {len(labeled)} "
                    "labeled image(s))")
        return {"id": image, "distance": distance}
