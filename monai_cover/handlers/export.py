"""Export the pretrained backbone for downstream use (``cover_seg``) and the whole network for fields."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events

from monai_cover.utils import is_main_process
from monai_cover.weights import FIELD_MODEL, save_backbone, save_field_model

__all__ = ["BackboneExport"]


class BackboneExport:
    """Write ``model.pt`` and ``model.safetensors`` + ``model.json`` of ``network.backbone`` into ``model_dir``, and
    the whole network as ``cover_net.pt`` (:func:`~monai_cover.weights.save_field_model`: fields between frames for
    label propagation).

    Runs at the end of training and every ``interval`` iterations (``<= 0``: only at the end), rank 0 only.
    The backbone's ``config`` attribute (constructor arguments) is stored beside the weights, with ``inputs``: how
    the images were prepared (``{"intensity": "ct"}``), which ``cover_seg`` and feature extraction then default to.

    ``snapshots``: iterations at which the backbone is also kept, in ``<model_dir>/snapshots/iteration_<N>/``
    (``model.pt``, ``model.safetensors``, ``model.json``; never overwritten by later exports), so feature quality
    can be measured along pretraining.
    """

    def __init__(self, model_dir: str | os.PathLike, network, interval: int = 0,
                 inputs: Mapping[str, Any] | None = None, snapshots: Sequence[int] = ()) -> None:
        self.model_dir, self.network, self.interval = model_dir, network, interval
        self.inputs = dict(inputs or {})
        self.snapshots = {int(i) for i in snapshots or ()}
        self.logger = logging.getLogger(self.__class__.__name__)
        self._last_iteration = -1

    def attach(self, engine: Engine) -> None:
        if self.interval > 0:
            engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.interval), self)
        engine.add_event_handler(Events.COMPLETED, self)
        if self.snapshots:
            engine.add_event_handler(Events.ITERATION_COMPLETED(event_filter=lambda _, it: it in self.snapshots),
                                     self.snapshot)

    def snapshot(self, engine: Engine) -> None:
        """Keep the backbone of this iteration in ``snapshots/iteration_<N>/``."""
        if not is_main_process():
            return
        it = engine.state.iteration
        backbone = getattr(self.network, "module", self.network).backbone
        config = dict(getattr(backbone, "config", {}), **self.inputs, pretrain_iterations=it)
        paths = save_backbone(Path(self.model_dir) / "snapshots" / f"iteration_{it:06d}", backbone, config)
        self.logger.info(f"kept the backbone of iteration {it} in {paths['safetensors'].parent}")

    def __call__(self, engine: Engine) -> None:
        if not is_main_process() or engine.state.iteration == self._last_iteration:
            return
        self._last_iteration = engine.state.iteration
        net = getattr(self.network, "module", self.network)
        backbone = net.backbone
        config = dict(getattr(backbone, "config", {}), **self.inputs, pretrain_iterations=engine.state.iteration)
        paths = save_backbone(self.model_dir, backbone, config)
        if hasattr(net, "vpa"):  # a CoverNet (its vector heads learn fields only with the cover method)
            save_field_model(self.model_dir, net, dict(getattr(net, "config", {}), **config))
        self.logger.info(f"exported backbone to {paths['pt']} and {paths['safetensors']} (whole network: "
                         f"{FIELD_MODEL})")
