"""cover_seg bundle through the real ``python -m monai.bundle`` entry point: train, evaluate, infer, verify, export."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from monai_cover.networks import CoverSegNet
from tests.bundles.conftest import REPO, TINY_NET, bundle_error, run_bundle, tensorboard_writer_pids

CONFIGS = REPO / "bundles" / "cover_seg" / "configs"
TRAIN, EVALUATE, INFER, TRANSFER = (str(CONFIGS / f) for f in ("train.json", "evaluate.json", "inference.json",
                                                                 "label_transfer.json"))
ARGS_2D = ["--label_names", "['a','b']", "--image_size", "[48,40]", "--roi_size", "[48,40]", *TINY_NET]
ARGS_3D = ["--spatial_dims", "3", "--label_names", "['a','b']", "--roi_size", "[16,16,16]", *TINY_NET]


def _data(d):
    return ["--images_dir", str(d / "images"), "--labels_dir", str(d / "labels")]


@pytest.fixture(scope="module")
def trained_2d(tmp_path_factory, seg2d_dir):
    root = tmp_path_factory.mktemp("seg2d_bundle")
    proc = run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(root), *_data(seg2d_dir), *ARGS_2D,
                      "--epochs", "2", "--val_interval", "1", "--batch_size", "2")
    return root, proc


def test_train_2d_writes_best_model_and_per_class_dice(trained_2d):
    root, proc = trained_2d
    log = proc.stdout + proc.stderr
    assert "a: " in log and "b: " in log and "val_mean_dice" in log  # per-class Dice reported each validation
    state = torch.load(root / "models" / "model.pt", weights_only=True)
    assert set(k.split(".")[0] for k in state) == {"backbone", "head"} and state["head.weight"].shape[0] == 3
    assert json.loads((root / "models" / "model.json").read_text())["metric"] == "val_mean_dice"
    assert (root / "outputs" / "dice_curve.png").is_file()
    assert sorted(p.name for p in (root / "outputs" / "checkpoints").iterdir()) == ["checkpoint_00000006.pt"]


def test_evaluate_writes_per_case_csv(trained_2d, seg2d_dir):
    """Only the bundle root and the data: labels, widths and sizes come from the trained model's model.json."""
    root, _ = trained_2d
    run_bundle("run", "--config_file", f"['{TRAIN}','{EVALUATE}']", "--bundle_root", str(root), *_data(seg2d_dir))
    ev = root / "outputs" / "eval"
    rows = list(csv.reader(open(ev / "val_mean_dice_raw.csv")))
    assert rows[0] == ["filename", "a", "b", "mean"] and len(rows) == 1 + 8  # structure names, not class0/1
    hd = list(csv.reader(open(ev / "val_hd95_raw.csv")))
    assert len(hd) == 9 and hd[0][1:3] == ["a", "b"]
    assert [r[0] for r in csv.reader(open(ev / "val_mean_dice_summary.csv"))][1:] == ["a", "b", "mean"]
    summary = dict(r for r in csv.reader(open(ev / "metrics.csv")))
    assert 0.0 <= float(summary["val_mean_dice"]) <= 1.0
    assert (ev / "dice_per_case.png").is_file()
    assert (ev / "segmentation_panel.png").stat().st_size > 5000  # 3 cases x (image, reference, prediction)


def test_inference_2d_restores_geometry(trained_2d, seg2d_dir):
    root, _ = trained_2d
    run_bundle("run", "--config_file", INFER, "--bundle_root", str(root), "--dataset_dir", str(seg2d_dir / "images"))
    pred = np.array(Image.open(root / "predictions" / "case_3_seg.png"))
    src = np.array(Image.open(seg2d_dir / "images" / "case_3.png"))
    assert pred.shape == src.shape == (48, 40) and set(np.unique(pred)) <= {0, 1, 2}
    assert (root / "predictions" / "case_3_seg.nii.gz").is_file()


def test_an_override_that_contradicts_the_trained_model_is_one_line(trained_2d, seg2d_dir):
    root, _ = trained_2d
    line = bundle_error("run", "--config_file", INFER, "--bundle_root", str(root), "--dataset_dir",
                        str(seg2d_dir / "images"), "--label_names", "['lung']")
    assert line == (f"BadSettingError: --label_names ['lung']: the model in {root / 'models'} was trained with "
                    "['a', 'b'] (leave the setting out to use the model's, or point --model_dir or --bundle_root at "
                    "the model you mean) (set MONAI_COVER_FULL_TRACEBACK=1 for the traceback)")


