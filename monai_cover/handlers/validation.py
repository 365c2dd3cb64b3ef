"""Fixed-batch validation of the predicted field during pretraining: endpoint error, TensorBoard, PNG panels."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.utils import convert_to_tensor

from monai_cover.errors import BadSettingError
from monai_cover.transforms.sampler import CoverViewSampler
from monai_cover.utils import is_main_process
from monai_cover.visualize import save_curves, save_panel

__all__ = ["CoverValidation", "endpoint_error"]


def endpoint_error(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean Euclidean distance ``|ddf_pred(p) - ddf(p)|_2`` over valid voxels, in voxels."""
    err = (pred.float() - target.float()).norm(dim=1, keepdim=True) * mask
    return float(err.sum() / mask.sum().clamp_min(1.0))


class CoverValidation:
    """Every ``interval`` iterations, predict the field of a fixed validation batch and report its endpoint error.

    The batch is the first ``num_images`` items of ``dataset``; its views are drawn once with ``seed`` so the
    numbers are comparable across iterations and runs. Logs ``val_epe`` (and ``val_epe_zero``, the error of
    predicting no motion) to the console, TensorBoard (``log_dir``) and ``<output_dir>/val_history.json``, and
    writes ``<output_dir>/panels/panel_<iteration>.png`` plus ``<output_dir>/val_epe.png``. Runs on rank 0 only,
    on the unwrapped network (no DDP collective).

    When the sampler makes cross-modal or synthetic-contrast pairs (or ``pair_kinds`` asks for them), the same draw is
    also evaluated with every item of each pair kind, logged as ``val_epe_same``, ``val_epe_cross`` and
    ``val_epe_synthetic``: the kinds compared on identical geometry and appearance. A temporal sampler's validation
    pairs each frame with itself (the field between two frames is not known).

    Its TensorBoard scalars are written here, at the validation's iteration: MONAI's ``TensorBoardStatsHandler``
    writes engine metrics at epoch ends only, and pretraining validates every ``interval`` iterations.

    Args:
        dataset: indexable dataset yielding dicts with ``image_key`` ``(C, *S)``.
        sampler: the training :class:`CoverViewSampler`; the validation views come from a sampler with the same
            parts (its ``config``), seeded with ``seed`` (the training sampler's draws are untouched).
        output_dir: folder for panels and history.
        interval: iterations between validations; also run at start (the untrained / resumed model) and end.
        at: further iterations to validate at (e.g. where backbone snapshots are kept).
        num_images: size of the validation batch.
        log_dir: TensorBoard folder (``None``: no TensorBoard).
        seed: view seed.
        image_key: image key.
        plot: write PNG panels.
        pair_kinds: pair kinds to report separately (``"same"``, ``"cross"``, ``"synthetic"``); ``None``: those the
            sampler makes. Asking for ``"synthetic"`` from a model trained without synthetic contrast measures how
            it copes with unseen contrasts.
    """

    def __init__(
        self, dataset: Sequence[Any], sampler: CoverViewSampler, output_dir: str | os.PathLike, interval: int = 100,
        num_images: int = 4, log_dir: str | os.PathLike | None = None, seed: int = 0, image_key: str = "image",
        plot: bool = True, pair_kinds: Sequence[str] | None = None, at: Sequence[int] = (),
    ) -> None:
        self.dataset, self.sampler_config = dataset, sampler.config
        self.output_dir, self.interval, self.num_images = Path(output_dir), interval, num_images
        self.log_dir, self.seed, self.image_key, self.plot = log_dir, seed, image_key, plot
        self.pair_kinds = None if pair_kinds is None else list(pair_kinds)
        self.at = {int(i) for i in at or ()}
        for kind in self.pair_kinds or []:
            if kind not in ("same", "cross", "synthetic"):
                raise BadSettingError(f"--val_pair_kinds {self.pair_kinds}: {kind!r} is not one of same, cross, "
                                      "synthetic")
            if kind == "cross" and sampler.view_pairs.cross_modal is None:
                raise BadSettingError("--val_pair_kinds: 'cross' pairs need co-registered modalities (--modalities 2 "
                                      "or more)")
        self.logger = logging.getLogger(self.__class__.__name__)
        self.views: dict[str, torch.Tensor] | None = None
        self.kind_views: dict[str, dict[str, torch.Tensor]] = {}
        self.history: list[dict[str, float]] = []
        self._writer = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=max(1, self.interval)), self)
        if self.at:
            engine.add_event_handler(Events.ITERATION_COMPLETED(event_filter=lambda _, it: it in self.at), self)
        engine.add_event_handler(Events.COMPLETED, self)

    def _prepare(self, device: torch.device) -> None:
        n = min(self.num_images, len(self.dataset))
        # a multi-crop pipeline (``crops_per_image``) gives a list of crops per image: its first one is enough
        items = [self.dataset[i] for i in range(n)]
        items = [item[0] if isinstance(item, list) else item for item in items]
        images = torch.stack([convert_to_tensor(item[self.image_key], track_meta=False) for item in items])
        sampler = CoverViewSampler(**self.sampler_config)
        sampler.set_random_state(self.seed)
        pairs = sampler.view_pairs
        with torch.random.fork_rng(devices=[]):
            sampler.randomize(images.shape[0], images.shape[2:])
            # pairs of two frames (temporal option) have no known field: the endpoint error is measured on the
            # one-frame pairs of the same draw
            params = sampler.forced("same") if pairs.temporal_gap else sampler.params
            self.views = {k: v.to(device) for k, v in sampler.generate(images.float(), params).items()}
            cross = pairs.cross_modal is not None and images.shape[1] > 1
            kinds = self.pair_kinds or ["same"] + ["cross"] * cross + ["synthetic"] * (pairs.synthetic_contrast > 0)
            if len(kinds) > 1 or self.pair_kinds:
                # the pair draws come after every other draw: a sampler with an option switched on for validation
                # draws the same geometry and appearance
                extra = {"synthetic_contrast": 1.0} if "synthetic" in kinds and not pairs.synthetic_contrast else {}
                both = sampler.with_pairs(**extra)
                both.set_random_state(self.seed)
                both.randomize(images.shape[0], images.shape[2:])
                self.kind_views = {k: {n: v.to(device) for n, v in both.generate(
                    images.float(), both.forced(k)).items()} for k in kinds}
        hist = self.output_dir / "val_history.json"
        if hist.is_file():
            self.history = json.loads(hist.read_text())

    def __call__(self, engine: Engine) -> None:
        if not is_main_process():
            return
        it = engine.state.iteration
        if self.history and self.history[-1]["iteration"] == it:
            return  # already validated at this iteration (e.g. end of an interval == end of training)
        if self.views is None:
            self._prepare(engine.state.device)
        net = getattr(engine.network, "module", engine.network)
        was_training = net.training
        net.eval()
        with torch.no_grad():
            pred, _, feat_b = net(self.views["view_a"], self.views["view_b"])
            by_kind = {k: endpoint_error(net(kv["view_a"], kv["view_b"])[0], kv["ddf"], kv["mask"])
                       for k, kv in self.kind_views.items()}
        net.train(was_training)
        v = self.views
        rec = {"iteration": it, "val_epe": endpoint_error(pred, v["ddf"], v["mask"]),
               "val_epe_zero": endpoint_error(torch.zeros_like(v["ddf"]), v["ddf"], v["mask"]),
               **{f"val_epe_{k}": e for k, e in by_kind.items()}}
        self.history = [h for h in self.history if h["iteration"] < it] + [rec]
        kinds = "".join(f", {k} {e:.3f}" for k, e in by_kind.items())
        self.logger.info(f"iteration {it}: val_epe {rec['val_epe']:.3f} voxels (zero-motion {rec['val_epe_zero']:.3f}"
                         f"{kinds})")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "val_history.json").write_text(json.dumps(self.history, indent=1))
        if self.log_dir is not None:
            if self._writer is None:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(log_dir=str(self.log_dir))
            for key in ("val_epe", *(f"val_epe_{k}" for k in by_kind)):
                self._writer.add_scalar(key, rec[key], it)
            self._writer.flush()
        if self.plot:
            save_panel(self.output_dir / "panels" / f"panel_{it:08d}.png", v["view_a"], v["view_b"], v["ddf"], pred,
                       v["mask"], feat_b, title=f"iteration {it}: endpoint error {rec['val_epe']:.2f} voxels")
            save_curves(self.output_dir / "val_epe.png", [h["iteration"] for h in self.history],
                        {"COVER": [h["val_epe"] for h in self.history],
                         **{f"{k} pairs": [h.get(f"val_epe_{k}", float("nan")) for h in self.history]
                            for k in by_kind},
                         "zero motion": [h["val_epe_zero"] for h in self.history]},
                        "iteration", "endpoint error (voxels)", "validation endpoint error")
