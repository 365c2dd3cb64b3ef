"""MONAI Label's ``Train`` for a cover_seg bundle: :func:`monai_cover.labeling.retrain` on the datastore's labels."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.train import TrainTask

from monai_cover.errors import find_cover_error
from monai_cover.labeling import RETRAIN_OPTIONS, RetrainRuns, retrain

logger = logging.getLogger(__name__)

#: bundle settings the client's Train panel shows (with the bundle's defaults) besides the retrain options; any other
#: cover_seg train setting can be sent in the request as well
SHOWN_SETTINGS = ("epochs", "iterations", "learning_rate", "batch_size", "val_interval")


class CoverSegTrainTask(TrainTask):
    """Fine-tune the cover_seg bundle in ``bundle_dir`` on the labeled images, one new run per request
    (:func:`monai_cover.labeling.retrain`: continue from the served model, serve the new one only if it validates at
    least as well). Progress (the bundle's loss and Dice lines) and the final Dice are in the task's output, which
    ``GET /train/`` returns; the last run's record is in ``GET /info/`` under ``train_stats``.

    Args:
        bundle_dir: ``<app>/model/<name>``.
        backbone: the COVER backbone a run starts from when it does not continue a served model (``--conf
            pretrained``), or ``None``.
    """

    def __init__(self, bundle_dir: str | Path, backbone: str | None) -> None:
        self.bundle_dir, self.backbone = Path(bundle_dir), backbone
        super().__init__(f"Fine-tune cover_seg ({self.bundle_dir.name}) on the labeled images; the new model is "
                         "served only if it validates at least as well as the served one")

    def config(self) -> dict[str, Any]:
        train = json.loads((self.bundle_dir / "configs" / "train.json").read_text())
        shown = {k: train[k] for k in SHOWN_SETTINGS if train.get(k) is not None}
        options = {k: v[0] for k, v in RETRAIN_OPTIONS.items()}
        options["promote"] = ["if_better", "always"]  # the client shows a choice, the first is the default
        return {**options, **shown}

    def stats(self) -> dict[str, Any]:
        last = RetrainRuns(self.bundle_dir).last()
        if last is None:
            return {}
        keys = ("run", "status", "dice", "served_dice", "start", "validation", "started", "finished", "error")
        return {**{k: last[k] for k in keys if k in last}, "labels": len(last.get("labels", []))}

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        try:
            return retrain(self.bundle_dir, datastore.datalist(), request, backbone=self.backbone)
        except Exception as e:
            expected = find_cover_error(e)
            if expected is None:
                raise
            # one line in the task's output (GET /train/ shows its last lines), no traceback
            logger.error(f"cover_seg retrain failed: {type(expected).__name__}: {expected}")
            sys.exit(1)
