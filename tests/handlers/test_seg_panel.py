"""SegmentationPanel: the label maps it draws and the PNG it writes from an evaluator's decollated output."""

from __future__ import annotations

import torch
from ignite.engine import Engine

from monai_cover.handlers import SegmentationPanel
from monai_cover.visualize import label_map


def test_label_map_multiclass_onehot_and_multilabel_masks():
    onehot = torch.zeros(3, 4, 5)
    onehot[0] = 1
    onehot[0, 1, 1], onehot[2, 1, 1] = 0, 1  # class 2 at (1, 1)
    onehot[0, 2, 3], onehot[1, 2, 3] = 0, 1  # class 1 at (2, 3)
    m = label_map(onehot)
    assert m[1, 1] == 2 and m[2, 3] == 1 and m.sum() == 3
    masks = torch.zeros(2, 4, 5)  # multi-label: structure k in channel k - 1, no background channel
    masks[0, :2] = 1
    masks[1, 1:3] = 1  # overlaps structure 1 in row 1
    m = label_map(masks, multilabel=True)
    assert m[0].tolist() == [1] * 5 and m[1].tolist() == [2] * 5 and m[2].tolist() == [2] * 5 and m[3].sum() == 0
    assert torch.equal(label_map(torch.tensor([[[0.0, 2.0]]])), torch.tensor([[0.0, 2.0]]))  # a label map as is


def test_panel_shows_the_first_cases_of_each_run(tmp_path):
    def step(engine, i):
        lab = torch.zeros(2, 16, 16)
        lab[0], lab[1, 4:8, 4:8], lab[0, 4:8, 4:8] = 1, 1, 0
        image = torch.full((1, 16, 16), float(engine.state.epoch))
        return [{"image": image, "label": lab, "pred": lab.clone()} for _ in range(2)]

    panel = SegmentationPanel(tmp_path, num_classes=2, num_cases=3)
    engine = Engine(step)
    panel.attach(engine)
    engine.run(range(4), max_epochs=2)
    assert len(panel.cases) == 3  # 2 per iteration, capped
    assert all(float(image.mean()) == 2.0 for _, image, _, _ in panel.cases)  # the last run's cases only
    assert (tmp_path / "segmentation_panel.png").stat().st_size > 5000