def test_roi_size_auto_at_evaluation_and_inference_means_the_trained_size(trained_2d, seg2d_dir, tmp_path):
    """A benchmark passes training's --roi_size auto to evaluation too: the model's size, not a contradiction."""
    root, _ = trained_2d
    run_bundle("run", "--config_file", f"['{TRAIN}','{EVALUATE}']", "--bundle_root", str(root), *_data(seg2d_dir),
               "--roi_size", "auto", "--output_dir", str(tmp_path / "eval_auto"))
    assert (tmp_path / "eval_auto" / "eval" / "val_mean_dice_raw.csv").is_file()
    run_bundle("run", "--config_file", INFER, "--bundle_root", str(root), "--dataset_dir", str(seg2d_dir / "images"),
               "--roi_size", "auto", "--output_dir", str(tmp_path / "pred"))
    assert len(list((tmp_path / "pred").glob("*_seg.nii.gz"))) == 8


def test_evaluations_record_their_model_and_another_models_results_are_not_overwritten(trained_2d, seg2d_dir,
                                                                                        tmp_path):
    """A second evaluation with another model into the same folder replaced every file (Dice 0.414 -> 0.0) and
    nothing said which model made them."""
    import shutil

    root, _ = trained_2d
    evaluate = ("run", "--config_file", f"['{TRAIN}','{EVALUATE}']", "--bundle_root", str(root), *_data(seg2d_dir),
                "--output_dir", str(tmp_path / "out"))
    run_bundle(*evaluate)
    record = json.loads((tmp_path / "out" / "eval" / "producer.json").read_text())
    assert record["files"]["model"] == str(root / "models" / "model.pt") and len(record["model_sha256"]) == 64
    run_bundle(*evaluate)  # the same model again: its own results are replaced
    other = tmp_path / "other"
    shutil.copytree(root / "models", other)
    state = torch.load(other / "model.pt", weights_only=True)
    torch.save({k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}, other / "model.pt")
    before = (tmp_path / "out" / "eval" / "val_mean_dice_raw.csv").read_text()
    line = bundle_error(*evaluate, "--model_dir", str(other))
    assert line.startswith(f"RunMismatchError: {tmp_path / 'out' / 'eval'}: holds the results of another model "
                           "(model_sha256 ")
    assert (tmp_path / "out" / "eval" / "val_mean_dice_raw.csv").read_text() == before
    run_bundle(*evaluate, "--model_dir", str(other), "--overwrite", "True")
    assert json.loads((tmp_path / "out" / "eval" / "producer.json").read_text())["files"]["model"] == str(
        other / "model.pt")


def test_budget_in_iterations_ends_on_the_epoch_that_reaches_it(tmp_path, seg2d_dir):
    """--iterations 5 with 6 training cases of batch 2 (3 steps an epoch): 2 epochs, 6 steps (--epochs ignored)."""
    run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path), *_data(seg2d_dir), *ARGS_2D,
               "--iterations", "5", "--epochs", "50", "--val_interval", "1", "--batch_size", "2")
    assert [p.name for p in (tmp_path / "outputs" / "checkpoints").iterdir()] == ["checkpoint_00000006.pt"]
    assert json.loads((tmp_path / "models" / "model.json").read_text())["epoch"] in (1, 2)


def test_validation_every_n_steps_records_its_rounds_in_steps(tmp_path, seg2d_dir):
    """--val_interval_steps 2 with 3 steps an epoch: rounds at steps 2, 4, 6 (two in epoch 2), the curve over steps."""
    run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path), *_data(seg2d_dir), *ARGS_2D,
               "--iterations", "6", "--val_interval_steps", "2", "--batch_size", "2")
    hist = json.loads((tmp_path / "outputs" / "dice_history.json").read_text())
    assert [(h["step"], h["epoch"]) for h in hist] == [(2, 1), (4, 2), (6, 2)]
    assert (tmp_path / "outputs" / "dice_curve.png").stat().st_size > 0


