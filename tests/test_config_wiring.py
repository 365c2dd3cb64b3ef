"""The rules the bundle configs used to spell as expressions, now named functions: each decides the same values."""

from __future__ import annotations

import json

import pytest
import torch

from monai_cover.config import (
    network_dims,
    seg_image_size,
    seg_max_epochs,
    seg_output_channels,
    seg_patch_size,
    temporal_pairs,
)
from monai_cover.data import (
    feature_image_size,
    feature_postprocessing,
    feature_preprocessing,
    model_postprocessing,
    model_preprocessing,
    prediction_savers,
    pretrain_loader,
    seg_rotate_range,
)
from monai_cover.data.auto_size import auto_roi_size, auto_view_sizes
from monai_cover.engines import pretrain_lr_schedule, seg_lr_schedule
from monai_cover.errors import BadSettingError
from monai_cover.inferers import model_inferer
from monai_cover.losses import seg_loss
from monai_cover.transforms import view_appearance, view_geometry, view_pairs
from monai_cover.weights import backbone_default, backbone_inputs, model_settings, trained_network

SETTINGS = {"spatial_dims": 2, "slicewise": False, "label_names": ["a", "b"], "multilabel": False,
            "image_size": [48, 40], "pixdim": None, "roi_size": [48, 40], "channels": [4, 8, 8, 16, 16],
            "decoder_channels": [16, 8, 8, 8], "head_levels": None, "color": "gray", "modalities": 1,
            "intensity": "percentile"}


def test_dimension_channel_and_size_rules():
    assert network_dims(3, True) == 2 and network_dims(3) == 3 and network_dims(2) == 2
    with pytest.raises(BadSettingError, match="--slicewise True"):
        network_dims(2, True)
    assert seg_output_channels(["a", "b"]) == 3 and seg_output_channels(["a", "b"], multilabel=True) == 2
    assert seg_image_size(2) == [256, 256] and seg_image_size(3) is None
    assert seg_patch_size([64, 64], slicewise=True) == [64, 64, 1] and seg_patch_size([8, 8, 8]) == [8, 8, 8]
    assert seg_max_epochs(100, None, 7) == 100 and seg_max_epochs(100, 15, 7) == 3
    assert temporal_pairs(3, 0.5) and not temporal_pairs(0, 0.5) and not temporal_pairs(3, 0.0)
    assert seg_rotate_range(2) == [0.17] and seg_rotate_range(3) == [0.17] * 3


def test_null_sizes_are_the_per_dimension_defaults():
    assert auto_view_sizes(None, None, [], 2, 5) == (128, 192)
    assert auto_view_sizes(None, None, [], 3, 5) == (48, 72)
    assert auto_view_sizes(None, None, [], 3, 5, slicewise=True) == (128, 192)
    assert auto_roi_size(None, [], 2, 5) == [256, 256] and auto_roi_size(None, [], 3, 5) == [64, 64, 64]


def test_backbone_defaults_and_the_inputs_record():
    backbone = {"spatial_dims": 2, "in_channels": 3, "channels": [1], "decoder_channels": [], "intensity": "ct",
                "pixdim": [1.0, 1.0, 2.0], "image_size": None}
    default = backbone_default
    assert default("spatial_dims", backbone) == 2 and default("spatial_dims", backbone, slicewise=True) == 3
    assert default("pixdim", backbone, 3) == [1.0, 1.0, 2.0] and default("pixdim", backbone, 2) is None
    assert default("color", backbone) == "rgb" and default("channels", backbone) == [1]
    assert default("intensity", backbone) == "ct" and default("intensity", backbone, modalities=2) == "percentile"
    assert backbone_inputs(2, (128, 192), "ct", None) == {"intensity": "ct", "pixdim": None, "image_size": [192, 192]}
    assert backbone_inputs(3, (48, 72), "ct", [1, 1, 1], frames=0)["image_size"] is None
    assert backbone_inputs(2, (128, [192, 160]), "ct", None, frames=3)["intensity"] == "percentile"


