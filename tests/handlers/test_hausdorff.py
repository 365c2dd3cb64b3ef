"""HD95 in millimetres from each case's affine; pixels, said once, for formats without spacing."""

from __future__ import annotations

import logging

import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor

from monai_cover.handlers import SpacedHausdorffDistance


def _case(shift: int, spacing, name: str):
    """One-hot (2, 12, 12, 12) label of a cube, the prediction shifted by ``shift`` voxels along axis 2."""
    label = torch.zeros(2, 12, 12, 12)
    label[1, 3:8, 3:8, 3:8] = 1
    pred = torch.roll(label, shift, dims=3)
    for t in (label, pred):
        t[0] = 1 - t[1]
    affine = torch.diag(torch.tensor([*spacing, 1.0]))
    meta = {"filename_or_obj": name}
    return MetaTensor(pred, affine=affine, meta=meta), MetaTensor(label, affine=affine, meta=meta)


@pytest.mark.parametrize("spacing, name, expected", [((1.0, 1.0, 8.0), "stack.nii.gz", 16.0),
                                                     ((1.0, 1.0, 8.0), "slice.png", 2.0)])
def test_hd95_in_mm_from_the_affine(spacing, name, expected, caplog):
    handler = SpacedHausdorffDistance(percentile=95, output_transform=lambda x: x)
    engine = Engine(lambda e, b: b)
    handler.attach(engine, "hd95")
    pred, label = _case(2, spacing, name)
    with caplog.at_level(logging.WARNING):
        engine.run([([pred], [label])], max_epochs=1)
    assert engine.state.metrics["hd95"] == pytest.approx(expected)  # 2 voxels of 8 mm, or 2 pixels
    assert ("HD95 is in pixels" in caplog.text) == name.endswith(".png")