def test_a_run_shorter_than_the_validation_interval_still_validates_and_saves_its_model(tmp_path, seg2d_dir):
    """--epochs 1 with --val_interval 5 (3 steps): one round at the end, so models/model.pt and model.json exist;
    a rerun in the same folder (already finished) adds no round."""
    args = ["--config_file", TRAIN, "--bundle_root", str(tmp_path), *_data(seg2d_dir), *ARGS_2D, "--epochs", "1",
            "--val_interval", "5", "--batch_size", "2"]
    run_bundle("run", *args)
    hist = json.loads((tmp_path / "outputs" / "dice_history.json").read_text())
    assert [(h["step"], h["epoch"]) for h in hist] == [(3, 1)]
    assert json.loads((tmp_path / "models" / "model.json").read_text())["settings"]["label_names"] == ["a", "b"]
    assert (tmp_path / "models" / "model.pt").stat().st_size > 0
    run_bundle("run", *args)
    assert len(json.loads((tmp_path / "outputs" / "dice_history.json").read_text())) == 1


def test_disk_cache_holds_the_training_and_validation_cases(tmp_path, seg2d_dir):
    """--cache disk: 8 cases (6 train, 2 validation) decoded once into outputs/cache; the model trains from it."""
    run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path), *_data(seg2d_dir), *ARGS_2D,
               "--epochs", "1", "--val_interval", "1", "--batch_size", "2", "--cache", "disk")
    assert len(list((tmp_path / "outputs" / "cache").glob("*.pt"))) == 8
    assert (tmp_path / "models" / "model.pt").is_file()


def test_cosine_schedule_over_the_step_budget_is_resumable(tmp_path, seg2d_dir):
    """--lr_schedule cosine: warm-up + cosine per step over the budget (lr 0 at its end), saved with the checkpoint."""
    args = ["--config_file", TRAIN, "--bundle_root", str(tmp_path), *_data(seg2d_dir), *ARGS_2D, "--val_interval",
            "1", "--batch_size", "2", "--lr_schedule", "cosine", "--warmup_iterations", "2"]
    run_bundle("run", *args, "--iterations", "6")
    ckpt = torch.load(tmp_path / "outputs" / "checkpoints" / "checkpoint_00000006.pt", weights_only=True)
    assert ckpt["lr_scheduler"]["last_epoch"] == 6 and ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0)
    run_bundle("run", *args, "--iterations", "9")  # a longer budget extends the same run
    ckpt = torch.load(tmp_path / "outputs" / "checkpoints" / "checkpoint_00000009.pt", weights_only=True)
    assert ckpt["lr_scheduler"]["last_epoch"] == 9


def test_pretrained_weights_load_and_mismatch_is_reported(tmp_path, trained_2d, seg2d_dir):
    """``--pretrained`` loads a cover_pretrain backbone; wrong widths fail with the key report."""
    from monai_cover.networks import CoverUNet
    from monai_cover.weights import save_backbone

    bb = CoverUNet(2, 1, [4, 8, 8, 16, 16], [16, 8, 8, 8])
    save_backbone(tmp_path / "pre", bb, bb.config)
    run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path / "ft"), *_data(seg2d_dir), *ARGS_2D,
               "--epochs", "1", "--pretrained", str(tmp_path / "pre" / "model.safetensors"))
    # without --channels/--decoder_channels the widths come from the pretrained file's config; a folder holding the
    # weights (a models/ or hub folder) stands for its model.safetensors
    args = ARGS_2D[: -len(TINY_NET)]
    run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path / "ft2"), *_data(seg2d_dir), *args,
               "--epochs", "1", "--val_interval", "1", "--pretrained", str(tmp_path / "pre"))
    assert json.loads((tmp_path / "ft2" / "models" / "model.json").read_text())["settings"]["channels"] == bb.config[
        "channels"]
    wide = CoverUNet(2, 1, [8, 8, 8, 16, 16], [16, 8, 8, 8])
    save_backbone(tmp_path / "wide", wide, wide.config)
    with pytest.raises(pytest.fail.Exception, match="mismatched"):
        run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path / "bad"), *_data(seg2d_dir), *ARGS_2D,
                   "--epochs", "1", "--pretrained", str(tmp_path / "wide" / "model.pt"))


