"""A PNG of what an evaluator segmented: image, reference and prediction of its first cases."""

from __future__ import annotations

import os
from pathlib import Path

from ignite.engine import Engine, Events

from monai_cover.utils import is_main_process
from monai_cover.visualize import label_map, save_segmentation_panel

__all__ = ["SegmentationPanel"]


class SegmentationPanel:
    """Attach to an evaluator: ``<save_dir>/<filename>`` shows the first ``num_cases`` cases of each run (image,
    reference labels, prediction; middle slice of volumes), so a look tells whether the Dice means what it seems.

    Reads the post-processed batch of each iteration (``image``, ``label``, ``pred`` of the decollated output:
    one-hot or multi-label channels). Rank 0 only; with a split validation set it shows rank 0's cases.

    Args:
        save_dir: output folder.
        num_classes: channels of ``pred`` (background included for multi-class).
        multilabel: ``pred`` and ``label`` hold one mask per structure (no background channel).
        num_cases: cases shown.
        filename: PNG name.
    """

    def __init__(self, save_dir: str | os.PathLike, num_classes: int, multilabel: bool = False, num_cases: int = 3,
                 filename: str = "segmentation_panel.png") -> None:
        self.path, self.num_cases, self.multilabel = Path(save_dir) / filename, num_cases, multilabel
        self.num_classes = num_classes + 1 if multilabel else num_classes  # values of the maps, background included
        self.cases: list = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self.cases.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.write)

    def collect(self, engine: Engine) -> None:
        output = engine.state.output
        for item in output if isinstance(output, list) else []:
            if len(self.cases) >= self.num_cases or "label" not in item:
                return
            image = item["image"]
            name = Path(str(getattr(image, "meta", {}).get("filename_or_obj", f"case {len(self.cases)}"))).name
            self.cases.append((name, image.detach().cpu(), label_map(item["label"], self.multilabel),
                               label_map(item["pred"], self.multilabel)))

    def write(self, engine: Engine) -> None:
        if is_main_process() and self.cases:
            save_segmentation_panel(self.path, self.cases, self.num_classes, title=f"first {len(self.cases)} cases")
