"""Listing an archive: time to turn a folder of N files into the datalist a bundle trains on, by scanning the
folder (what ``--dataset_dir <folder>`` does on every start) and by reading a datalist JSON written once with
``scripts/make_datalist.py folder`` (``--dataset_dir <json>``).

Archives (generated once under ``--out``): ``png``: N empty ``.png`` names in folders of 1,000 (a scan only looks
at names); ``dicom``: N single-file DICOM radiographs with minimal headers (each file's header is read to tell a
series folder from a folder of single-image series). Run from the repository root::

    PYTHONPATH=. python benchmarks/scan.py --png 100000 --dicom 10000 --out results/scan
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monai_cover.data import find_images  # noqa: E402


def png_archive(root: Path, n: int) -> Path:
    if not (root / ".done").is_file():
        for i in range(n):
            folder = root / f"{i // 1000:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i:06d}.png").touch()
        (root / ".done").touch()
    return root


def dicom_archive(root: Path, n: int) -> Path:
    if not (root / ".done").is_file():
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian, generate_uid

        for i in range(n):
            folder = root / f"{i // 1000:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
            ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.Modality = generate_uid(), generate_uid(), "DX"
            ds.save_as(folder / f"{i:06d}.dcm", enforce_file_format=True)
        (root / ".done").touch()
    return root


def measure(root: Path) -> dict:
    t0 = time.perf_counter()
    items = find_images(root)
    scan = time.perf_counter() - t0
    datalist = root.parent / f"{root.name}.json"
    datalist.write_text(json.dumps({"training": [{"image": os.path.relpath(d["image"], root.parent)} for d in items]}))
    t0 = time.perf_counter()
    again = find_images(datalist)
    read = time.perf_counter() - t0
    assert [d["image"] for d in again] == [d["image"] for d in items]
    return {"archive": root.name, "images": len(items), "scan s": scan, "datalist s": read}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--png", type=int, default=100000, help="N for the PNG-name archive (0 skips it)")
    ap.add_argument("--dicom", type=int, default=10000, help="N for the single-file DICOM archive (0 skips it)")
    ap.add_argument("--out", type=Path, default=Path("results/scan"))
    a = ap.parse_args()
    rows = []
    if a.png:
        rows.append(measure(png_archive(a.out / f"png_{a.png}", a.png)))
    if a.dicom:
        rows.append(measure(dicom_archive(a.out / f"dicom_{a.dicom}", a.dicom)))
    print("| archive | images | folder scan s | datalist JSON s | scan / datalist |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['archive']} | {r['images']} | {r['scan s']:.2f} | {r['datalist s']:.2f} | "
              f"{r['scan s'] / max(r['datalist s'], 1e-9):.1f}x |")


if __name__ == "__main__":
    main()
