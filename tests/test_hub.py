"""Hub folders: export with a model card, load back, and ``--pretrained`` as a folder or a (cached, offline) Hub id."""

from __future__ import annotations

import json

import pytest
import torch

from monai_cover.errors import MissingFileError, RunMismatchError
from monai_cover.hub import HUB_FILES, export_hub_folder, from_pretrained, model_card, resolve_pretrained
from monai_cover.networks import CoverUNet
from monai_cover.weights import save_backbone

TINY = {"spatial_dims": 2, "in_channels": 1, "channels": [4, 8, 8, 16, 16], "decoder_channels": [16, 8, 8, 8]}


@pytest.fixture()
def hub_folder(tmp_path):
    torch.manual_seed(0)
    net = CoverUNet(**TINY)
    save_backbone(tmp_path / "models", net, {**TINY, "init": "kaiming", "pretrain_iterations": 300})
    run = tmp_path / "outputs"
    run.mkdir()
    (run / "val_history.json").write_text(json.dumps([{"iteration": 300, "val_epe": 3.25, "val_epe_zero": 9.5}]))
    folder = export_hub_folder(tmp_path / "models", tmp_path / "hub", run, data="20 NIH chest radiographs",
                               license="apache-2.0")
    return folder, net


def test_export_writes_the_weights_configs_and_a_card_from_the_run(hub_folder):
    folder, net = hub_folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(HUB_FILES) - {"model.pt", "cover_net.pt"})
    assert json.loads((folder / "config.json").read_text())["channels"] == TINY["channels"]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\nlibrary_name: monai-cover")
    assert "| encoder widths | [4, 8, 8, 16, 16] |" in card and "| pretraining iterations | 300 |" in card
    assert "| input | 0.5-99.5 percentiles -> [0, 1], spacing native |" in card  # how to feed it
    for inputs, row in (({"spatial_dims": 3, "intensity": "ct", "pixdim": [1.5, 1.5, 2.0]},
                         "HU window -1000..1000 -> [0, 1], spacing [1.5, 1.5, 2.0]"),
                        ({"spatial_dims": 3, "intensity": [-160, 240]},
                         "HU window -160..240 -> [0, 1], spacing native"),
                        ({"spatial_dims": 2, "image_size": [192, 160]}, "0.5-99.5 percentiles -> [0, 1], resized to "
                                                                          "192x160")):
        assert f"| input | {row} |" in model_card({**TINY, **inputs})
    assert "3.25 voxels at iteration 300 (predicting no motion: 9.50)" in card and "20 NIH chest radiographs" in card
    loaded = from_pretrained(folder)
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_hub_id_is_read_from_the_cache_offline_and_a_missing_one_is_one_line(hub_folder, tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    folder, _ = hub_folder
    # the Hub cache layout: refs/main names the snapshot that holds the files
    repo = tmp_path / "hf" / "models--acme--cover-tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for name in HUB_FILES:
        if (folder / name).is_file():  # a backbone folder has no model.pt
            (snap / name).write_bytes((folder / name).read_bytes())
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # no network, the cache only
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    assert resolve_pretrained("acme/cover-tiny") == str(snap / "model.safetensors")
    with pytest.raises(MissingFileError, match="acme/nothing: not a file or folder here, and not found on the Hugging "
                                               "Face Hub or in its local cache"):
        resolve_pretrained("acme/nothing")
    # a mistyped local folder (its parent exists here) is said to be one, not looked up on the Hub
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingFileError, match=r"^runs/modles: no such file or folder \(the folder runs exists "
                                               r"here, so this is read as a local path, not a Hugging Face Hub id"):
        resolve_pretrained("runs/modles")


def test_resolve_keeps_files_and_names_folders_without_weights(tmp_path, hub_folder):
    folder, _ = hub_folder
    assert resolve_pretrained(folder) == str(folder / "model.safetensors")
    assert resolve_pretrained(folder / "model.safetensors") == str(folder / "model.safetensors")
    assert resolve_pretrained("models/missing.safetensors") == "models/missing.safetensors"  # the loader reports it
    assert resolve_pretrained(None) is None
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match="no model.safetensors or model.pt in this folder"):
        resolve_pretrained(tmp_path / "empty")