def test_linear_probe_keeps_the_pretrained_backbone_bit_identical(tmp_path, seg2d_dir):
    """``--freeze_backbone True``: only the 1x1 head (here on all levels) trains; the saved backbone equals the
    pretrained file."""
    from safetensors.torch import load_file

    from monai_cover.networks import CoverUNet
    from monai_cover.weights import save_backbone

    torch.manual_seed(3)
    bb = CoverUNet(2, 1, [4, 8, 8, 16, 16], [16, 8, 8, 8])
    save_backbone(tmp_path / "pre", bb, bb.config)
    run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path / "probe"), *_data(seg2d_dir), *ARGS_2D,
               "--epochs", "3", "--val_interval", "1", "--batch_size", "2", "--learning_rate", "0.05",
               "--pretrained", str(tmp_path / "pre" / "model.safetensors"), "--freeze_backbone", "True",
               "--head_levels", "[0,1,2,3,4]")
    pre = load_file(tmp_path / "pre" / "model.safetensors")
    ckpt = torch.load(next((tmp_path / "probe" / "outputs" / "checkpoints").iterdir()), weights_only=True)
    for state in (torch.load(tmp_path / "probe" / "models" / "model.pt", weights_only=True), ckpt["network"]):
        assert all(torch.equal(state[f"backbone.{k}"], v) for k, v in pre.items())
    # ... while the head did train (its Adam state exists, its weights moved away from every other run's init)
    assert len(ckpt["optimizer"]["state"]) == 2  # head weight + bias only
    torch.manual_seed(0)
    init_head = CoverSegNet(2, 1, 3, [4, 8, 8, 16, 16], [16, 8, 8, 8], head_levels=[0, 1, 2, 3, 4]).head.weight
    assert ckpt["network"]["head.weight"].shape == (3, 8 + 8 + 8 + 16 + 16, 1, 1)  # a 1x1 conv on every level
    assert not torch.allclose(ckpt["network"]["head.weight"], init_head)


@pytest.mark.parametrize("dims", [2, 3])
def test_label_transfer_segments_from_atlases_without_training(tmp_path, seg2d_dir, seg3d_dir, dims):
    """label_transfer.json: the first ``num_atlases`` training items are the atlases, the datalist's ``test`` the
    queries, Dice CSVs as evaluate.json writes them. A query that is itself an atlas matches its own positions
    (cosine 1) whatever the (here random) features, so top-1 transfer must give back its label."""
    src, args = (seg2d_dir, ARGS_2D) if dims == 2 else (seg3d_dir, ARGS_3D)
    cases = [{"image": str(p), "label": str(src / "labels" / p.name)} for p in sorted((src / "images").iterdir())]
    (tmp_path / "list.json").write_text(json.dumps({"training": cases[:2] + cases[-1:], "validation": cases[3:4],
                                                    "test": cases[:2]}))
    run_bundle("run", "--config_file", f"['{TRAIN}','{EVALUATE}','{TRANSFER}']", "--bundle_root", str(tmp_path),
               "--data_file", str(tmp_path / "list.json"), *args, "--num_atlases", "2", "--transfer_top_n", "1")
    ev = tmp_path / "outputs" / "label_transfer"
    rows = list(csv.DictReader(open(ev / "val_mean_dice_raw.csv")))
    assert len(rows) == 2 and all(float(r["mean"]) > 0.97 for r in rows)
    assert (ev / "segmentation_panel.png").is_file()
    assert not (tmp_path / "models").exists()  # nothing trained, nothing written
    if dims == 2:  # --pretrained is loaded (evaluate.json's initialize alone would ignore it): wrong widths fail
        from monai_cover.networks import CoverUNet
        from monai_cover.weights import save_backbone

        wide = CoverUNet(2, 1, [8, 8, 8, 16, 16], [16, 8, 8, 8])
        save_backbone(tmp_path / "wide", wide, wide.config)
        with pytest.raises(pytest.fail.Exception, match="mismatched"):
            run_bundle("run", "--config_file", f"['{TRAIN}','{EVALUATE}','{TRANSFER}']", "--bundle_root",
                       str(tmp_path), "--data_file", str(tmp_path / "list.json"), *args,
                       "--pretrained", str(tmp_path / "wide" / "model.pt"))


def test_train_evaluate_infer_3d_geometry(tmp_path, seg3d_dir):
    run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path), *_data(seg3d_dir), *ARGS_3D,
               "--epochs", "1", "--val_interval", "1", "--batch_size", "2")
    run_bundle("run", "--config_file", f"['{TRAIN}','{EVALUATE}']", "--bundle_root", str(tmp_path),
               *_data(seg3d_dir), *ARGS_3D)
    assert len(list(csv.reader(open(tmp_path / "outputs" / "eval" / "val_mean_dice_raw.csv")))) == 6
    run_bundle("run", "--config_file", INFER, "--bundle_root", str(tmp_path), "--dataset_dir",
               str(seg3d_dir / "images" / "case_1.nii.gz"), *ARGS_3D)
    src = nib.load(seg3d_dir / "images" / "case_1.nii.gz")
    out = nib.load(tmp_path / "predictions" / "case_1_seg.nii.gz")
    assert out.shape[:3] == src.shape and np.allclose(out.affine, src.affine, atol=1e-4)


