"""Cross-modal COVER on real co-registered contrasts: does the field survive a change of contrast between the views?

Data: the MNI152 2009a template that ``nilearn`` ships (``pip install nilearn``; only its files are read, so
``--no-deps`` is enough): a T1 image and its grey- and white-matter probability maps on one 1 mm grid, three
"modalities" of one anatomy. Every ``--step``-th axial slice between 25% and 75% of the height becomes a 2D case of
three co-registered PNG files (``"image": [t1, gm, wm]``); the last ``--num_val`` cases are the fixed validation
batch. Runs (``cover_pretrain`` with ``--modalities 3``, each in its own folder, side by side):

* ``same only``: ``--cross_modal 0`` (both views from one modality);
* ``cross 0.5``: ``--cross_modal 0.5`` (half of the pairs across modalities, the bundle's default);
* ``synthetic 0.5``: same-modality pairs with ``--synthetic_contrast 0.5`` (what a single-modality archive can do).

Each validation reports the endpoint error of the same draw as same-modality, cross-modal and synthetic-contrast
pairs; the table gives them at the end. Run from the repository root::

    PYTHONPATH=. python benchmarks/cross_modal.py --out results/cross_modal --epochs 50
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RUNS = {
    "same only": ["--cross_modal", "0"],
    "cross 0.5": ["--cross_modal", "0.5"],
    "synthetic 0.5": ["--cross_modal", "0", "--synthetic_contrast", "0.5"],
}
TEMPLATE = {m: f"mni_icbm152_{m}_tal_nlin_sym_09a_converted.nii.gz" for m in ("t1", "gm", "wm")}


def template_files() -> dict[str, Path]:
    """The template's three files inside the installed ``nilearn`` (not imported: its data files are enough)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("cross_modal.py: needs nilearn's template files: pip install --no-deps nilearn")
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    files = {m: data / f for m, f in TEMPLATE.items()}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        sys.exit(f"cross_modal.py: {missing[0]}: not in this nilearn release")
    return files


def make_cases(out: Path, step: int) -> Path:
    """Axial slices of the three modalities as PNG triples; returns the datalist."""
    import nibabel as nib
    from PIL import Image

    vols = {m: np.asarray(nib.load(f).dataobj, dtype=np.float32) for m, f in template_files().items()}
    depth = vols["t1"].shape[2]
    items = []
    (out / "data").mkdir(parents=True, exist_ok=True)
    for z in range(int(0.25 * depth), int(0.75 * depth), step):
        files = []
        for m, v in vols.items():
            sl = v[:, :, z]
            name = f"z{z:03d}_{m}.png"
            Image.fromarray((255 * sl / max(float(v.max()), 1e-6)).clip(0, 255).astype(np.uint8).T).save(
                out / "data" / name)
            files.append(name)
        items.append({"image": files})
    datalist = out / "data" / "datalist.json"
    datalist.write_text(json.dumps({"training": items}, indent=1))
    return datalist


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results/cross_modal"))
    ap.add_argument("--epochs", type=int, default=50, help="bundle epochs per run")
    ap.add_argument("--step", type=int, default=3, help="every step-th axial slice is a case")
    ap.add_argument("--num_val", type=int, default=4, help="validation cases (the last slices)")
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    a = ap.parse_args()
    datalist = make_cases(a.out, a.step)
    cases = len(json.loads(datalist.read_text())["training"])
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    procs = {}
    for name in a.runs:
        root = a.out / name.replace(" ", "_")
        cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file",
               str(REPO / "bundles/cover_pretrain/configs/train.json"), "--bundle_root", str(root), "--dataset_dir",
               str(datalist), "--modalities", "3", "--num_val", str(a.num_val), "--epochs", str(a.epochs),
               "--val_pair_kinds", "['same','cross','synthetic']", *RUNS[name]]
        root.mkdir(parents=True, exist_ok=True)
        print(f"{name}: {' '.join(cmd[1:])}", flush=True)
        procs[name] = (subprocess.Popen(cmd, stdout=open(root / "run.log", "w"), stderr=subprocess.STDOUT, env=env),
                       root)
    print(f"{cases} cases ({cases - a.num_val} train, {a.num_val} validation); {len(procs)} runs side by side ...",
          flush=True)
    rows = []
    for name, (proc, root) in procs.items():
        if proc.wait() != 0:
            sys.exit(f"{name}: failed, see {root / 'run.log'}")
        hist = json.loads((root / "outputs" / "2d" / "val_history.json").read_text())
        rows.append((name, hist[0], hist[-1]))
    print("\n| pretraining | iteration | EPE same-modality | EPE cross-modal | EPE synthetic contrast | cross / same | "
          "zero motion |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, first, last in rows:
        for h in (first, last):
            print(f"| {name} | {h['iteration']} | {h['val_epe_same']:.2f} | {h['val_epe_cross']:.2f} | "
                  f"{h['val_epe_synthetic']:.2f} | {h['val_epe_cross'] / h['val_epe_same']:.2f} | "
                  f"{h['val_epe_zero']:.2f} |")


if __name__ == "__main__":
    main()
