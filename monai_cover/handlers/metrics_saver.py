"""MONAI's ``MetricsSaver`` with structure names instead of ``class0, class1, ...`` in its CSVs."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

import ignite.distributed as idist
from ignite.engine import Engine
from monai.handlers import MetricsSaver

from monai_cover.utils import atomic_write

__all__ = ["LabeledMetricsSaver"]

_CLASS = re.compile(r"^class(\d+)$")


class LabeledMetricsSaver(MetricsSaver):
    """``monai.handlers.MetricsSaver`` whose per-case (``<metric>_raw.csv``) and summary (``<metric>_summary.csv``)
    files name the structures (``label_names``) where MONAI writes ``class0, class1, ...``.

    MONAI's ``write_metrics_reports`` can take class labels, but its ``MetricsSaver`` does not pass them; so the
    files MONAI wrote are relabelled once written (``classK`` -> ``label_names[K]``; the ``mean`` column stays).
    Same arguments as ``MetricsSaver`` plus ``label_names``.
    """

    def __init__(self, *args, label_names: Sequence[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.label_names = list(label_names or [])

    def __call__(self, engine: Engine) -> None:
        super().__call__(engine)
        if not self.label_names or idist.get_rank() != self.save_rank:
            return
        for metric in self.metric_details or []:
            for name in (f"{metric}_raw.csv", f"{metric}_summary.csv"):
                self._relabel(Path(self.save_dir) / name)

    def _name(self, cell: str) -> str:
        m = _CLASS.match(cell)
        return self.label_names[int(m.group(1))] if m and int(m.group(1)) < len(self.label_names) else cell

    def _relabel(self, path: Path) -> None:
        if not path.is_file():
            return
        with open(path, newline="") as f:
            rows = list(csv.reader(f, delimiter=self.deli))
        if not rows:
            return
        rows[0] = [self._name(c) for c in rows[0]]  # per-case files: the header
        for row in rows[1:]:  # summaries: the first column
            if row:
                row[0] = self._name(row[0])

        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as f:
                csv.writer(f, delimiter=self.deli).writerows(rows)

        atomic_write(path, write)