def test_bundle_verbs_metadata_net_in_out(tmp_path, trained_2d):
    meta = str(CONFIGS / "metadata.json")
    schema = str(REPO / "bundles" / "schema" / "meta_schema.json")
    run_bundle("verify_metadata", "--meta_file", meta, "--filepath", schema)
    proc = run_bundle("verify_net_in_out", "network_def", "--meta_file", meta, "--config_file", INFER, *TINY_NET,
                      "--label_names", "['foreground']")
    assert "Detected deprecated name" not in proc.stderr  # metadata keys of the current bundle specification


@pytest.mark.parametrize("trace", [False, True], ids=["script", "trace"])
def test_ckpt_export_torchscript_matches_the_checkpoint(tmp_path, trained_2d, trace):
    """``ckpt_export`` scripts by default (model-zoo bundles do) and traces with ``--use_trace True``; either file
    computes what the trained checkpoint does, at a size other than the traced one too."""
    from monai_cover.networks import CoverSegNet

    root, _ = trained_2d
    ts = tmp_path / "model.ts"
    trace_args = ["--use_trace", "True", "--input_shape", "[1, 1, 48, 40]"] if trace else []
    run_bundle("ckpt_export", "network_def", "--filepath", str(ts), "--ckpt_file", str(root / "models" / "model.pt"),
               "--meta_file", str(CONFIGS / "metadata.json"), "--config_file", INFER, *ARGS_2D, *trace_args,
               "--key_in_ckpt", "")
    exported = torch.jit.load(str(ts))
    net = CoverSegNet(2, 1, 3, [4, 8, 8, 16, 16], [16, 8, 8, 8]).eval()
    net.load_state_dict(torch.load(root / "models" / "model.pt", weights_only=True))
    for shape in [(1, 1, 48, 40), (2, 1, 32, 48)]:
        x = torch.rand(shape)
        with torch.no_grad():
            torch.testing.assert_close(exported(x), net(x), atol=1e-5, rtol=1e-5)


def test_onnx_export_matches_torch(tmp_path, trained_2d):
    pytest.importorskip("onnxruntime", reason="ONNX check needs the 'onnx' extra (onnx, onnxscript, onnxruntime)")
    import onnxruntime as ort

    from monai_cover.networks import CoverSegNet

    root, _ = trained_2d
    out = tmp_path / "model.onnx"
    run_bundle("onnx_export", "network_def", "--filepath", str(out), "--ckpt_file", str(root / "models" / "model.pt"),
               "--meta_file", str(CONFIGS / "metadata.json"), "--config_file", INFER, *ARGS_2D, "--use_trace", "True",
               "--input_shape", "[1, 1, 48, 40]", "--key_in_ckpt", "")
    net = CoverSegNet(2, 1, 3, [4, 8, 8, 16, 16], [16, 8, 8, 8]).eval()
    net.load_state_dict(torch.load(root / "models" / "model.pt", weights_only=True))
    x = torch.rand(1, 1, 48, 40)
    sess = ort.InferenceSession(str(out))
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x).numpy(), atol=1e-4)


def test_torchrun_linear_probe(tmp_path, seg2d_dir):
    """A frozen backbone under DDP: frozen at construction, so DDP only reduces the head's gradients."""
    multi = str(CONFIGS / "multi_gpu_train.json")
    run_bundle("run", "--config_file", f"['{TRAIN}','{multi}']", "--bundle_root", str(tmp_path), *_data(seg2d_dir),
               *ARGS_2D, "--epochs", "1", "--val_interval", "1", "--batch_size", "2", "--freeze_backbone", "True",
               torchrun=2)
    ckpt = torch.load(tmp_path / "outputs" / "checkpoints" / "checkpoint_00000002.pt", weights_only=True)
    assert len(ckpt["optimizer"]["state"]) == 2  # head weight + bias


def test_torchrun_two_processes_gloo(tmp_path, seg2d_dir):
    multi = str(CONFIGS / "multi_gpu_train.json")
    run_bundle("run", "--config_file", f"['{TRAIN}','{multi}']", "--bundle_root", str(tmp_path), *_data(seg2d_dir),
               *ARGS_2D, "--epochs", "1", "--val_interval", "1", "--batch_size", "2", torchrun=2)
    # 6 training cases over 2 ranks, batch 2 -> 2 iterations per rank; rank 0 writes the only checkpoint and model
    assert [p.name for p in (tmp_path / "outputs" / "checkpoints").iterdir()] == ["checkpoint_00000002.pt"]
    assert (tmp_path / "models" / "model.pt").is_file()
    assert len(tensorboard_writer_pids(tmp_path / "outputs" / "tensorboard")) == 1  # rank 0 only


