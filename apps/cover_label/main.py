"""MONAI Label app for cover_seg: segment, retrain on the labels saved so far, and serve a retrained model only once it
has validated.

Why an app of its own rather than the ``monaibundle`` sample app (whose inference this app uses unchanged,
``BundleInferTask``): its trainer (``BundleTrainTask``) cannot do the loop with this bundle. It hands the labeled
images over as ``train#dataset#data``, while this bundle derives its data, split and run record from ``data_file``:
its first Train stops at once ("cover_seg: no segmentation data", tried). Bridged, it would still train into the
bundle's own ``outputs/`` and ``models/``: the best-model handler would overwrite the served ``models/model.pt``
during training, judged against the previous run's Dice on other validation images, and a retrain after new
labels would be refused by the bundle's rerun guard (or, with the guard off, resume the finished run and train
nothing). Here (:class:`lib.trainer.CoverSegTrainTask`, :func:`monai_cover.labeling.retrain`) each Train is a new
run of the bundle's own ``configs/train.json`` in ``runs/<time>/``, continuing from the served model, and the served
model is replaced (atomically) only by a run that scored at least as well on the same validation images.

Start::

    monailabel start_server --app apps/cover_label --studies <images> --conf models cover_seg \\
        --conf pretrained <COVER backbone: cover_pretrain's models/model.pt or .safetensors>

``--conf`` options: ``models`` (bundle folders under ``<app>/model/``, default ``cover_seg``), ``pretrained`` (the
backbone a first training starts from, and whose features choose the next image: strategy ``cover_farthest``),
``skip_trainers`` (``true``: inference only).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import monailabel
from lib.strategy import CoverFarthest
from lib.trainer import CoverSegTrainTask
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random
from monailabel.tasks.infer.bundle import BundleInferTask
from monailabel.utils.others.generic import strtobool

from monai_cover.errors import MissingFileError
from monai_cover.hub import resolve_pretrained

logger = logging.getLogger(__name__)


def _served_signature(bundle: Path) -> tuple | None:
    """What identifies the served model's settings (``models/model.json``: modification time and size), or ``None``
    when no model is served yet."""
    model, record = bundle / "models" / "model.pt", bundle / "models" / "model.json"
    if not model.is_file():
        return None
    stat = record.stat() if record.is_file() else None
    return (stat.st_mtime_ns, stat.st_size) if stat else ()


class CoverLabelApp(MONAILabelApp):
    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        names = [n.strip() for n in conf.get("models", "cover_seg").split(",") if n.strip()]
        self.bundles = {n: Path(app_dir, "model", n) for n in names}
        for path in self.bundles.values():
            if not (path / "configs" / "metadata.json").is_file():
                raise MissingFileError(f"{path}: no bundle there (copy bundles/cover_seg to {path}, or name the "
                                       "bundle folders under <app>/model/ with --conf models <names>)")
        # a file, a folder or a Hub id, as the bundle's --pretrained; absolute, for the training processes
        self.backbone = resolve_pretrained(conf.get("pretrained") or None)
        self.backbone = os.path.abspath(self.backbone) if self.backbone else None
        if self.backbone and not os.path.isfile(self.backbone):
            raise MissingFileError(f"{self.backbone}: no such file (--conf pretrained takes the COVER backbone, "
                                   "cover_pretrain's models/model.pt or .safetensors)")
        self._served: dict[str, tuple | None] = {}
        self._refresh_lock = threading.Lock()
        super().__init__(app_dir=app_dir, studies=studies, conf=conf, name="cover_seg (COVER fine-tuning)",
                         description="Segmentation with cover_seg, retrained on your labels",
                         version=monailabel.__version__)

    def _infer_task(self, name: str) -> BundleInferTask | None:
        """MONAI Label's bundle inference of the served model (``None`` until a model is served)."""
        bundle = self.bundles[name]
        self._served[name] = _served_signature(bundle)
        if self._served[name] is None:
            logger.info(f"{name}: no model served yet ({bundle / 'models' / 'model.pt'}); Train makes one")
            return None
        task = BundleInferTask(str(bundle), self.conf)
        return task if task.is_valid() else None

    def init_infers(self) -> dict[str, InferTask]:
        tasks = {name: self._infer_task(name) for name in self.bundles}
        return {name: t for name, t in tasks.items() if t is not None}

    def _refresh_infers(self) -> None:
        """Rebuild the inference of a bundle whose served model changed its settings (the first model served, or one
        retrained from the backbone with other settings): ``BundleInferTask`` reads them once, when built, and
        reloads only the weights when ``model.pt`` changes."""
        with self._refresh_lock:
            for name, bundle in self.bundles.items():
                if _served_signature(bundle) != self._served.get(name):
                    task = self._infer_task(name)
                    if task is not None:
                        self._infers[name] = task
                        logger.info(f"{name}: serving the model now in {bundle / 'models'}")

    def info(self):
        self._refresh_infers()
        return super().info()

    def infer(self, request, datastore=None):
        self._refresh_infers()
        return super().infer(request, datastore)

    def init_trainers(self) -> dict[str, TrainTask]:
        if strtobool(self.conf.get("skip_trainers", "false")):
            return {}
        return {name: CoverSegTrainTask(path, self.backbone) for name, path in self.bundles.items()
                if (path / "configs" / "train.json").is_file()}

    def init_strategies(self) -> dict[str, Strategy]:
        strategies: dict[str, Strategy] = {"random": Random(), "first": First()}
        if self.backbone:
            strategies["cover_farthest"] = CoverFarthest(self.backbone, Path(self.app_dir, "cache", "cover_features"))
        else:
            logger.info("no --conf pretrained: the cover_farthest next-sample strategy needs the COVER backbone")
        return strategies