def test_export_command(tmp_path, hub_folder, capsys):
    from monai_cover.hub import main

    main(["export", "--model_dir", str(tmp_path / "models"), "--out", str(tmp_path / "cli"), "--data", "demo"])
    assert "wrote" in capsys.readouterr().out and (tmp_path / "cli" / "README.md").is_file()
    with pytest.raises(MissingFileError, match="no exported backbone here"):
        main(["export", "--model_dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "cli2")])
    # the same model again is fine; another model into that folder is refused, unless --overwrite
    main(["export", "--model_dir", str(tmp_path / "models"), "--out", str(tmp_path / "cli"), "--data", "demo"])
    torch.manual_seed(1)
    save_backbone(tmp_path / "other", CoverUNet(**TINY), TINY)
    before = (tmp_path / "cli" / "model.safetensors").read_bytes()
    with pytest.raises(RunMismatchError, match=r"cli: holds the hub folder of another model \(its model.safetensors "
                                               r"differs from .*other/model.safetensors\); nothing was written"):
        main(["export", "--model_dir", str(tmp_path / "other"), "--out", str(tmp_path / "cli")])
    assert (tmp_path / "cli" / "model.safetensors").read_bytes() == before
    main(["export", "--model_dir", str(tmp_path / "other"), "--out", str(tmp_path / "cli"), "--overwrite"])
    assert (tmp_path / "cli" / "model.safetensors").read_bytes() != before


def test_large_files_yml_lets_monai_download_the_weights_from_a_server(tmp_path, hub_folder):
    """``large_files.yml`` written for a bundle whose models/ are served over HTTP (127.0.0.1 here):
    ``python -m monai.bundle download_large_files`` fetches them into a copy without weights, hash-checked; a file
    changed on the server is refused."""
    import functools
    import http.server
    import shutil
    import subprocess
    import sys
    import threading

    pytest.importorskip("yaml", reason="PyYAML (with huggingface_hub) reads large_files.yml")
    from monai_cover.hub import large_files

    bundle = tmp_path / "bundle"
    shutil.copytree(tmp_path / "models", bundle / "models")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(bundle / "models"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        listing = large_files(bundle, f"http://127.0.0.1:{server.server_port}/")
        copy = tmp_path / "configs_only"
        copy.mkdir()
        shutil.copy(listing, copy / "large_files.yml")

        def download():
            return subprocess.run([sys.executable, "-m", "monai.bundle", "download_large_files", "--bundle_path",
                                   str(copy)], capture_output=True, text=True, timeout=300)

        proc = download()
        assert proc.returncode == 0, proc.stderr[-2000:]
        for name in ("model.safetensors", "model.json"):
            assert (copy / "models" / name).read_bytes() == (bundle / "models" / name).read_bytes()
        shutil.rmtree(copy / "models")
        (bundle / "models" / "model.safetensors").write_bytes(b"not the weights that were listed")
        proc = download()
        assert proc.returncode != 0 and "hash check" in proc.stderr + proc.stdout
    finally:
        server.shutdown()


def test_large_files_without_weights_is_one_line(tmp_path):
    from monai_cover.hub import large_files

    with pytest.raises(MissingFileError, match=r"models: no model.safetensors or model.pt to list"):
        large_files(tmp_path, "http://127.0.0.1:1/")


def test_segmentation_model_export_loads_back_and_serves_inference_from_a_hub_id(tmp_path, monkeypatch):
    """A cover_seg models/ folder exported as a hub folder: from_pretrained gives the same CoverSegNet, the card
    reports the labels and best Dice, and inference takes the folder's Hub id as --model_dir (offline cache)."""
    import numpy as np

    from monai_cover.hub import main
    from monai_cover.networks import CoverSegNet
    from tests.bundles.conftest import REPO, run_bundle

    settings = {"spatial_dims": 2, "label_names": ["lung", "heart"], "multilabel": False, "image_size": [32, 32],
                "roi_size": [32, 32], "channels": [4, 8, 8, 16, 16], "decoder_channels": [16, 8, 8, 8],
                "intensity": "ct", "pixdim": None, "head_levels": None, "slicewise": False, "color": "gray",
                "modalities": 1}
    torch.manual_seed(1)
    net = CoverSegNet(2, 1, 3, settings["channels"], settings["decoder_channels"])
    (tmp_path / "models").mkdir()
    torch.save(net.state_dict(), tmp_path / "models" / "model.pt")
    record = {"best": 0.8123, "metric": "val_mean_dice", "epoch": 7, "settings": settings}
    (tmp_path / "models" / "model.json").write_text(json.dumps(record))
    main(["export", "--model_dir", str(tmp_path / "models"), "--out", str(tmp_path / "hub"), "--data", "JSRT 10%"])
    folder = tmp_path / "hub"
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(HUB_FILES) - {"cover_net.pt"})
    card = (folder / "README.md").read_text()
    assert "lung, heart" in card and "best validation val_mean_dice | 0.8123 (epoch 7)" in card and "JSRT 10%" in card
    assert "| input | HU window -1000..1000 -> [0, 1], resized to 32x32 |" in card  # a 2D model's input grid
    loaded = from_pretrained(folder)
    assert isinstance(loaded, CoverSegNet)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values()))

    pytest.importorskip("huggingface_hub")
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = tmp_path / "hf" / "models--acme--cover-seg"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots").mkdir()
    import shutil

    shutil.copytree(folder, repo / "snapshots" / commit)
    images = tmp_path / "images"
    images.mkdir()
    import nibabel as nib  # a CT model's input in HU (an 8-bit PNG would be refused with a HU window)

    hu = np.linspace(-1000, 1000, 48 * 40, dtype=np.float32).reshape(48, 40)
    nib.save(nib.Nifti1Image(hu, np.eye(4)), images / "x.nii.gz")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    # a process: huggingface_hub reads its cache and offline settings from the environment once, on import
    run_bundle("run", "--config_file", str(REPO / "bundles" / "cover_seg" / "configs" / "inference.json"),
               "--bundle_root", str(tmp_path / "b"), "--model_dir", "acme/cover-seg", "--dataset_dir", str(images),
               process=True)
    assert (tmp_path / "b" / "predictions" / "x_seg.png").is_file()


