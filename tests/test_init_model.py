"""``--init_model``: training continues from a trained cover_seg model (head included), or stops in one line."""

from __future__ import annotations

import json

import pytest
import torch

from monai_cover.errors import BadSettingError, WeightsError
from monai_cover.networks import CoverSegNet
from monai_cover.weights import BARE_MODEL_DEFAULTS, load_init_model

CHANNELS, DECODER = [4, 8, 8, 16, 16], [16, 8, 8, 8]


def _trained(folder, labels=("a", "b")):
    torch.manual_seed(1)
    net = CoverSegNet(2, 1, len(labels) + 1, CHANNELS, DECODER)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, folder / "model.pt")
    settings = {**BARE_MODEL_DEFAULTS, "label_names": list(labels), "roi_size": [32, 32], "channels": CHANNELS,
                "decoder_channels": DECODER}
    (folder / "model.json").write_text(json.dumps({"best": 0.5, "settings": settings}))
    return net


def test_every_tensor_head_included_comes_from_the_model(tmp_path):
    source = _trained(tmp_path / "models")
    torch.manual_seed(2)
    net = CoverSegNet(2, 1, 3, CHANNELS, DECODER)
    assert not torch.equal(net.head.weight, source.head.weight)
    load_init_model(net, tmp_path / "models" / "model.pt", ["a", "b"])
    for k, v in source.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k


def test_a_model_of_other_structures_stops_in_one_line(tmp_path):
    _trained(tmp_path / "models", labels=("x", "y"))
    with pytest.raises(BadSettingError) as err:
        load_init_model(CoverSegNet(2, 1, 3, CHANNELS, DECODER), tmp_path / "models" / "model.pt", ["a", "b"])
    assert str(err.value).startswith(f"--init_model {tmp_path / 'models' / 'model.pt'}: trained for ['x', 'y']")
    assert "\n" not in str(err.value)


def test_a_model_of_other_widths_names_the_option(tmp_path):
    _trained(tmp_path / "models")
    wider = CoverSegNet(2, 1, 3, [8, 8, 16, 16, 32], DECODER)
    with pytest.raises(WeightsError, match=r"^--init_model .*model.pt: the model does not fit this run's network"):
        load_init_model(wider, tmp_path / "models" / "model.pt", ["a", "b"])


def test_initial_weights_draw_then_backbone_then_model_on_one_device_and_under_ddp(tmp_path):
    """cover_seg's start, one function for train.json, multi_gpu_train.json and label transfer (multi_gpu_train.json
    had lost the backbone seed: --backbone_seed was ignored under torchrun)."""
    from monai_cover.networks import CoverUNet
    from monai_cover.weights import initial_weights, reseed_backbone, save_backbone

    def fresh():
        torch.manual_seed(5)
        return CoverSegNet(2, 1, 3, CHANNELS, DECODER)

    drawn = initial_weights(fresh(), backbone_seed=3)
    expected = reseed_backbone(fresh().backbone, 3)
    assert all(torch.equal(a, b) for a, b in zip(drawn.backbone.state_dict().values(),
                                                 expected.state_dict().values()))
    save_backbone(tmp_path / "bb", CoverUNet(2, 1, CHANNELS, DECODER), {"spatial_dims": 2})
    pretrained = torch.load(tmp_path / "bb" / "model.pt", weights_only=True)["state_dict"]
    net = initial_weights(fresh(), backbone_seed=3, pretrained=tmp_path / "bb" / "model.pt")
    assert all(torch.equal(net.backbone.state_dict()[k], v) for k, v in pretrained.items())  # loaded after the draw
    source = _trained(tmp_path / "models")
    net = initial_weights(fresh(), 3, tmp_path / "bb" / "model.pt", init_model=tmp_path / "models" / "model.pt",
                          label_names=["a", "b"])
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), source.state_dict().values()))
    from monai.bundle import ConfigParser

    from tests.bundles.conftest import REPO

    for configs in (["train"], ["train", "multi_gpu_train"], ["train", "evaluate", "label_transfer"]):
        parser = ConfigParser()
        parser.read_config([str(REPO / "bundles" / "cover_seg" / "configs" / f"{c}.json") for c in configs])
        starts = [e for e in parser["initialize"] if "initial_weights(" in e]
        assert len(starts) == 1 and "@backbone_seed" in starts[0], configs
