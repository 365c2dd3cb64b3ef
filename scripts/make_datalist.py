"""Write MONAI datalist JSONs for the real datasets laid out as in ../shared/data (never copies the data).

    python scripts/make_datalist.py jsrt_scr --data ../shared/data/jsrt_scr --fraction 0.1 --seed 0 --out jsrt.json
    python scripts/make_datalist.py msd_hippocampus --data ../shared/data/msd_hippocampus --fraction 0.1 --out hip.json
    python scripts/make_datalist.py pretrain --data ../shared/data/jsrt_scr \
        --unlabeled ../shared/data/nih_cxr14_samples --out p.json
    python scripts/make_datalist.py folder --data /archive/cxr --out /archive/cxr_datalist.json

Labeled tasks: ``training`` = a seeded ``fraction`` of the ``train`` split, ``validation`` = ``num_val`` other
``train`` cases (model selection stays inside ``train``), ``test`` = the ``test`` split (reporting only); see
``monai_cover.label_efficiency.splits``. ``pretrain`` lists the ``train`` split's images plus unlabeled folders.
``folder`` lists every image of any folder once (the scan a bundle would repeat on every start; minutes for
100,000 single-file DICOMs) with paths relative to the JSON, so the folder and its list can move together; give
the JSON as ``--dataset_dir``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from monai_cover.data import find_images
from monai_cover.label_efficiency.splits import fraction_datalist, labeled_cases, pretrain_datalist


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=["jsrt_scr", "msd_hippocampus", "pretrain", "folder"])
    ap.add_argument("--data", type=Path, required=True, help="labeled dataset folder (folder: any image folder)")
    ap.add_argument("--unlabeled", type=Path, nargs="*", default=[], help="extra unlabeled folders (pretrain)")
    ap.add_argument("--fraction", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num_val", type=int, default=10)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    data = a.data.resolve()
    if a.task == "folder":
        base = a.out.resolve().parent
        out = {"training": [{"image": os.path.relpath(d["image"], base)} for d in find_images(data)]}
    elif a.task == "pretrain":
        layout = "jsrt_scr" if (data / "images").is_dir() else "msd_hippocampus"
        out = pretrain_datalist(labeled_cases(layout, data)[0], a.unlabeled)
    else:
        train, test, names = labeled_cases(a.task, data)
        out = dict(fraction_datalist(train, test, a.fraction, a.seed, a.num_val), label_names=names)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))
    print(f"{a.out}: " + ", ".join(f"{k} {len(v)}" for k, v in out.items() if isinstance(v, list)))


if __name__ == "__main__":
    main()