def test_multi_gpu_disables_the_logging_handlers_after_monailabel_inserts_a_loader(tmp_path):
    """MONAI Label puts a CheckpointLoader first in ``train#handlers`` and merges multi_gpu_train.json after."""
    from monai.bundle import ConfigParser

    train = ConfigParser.load_config_files([TRAIN])
    train["train"]["handlers"].insert(0, {"_target_": "CheckpointLoader", "load_path": "m.pt", "load_dict": {}})
    ConfigParser.export_config_file(train, str(tmp_path / "monailabel_train.json"))
    parser = ConfigParser()
    parser.read_config([str(tmp_path / "monailabel_train.json"), str(CONFIGS / "multi_gpu_train.json")])
    # MONAI's logging handlers are disabled on ranks > 0; ours (best model, Dice plot, checkpoints) check the rank
    # themselves, and the validation handler must run on every rank (the validation set is split over the ranks)
    for section in ("train", "validate"):
        for h in parser[f"{section}#handlers"]:
            if isinstance(h, dict):
                expect = h["_target_"] in {"StatsHandler", "TensorBoardStatsHandler"}
                assert (h.get("_disabled_") == "$torch.distributed.get_rank() > 0") == expect, (section, h["_target_"])


def test_slicewise_trains_2d_on_thick_slice_volumes_and_predicts_volumes(tmp_path):
    """``--slicewise True``: a 2D network trained on the axial slices of 7-slice stacks (5 mm slices), nothing
    padded along the slice axis; inference runs it slice by slice back into each input's geometry (shape and affine
    equal), and evaluation scores whole volumes, both from the model's recorded settings alone."""
    import nibabel as nib

    from tests.bundles.conftest import blob_case

    data = tmp_path / "stacks"
    affine = np.diag([1.0, 1.0, 5.0, 1.0])
    affine[:3, 3] = [-20, 4, 30]
    for sub in ("images", "labels"):
        (data / sub).mkdir(parents=True)
    for i in range(5):
        img, lab = blob_case((36, 32, 7), i)
        nib.save(nib.Nifti1Image(img.astype(np.float32), affine), data / "images" / f"stack_{i}.nii.gz")
        nib.save(nib.Nifti1Image(lab.astype(np.uint8), affine), data / "labels" / f"stack_{i}.nii.gz")
    root = tmp_path / "bundle"
    run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(root), *_data(data), "--spatial_dims", "3",
               "--slicewise", "True", "--roi_size", "[32,32]", "--label_names", "['a','b']", *TINY_NET,
               "--epochs", "2", "--val_interval", "1", "--batch_size", "2")
    assert torch.load(root / "models" / "model.pt", weights_only=True)["head.weight"].ndim == 4  # a 2D network
    run_bundle("run", "--config_file", INFER, "--bundle_root", str(root), "--dataset_dir", str(data / "images"))
    src = nib.load(data / "images" / "stack_2.nii.gz")
    out = nib.load(root / "predictions" / "stack_2_seg.nii.gz")
    assert out.shape[:3] == src.shape == (36, 32, 7) and np.allclose(out.affine, src.affine, atol=1e-4)
    assert set(np.unique(np.asarray(out.dataobj))) <= {0, 1, 2}
    run_bundle("run", "--config_file", f"['{TRAIN}','{EVALUATE}']", "--bundle_root", str(root), *_data(data))
    rows = list(csv.reader(open(root / "outputs" / "eval" / "val_mean_dice_raw.csv")))
    assert len(rows) == 6


