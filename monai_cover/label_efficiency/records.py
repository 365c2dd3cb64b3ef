"""The records of a label-efficiency run, without weights or per-case outputs:
``python -m monai_cover.label_efficiency.records OUT DEST``.

Copies what a rerun of the suite needs to skip finished work (each run's ``result.json`` / ``done.json``, the
overrides and data digests it was made with, the datalists and the chosen budget) and what its report is made from
(``results.json``), nothing else: no weights (weights trained on research-only data such as JSRT may not be shared),
no predictions, logs or caches. A run of the suite with ``--out DEST`` then resumes where ``OUT`` was: finished
evaluations are reused, and a pretraining whose weights are needed again is repeated from its seed
(:meth:`~monai_cover.label_efficiency.BenchmarkRunner.pretrain`). This is how long CPU runs continue on another
machine, or are shared, without their weights.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["RECORD_NAMES", "copy_records", "main"]

#: file names a run folder keeps as its record (``<name>_overrides.json`` / ``<name>_contents.txt`` per bundle run)
RECORD_NAMES = ("result.json", "done.json", "budget.json", "results.json")
_RECORD_SUFFIXES = ("_overrides.json", "_contents.txt")


def _is_record(path: Path, out: Path) -> bool:
    rel = path.relative_to(out)
    return (path.name in RECORD_NAMES or path.name.endswith(_RECORD_SUFFIXES)
            or (rel.parts[0] == "datalists" and path.suffix == ".json"))


def copy_records(out: str | Path, dest: str | Path) -> list[Path]:
    """Copy the records of the suite's output folder ``out`` into ``dest`` (same layout), a new or empty folder
    outside ``out`` (records of two runs are never mixed); returns the copied files, relative to ``dest``."""
    out, dest = Path(out), Path(dest)
    if not (out / "datalists").is_dir():
        raise FileNotFoundError(f"{out}: not an output folder of python -m monai_cover.label_efficiency "
                                "(no datalists/)")
    if dest.resolve() == out.resolve() or out.resolve() in dest.resolve().parents:
        raise FileExistsError(f"{dest}: inside the output folder {out}; give a folder outside it")
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest}: already holds files; give a new or empty folder (records of two runs are "
                              "not mixed)")
    copied = []
    for path in sorted(p for p in out.rglob("*") if p.is_file() and _is_record(p, out)):
        target = dest / path.relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied.append(target.relative_to(dest))
    return copied


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m monai_cover.label_efficiency.records OUT DEST", file=sys.stderr)
        return 2
    try:
        copied = copy_records(*args)
    except (FileNotFoundError, FileExistsError) as e:
        print(f"records: error: {e}", file=sys.stderr)
        return 1
    print(f"copied {len(copied)} record files from {args[0]} to {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