def test_colour_segmentation_model_loads_back_with_three_input_channels(tmp_path):
    from monai_cover.networks import CoverSegNet

    settings = {"spatial_dims": 2, "label_names": ["lesion"], "multilabel": True, "color": "rgb",
                "channels": [4, 8, 8, 16, 16], "decoder_channels": [16, 8, 8, 8]}
    net = CoverSegNet(2, 3, 1, settings["channels"], settings["decoder_channels"])
    (tmp_path / "models").mkdir()
    torch.save(net.state_dict(), tmp_path / "models" / "model.pt")
    (tmp_path / "models" / "model.json").write_text(json.dumps({"settings": settings}))
    export_hub_folder(tmp_path / "models", tmp_path / "hub")
    loaded = from_pretrained(tmp_path / "hub")
    assert loaded.backbone.config["in_channels"] == 3
    assert torch.equal(loaded.state_dict()["backbone.encoders.0.0.conv.weight"],
                       net.state_dict()["backbone.encoders.0.0.conv.weight"])


def test_field_model_travels_with_the_hub_folder_and_propagation_finds_it(tmp_path, monkeypatch):
    """A pretraining run's cover_net.pt is exported with the backbone, and propagation's ``--model_path`` takes the
    models/ folder, the hub folder or the (cached) Hub id; a folder without it is one line."""
    from monai_cover.hub import resolve_field_model
    from monai_cover.networks import CoverNet
    from monai_cover.weights import load_field_model, save_field_model

    torch.manual_seed(0)
    args = {k: TINY[k] for k in ("spatial_dims", "in_channels", "channels", "decoder_channels")}
    net = CoverNet(**args)
    save_backbone(tmp_path / "models", net.backbone, {**TINY, "pretrain_iterations": 300})
    save_field_model(tmp_path / "models", net, args)
    folder = export_hub_folder(tmp_path / "models", tmp_path / "hub", data="demo")
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(HUB_FILES) - {"model.pt"})
    assert "`cover_net.pt` is the whole pretrained network" in (folder / "README.md").read_text()
    for source in (tmp_path / "models", folder, folder / "cover_net.pt"):
        loaded = load_field_model(resolve_field_model(source))
        assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values()))
    (tmp_path / "backbone_only").mkdir()
    with pytest.raises(MissingFileError, match=r"backbone_only: no cover_net.pt in this folder \(propagation needs"):
        resolve_field_model(tmp_path / "backbone_only")

    pytest.importorskip("huggingface_hub")
    snap = tmp_path / "hf" / "models--acme--cover-fields" / "snapshots" / ("ab" * 20)
    snap.mkdir(parents=True)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("ab" * 20)
    for p in folder.iterdir():
        (snap / p.name).write_bytes(p.read_bytes())
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    assert resolve_field_model("acme/cover-fields") == str(snap / "cover_net.pt")


