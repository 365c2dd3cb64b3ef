"""Write MONAI datalist JSONs for the real datasets laid out as in ../shared/data (never copies the data).

    python scripts/make_datalist.py jsrt_scr --data ../shared/data/jsrt_scr --fraction 0.1 --seed 0 --out jsrt.json
    python scripts/make_datalist.py msd_hippocampus --data ../shared/data/msd_hippocampus --fraction 0.1 --out hip.json
    python scripts/make_datalist.py pretrain --data ../shared/data/jsrt_scr ../shared/data/nih_cxr14_samples \
        --out p.json

Labeled tasks: ``training`` = a seeded ``fraction`` of the ``train`` split, ``validation`` = other ``train`` cases
(model selection stays inside ``train``), ``test`` = the ``test`` split (reporting only). JSRT/SCR labels are five
binary masks per case (a multi-label task: lungs and clavicles overlap), listed in ``split.json``'s order.
``pretrain`` lists unlabeled images: the ``train`` split of a labeled folder (never ``test``) or every image of
an unlabeled folder.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def _split(data: Path) -> dict:
    f = data / "split.json"
    if not f.is_file():
        raise SystemExit(f"{f}: split.json not found (is --data a jsrt_scr / msd_hippocampus folder?)")
    return json.loads(f.read_text())


def _case(data: Path, task: str, name: str, structures: list[str]) -> dict:
    if task == "jsrt_scr":
        return {"image": str(data / "images" / f"{name}.png"),
                "label": [str(data / "masks" / s / f"{name}.png") for s in structures]}
    return {"image": str(data / "imagesTr" / f"{name}.nii.gz"), "label": str(data / "labelsTr" / f"{name}.nii.gz")}


def labeled(task: str, data: Path, fraction: float, seed: int, num_val: int) -> dict:
    split = _split(data)
    structures = split.get("structures", [])
    train = sorted(split["train"])
    rng = random.Random(seed)
    order = train[:]
    rng.shuffle(order)
    n = max(1, round(fraction * len(train)))
    return {
        "training": [_case(data, task, c, structures) for c in order[:n]],
        "validation": [_case(data, task, c, structures) for c in order[n : n + num_val]],
        "test": [_case(data, task, c, structures) for c in sorted(split["test"])],
        "label_names": structures or [v for k, v in sorted(split["labels"].items()) if k != "0"],
    }


def pretrain(folders: list[Path]) -> dict:
    items = []
    for d in folders:
        if (d / "split.json").is_file():
            split = _split(d)
            task = "jsrt_scr" if (d / "images").is_dir() else "msd_hippocampus"
            items += [{"image": _case(d, task, c, [])["image"]} for c in sorted(split["train"])]
        else:
            items += [{"image": str(p)} for p in sorted(d.iterdir()) if p.suffix.lower() in (".png", ".jpg", ".gz")]
    return {"training": items}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=["jsrt_scr", "msd_hippocampus", "pretrain"])
    ap.add_argument("--data", type=Path, nargs="+", required=True)
    ap.add_argument("--fraction", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num_val", type=int, default=10)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    data = [d.resolve() for d in a.data]
    out = pretrain(data) if a.task == "pretrain" else labeled(a.task, data[0], a.fraction, a.seed, a.num_val)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))
    print(f"{a.out}: " + ", ".join(f"{k} {len(v)}" for k, v in out.items() if isinstance(v, list)))


if __name__ == "__main__":
    main()