def test_colour_backbone_fine_tunes_and_infers_on_rgb_images(tmp_path, seg2d_dir):
    """A 3-channel (``--color rgb``) backbone makes cover_seg colour too: RGB images stay RGB through training,
    evaluation and inference (recorded in model.json), predictions come back in each input's geometry."""
    import numpy as np
    from PIL import Image

    from monai_cover.networks import CoverUNet
    from monai_cover.weights import save_backbone

    rgb = tmp_path / "rgb"
    (rgb / "images").mkdir(parents=True)
    (rgb / "labels").symlink_to(seg2d_dir / "labels", target_is_directory=True)
    for f in sorted((seg2d_dir / "images").iterdir()):
        g = np.array(Image.open(f))
        Image.fromarray(np.stack([g, 255 - g, g // 2], -1)).save(rgb / "images" / f.name)  # colour-coded blobs
    bb = CoverUNet(2, 3, [4, 8, 8, 16, 16], [16, 8, 8, 8])
    save_backbone(tmp_path / "pre", bb, bb.config)
    args = ARGS_2D[: -len(TINY_NET)]
    run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path / "ft"), *_data(rgb), *args,
               "--epochs", "1", "--val_interval", "1", "--pretrained", str(tmp_path / "pre"))
    record = json.loads((tmp_path / "ft" / "models" / "model.json").read_text())
    assert record["settings"]["color"] == "rgb"
    assert torch.load(tmp_path / "ft" / "models" / "model.pt", weights_only=True)[
        "backbone.encoders.0.0.conv.weight"].shape[1] == 3
    run_bundle("run", "--config_file", f"['{TRAIN}','{EVALUATE}']", "--bundle_root", str(tmp_path / "ft"),
               *_data(rgb), "--pretrained", str(tmp_path / "pre"))
    run_bundle("run", "--config_file", INFER, "--bundle_root", str(tmp_path / "ft"), "--dataset_dir",
               str(rgb / "images" / "case_0.png"))
    pred = np.array(Image.open(tmp_path / "ft" / "predictions" / "case_0_seg.png"))
    assert pred.shape == (48, 40)  # rows x columns of the input


def test_two_modalities_fine_tune_from_a_single_channel_backbone_and_infer_in_the_input_geometry(tmp_path, seg3d_dir):
    """``--modalities 2`` with a datalist of ``"image": [t1, t2]``: a backbone pretrained on one modality at a time
    starts the 2-channel network (its input convolution spread over both channels), the setting is recorded and
    followed by evaluation and inference, and the prediction of a two-file case is written in the first file's
    geometry, named after it; a case with one file is one line."""
    from monai_cover.networks import CoverUNet
    from monai_cover.weights import save_backbone

    data = tmp_path / "mm"
    data.mkdir()
    items = []
    for f in sorted((seg3d_dir / "images").iterdir()):
        img = nib.load(f)
        t2 = ((img.get_fdata().max() - img.get_fdata()) ** 2).astype(np.float32)
        nib.save(nib.Nifti1Image(t2, img.affine), data / f.name.replace(".nii.gz", "_t2.nii.gz"))
        items.append({"image": [str(f), str(data / f.name.replace(".nii.gz", "_t2.nii.gz"))],
                      "label": str(seg3d_dir / "labels" / f.name)})
    (data / "datalist.json").write_text(json.dumps({"training": items[:4], "test": items[4:]}))
    bb = CoverUNet(3, 1, [4, 8, 8, 16, 16], [16, 8, 8, 8])
    save_backbone(tmp_path / "pre", bb, bb.config)
    ft = tmp_path / "ft"
    common = ["--data_file", str(data / "datalist.json"), "--pretrained", str(tmp_path / "pre"), *ARGS_3D[:-4]]
    proc = run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(ft), *common, "--modalities", "2",
                      "--epochs", "1", "--val_interval", "1", "--batch_size", "2")
    assert "input convolution spread over 2 input channels" in proc.stdout + proc.stderr
    assert json.loads((ft / "models" / "model.json").read_text())["settings"]["modalities"] == 2
    assert torch.load(ft / "models" / "model.pt", weights_only=True)[
        "backbone.encoders.0.0.conv.weight"].shape[1] == 2
    run_bundle("run", "--config_file", f"['{TRAIN}','{EVALUATE}']", "--bundle_root", str(ft), *common)
    assert len(list(csv.reader(open(ft / "outputs" / "eval" / "val_mean_dice_raw.csv")))) == 2  # header + 1 case
    (data / "infer.json").write_text(json.dumps({"training": [{"image": items[1]["image"]}]}))
    run_bundle("run", "--config_file", INFER, "--bundle_root", str(ft), "--dataset_dir", str(data / "infer.json"))
    src = nib.load(seg3d_dir / "images" / "case_1.nii.gz")
    out = nib.load(ft / "predictions" / "case_1_seg.nii.gz")
    assert out.shape[:3] == src.shape and np.allclose(out.affine, src.affine, atol=1e-4)
    (data / "one.json").write_text(json.dumps({"training": [{"image": items[2]["image"][:1]}]}))
    last = bundle_error("run", "--config_file", INFER, "--bundle_root", str(ft), "--dataset_dir",
                        str(data / "one.json"))
    assert "case_2.nii.gz: 1 channel(s), expected 2 co-registered modalities" in last


