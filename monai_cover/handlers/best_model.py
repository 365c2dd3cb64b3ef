"""Keep the best model by a validation metric, written atomically (``models/model.pt``)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from monai_cover.utils import atomic_write, is_main_process

__all__ = ["BestModelSaver"]


class BestModelSaver:
    """Attach to a validator: after each validation, if ``metric_name`` improved, save ``network``'s state dict.

    The file is a plain ``state_dict`` (tensors only; MONAI Label and ``CheckpointLoader`` read it as is). The best
    value and the trainer iteration are kept in ``<model_file>.json`` so a resumed run does not overwrite a better
    model with a worse one; ``settings`` (what evaluation and inference must repeat: widths, labels, sizes) go there
    too, so those read them instead of asking the user to repeat every training override
    (:func:`monai_cover.weights.trained_settings`).

    Why not MONAI's ``CheckpointSaver(save_key_metric=True)``: it writes in place (``atomic=False``, for group
    permissions), so a crash or a full disk mid-write leaves a truncated ``model.pt`` where the best model was; and
    it keeps the best value in memory only, so after a resume the first validation replaces the best model whatever
    its Dice (``key_metric_save_state`` keeps it, but inside the model file, which then is no plain state dict).
    Here every write is atomic with normal permissions (:func:`~monai_cover.utils.atomic_write`).
    """

    def __init__(self, model_file: str | os.PathLike, network, metric_name: str, mode: str = "max",
                 settings: Mapping[str, Any] | None = None) -> None:
        self.model_file, self.network, self.metric_name = Path(model_file), network, metric_name
        self.settings = dict(settings or {})
        self.sign = 1.0 if mode == "max" else -1.0
        self.record = self.model_file.with_suffix(".json")
        self.logger = logging.getLogger(self.__class__.__name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def best(self) -> float | None:
        if self.record.is_file():
            return json.loads(self.record.read_text()).get("best")
        return None

    def __call__(self, engine: Engine) -> None:
        if not is_main_process():
            return
        value = engine.state.metrics.get(self.metric_name)
        if value is None:
            return
        value = float(value)
        best = self.best()
        if best is not None and self.sign * value <= self.sign * best:
            return
        net = getattr(self.network, "module", self.network)
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        atomic_write(self.model_file, lambda tmp: torch.save(state, tmp))
        info = {"best": value, "metric": self.metric_name, "epoch": getattr(engine.state, "epoch", None),
                "settings": self.settings}
        atomic_write(self.record, lambda tmp: Path(tmp).write_text(json.dumps(info)))
        self.logger.info(f"new best {self.metric_name} {value:.4f}: saved {self.model_file}")
