"""Datalists for the benchmark (and ``scripts/make_datalist.py``): fixed train/test splits, seeded label fractions.

Rules: model selection happens on ``num_val`` cases of the ``train`` split that never take part in training;
label fractions are seeded subsets of the remaining train cases, nested (a seed's 5% subset is inside its 10%
subset) and the same for every method (a paired comparison); ``test`` is only ever evaluated.
"""

from __future__ import annotations

import random
from pathlib import Path

from monai_cover.data.datalist import find_images
from monai_cover.errors import BadInputError
from monai_cover.utils import read_json

__all__ = ["LAYOUTS", "labeled_cases", "fraction_datalist", "pretrain_datalist", "transfer_datalist"]

LAYOUTS = ("jsrt_scr", "msd_hippocampus", "datalist")


def labeled_cases(layout: str, data: Path) -> tuple[list[dict], list[dict], list[str]]:
    """``(train, test, label_names)`` of a labeled dataset; each case is ``{"image": path, "label": path(s)}``.

    Layouts:
        ``jsrt_scr``: ``images/<case>.png``, ``masks/<structure>/<case>.png``, ``split.json`` with ``structures``
            (one binary mask per structure: a multi-label task).
        ``msd_hippocampus``: MSD style ``imagesTr/<case>.nii.gz``, ``labelsTr/<case>.nii.gz``, ``split.json`` with
            ``labels`` (``{"0": "background", "1": ...}``).
        ``datalist``: ``data`` is a JSON file ``{"train": [{"image", "label"}], "test": [...], "label_names": [...]}``
            with paths relative to the JSON's folder (your own task).
    """
    data = Path(data)
    if layout == "datalist":
        spec = read_json(data)
        missing = [k for k in ("train", "test", "label_names") if k not in spec]
        if missing:
            raise BadInputError(f"{data}: missing key(s) {', '.join(missing)} (need train, test, label_names)")

        def resolve(case: dict) -> dict:
            out = {}
            for k in ("image", "label"):
                v = case[k]
                out[k] = [str(data.parent / p) for p in v] if isinstance(v, list) else str(data.parent / v)
            return out

        return [resolve(c) for c in spec["train"]], [resolve(c) for c in spec["test"]], list(spec["label_names"])
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    split = read_json(data / "split.json")
    if layout == "jsrt_scr":
        names = list(split["structures"])

        def case(c: str) -> dict:
            return {"image": str(data / "images" / f"{c}.png"),
                    "label": [str(data / "masks" / s / f"{c}.png") for s in names]}
    else:
        names = [v for k, v in sorted(split["labels"].items(), key=lambda kv: int(kv[0])) if k != "0"]

        def case(c: str) -> dict:
            return {"image": str(data / "imagesTr" / f"{c}.nii.gz"), "label": str(data / "labelsTr" / f"{c}.nii.gz")}

    return [case(c) for c in sorted(split["train"])], [case(c) for c in sorted(split["test"])], names


def fraction_datalist(train: list[dict], test: list[dict], fraction: float, seed: int, num_val: int) -> dict:
    """MONAI datalist: ``training`` = seeded ``fraction`` of the non-validation train cases (at least 1),
    ``validation`` = the first ``num_val`` train cases of a fixed (seed 0) shuffle, ``test`` = ``test``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    if len(train) <= num_val:
        raise BadInputError(f"only {len(train)} train cases; need more than num_val={num_val}")
    fixed = train[:]
    random.Random(0).shuffle(fixed)
    val, pool = fixed[:num_val], fixed[num_val:]
    random.Random(seed).shuffle(pool)
    n = max(1, round(fraction * len(pool)))
    return {"training": pool[:n], "validation": val, "test": test}


def transfer_datalist(train: list[dict], test: list[dict], atlases: int, seed: int, num_val: int) -> dict:
    """Datalist of a label-transfer run: ``training`` = the seed's first ``atlases`` labeled cases (the cases a
    fine-tuning run of the same seed labels first, so atlases are nested in k and shared by every method),
    ``validation`` = the fixed holdout, ``test`` = holdout + test (both evaluated in one run, reported apart)."""
    dl = fraction_datalist(train, test, 1.0, seed, num_val)
    return {"training": dl["training"][:atlases], "validation": dl["validation"],
            "test": dl["validation"] + dl["test"]}


def pretrain_datalist(train: list[dict], unlabeled: list[str | Path] = ()) -> dict:
    """Unlabeled pretraining images: the ``train`` split's images (never ``test``) plus every image found in
    the ``unlabeled`` folders."""
    items = [{"image": c["image"]} for c in train]
    for d in unlabeled:
        items += find_images(d)
    return {"training": items}