@pytest.mark.parametrize("intensity, window", [("ct", (-1000, 1000)), ([-160, 240], (-160, 240))])
def test_a_ct_backbone_makes_fine_tuning_and_inference_scale_by_its_hu_window(tmp_path, seg3d_dir, intensity, window):
    """A backbone pretrained with ``--intensity ct`` (or its own window, ``--intensity "[-160, 240]"``) records it;
    cover_seg then fine-tunes, evaluates and infers with that HU window (recorded in its model.json), cover_pretrain's
    feature extraction too, and an inference override that contradicts the model is one line."""
    from monai.bundle import ConfigParser

    from monai_cover.networks import CoverUNet
    from monai_cover.weights import save_backbone

    bb = CoverUNet(3, 1, [4, 8, 8, 16, 16], [16, 8, 8, 8])
    save_backbone(tmp_path / "pre", bb, {**bb.config, "intensity": intensity})
    ft = tmp_path / "ft"
    run_bundle("run", "--config_file", TRAIN, "--bundle_root", str(ft), *_data(seg3d_dir), *ARGS_3D[:-4],
               "--pretrained", str(tmp_path / "pre"), "--epochs", "1", "--val_interval", "1", "--batch_size", "2")
    assert json.loads((ft / "models" / "model.json").read_text())["settings"]["intensity"] == intensity
    case = seg3d_dir / "images" / "case_0.nii.gz"
    low, high = window
    hu_window = torch.as_tensor(np.clip((nib.load(case).get_fdata() - low) / (high - low), 0, 1), dtype=torch.float32)
    for config, root, key in ((INFER, ft, "preprocessing"),
                              (str(REPO / "bundles" / "cover_pretrain" / "configs" / "inference.json"), tmp_path / "x",
                               "preprocessing")):
        parser = ConfigParser()
        parser.read_config(config)
        parser.update({"bundle_root": str(root), "model_path": str(tmp_path / "pre" / "model.pt")})
        image = parser.get_parsed_content(key)({"image": str(case)})["image"]
        # the test volumes are in [0, 255]: the HU windows map them to [0.5, 0.63] / [0.4, 1], percentiles to [0, 1]
        assert torch.allclose(torch.as_tensor(image)[0], hu_window, atol=1e-5), config
    # co-registered modalities (PET/CT) are scaled per modality by percentiles even from a CT backbone
    parser = ConfigParser()
    parser.read_config(TRAIN)
    parser.update({"pretrained": str(tmp_path / "pre"), "modalities": 2})
    assert parser.get_parsed_content("intensity") == "percentile"
    line = bundle_error("run", "--config_file", INFER, "--bundle_root", str(ft), "--dataset_dir", str(case),
                        "--intensity", "percentile")
    assert line.startswith(f"BadSettingError: --intensity 'percentile': the model in {ft / 'models'} was trained "
                           f"with {intensity!r}")


def test_fine_tuning_resamples_to_the_spacing_the_backbone_was_pretrained_at(tmp_path):
    """``cover_pretrain --pixdim`` is recorded with the weights; cover_seg resamples to it unless told otherwise
    (features learned at 2 mm see 2 mm voxels), and ``--pixdim`` still overrides it."""
    from monai.bundle import ConfigParser

    from monai_cover.networks import CoverUNet
    from monai_cover.weights import save_backbone

    bb = CoverUNet(3, 1, [4, 8, 8, 16, 16], [16, 8, 8, 8])
    save_backbone(tmp_path / "pre", bb, {**bb.config, "pixdim": [2.0, 2.0, 2.0]})
    for given, expected in ((None, [2.0, 2.0, 2.0]), ([1.0, 1.0, 3.0], [1.0, 1.0, 3.0])):
        parser = ConfigParser()
        parser.read_config(TRAIN)
        parser.update({"pretrained": str(tmp_path / "pre"), **({"pixdim": given} if given else {})})
        assert parser.get_parsed_content("pixdim") == expected
    plain = CoverUNet(3, 1, [4, 8, 8, 16, 16], [16, 8, 8, 8])
    save_backbone(tmp_path / "plain", plain, plain.config)  # saved before spacing was recorded: native spacing
    parser = ConfigParser()
    parser.read_config(TRAIN)
    parser.update({"pretrained": str(tmp_path / "plain")})
    assert parser.get_parsed_content("pixdim") is None
