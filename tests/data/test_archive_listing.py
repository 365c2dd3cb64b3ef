"""Listing large archives: a long folder scan reports progress and its total; ``make_datalist.py folder`` writes a
datalist with paths relative to the JSON that lists the same images and still works after both are moved."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

import monai_cover.data.datalist as datalist
from monai_cover.data import find_images
from tests.bundles.conftest import REPO
from tests.data.test_dicom_series import write_radiograph


def _archive(root):
    for i in range(3):
        write_radiograph(root / "dx" / f"{i}.dcm", value=10 * i)
    for i in range(2):
        (root / "png" / f"sub{i}").mkdir(parents=True)
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / "png" / f"sub{i}" / "a.png")
    return root


def test_long_scan_logs_progress_and_total(tmp_path, monkeypatch, caplog):
    root = _archive(tmp_path / "archive")
    monkeypatch.setattr(datalist, "_ScanProgress", functools.partial(datalist._ScanProgress, every=0.0))
    with caplog.at_level("INFO", logger="monai_cover.data"):
        items = find_images(root)
    assert len(items) == 5
    assert f"scanning {root}: " in caplog.text and " images so far (" in caplog.text
    assert f"scanned {root}: 5 images in " in caplog.text


def test_folder_datalist_holds_relative_paths_and_moves_with_the_archive(tmp_path):
    root = _archive(tmp_path / "archive")
    out = tmp_path / "archive_list.json"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_datalist.py"), "folder", "--data", str(root),
                    "--out", str(out)], check=True, capture_output=True, cwd=REPO, env={"PYTHONPATH": str(REPO)})
    listed = json.loads(out.read_text())["training"]
    assert all(not d["image"].startswith("/") for d in listed) and listed[0]["image"].startswith("archive/")
    assert [d["image"] for d in find_images(out)] == [d["image"] for d in find_images(root)]
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(str(root), moved / "archive")
    shutil.move(str(out), moved / "archive_list.json")
    assert [d["image"] for d in find_images(moved / "archive_list.json")] == [
        d["image"] for d in find_images(moved / "archive")]
