"""Make a MONAI Label app folder for cover_seg: a copy of ``apps/cover_label`` with a copy of ``bundles/cover_seg``
as its model, labeling the structures you name.

    python scripts/make_label_app.py my_app --label_names anterior posterior --spatial_dims 3

The bundle copy (``my_app/model/cover_seg``) gets your structure names in ``configs/metadata.json`` (``channel_def``,
which MONAI Label shows and training learns) and the model's dimension (``spatial_shape`` with 2 or 3 entries: MONAI
Label clients decide from it between sending slices and volumes); ``--roi_size`` sets its training patch default in
``configs/train.json``. Run from the repository root. Nothing existing is replaced.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("app", type=Path, help="the app folder to create")
    ap.add_argument("--label_names", nargs="+", required=True, help="structure names, label values 1, 2, ...")
    ap.add_argument("--spatial_dims", type=int, choices=(2, 3), required=True, help="2 (images) or 3 (volumes)")
    ap.add_argument("--name", default="cover_seg", help="the model's name in MONAI Label (default cover_seg)")
    ap.add_argument("--roi_size", default=None,
                    help='training patch default, JSON or "auto" (default: the bundle\'s, [64,64,64] / [256,256])')
    a = ap.parse_args()
    if a.app.exists():
        sys.exit(f"{a.app}: exists already; nothing was changed (give a new folder)")
    shutil.copytree(REPO / "apps" / "cover_label", a.app,
                    ignore=shutil.ignore_patterns("model", "cache", "__pycache__"))
    bundle = a.app / "model" / a.name
    shutil.copytree(REPO / "bundles" / "cover_seg", bundle,
                    ignore=shutil.ignore_patterns("models", "outputs", "runs", "eval", "predictions", "features"))

    meta_file = bundle / "configs" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    shape = [64] * 3 if a.spatial_dims == 3 else [256, 256]
    fmt = meta["network_data_format"]
    fmt["inputs"]["image"]["spatial_shape"] = shape
    fmt["outputs"]["pred"].update(spatial_shape=shape, num_channels=len(a.label_names) + 1,
                                  channel_def={str(k): n for k, n in enumerate(["background", *a.label_names])})
    meta_file.write_text(json.dumps(meta, indent=4) + "\n")
    if a.roi_size is not None:
        # the one line, so the copy keeps the layout of the bundle's config
        train_file = bundle / "configs" / "train.json"
        value = json.dumps(a.roi_size if a.roi_size == "auto" else json.loads(a.roi_size))
        text = re.sub(r'^(    "roi_size": ).*,$', lambda m: f"{m.group(1)}{value},", train_file.read_text(), count=1,
                      flags=re.M)
        train_file.write_text(text)
    print(f"{a.app}: MONAI Label app with model {a.name} ({', '.join(a.label_names)}, {a.spatial_dims}D) in {bundle}")


if __name__ == "__main__":
    main()
