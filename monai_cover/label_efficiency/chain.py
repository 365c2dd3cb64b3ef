"""Several bundle runs one after another in one process: ``python -m monai_cover.label_efficiency.chain TIMES.json
NAME=FILES ...``.

Each ``NAME=FILES`` (``FILES`` a JSON list of config files, as ``--config_file`` takes them) is exactly what
``python -m monai.bundle run --config_file FILES`` runs: the same ``monai.bundle.run`` call, only without starting
Python, torch and MONAI again (~6 s a run on a 2-core machine, a tenth of a small benchmark run). The benchmark chains
a fine-tuning run with its test evaluation, and label transfer at every atlas count. Before each run a line
``== bundle run NAME: python -m monai.bundle run --config_file ...`` names it (so a log shows which one failed and how
to rerun it by hand); after each, ``TIMES.json`` gets ``[{"name": NAME, "seconds": s}, ...]`` for the runs so far.
A failing run stops the chain with its own error (the later runs need its output).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["parse_step", "main"]

MARKER = "== bundle run "


def parse_step(arg: str) -> tuple[str, list[str]]:
    """``"NAME=[\\"a.json\\", \\"b.json\\"]"`` -> ``("NAME", ["a.json", "b.json"])``."""
    name, sep, files = arg.partition("=")
    if not sep or not name:
        raise ValueError(f"chain step {arg!r}: expected NAME=[config files as JSON]")
    parsed = json.loads(files)
    if not isinstance(parsed, list) or not parsed or not all(isinstance(f, str) for f in parsed):
        raise ValueError(f"chain step {name!r}: expected a non-empty JSON list of config files, got {files}")
    return name, parsed


def main(argv: Sequence[str] | None = None) -> int:
    """Run every step in order; returns 0 (a failing step raises, as ``monai.bundle run`` would)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        print("usage: python -m monai_cover.label_efficiency.chain TIMES.json NAME=[config files] ...", file=sys.stderr)
        return 2
    times_file, steps = Path(args[0]), [parse_step(a) for a in args[1:]]
    from monai.bundle import run  # after the argument check: a usage error needs no torch

    times: list[dict] = []
    for name, files in steps:
        print(f"{MARKER}{name}: python -m monai.bundle run --config_file {files!r}", flush=True)
        t0 = time.perf_counter()
        run(config_file=files)
        times.append({"name": name, "seconds": round(time.perf_counter() - t0, 2)})
        times_file.write_text(json.dumps(times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
