"""PNG plots of segmentation quality: Dice per validation round, Dice per case and class."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from ignite.engine import Engine, Events

from monai_cover.utils import is_main_process
from monai_cover.visualize import save_curves

__all__ = ["DiceCurvePlot"]


class DiceCurvePlot:
    """Attach to an evaluator. After each run: ``dice_curve.png`` (mean Dice per validation round, kept in
    ``dice_history.json`` across resumed runs; over training steps when :class:`StepValidation` runs the
    evaluator, else over epochs) and, when per-case details exist, ``dice_per_case.png``
    (box plot per class).
    """

    def __init__(self, save_dir: str | os.PathLike, metric_name: str = "val_mean_dice",
                 label_names: Sequence[str] | None = None) -> None:
        self.save_dir, self.metric_name = Path(save_dir), metric_name
        self.label_names = list(label_names) if label_names else None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if not is_main_process() or self.metric_name not in engine.state.metrics:
            return
        self.save_dir.mkdir(parents=True, exist_ok=True)
        hist_file = self.save_dir / "dice_history.json"
        hist = json.loads(hist_file.read_text()) if hist_file.is_file() else []
        # the trainer's step where StepValidation ran this round (validation every N steps: several per epoch)
        step = getattr(engine.state, "trainer_iteration", None)
        entry = {"epoch": engine.state.epoch, "dice": float(engine.state.metrics[self.metric_name])}
        if step is not None:
            entry["step"] = step
        # a resumed run repeats the round it was interrupted in: replace it rather than plot it twice
        hist = [h for h in hist if (h.get("step"), h["epoch"]) != (step, engine.state.epoch)] + [entry]
        hist_file.write_text(json.dumps(hist))
        axis = "step" if all("step" in h for h in hist) else "epoch"
        save_curves(self.save_dir / "dice_curve.png", [h[axis] for h in hist], {"mean Dice": [h["dice"] for h in hist]},
                    axis, "Dice", "validation Dice")
        details = getattr(engine.state, "metric_details", {}).get(self.metric_name)
        if details is not None and len(details) > 1:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            values = details.detach().cpu().float().numpy()  # (cases, classes)
            names = self.label_names or [f"class {i}" for i in range(values.shape[1])]
            fig, ax = plt.subplots(figsize=(1.2 * values.shape[1] + 2, 3.5))
            ax.boxplot([values[:, i] for i in range(values.shape[1])])
            ax.set_xticks(range(1, values.shape[1] + 1), names[: values.shape[1]], rotation=20)
            ax.set_ylabel("Dice per case")
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            fig.tight_layout()
            fig.savefig(self.save_dir / "dice_per_case.png", dpi=90)
            plt.close(fig)
