"""The command-line frame of the studies on the suite's protocol (``effect``, ``strategies``, ``over_pretraining``):
the task options, a backbone with its fine-tuning budget, and one line for every expected failure."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from monai_cover.errors import BadInputError, CoverError
from monai_cover.label_efficiency.runner import BenchmarkError

__all__ = ["add_fine_tuning", "backbone_file", "pin_backbone", "run_study", "study_parser"]


def study_parser(module: str, doc: str, mode: str = "quick", out_help: str = "output folder"
                 ) -> argparse.ArgumentParser:
    """``python -m monai_cover.label_efficiency.<module>``'s parser with ``--task``, ``--mode``, ``--data``,
    ``--out``."""
    ap = argparse.ArgumentParser(prog=f"python -m monai_cover.label_efficiency.{module}", description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True, help="built-in task name (jsrt_scr, msd_hippocampus) or a task JSON")
    ap.add_argument("--mode", default=mode, help="the task's mode: its fine-tuning settings and validation holdout")
    ap.add_argument("--data", help="dataset location (replaces the task's)")
    ap.add_argument("--out", required=True, help=out_help)
    return ap


def add_fine_tuning(ap: argparse.ArgumentParser) -> None:
    """``--backbone``, ``--steps``, ``--seeds`` and ``--set``: what every fine-tuning run of a study starts from."""
    ap.add_argument("--backbone", required=True,
                    help="weights file, folder, Hub id or released name (as cover_seg --pretrained)")
    ap.add_argument("--steps", type=int, required=True, help="fine-tuning steps of every run")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="label seeds")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="settings",
                    help="change task values for this run, e.g. seg.batch_size=2")


def backbone_file(source: str) -> Path:
    """The weights file ``--backbone`` names (as :func:`monai_cover.hub.resolve_pretrained`), absolute."""
    from monai_cover.hub import resolve_pretrained

    path = Path(resolve_pretrained(source)).resolve()
    if not path.is_file():
        raise BadInputError(f"--backbone {source}: no such file or folder")
    return path


def pin_backbone(out: Path, backbone: Path) -> str:
    """The SHA-1 of ``backbone``, recorded in ``out/backbone.json`` by the first run into ``out``; a later run with
    other weights (another file, or the same file replaced) is refused in one line: its runs would be mixed with
    runs fine-tuned from the first."""
    import json

    from monai_cover.labeling import file_sha1
    from monai_cover.utils import atomic_write

    sha1, mark = file_sha1(backbone), out / "backbone.json"
    if mark.is_file():
        pinned = json.loads(mark.read_text())
        if pinned.get("sha1") != sha1:
            raise BadInputError(f"{out}: its runs fine-tuned from other weights ({pinned.get('path')}, sha1 "
                                f"{str(pinned.get('sha1'))[:12]}) than {backbone} (sha1 {sha1[:12]}); "
                                "use another --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(mark, lambda tmp: Path(tmp).write_text(json.dumps({"path": str(backbone), "sha1": sha1})))
    return sha1


def run_study(module: str, work: Callable[[], Path]) -> int:
    """Run ``work`` (returns the report it wrote), print the report; an expected failure is one line, exit 1."""
    try:
        md = work()
    except (CoverError, BenchmarkError, ValueError) as e:
        print(f"{module}: error: {e}", file=sys.stderr)
        return 1
    print(md.read_text())
    print(f"wrote {md} and the results beside it")
    return 0