def test_view_parts_take_their_rules_and_what_is_given():
    cube = view_geometry((48, 72), 3, [32, 64, 128, 256, 512])
    assert cube.config["rotate_deg"] is None and cube.config["crop_size"] == 48
    slab = view_geometry(([80, 80, 16], [96, 96, 16]), 3, [32, 64, 128, 256, 512], shear_deg=3.0)
    assert slab.config["rotate_deg"] == [15.0, 0.0, 0.0] and slab.config["translate_frac"] == [0.1, 0.1, 0.0]
    assert slab.config["shear_deg"] == 3.0
    assert view_appearance("rgb").config["color_jitter"] == 0.1
    assert view_appearance("gray").config["color_jitter"] == 0.0
    assert view_appearance("rgb", color_jitter=0.0).config["color_jitter"] == 0.0
    assert view_pairs(1).config["cross_modal"] is None and view_pairs(2).config["cross_modal"] == 0.5
    assert view_pairs(2, cross_modal=0.2, synthetic_contrast=0.3).config["synthetic_contrast"] == 0.3


def test_loader_and_schedules():
    data = list(range(10))
    loader = pretrain_loader(data, batch_size=4, crops_per_image=2, shuffle=False)
    assert loader.batch_size == 2 and loader.drop_last and len(loader) == 5
    assert not pretrain_loader(data[:2], batch_size=4).drop_last and pretrain_loader(data, 1, 2).batch_size == 1
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = pretrain_lr_schedule(opt, loader, epochs=3, warmup_iterations=50)
    assert (sched.warmup_steps, sched.t_total) == (1, 15)
    sched = seg_lr_schedule(opt, loader, epochs=3, warmup_iterations=4)
    assert (sched.warmup_steps, sched.t_total) == (4, 15)
    dice = seg_loss(multilabel=True, lambda_ce=0.5)
    assert dice.dice.sigmoid and not dice.dice.softmax and dice.lambda_ce == 0.5
    assert seg_loss().dice.to_onehot_y and seg_loss().dice.softmax
    # a value the rule sets, given by path (e.g. --train#dataloader#drop_last), wins as it did in the JSON form
    assert not pretrain_loader(data, 4, 2, drop_last=False).drop_last
    assert pretrain_lr_schedule(opt, loader, 3, 50, warmup_steps=7).warmup_steps == 7
    assert seg_loss(sigmoid=True, softmax=False).dice.sigmoid


def test_a_model_is_built_fed_and_read_from_its_settings(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"settings": SETTINGS}))
    settings = model_settings(tmp_path, {**{k: "auto" for k in SETTINGS}, "image_size": [48, 40]})
    assert settings == SETTINGS
    with pytest.raises(BadSettingError, match="--label_names"):
        model_settings(tmp_path, {"label_names": ["x"]})
    net = trained_network(settings)
    assert net(torch.rand(1, 1, 48, 40)).shape == (1, 3, 48, 40)
    names = [type(t).__name__ for t in model_preprocessing(settings, ["image", "label"], pad=True).transforms]
    assert names[-2:] == ["SpatialPadd", "EnsureTyped"] and "Resized" in names
    assert len(model_postprocessing(settings, label_key=None, one_hot=False).transforms) == 2
    assert not any(p.requires_grad for p in trained_network(settings, freeze_backbone=True).backbone.parameters())
    assert "Resized" not in [type(t).__name__ for t in model_preprocessing(settings, image_size=None).transforms]
    inferer = model_inferer(settings)
    assert list(inferer.roi_size) == [48, 40] and not inferer.progress
    assert prediction_savers(settings, "nii", "png", "dcm", False) == ["nii", "png"]
    assert prediction_savers({**settings, "multilabel": True}, "nii", "png", "dcm", False) == ["nii"]


def test_feature_extraction_follows_the_backbone_record():
    flat = {"spatial_dims": 2, "in_channels": 1, "intensity": "percentile", "pixdim": None, "image_size": [64, 64]}
    assert feature_image_size(flat) == [64, 64] and feature_image_size(flat, None) is None
    assert feature_image_size({**flat, "spatial_dims": 3}) is None
    assert "Resized" in [type(t).__name__ for t in feature_preprocessing(flat).transforms]
    assert feature_postprocessing(flat, "inv", "save").transforms == ("inv", "save")
    assert feature_postprocessing(flat, "inv", "save", image_size=None).transforms == ("save",)