def test_a_released_name_resolves_to_its_folder_and_an_unknown_name_lists_them(tmp_path, hub_folder, monkeypatch):
    import shutil

    import monai_cover.hub as hub

    folder, net = hub_folder
    monkeypatch.setattr(hub, "RELEASED_DIR", tmp_path / "released")
    shutil.copytree(folder, tmp_path / "released" / "cover-toy-2d")
    assert hub.released_names() == ["cover-toy-2d"]
    assert resolve_pretrained("cover-toy-2d") == str(tmp_path / "released" / "cover-toy-2d" / "model.safetensors")
    loaded = from_pretrained("cover-toy-2d")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in net.state_dict().items())
    with pytest.raises(MissingFileError, match=r"^cover-tyo-2d: no such file or folder here, and no released "
                                               r"backbone of that name \(released: cover-toy-2d\)$"):
        resolve_pretrained("cover-tyo-2d")
    # a file or folder of that name here comes first
    monkeypatch.chdir(tmp_path)
    shutil.copytree(folder, tmp_path / "cover-toy-2d")
    assert resolve_pretrained("cover-toy-2d") == str(__import__("pathlib").Path("cover-toy-2d") / "model.safetensors")


def test_the_card_quotes_the_measured_effect_of_these_weights_only(tmp_path, hub_folder):
    from monai_cover.label_efficiency.stats import paired_difference
    from monai_cover.labeling import file_sha1

    folder, _ = hub_folder
    runs = [{"method": m, "seed": s, "dice": d} for s, (b, r) in enumerate([(0.8, 0.7), (0.82, 0.75), (0.79, 0.74)])
            for m, d in (("pretrained", b), ("scratch", r))]
    effect = {"task": "jsrt_scr", "title": "JSRT/SCR chest X-ray", "mode": "headline",
              "command": "python -m monai_cover.label_efficiency.effect ...",
              "backbone_sha1": file_sha1(tmp_path / "models" / "model.safetensors"), "fraction": 0.05,
              "num_train": 6, "steps": 100, "seeds": [0, 1, 2],
              "difference": paired_difference([0.8, 0.82, 0.79], [0.7, 0.75, 0.74]), "runs": runs}
    (tmp_path / "effect.json").write_text(json.dumps(effect))
    out = export_hub_folder(tmp_path / "models", tmp_path / "hub2", note="For demos only.",
                            effect=tmp_path / "effect.json", name="cover-toy-2d")
    card = (out / "README.md").read_text()
    assert "# cover-toy-2d" in card and "For demos only." in card and "## Fine-tuning from it against scratch" in card
    assert "| 1 | 82.0 | 75.0 | +7.0 |" in card and "**+7.3** [" in card and "6 labeled training images (5%" in card
    assert "(JSRT/SCR chest X-ray; mode `headline`)" in card
    effect["backbone_sha1"] = "0" * 40
    (tmp_path / "other.json").write_text(json.dumps(effect))
    with pytest.raises(RunMismatchError, match="measured with other weights"):
        export_hub_folder(tmp_path / "models", tmp_path / "hub3", effect=tmp_path / "other.json")
    assert not (tmp_path / "hub3").exists()


def test_half_precision_export_halves_the_weights_and_loads_the_rounded_values(tmp_path, hub_folder):
    folder, net = hub_folder
    half = export_hub_folder(tmp_path / "models", tmp_path / "hub_half", half=True)
    full_size, half_size = (f / "model.safetensors" for f in (folder, half))
    assert half_size.stat().st_size < 0.6 * full_size.stat().st_size
    loaded = from_pretrained(half)
    for k, v in net.state_dict().items():
        assert loaded.state_dict()[k].dtype == v.dtype and torch.equal(loaded.state_dict()[k], v.half().to(v.dtype))
    assert "| stored as | float16" in (half / "README.md").read_text()
    assert export_hub_folder(tmp_path / "models", tmp_path / "hub_half", half=True) == half  # the same export again
    with pytest.raises(RunMismatchError, match="holds the hub folder of another model"):
        export_hub_folder(tmp_path / "models", tmp_path / "hub_half")  # full precision over it: another model
    assert "| stored as |" not in (folder / "README.md").read_text()
