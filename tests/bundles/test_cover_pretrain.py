"""cover_pretrain bundle through the real ``python -m monai.bundle`` entry point, on tiny synthetic data."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from tests.bundles.conftest import REPO, TINY_NET, _run_process, run_bundle, tensorboard_writer_pids

CONFIGS = REPO / "bundles" / "cover_pretrain" / "configs"
TRAIN = str(CONFIGS / "train.json")


def _train_args(root, data, *extra, torchrun=0):
    return ("run", "--config_file", TRAIN if not torchrun else f"['{TRAIN}','{CONFIGS / 'multi_gpu_train.json'}']",
            "--bundle_root", str(root), "--dataset_dir", str(data), *TINY_NET, "--batch_size", "2", "--num_val", "1",
            "--val_interval", "2", "--checkpoint_interval", "2", "--log_interval", "1", *extra)


def _train(root, data, *extra, torchrun=0):
    return run_bundle(*_train_args(root, data, *extra, torchrun=torchrun), torchrun=torchrun)


def _checkpoint_iterations(out_dir):
    return sorted(int(re.search(r"(\d+)", p.name).group(1)) for p in (out_dir / "checkpoints").glob("checkpoint_*.pt"))


def test_train_2d_end_to_end(tmp_path, png_dir):
    proc = _train(tmp_path, png_dir, "--epochs", "2", "--crop_size", "32")
    # every iteration's line shows the learning rate unrounded: warm-up from 0 to 1e-4, then cosine decay (a small
    # rate was printed as 'lr: 0.0000')
    rates = re.findall(r"lr: (\S+)", proc.stdout + proc.stderr)
    assert rates == ["0", "0.0001", "7.5e-05", "2.5e-05"], rates
    out = tmp_path / "outputs" / "2d"
    # 5 training images, batch 2, drop_last -> 2 iterations per epoch -> 4 iterations
    assert _checkpoint_iterations(out)[-1] == 4
    hist = json.loads((out / "val_history.json").read_text())
    assert [h["iteration"] for h in hist] == [0, 2, 4]
    assert all(h["val_epe"] >= 0 and h["val_epe_zero"] > 0 for h in hist)
    assert (out / "panels" / "panel_00000004.png").stat().st_size > 1000
    assert (out / "val_epe.png").is_file() and any((out / "tensorboard").iterdir())
    # exported backbone: .pt and safetensors+json, loadable into the segmentation network without the COVER classes
    from monai_cover.networks import CoverSegNet
    from monai_cover.weights import load_backbone, load_backbone_state

    for name in ("model.pt", "model.safetensors"):
        state, cfg = load_backbone_state(tmp_path / "models" / name)
        assert cfg["spatial_dims"] == 2 and cfg["channels"] == [4, 8, 8, 16, 16] and cfg["pretrain_iterations"] == 4
        assert cfg["intensity"] == "percentile"  # how the images were scaled travels with the weights
        seg = CoverSegNet(2, 1, 3, cfg["channels"], cfg["decoder_channels"])
        report = load_backbone(seg.backbone, tmp_path / "models" / name)
        assert report.ok and len(report.loaded) == len(seg.backbone.state_dict())
        assert torch.equal(seg.backbone.state_dict()["encoders.0.0.conv.weight"], state["encoders.0.0.conv.weight"])
    # the whole network (vector heads included) for fields: label propagation
    from monai_cover.weights import load_field_model

    net = load_field_model(tmp_path / "models" / "cover_net.pt")
    assert net.config["heads"] == [4, 4, 4, 1, 1] and net.config["channels"] == [4, 8, 8, 16, 16]
    assert torch.equal(net.backbone.state_dict()["encoders.0.0.conv.weight"], state["encoders.0.0.conv.weight"])


def test_train_3d_end_to_end(tmp_path, nifti_dir):
    # a soft-tissue CT window as the intensity setting (``"ct"`` alone is -1000..1000 HU)
    _train(tmp_path, nifti_dir, "--spatial_dims", "3", "--epochs", "1", "--crop_size", "16",
           "--intensity", "[-160, 240]")
    out = tmp_path / "outputs" / "3d"
    assert _checkpoint_iterations(out)[-1] == 1  # 3 training volumes, batch 2, drop_last
    state, cfg = torch.load(tmp_path / "models" / "model.pt", weights_only=True).values()
    assert cfg["spatial_dims"] == 3 and state["encoders.0.0.conv.weight"].ndim == 5
    # cover_seg and feature extraction default to the HU window and the spacing (test_cover_seg)
    assert cfg["intensity"] == [-160, 240] and "pixdim" in cfg and cfg["pixdim"] is None
    assert (out / "panels" / "panel_00000001.png").is_file()


def test_train_3d_per_axis_crop_size(tmp_path, nifti_dir):
    """A thick-slice style crop, one size per axis: the loading grid is 1.5x per axis and the views have that crop
    (one number per axis used to fail in the config's load-size expression)."""
    _train(tmp_path, nifti_dir, "--spatial_dims", "3", "--epochs", "1", "--crop_size", "[24,16,16]")
    settings = json.loads((tmp_path / "outputs" / "3d" / "run.json").read_text())["settings"]
    assert json.loads(settings["load_size"]) == [36, 24, 24]
    assert (tmp_path / "models" / "model.safetensors").is_file()


def test_resume_continues_step_count(tmp_path, png_dir):
    """Stop after k iterations, rerun the same command with more epochs: it continues at k, not 0."""
    _train(tmp_path, png_dir, "--epochs", "1", "--crop_size", "32")
    out = tmp_path / "outputs" / "2d"
    assert _checkpoint_iterations(out)[-1] == 2
    first = torch.load(out / "checkpoints" / "checkpoint_00000002.pt", weights_only=True)
    proc = _train(tmp_path, png_dir, "--epochs", "3", "--crop_size", "32")
    log = proc.stdout + proc.stderr
    assert "resumed from" in log and "at iteration 2" in log
    assert "Iter: 1/2" not in log.split("resumed from")[1].split("Epoch: 2/3")[0]  # epoch 1 not re-run
    assert _checkpoint_iterations(out)[-1] == 6
    last = torch.load(out / "checkpoints" / "checkpoint_00000006.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 6 and first["trainer"]["iteration"] == 2
    # the lr schedule kept stepping from where it stopped (6 scheduler steps in total)
    assert last["lr_scheduler"]["last_epoch"] == 6


def test_torchrun_two_processes_gloo(tmp_path, png_dir):
    proc = _train(tmp_path, png_dir, "--epochs", "1", "--crop_size", "32", torchrun=2)
    out = tmp_path / "outputs" / "2d"
    # 5 images over 2 ranks (even_divisible -> 3 each), batch 2, drop_last -> 1 iteration per rank
    assert _checkpoint_iterations(out) == [1]
    assert (tmp_path / "models" / "model.safetensors").is_file()
    assert proc.stdout.count("val_epe") + proc.stderr.count("val_epe") >= 2  # rank 0 validates at start and end
    # only rank 0 writes TensorBoard files (rank 1 used to leave an empty event file beside them)
    assert len(tensorboard_writer_pids(out / "tensorboard")) == 1
    # both ranks judge the shared folders from the first rank's start (rank 1 checking later took rank 0's fresh
    # TensorBoard files for another run's and stopped the run now and then); a rerun with another setting is refused
    again = _run_process(_train_args(tmp_path, png_dir, "--epochs", "1", "--crop_size", "32", "--learning_rate", "0.5",
                                     torchrun=2), 2, 600, REPO)
    refusals = [ln for ln in again.stderr.splitlines() if "a run with other settings (learning_rate" in ln]
    assert again.returncode != 0 and len(refusals) == 2, again.stderr[-3000:]  # one line from each rank


def test_verify_metadata_offline():
    proc = run_bundle("verify_metadata", "--meta_file", str(CONFIGS / "metadata.json"),
                      "--filepath", str(REPO / "bundles" / "schema" / "meta_schema.json"))
    assert "metadata is verified with no error" in proc.stdout + proc.stderr


def test_inference_writes_feature_maps(tmp_path, png_dir):
    _train(tmp_path, png_dir, "--epochs", "1", "--crop_size", "32")
    run_bundle("run", "--config_file", str(CONFIGS / "inference.json"), "--bundle_root", str(tmp_path),
               "--dataset_dir", str(png_dir / "img_0.png"), "--roi_size", "[32, 32]")
    import nibabel as nib

    feats = nib.load(next((tmp_path / "features").glob("*.nii.gz"))).get_fdata()
    assert feats.shape[:2] == (64, 64) and feats.shape[-1] == 8  # finest level of the tiny backbone: 8 channels
    # the grid pretraining resized the images to (load_size = 1.5 x crop) travels with the weights
    assert json.loads((tmp_path / "models" / "model.json").read_text())["image_size"] == [48, 48]


def test_feature_inference_sees_2d_images_at_the_size_the_backbone_was_pretrained_at(tmp_path):
    """A radiograph and its 2x enlarged copy get the same features (each map on its own input grid): both are
    resized to the backbone's recorded ``image_size`` as in pretraining. Without a recorded size (older exports) the
    network runs at the native size, where the enlarged copy's features differ."""
    import nibabel as nib
    import numpy as np
    from PIL import Image

    from monai_cover.networks import CoverUNet
    from monai_cover.weights import save_backbone
    from tests.bundles.conftest import smooth_image

    torch.manual_seed(0)
    bb = CoverUNet(2, 1, [4, 8, 8, 16, 16], [16, 8, 8, 8])
    img = smooth_image((64, 64), 3).astype(np.uint8)
    for name, arr in (("small", img), ("large", img.repeat(2, 0).repeat(2, 1))):
        (tmp_path / name).mkdir()
        Image.fromarray(arr).save(tmp_path / name / "cxr.png")
    maps = {}
    for recorded in ([32, 32], None):
        save_backbone(tmp_path / "models", bb, {**bb.config, "image_size": recorded})
        for name in ("small", "large"):
            out = tmp_path / f"f_{name}_{recorded is not None}"
            run_bundle("run", "--config_file", str(CONFIGS / "inference.json"), "--bundle_root", str(tmp_path),
                       "--dataset_dir", str(tmp_path / name), "--output_dir", str(out), "--roi_size", "[32, 32]")
            maps[name, recorded is not None] = np.asarray(nib.load(out / "cxr_features.nii.gz").dataobj)
    assert maps["small", True].shape[:2] == (64, 64) and maps["large", True].shape[:2] == (128, 128)
    assert np.abs(maps["small", True]).max() > 0
    np.testing.assert_allclose(maps["large", True][::2, ::2], maps["small", True], atol=1e-4)
    assert not np.allclose(maps["large", False][::2, ::2], maps["small", False], atol=1e-2)


def test_feature_inference_keeps_same_name_inputs_apart_and_skips_existing_maps(tmp_path, png_dir):
    """Two inputs named alike in different folders get their own feature maps (mirroring the folders), a rerun
    skips maps that exist, and an input whose map would overwrite another's stops the run in one line."""
    import shutil

    from tests.bundles.conftest import bundle_error

    _train(tmp_path, png_dir, "--epochs", "1", "--crop_size", "32")
    data = tmp_path / "scans"
    for patient, src in (("patA", "img_0.png"), ("patB", "img_1.png")):
        (data / patient).mkdir(parents=True)
        shutil.copy(png_dir / src, data / patient / "image.png")
    args = ["run", "--config_file", str(CONFIGS / "inference.json"), "--bundle_root", str(tmp_path), "--dataset_dir",
            str(data), "--roi_size", "[32, 32]"]
    proc = run_bundle(*args)
    maps = sorted(p.relative_to(tmp_path / "features") for p in (tmp_path / "features").rglob("*.nii.gz"))
    assert [str(m) for m in maps] == ["patA/image_features.nii.gz", "patB/image_features.nii.gz"]
    assert "2 written, 0 skipped" in proc.stdout + proc.stderr
    before = (tmp_path / "features" / maps[0]).stat().st_mtime_ns
    proc = run_bundle(*args)
    assert "0 written, 2 skipped" in proc.stdout + proc.stderr
    assert (tmp_path / "features" / maps[0]).stat().st_mtime_ns == before
    # image.png and image.jpg in one folder would both be image_features.nii.gz
    shutil.copy(png_dir / "img_2.png", data / "patA" / "image.jpg")
    last = bundle_error(*args)
    assert "its prediction" in last and "would overwrite that of" in last


def test_train_with_the_authors_view_and_init_options(tmp_path, png_dir):
    """``init=kaiming``, ``appearance=reference``, ``rotation_sampling=reference``, ``inpainting=False``: the options
    reach the network, the training sampler and the validation views, and a 2-iteration run writes its model."""
    from monai.bundle import ConfigParser

    options = {"init": "kaiming", "appearance": "reference", "rotation_sampling": "reference", "inpainting": False}
    parser = ConfigParser()
    parser.read_config(TRAIN)
    parser.update({"channels": [4, 8, 8, 16, 16], "decoder_channels": [16, 8, 8, 8], **options})
    sampler = parser.get_parsed_content("train#sampler")
    look, geometry = sampler.view_appearance, sampler.view_geometry
    assert (look.preset, geometry.rotation_sampling, look.prob_blocks) == ("reference", "reference", 0)
    assert look.prob_contrast == 1.0  # the rest of the preset is kept
    # the validation handler builds its sampler from the training sampler's parts: same options
    from monai_cover.handlers import CoverValidation
    from monai_cover.transforms import CoverViewSampler

    validation = next(h for h in parser.get_parsed_content("train#handlers") if isinstance(h, CoverValidation))
    val_sampler = CoverViewSampler(**validation.sampler_config)
    assert val_sampler.config == sampler.config
    assert val_sampler.view_appearance.values == look.values
    assert val_sampler.view_geometry.crop_size == geometry.crop_size
    assert parser.get_parsed_content("network_def").backbone.config["init"] == "kaiming"

    args = [a for k, v in options.items() for a in (f"--{k}", str(v))]
    _train(tmp_path, png_dir, "--epochs", "1", "--crop_size", "32", *args)
    out = tmp_path / "outputs" / "2d"
    assert _checkpoint_iterations(out) == [2]
    assert [h["iteration"] for h in json.loads((out / "val_history.json").read_text())] == [0, 2]
    state, cfg = torch.load(tmp_path / "models" / "model.pt", weights_only=True).values()
    assert cfg["init"] == "kaiming" and cfg["pretrain_iterations"] == 2
    assert (tmp_path / "models" / "model.safetensors").is_file()


def test_view_settings_are_reached_by_nested_paths_and_recorded_as_plain_json():
    """``train#sampler#geometry#...``, ``#appearance#overrides#...`` and ``#pairs#...`` reach the sampler's parts (a
    value the config does not list too, as on the command line); RunGuard records the parts' arguments as JSON."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(TRAIN)
    parser.update({"channels": [4, 8, 8, 16, 16], "decoder_channels": [16, 8, 8, 8], "color": "rgb",
                   "train#sampler#geometry#rotate_deg": 20.0, "train#sampler#geometry#elastic_magnitude": 2.0,
                   "train#sampler#appearance#overrides#noise_std": 0.05,
                   "train#sampler#pairs#synthetic_contrast": 0.3})
    sampler = parser.get_parsed_content("train#sampler")
    assert sampler.view_geometry.rotate == pytest.approx(np.radians(20.0))
    assert sampler.view_geometry.elastic_magnitude == 2.0 and sampler.view_geometry.rotation_sampling == "reference"
    assert sampler.view_appearance.noise_std == 0.05 and sampler.view_appearance.prob_noise == 1.0
    assert sampler.view_appearance.color_jitter == 0.1  # the config's value for --color rgb
    assert sampler.view_pairs.synthetic_contrast == 0.3 and sampler.view_pairs.cross_modal is None
    views = parser.get_parsed_content("train#run_guard#settings#views")
    assert views == sampler.config and json.loads(json.dumps(views)) == views
    assert views["appearance"]["overrides"] == {"noise_std": 0.05} and views["geometry"]["rotate_deg"] == 20.0


def test_fast_path_options_run_and_a_run_resumes_without_them(tmp_path, png_dir):
    """Checkpointing, separate views, channels-last and bfloat16 autocast (CPU) through the bundle; they are not
    settings of the run's result, so the same run resumes with them switched off."""
    fast = ["--checkpointing", "True", "--separate_views", "True", "--channels_last", "True", "--bf16", "True"]
    _train(tmp_path, png_dir, "--epochs", "1", "--crop_size", "32", *fast)
    proc = _train(tmp_path, png_dir, "--epochs", "2", "--crop_size", "32")
    assert "at iteration 2" in proc.stdout + proc.stderr
    assert _checkpoint_iterations(tmp_path / "outputs" / "2d")[-1] == 4


def test_disk_cache_is_filled_once_and_shared_by_ddp_ranks_and_reruns(tmp_path, nifti_dir):
    """--cache disk: two DDP processes fill one cache under the output folder (3 volumes: 3 entries, not 6); the
    resumed run reads them (no entry rewritten) and continues."""
    args = ("--spatial_dims", "3", "--crop_size", "16", "--cache", "disk")
    _train(tmp_path, nifti_dir, *args, "--epochs", "1", torchrun=2)
    cache = tmp_path / "outputs" / "3d" / "cache"
    entries = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.pt")}
    assert len(entries) == 3
    proc = _train(tmp_path, nifti_dir, *args, "--epochs", "2")
    assert "at iteration" in proc.stdout + proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.pt")} == entries


def test_several_crops_per_decoded_volume_fill_the_batch(tmp_path, nifti_dir):
    """--crops_per_image 2 with batch 2: one volume decoded per step gives both crops (3 volumes: 3 steps/epoch)."""
    _train(tmp_path, nifti_dir, "--spatial_dims", "3", "--crop_size", "16", "--epochs", "1", "--crops_per_image", "2",
           "--cache", "none")
    assert _checkpoint_iterations(tmp_path / "outputs" / "3d")[-1] == 3


def test_color_pretraining_keeps_rgb_and_a_rerun_in_gray_is_refused(tmp_path):
    """--color rgb: photos stay 3-channel (a gray image among them is repeated), the backbone takes 3 channels and
    says so in its config; the same folder with --color gray stops in one line; colour volumes are refused."""
    import numpy as np
    from PIL import Image

    from tests.bundles.conftest import bundle_error

    photos = tmp_path / "photos"
    photos.mkdir()
    y, x = np.mgrid[0:64, 0:64]
    for i in range(5):
        rgb = np.stack([128 + 100 * np.sin(x / (5 + i)), 128 + 100 * np.cos(y / (7 + i)),
                        128 + 80 * np.sin((x + y) / (9 + i))], -1)
        Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(photos / f"photo{i}.png")
    Image.fromarray(((x * 3 + y) % 255).astype(np.uint8)).save(photos / "gray.png")
    root = tmp_path / "run"
    _train(root, photos, "--color", "rgb", "--epochs", "1", "--crop_size", "32")
    state, cfg = torch.load(root / "models" / "model.pt", weights_only=True).values()
    assert cfg["in_channels"] == 3 and state["encoders.0.0.conv.weight"].shape[1] == 3
    assert (root / "outputs" / "2d" / "panels" / "panel_00000002.png").is_file()
    # feature maps of the colour backbone, for a colour photo and a gray image (repeated into 3 channels)
    for name in ("photo0.png", "gray.png"):
        run_bundle("run", "--config_file", str(CONFIGS / "inference.json"), "--bundle_root", str(root),
                   "--dataset_dir", str(photos / name), "--output_dir", str(root / "features" / name))
        assert any((root / "features" / name).glob("*.nii.gz"))

    last = bundle_error("run", "--config_file", TRAIN, "--bundle_root", str(root), "--dataset_dir", str(photos),
                        *TINY_NET, "--batch_size", "2", "--num_val", "1", "--val_interval", "2", "--epochs", "2",
                        "--crop_size", "32")
    assert last.startswith(f"RunMismatchError: {root / 'outputs' / '2d'}: holds the outputs of a run with other")
    assert 'color "rgb" -> "gray"' in last
    last = bundle_error("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path / "v"), "--dataset_dir",
                        str(photos), "--spatial_dims", "3", "--color", "rgb")
    assert last.startswith("BadSettingError: --color rgb: colour is for 2D images")


def test_synthetic_contrast_reports_epe_per_pair_kind_and_a_changed_share_is_refused(tmp_path, png_dir):
    """--synthetic_contrast: validation reports the same views as same-modality and as synthetic-contrast pairs; the
    share is part of the run's settings (a rerun with another one stops in one line)."""
    from tests.bundles.conftest import bundle_error

    _train(tmp_path, png_dir, "--epochs", "1", "--crop_size", "32", "--synthetic_contrast", "0.5")
    hist = json.loads((tmp_path / "outputs" / "2d" / "val_history.json").read_text())
    assert [h["iteration"] for h in hist] == [0, 2]
    for h in hist:
        assert h["val_epe_same"] > 0 and h["val_epe_synthetic"] > 0 and "val_epe_cross" not in h
        assert h["val_epe_same"] != h["val_epe_synthetic"]  # view b's intensities differ, so does the prediction
    last = bundle_error("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path), "--dataset_dir", str(png_dir),
                        *TINY_NET, "--batch_size", "2", "--num_val", "1", "--val_interval", "2", "--epochs", "2",
                        "--crop_size", "32", "--synthetic_contrast", "0.2")
    assert last.startswith(f"RunMismatchError: {tmp_path / 'outputs' / '2d'}: holds the outputs of a run with other")
    assert "synthetic_contrast" in last
    # a run without the option reports nothing per kind unless asked, and a share outside [0, 1] is one line
    plain = tmp_path / "plain"
    _train(plain, png_dir, "--epochs", "1", "--crop_size", "32", "--val_pair_kinds", "['same','synthetic']")
    h = json.loads((plain / "outputs" / "2d" / "val_history.json").read_text())[-1]
    assert h["val_epe"] == h["val_epe_same"] and h["val_epe_synthetic"] > 0
    last = bundle_error("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path / "bad"), "--dataset_dir",
                        str(png_dir), "--synthetic_contrast", "2")
    assert last.startswith("BadSettingError: --synthetic_contrast 2: must be in [0, 1], got 2 (a share of the pairs)")


def _modality_datalist(root, shape, n: int, suffix: str, modalities: int = 2):
    """``n`` cases of co-registered modalities (the first a blob image, the others inverted / squared / shifted
    contrasts of it), listed per case as ``"image": [t1, t2, ...]`` with relative paths."""
    import nibabel as nib
    import numpy as np
    from PIL import Image

    from tests.bundles.conftest import smooth_image

    root.mkdir(parents=True)
    items = []
    for i in range(n):
        t1 = smooth_image(shape, i).astype(np.float32)
        contrasts = [t1, (255 - t1) ** 2 / 255, np.abs(t1 - 128) * 2][:modalities]
        files = [f"case{i}_t{m + 1}{suffix}" for m in range(modalities)]
        for f, img in zip(files, contrasts):
            if suffix == ".png":
                Image.fromarray(img.astype(np.uint8)).save(root / f)
            else:
                nib.save(nib.Nifti1Image(img, np.diag([1.2, 1.2, 2.0, 1.0])), root / f)
        items.append({"image": files})
    (root / "datalist.json").write_text(json.dumps({"training": items}))
    return root / "datalist.json"


def test_modalities_train_a_single_channel_backbone_on_cross_modal_pairs(tmp_path):
    """--modalities 2 (2D) and 3 (3D) with a datalist of co-registered files: the runs exit 0, write a 1-channel
    backbone, and report the validation endpoint error of same-modality and cross-modal pairs on the same draw; a
    case with another file count, a CT setting, a share outside [0, 1] or without modalities, and another share on
    rerun each stop in one line."""
    from tests.bundles.conftest import bundle_error

    for dims, shape, suffix, crop, n in ((2, (64, 64), ".png", "32", 2), (3, (20, 22, 18), ".nii.gz", "16", 3)):
        data = _modality_datalist(tmp_path / f"data{dims}", shape, 5, suffix, n)
        root = tmp_path / f"run{dims}"
        _train(root, data, "--spatial_dims", str(dims), "--modalities", str(n), "--epochs", "1", "--crop_size", crop)
        state, cfg = torch.load(root / "models" / "model.pt", weights_only=True).values()
        assert cfg.get("in_channels", 1) == 1 and state["encoders.0.0.conv.weight"].shape[1] == 1
        hist = json.loads((root / "outputs" / f"{dims}d" / "val_history.json").read_text())
        assert all(h["val_epe_same"] > 0 and h["val_epe_cross"] > 0 for h in hist)
    last = bundle_error("run", "--config_file", TRAIN, "--bundle_root", str(root), "--dataset_dir", str(data),
                        *TINY_NET, "--batch_size", "2", "--num_val", "1", "--val_interval", "2", "--epochs", "1",
                        "--crop_size", "16", "--spatial_dims", "3", "--modalities", "3", "--cross_modal", "0.2")
    assert last.startswith(f"RunMismatchError: {root / 'outputs' / '3d'}: holds the outputs of a run with other")
    one = json.loads(data.read_text())
    one["training"][0]["image"] = one["training"][0]["image"][:1]
    (data.parent / "one.json").write_text(json.dumps(one))
    last = bundle_error("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path / "one"), "--dataset_dir",
                        str(data.parent / "one.json"), "--spatial_dims", "3", "--modalities", "2")
    assert "case0_t1.nii.gz: 1 channel(s), expected 2 co-registered modalities" in last and "\n" not in last
    for bad, message in ((["--modalities", "3", "--intensity", "ct"], "--modalities 3 with --intensity ct"),
                         (["--modalities", "3", "--cross_modal", "1.5"], "--cross_modal 1.5: must be in [0, 1]"),
                         (["--cross_modal", "0.5"], "--cross_modal 0.5: pairs across modalities need --modalities 2")):
        last = bundle_error("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path / "bad"), "--dataset_dir",
                            str(data), "--spatial_dims", "3", *bad)
        assert last.startswith(f"BadSettingError: {message}"), last


def test_feature_inference_orients_and_resamples_volumes_as_pretraining_did_and_writes_maps_on_the_input_grid(
        tmp_path):
    """A volume stored LPS (first two axes flipped, same anatomy) gets the same features as its RAS copy, flipped back
    into its own voxel order: the backbone sees RAS as in pretraining, whatever the file's orientation; and a
    backbone's recorded ``pixdim`` is the grid its features are computed on."""
    import nibabel as nib
    import numpy as np

    from monai_cover.networks import CoverUNet
    from monai_cover.weights import save_backbone
    from tests.bundles.conftest import smooth_image

    torch.manual_seed(0)
    bb = CoverUNet(3, 1, [4, 8, 8, 16, 16], [16, 8, 8, 8])
    save_backbone(tmp_path / "models", bb, bb.config)
    vol = smooth_image((19, 17, 16), 0).astype(np.float32)
    (tmp_path / "ras").mkdir()
    (tmp_path / "lps").mkdir()
    nib.save(nib.Nifti1Image(vol, np.diag([1.0, 1.0, 1.0, 1.0])), tmp_path / "ras" / "v.nii.gz")
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    lps[:2, 3] = [18, 16]  # voxel (i, j) of the flipped array sits where the RAS copy's (18 - i, 16 - j) does
    nib.save(nib.Nifti1Image(vol[::-1, ::-1].copy(), lps), tmp_path / "lps" / "v.nii.gz")
    maps = {}
    for name in ("ras", "lps"):
        run_bundle("run", "--config_file", str(CONFIGS / "inference.json"), "--bundle_root", str(tmp_path),
                   "--dataset_dir", str(tmp_path / name), "--output_dir", str(tmp_path / f"f_{name}"),
                   "--roi_size", "[32, 32, 32]")
        img = nib.load(tmp_path / f"f_{name}" / "v_features.nii.gz")
        maps[name] = np.asarray(img.dataobj)
        assert maps[name].shape[:3] == (19, 17, 16) and np.allclose(img.affine, lps if name == "lps" else np.eye(4))
    assert np.abs(maps["ras"]).max() > 0
    np.testing.assert_allclose(maps["lps"], maps["ras"][::-1, ::-1], atol=1e-5)
    # a backbone pretrained at 2 mm sees 2 mm voxels; its map comes back on the 1 mm input grid
    save_backbone(tmp_path / "models", bb, {**bb.config, "pixdim": [2.0, 2.0, 2.0]})
    run_bundle("run", "--config_file", str(CONFIGS / "inference.json"), "--bundle_root", str(tmp_path),
               "--dataset_dir", str(tmp_path / "ras"), "--output_dir", str(tmp_path / "f_2mm"),
               "--roi_size", "[32, 32, 32]")
    img = nib.load(tmp_path / "f_2mm" / "v_features.nii.gz")
    coarse = np.asarray(img.dataobj)
    assert coarse.shape == maps["ras"].shape and np.allclose(img.affine, np.eye(4))
    # computed on a grid of half the resolution and interpolated back: smoother than the 1 mm map, not equal to it
    assert not np.allclose(coarse, maps["ras"], atol=1e-3)
    assert np.abs(np.diff(coarse, axis=0)).mean() < np.abs(np.diff(maps["ras"], axis=0)).mean()
