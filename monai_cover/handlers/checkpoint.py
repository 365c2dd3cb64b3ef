"""Atomic, resumable training checkpoints for ignite engines."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from torch.optim.lr_scheduler import LRScheduler

from monai_cover.errors import first_line
from monai_cover.utils import atomic_write, is_main_process

__all__ = ["ResumableCheckpoint"]

_STEP_STATE = {"last_epoch", "_step_count", "_last_lr", "_get_lr_called_within_step", "_is_initial", "lr_lambdas"}


def _schedule_settings(scheduler: LRScheduler) -> dict[str, Any]:
    return {k: v for k, v in scheduler.__dict__.items() if k not in _STEP_STATE and k != "optimizer"}


_NAME = re.compile(r"^checkpoint_(\d+)\.pt$")


class ResumableCheckpoint:
    """Save ``checkpoint_<iteration>.pt`` every ``interval`` iterations and at the end; resume on start.

    Files are written to a temporary name and renamed, so a kill or a full disk never leaves a half-written
    checkpoint under the final name. On ``STARTED`` the newest readable checkpoint in ``save_dir`` is loaded
    (all of ``save_dict``: trainer step counts, network, optimiser, lr scheduler, grad scaler); an unreadable
    one is reported, renamed ``<name>.unreadable`` (kept, but no longer a checkpoint: never loaded, never counted
    in ``n_saved``, replaced when its iteration is saved again) and the previous one is tried. Running the same
    command again therefore continues where the last run stopped (a :class:`~monai_cover.handlers.RunGuard`
    attached before this handler makes sure it is the same run). The configured ``max_epochs`` is kept, so a
    finished run can be extended.

    Args:
        save_dir: checkpoint folder.
        save_dict: objects with ``state_dict``/``load_state_dict`` (network, optimiser, lr scheduler, ...); the engine
            this handler is attached to is added as ``"trainer"`` (so configs need no circular reference).
        interval: iterations between checkpoints (``<= 0``: only at the end).
        n_saved: checkpoints kept (oldest deleted).
        resume: load the newest checkpoint on start.
    """

    def __init__(
        self, save_dir: str | os.PathLike, save_dict: Mapping[str, Any], interval: int = 100, n_saved: int = 2,
        resume: bool = True,
    ) -> None:
        self.save_dir = Path(save_dir)
        self.save_dict = {k: v for k, v in save_dict.items() if v is not None}
        self.interval, self.n_saved, self.resume = interval, max(1, n_saved), resume
        self.logger = logging.getLogger(self.__class__.__name__)
        self.loaded_from: Path | None = None
        self._saves_registered = False
        self._saved: Path | None = None

    def attach(self, engine: Engine) -> None:
        self.save_dict.setdefault("trainer", engine)
        scaler = getattr(engine, "scaler", None)
        if scaler is not None and getattr(engine, "amp", False):
            self.save_dict.setdefault("scaler", scaler)
        if self.resume:
            engine.add_event_handler(Events.STARTED, self.load_latest)
        # saving is registered when the run starts, i.e. after every other handler (lr scheduler steps, ...), so a
        # checkpoint holds the state at the *end* of its iteration
        engine.add_event_handler(Events.STARTED, self._register_saves)

    def _register_saves(self, engine: Engine) -> None:
        if self._saves_registered:
            return
        self._saves_registered = True
        if self.interval > 0:
            engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.interval), self.save)
        engine.add_event_handler(Events.COMPLETED, self.save)

    def checkpoints(self) -> list[Path]:
        """Existing checkpoints, newest first."""
        if not self.save_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.save_dir.iterdir() if (m := _NAME.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def save(self, engine: Engine) -> None:
        if not is_main_process():
            return
        path = self.save_dir / f"checkpoint_{engine.state.iteration:08d}.pt"
        if self._saved == path:
            return  # the interval save already wrote this iteration (training ended on an interval)
        state = {k: obj.state_dict() for k, obj in self.save_dict.items()}
        atomic_write(path, lambda tmp: torch.save(state, tmp))
        self._saved = path
        for old in self.checkpoints()[self.n_saved:]:
            old.unlink(missing_ok=True)
        self.logger.info(f"saved {path} (iteration {engine.state.iteration})")

    @staticmethod
    def _set_aside(path: Path) -> Path:
        """Rename an unreadable checkpoint so that it is neither retried, nor counted when old ones are deleted, nor
        mistaken for the checkpoint of its iteration when that is saved again (the file itself is kept)."""
        kept = path.with_name(path.name + ".unreadable")
        if is_main_process():
            try:
                os.replace(path, kept)
            except OSError:
                pass  # read-only folder: saving will report it
        return kept

    def load_latest(self, engine: Engine) -> None:
        for path in self.checkpoints():
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                missing = [k for k in self.save_dict if k not in state]
                if missing:
                    raise ValueError(f"missing entries {missing}")
            except Exception as e:  # truncated / corrupt / foreign file: fall back to the previous one
                kept = self._set_aside(path)
                self.logger.warning(f"{path}: unreadable checkpoint ({first_line(e)}); kept as {kept.name}, trying an "
                                    "older one.")
                continue
            max_epochs = engine.state.max_epochs
            # lr schedulers: restore the step count but keep this run's schedule (t_total may have grown)
            keep = {k: _schedule_settings(v) for k, v in self.save_dict.items() if isinstance(v, LRScheduler)}
            Checkpoint.load_objects(to_load=self.save_dict, checkpoint=state)
            for k, settings in keep.items():
                self.save_dict[k].__dict__.update(settings)
            if max_epochs is not None:
                engine.state.max_epochs = max(max_epochs, engine.state.epoch)
            self.loaded_from = path
            self.logger.info(f"resumed from {path} at iteration {engine.state.iteration}")
            return
