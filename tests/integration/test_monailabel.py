"""``bundles/cover_seg`` in a real MONAI Label server (our app ``apps/cover_label``, whose inference is MONAI Label's
own ``BundleInferTask``, as in the ``monaibundle`` sample app), end to end: inference, then the labeling loop.

Three tiny 3D copies of the bundle (the real configs with small widths and two labels) go into ``<app>/model/``:

- ``cover_seg``: ``models/model.pt`` whose head makes the prediction a known constant class, so the returned label
  is checked exactly;
- ``cover_seg_random``: seeded random weights (a spatially varying prediction), checked voxel for voxel against the
  bundle's own standalone inference (``python -m monai.bundle run --config_file configs/inference.json``), which
  proves that MONAI Label undoes the bundle's reorientation and intensity steps the same way;
- ``cover_seg_train``: the stock configs (settings read from ``models/model.json``), serving the constant model at
  first; labels saved through the REST API (``PUT /datastore/label``), ``POST /train/`` fine-tunes it from a tiny
  COVER backbone, ``GET /train/`` shows the progress and the Dice, ``/infer/`` then serves the new model; a second
  train after one more label, stopped mid-run (``DELETE /train/``), started again, interrupted again by stopping the
  whole server (SIGTERM) and started on the restarted server, resumes and continues from the first run's model; a
  request with an unknown setting ends in one line; ``POST /activelearning/cover_farthest`` picks an unlabeled image
  unlike the labeled ones.

The real server (``python -m monailabel.main start_server``) runs on 127.0.0.1 as a subprocess, once for the module (a
start costs about a minute on 2 cores; the stop-and-resume check starts it again); ``GET /info/`` and ``POST
/infer/<model>?image=<id>&output=image`` are checked on a real MRI crop (``../shared/data/msd_hippocampus``, when
present) and on a synthetic volume with a permuted, flipped, anisotropic affine.

Needs ``monailabel``, whose pins clash with the project's environment: ``scripts/monailabel_integration.sh`` builds a
separate one (``.venv-monailabel``) and runs this file. Without ``monailabel`` the module is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip(
    "monailabel", reason="monailabel is not installed here; run scripts/monailabel_integration.sh (own venv)"
)

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import requests  # noqa: E402
import torch  # noqa: E402

from monai_cover.networks import CoverSegNet, CoverUNet  # noqa: E402
from monai_cover.weights import BARE_MODEL_DEFAULTS, save_backbone  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUNDLE_SRC = REPO / "bundles" / "cover_seg"
APP_SRC = REPO / "apps" / "cover_label"
CONSTANT, RANDOM, TRAIN = "cover_seg", "cover_seg_random", "cover_seg_train"
# Real MRI crops (MSD Task04 Hippocampus), never committed: ../shared/data as laid out in the README.
HIPPOCAMPUS = REPO.parent / "shared" / "data" / "msd_hippocampus" / "imagesTr"

LABELS = ["anterior", "posterior"]
CHANNELS = [4, 8, 8, 16, 16]
DECODER_CHANNELS = [16, 8, 8, 8]
ROI = [16, 16, 16]
EXPECTED_CLASS = 2  # cover_seg's head bias makes "posterior" win everywhere

STARTUP_TIMEOUT = float(os.environ.get("MONAILABEL_STARTUP_TIMEOUT", "180"))
INFER_TIMEOUT = 300.0
TRAIN_TIMEOUT = 300.0
#: labeled volumes for the training checks: bright blobs whose intensity says the class (learnable in a few steps)
BLOBS = [f"blobs_{i}" for i in range(4)]
BLOB_SHAPE = (24, 20, 16)
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _tiny_bundle(dst: Path, constant: bool, stock: bool = False) -> None:
    """Copy bundles/cover_seg to ``dst`` with 3D, tiny widths and two labels, plus a ``models/model.pt``; ``stock``:
    the configs unchanged, the settings in ``models/model.json`` (as training writes them) instead."""
    shutil.copytree(BUNDLE_SRC, dst, ignore=shutil.ignore_patterns("models", "eval", "runs", "outputs", "predictions"))
    cfg_file = dst / "configs" / "inference.json"
    cfg = json.loads(cfg_file.read_text())
    if not stock:
        cfg.update(spatial_dims=3, label_names=LABELS, channels=CHANNELS, decoder_channels=DECODER_CHANNELS,
                   roi_size=ROI)
    cfg_file.write_text(json.dumps(cfg, indent=4))

    meta_file = dst / "configs" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    fmt = meta["network_data_format"]
    fmt["inputs"]["image"]["spatial_shape"] = ROI  # MONAI Label takes the model's dimension from its length
    fmt["outputs"]["pred"].update(
        spatial_shape=ROI,
        num_channels=len(LABELS) + 1,
        channel_def={str(k): name for k, name in enumerate(["background", *LABELS])},
    )
    meta_file.write_text(json.dumps(meta, indent=4))

    torch.manual_seed(0)
    net = CoverSegNet(3, 1, len(LABELS) + 1, CHANNELS, DECODER_CHANNELS)
    if constant:
        with torch.no_grad():
            net.head.weight.zero_()
            net.head.bias.copy_(torch.tensor([0.0, 0.0, 10.0]))
    (dst / "models").mkdir()
    # the format the bundle's BestModelSaver writes: a plain state dict of CPU tensors
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, dst / "models" / "model.pt")
    if stock:
        settings = {**BARE_MODEL_DEFAULTS, "spatial_dims": 3, "label_names": LABELS, "roi_size": ROI,
                    "channels": CHANNELS, "decoder_channels": DECODER_CHANNELS}
        (dst / "models" / "model.json").write_text(json.dumps({"best": 0.0, "settings": settings}))


def _backbone(dst: Path) -> Path:
    """A tiny 3D COVER backbone (seeded random weights, as cover_pretrain exports them): what training starts from."""
    torch.manual_seed(3)
    config = {"spatial_dims": 3, "in_channels": 1, "channels": CHANNELS, "decoder_channels": DECODER_CHANNELS}
    return save_backbone(dst, CoverUNet(**config), config)["pt"]


def _blob_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A volume with one blob per label and its label map (0 background, k = blob k): intensity 40 + 60 k + noise."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(s) for s in BLOB_SHAPE], indexing="ij")
    label = np.zeros(BLOB_SHAPE, np.uint8)
    for k in range(1, len(LABELS) + 1):
        c = [rng.uniform(0.3, 0.7) * s for s in BLOB_SHAPE]
        label[sum((g - ci) ** 2 for g, ci in zip(grids, c)) < (0.25 * min(BLOB_SHAPE)) ** 2] = k
    return (40 + 60 * label + rng.normal(0, 8, BLOB_SHAPE)).astype(np.float32), label


def _studies(dst: Path) -> dict[str, str]:
    """One real hippocampus MRI (when ../shared/data has it) and one synthetic volume; returns kind -> study id."""
    dst.mkdir()
    ids = {}
    real = sorted(HIPPOCAMPUS.glob("*.nii.gz")) if HIPPOCAMPUS.is_dir() else []
    if real:
        shutil.copy(real[0], dst / real[0].name)
        ids["real"] = real[0].name[: -len(".nii.gz")]
    # Non-cubic, anisotropic, axes permuted and flipped: the bundle's RAS reorientation must be undone for the label
    # to come back in this geometry. Smooth blobs plus a ramp, so a random network's prediction has structure.
    shape = (21, 26, 11)
    rng = np.random.default_rng(0)
    grids = np.meshgrid(*[np.linspace(0, 1, s) for s in shape], indexing="ij")
    vol = 100 * grids[0] + 20 * grids[1]
    for _ in range(5):
        c, r = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.3)
        vol += 200 * np.exp(-sum((g - ci) ** 2 for g, ci in zip(grids, c)) / (2 * r**2))
    affine = np.array([[0.0, -1.2, 0.0, 40.0], [-0.8, 0.0, 0.0, 12.5], [0.0, 0.0, -2.0, -30.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(vol.astype(np.float32), affine), dst / "synthetic_oblique.nii.gz")
    ids["synthetic"] = "synthetic_oblique"
    # volumes to label and train on; their labels wait outside the studies until a test saves them
    (dst.parent / "truth").mkdir()
    for i, name in enumerate(BLOBS):
        image, label = _blob_case(i)
        nib.save(nib.Nifti1Image(image, np.diag([1.0, 1.2, 1.5, 1.0])), dst / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(label, np.diag([1.0, 1.2, 1.5, 1.0])), dst.parent / "truth" / f"{name}.nii.gz")
        ids[name] = name
    return ids


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, timeout: float = 10.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Server:
    """A real MONAI Label server on ``app`` (its own process group), which a test may kill and start again."""

    def __init__(self, root: Path, app: Path, studies: Path, ids: dict[str, str], ref_dir: Path, options: list[str]):
        self.root, self.app, self.studies, self.ids, self.ref_dir = root, app, studies, ids, ref_dir
        self.options, self.log, self.proc, self.base = options, root / "server.log", None, ""

    def start(self) -> float:
        """Start the server on a free port and wait for ``GET /info/``; returns the seconds it took."""
        port = _free_port()
        cmd = [sys.executable, "-m", "monailabel.main", "start_server", "--app", str(self.app), "--studies",
               str(self.studies), "--host", "127.0.0.1", "--port", str(port), *self.options]
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(cmd, cwd=self.root, env=ENV, stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.base = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"MONAI Label server exited ({self.proc.returncode}) before answering:\n{self.log_tail()}")
            try:
                _get_json(f"{self.base}/info/", timeout=5)
                return time.monotonic() - t0
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() - t0 > STARTUP_TIMEOUT:
                pytest.fail(f"MONAI Label server gave no /info/ within {STARTUP_TIMEOUT:.0f} s:\n{self.log_tail()}")
            time.sleep(1)

    def stop(self) -> None:
        """SIGTERM to the server and whatever it started (a training), as ``kill`` or a service manager sends it."""
        _stop(self.proc)

    def log_tail(self, n: int = 12000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else "(no log)"

    def study(self, kind: str) -> str:
        if kind not in self.ids:
            pytest.skip(f"no {kind} study (../shared/data/msd_hippocampus is absent)")
        return self.ids[kind]

    def infer(self, model: str, study: str, out: Path) -> nib.Nifti1Image:
        """``POST /infer/<model>?image=<study>&output=image``; the returned label saved to ``out`` and loaded."""
        url = f"{self.base}/infer/{model}?image={study}&output=image"
        req = urllib.request.Request(url, data=b"", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=INFER_TIMEOUT) as r:
                body, ctype = r.read(), r.headers.get("content-type", "")
        except urllib.error.HTTPError as e:
            pytest.fail(f"infer {model} {study}: HTTP {e.code} {e.read()[:2000]!r}\n{self.log_tail()}")
        assert body[:2] == b"\x1f\x8b", f"not a gzipped NIfTI (content-type {ctype}): {body[:200]!r}"
        out.write_bytes(body)
        return nib.load(out)

    def save_label(self, image: str) -> None:
        """``PUT /datastore/label?image=<id>&tag=final`` with the volume's true label map (as a client saves one)."""
        path = self.studies.parent / "truth" / f"{image}.nii.gz"
        with open(path, "rb") as f:
            r = requests.put(f"{self.base}/datastore/label", params={"image": image, "tag": "final"},
                             files={"label": (path.name, f)}, data={"params": "{}"}, timeout=60)
        assert r.status_code == 200, f"save label {image}: HTTP {r.status_code} {r.text[:2000]}\n{self.log_tail()}"

    def train(self, model: str, params: dict) -> dict:
        """``POST /train/<model>`` with ``params``, then ``GET /train/`` until the task ends; returns the last status,
        with ``seen``: every output line ``GET /train/`` showed while it ran."""
        r = requests.post(f"{self.base}/train/{model}", json=params, timeout=60)
        assert r.status_code == 200, f"train {model}: HTTP {r.status_code} {r.text[:2000]}"
        task_id, seen, t0 = r.json()["id"], [], time.monotonic()
        while time.monotonic() - t0 < TRAIN_TIMEOUT:
            task = next(t for t in _get_json(f"{self.base}/train/?all=true") if t["id"] == task_id)
            seen += [line for line in task.get("details", []) if line not in seen]
            if task["status"] not in ("SUBMITTED", "RUNNING"):
                return {**task, "seen": seen}
            time.sleep(0.3)
        pytest.fail(f"training gave no result within {TRAIN_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def served(self, model: str) -> dict:
        """The served ``models/model.json`` of ``model``."""
        return json.loads((self.app / "model" / model / "models" / "model.json").read_text())


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and whatever it started
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    root = tmp_path_factory.mktemp("monailabel")
    app = root / "cover_label"  # a copy, as a user makes one: the app's model/ folder fills with runs
    shutil.copytree(APP_SRC, app, ignore=shutil.ignore_patterns("model", "cache", "__pycache__"))
    _tiny_bundle(app / "model" / CONSTANT, constant=True)
    _tiny_bundle(app / "model" / RANDOM, constant=False)
    _tiny_bundle(app / "model" / TRAIN, constant=True, stock=True)
    backbone = _backbone(root / "backbone")
    studies = root / "studies"
    ids = _studies(studies)
    # pristine copy for the standalone bundle run (the server adds its datastore files to `studies`)
    ref_dir = root / "reference"
    (ref_dir / "images").mkdir(parents=True)
    for kind in ("real", "synthetic"):
        if kind in ids:
            shutil.copy(studies / f"{ids[kind]}.nii.gz", ref_dir / "images")

    options = ["--conf", "models", f"{CONSTANT},{RANDOM},{TRAIN}", "--conf", "pretrained", str(backbone)]
    srv = Server(root, app, studies, ids, ref_dir, options)
    try:
        print(f"MONAI Label server up in {srv.start():.1f} s")
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def reference(server) -> Path:
    """The bundle's own inference (``monai.bundle run``) of cover_seg_random on the same studies."""
    bundle = server.app / "model" / RANDOM
    out = server.ref_dir / "predictions"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(bundle / "configs" / "inference.json"),
           "--bundle_root", str(bundle), "--dataset_dir", str(server.ref_dir / "images"), "--output_dir", str(out)]
    proc = subprocess.run(cmd, cwd=server.ref_dir, env=ENV, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"bundle inference failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return out


def test_info_lists_bundles(server):
    info = _get_json(f"{server.base}/info/")
    models = info.get("models", {})
    version = json.loads((BUNDLE_SRC / "configs" / "metadata.json").read_text())["version"]
    for name in (CONSTANT, RANDOM):
        assert name in models, f"{name} not among models {list(models)}:\n{server.log_tail()}"
        model = models[name]
        assert model["labels"] == {label: k for k, label in enumerate(LABELS, 1)}, model
        assert model["dimension"] == 3, model
        assert model["type"] == "segmentation", model
        assert model.get("version") == version, model
    stats = _get_json(f"{server.base}/datastore/?output=stats")
    assert stats["total"] == len(server.ids), stats


@pytest.mark.parametrize("kind", ["real", "synthetic"])
def test_infer_constant_class_in_input_geometry(server, kind, tmp_path):
    study = server.study(kind)
    label = server.infer(CONSTANT, study, tmp_path / f"{study}_label.nii.gz")
    src = nib.load(server.studies / f"{study}.nii.gz")
    data = np.asarray(label.dataobj)
    assert data.shape == src.shape, (data.shape, src.shape)
    np.testing.assert_allclose(label.affine, src.affine, atol=1e-4)
    values = np.unique(data)
    assert values.tolist() == [EXPECTED_CLASS], f"label values {values}, expected only {EXPECTED_CLASS}"
    assert "Checkpoint keys don't match" not in server.log_tail(10**8), "model.pt keys did not match the network"


@pytest.mark.parametrize("kind", ["real", "synthetic"])
def test_infer_matches_standalone_bundle_inference(server, reference, kind, tmp_path):
    study = server.study(kind)
    label = server.infer(RANDOM, study, tmp_path / f"{study}_label.nii.gz")
    expected = nib.load(reference / f"{study}_seg.nii.gz")
    src = nib.load(server.studies / f"{study}.nii.gz")
    got, want = np.asarray(label.dataobj), np.asarray(expected.dataobj)
    assert got.shape == want.shape == src.shape, (got.shape, want.shape, src.shape)
    np.testing.assert_allclose(label.affine, src.affine, atol=1e-4)
    assert len(np.unique(want)) > 1, "the reference prediction is constant: the comparison would prove nothing"
    agree = float((got == want).mean())
    # same weights, same preprocessing and sliding window on the CPU: identical up to rare argmax near-ties
    assert agree >= 0.999, f"MONAI Label and the bundle's own inference agree on {agree:.4%} of voxels only"


FIRST_TRAIN = {"continue_from_model": False, "iterations": 40, "roi_size": ROI, "batch_size": 2, "val_interval": 10,
               "learning_rate": 0.01}
RETRAIN = {"iterations": 20, "batch_size": 2, "val_interval": 10, "learning_rate": 0.01}


@pytest.fixture(scope="module")
def first_train(server, tmp_path_factory) -> dict:
    """The served (constant) model's label of an unlabeled volume, then two labels saved and a first training from
    the COVER backbone (``continue_from_model`` false: the served model is not one to continue from)."""
    out = tmp_path_factory.mktemp("first_train")
    constant = (server.app / "model" / TRAIN / "models" / "model.pt").read_bytes()
    before = np.asarray(server.infer(TRAIN, BLOBS[3], out / "before.nii.gz").dataobj)
    for name in BLOBS[:2]:
        server.save_label(name)
    task = server.train(TRAIN, FIRST_TRAIN)
    assert task["status"] == "DONE", f"training ended {task['status']}:\n" + "\n".join(task["seen"][-40:])
    return {"before": before, "constant": constant, "task": task,
            "stats": _get_json(f"{server.base}/info/")["train_stats"][TRAIN]}


def test_train_from_the_backbone_serves_a_validated_model(server, first_train, tmp_path):
    task, stats = first_train["task"], first_train["stats"]
    assert stats["status"] == "served" and stats["labels"] == 2 and stats["start"]["from"] == "backbone", stats
    # progress while it ran, and the final Dice, through GET /train/
    assert any("train_loss" in line for line in task["seen"]), task["seen"]
    final = _get_json(f"{server.base}/train/")
    assert final["id"] == task["id"] and final["status"] == "DONE"
    assert any(f"validation mean Dice {stats['dice']:.4f}" in line and "now served" in line
               for line in final["details"]), final["details"]
    # served atomically from the run's folder; the model that was there (no run of ours) is kept aside
    served = server.served(TRAIN)
    assert served["retrain"]["run"] == stats["run"] and served["best"] == pytest.approx(stats["dice"])
    (aside,) = (server.app / "model" / TRAIN / "models").glob("replaced_*")
    assert (aside / "model.pt").read_bytes() == first_train["constant"]
    # /infer/ now answers with the new model: no longer the constant class
    after = server.infer(TRAIN, BLOBS[3], tmp_path / "after.nii.gz")
    assert np.unique(first_train["before"]).tolist() == [EXPECTED_CLASS]
    assert np.asarray(after.dataobj).shape == BLOB_SHAPE
    assert not np.array_equal(np.asarray(after.dataobj), first_train["before"])


@pytest.fixture(scope="module")
def second_train(server, first_train) -> dict:
    """One more label and a retrain, interrupted twice once it saved a checkpoint: stopped (``DELETE /train/``,
    MONAI Label's Stop: the training process is killed), started again, then the whole server stopped (SIGTERM to
    it and its training) and started again; then the same retrain with a smaller budget."""
    server.save_label(BLOBS[2])
    runs = server.app / "model" / TRAIN / "runs"
    known = {p.name for p in runs.iterdir()}
    served_file = server.app / "model" / TRAIN / "models" / "model.pt"
    served_before = served_file.read_bytes()
    long_run = {**RETRAIN, "iterations": 5000, "checkpoint_interval": 5}

    def start_and_wait_for_a_new_checkpoint(seen: set[str]) -> Path:
        r = requests.post(f"{server.base}/train/{TRAIN}", json=long_run, timeout=60)
        assert r.status_code == 200, r.text
        t0 = time.monotonic()
        while time.monotonic() - t0 < TRAIN_TIMEOUT:
            new = [c for run in runs.iterdir() if run.name not in known
                   for c in (run / "outputs" / "checkpoints").glob("checkpoint_*.pt") if c.name not in seen]
            if new:
                return new[0]
            time.sleep(0.2)
        pytest.fail(f"no new checkpoint of the retrain:\n{server.log_tail()}")

    def state(checkpoint: Path) -> dict:
        run = checkpoint.parents[2]
        return {"run": run.name, "record": json.loads((run / "retrain.json").read_text()),
                "served_unchanged": served_file.read_bytes() == served_before,
                "checkpoints": sorted(c.name for c in checkpoint.parent.glob("checkpoint_*.pt"))}

    checkpoint = start_and_wait_for_a_new_checkpoint(set())
    at_stop = {"task": requests.delete(f"{server.base}/train/", timeout=60).json(), **state(checkpoint)}
    checkpoint = start_and_wait_for_a_new_checkpoint(set(at_stop["checkpoints"]))
    server.stop()
    at_kill = {"exit": server.proc.returncode, **state(checkpoint)}
    server.start()
    task = server.train(TRAIN, RETRAIN)
    assert task["status"] == "DONE", "\n".join(task["seen"][-40:])
    return {"stop": at_stop, "kill": at_kill, "task": task,
            "stats": _get_json(f"{server.base}/info/")["train_stats"][TRAIN]}


def test_retrain_after_one_more_label_continues_from_the_first_model(server, first_train, second_train):
    first, stats = first_train["stats"], second_train["stats"]
    assert stats["run"] != first["run"] and stats["labels"] == 3
    assert stats["start"]["from"] == "model" and stats["start"]["run"] == first["run"], stats
    assert set(first["validation"]) <= set(stats["validation"])  # the served model is scored on the same images
    served_now = server.served(TRAIN)["retrain"]["run"]
    better = stats["dice"] >= stats["served_dice"]
    assert (stats["status"], served_now) == (("served", stats["run"]) if better else ("kept", first["run"])), stats


def test_a_stopped_training_or_server_loses_nothing_and_the_next_train_resumes_it(server, second_train):
    stop, kill, stats = second_train["stop"], second_train["kill"], second_train["stats"]
    assert stop["task"]["status"] == "STOPPED" and stop["served_unchanged"]
    assert stop["record"]["status"] == "training" and stop["checkpoints"]
    # Stop then Train again went on with the same run; the server's SIGTERM left it as it was, checkpoints included
    assert kill["run"] == stop["run"] and kill["served_unchanged"] and kill["record"]["status"] == "training"
    assert set(kill["checkpoints"]) - set(stop["checkpoints"]), kill
    # the same labels, model and settings (a smaller budget), on the restarted server: the run goes on from its
    # last checkpoint, the one written before the server stopped
    assert stats["run"] == stop["run"] and stats["status"] in ("served", "kept")
    last = f"/runs/{stop['run']}/outputs/checkpoints/{kill['checkpoints'][-1]}"
    assert any("resumed from" in line and last in line for line in second_train["task"]["seen"]), \
        second_train["task"]["seen"]


def test_next_sample_by_cover_features_is_an_unlabeled_image_unlike_the_labeled_ones(server, first_train):
    info = _get_json(f"{server.base}/info/")
    assert {"random", "cover_farthest"} <= set(info["strategies"]), info["strategies"]
    labeled = {i for i, obj in requests.get(f"{server.base}/datastore/?output=all", timeout=30).json()["objects"]
               .items() if "final" in obj.get("labels", {})}
    assert set(BLOBS[:2]) <= labeled

    picks = [requests.post(f"{server.base}/activelearning/cover_farthest", json={}, timeout=120).json()
             for _ in range(2)]
    assert picks[0]["id"] == picks[1]["id"], picks  # deterministic, the second time from the cache
    # the labeled blob volumes look alike; the unlabeled blob volume is the least new of all
    assert picks[0]["id"] in set(server.ids.values()) - labeled - {BLOBS[3]}, picks
    cache = list((server.app / "cache" / "cover_features").glob("*.npy"))
    assert len(cache) == len(server.ids), cache  # one descriptor per image, computed once

    random_pick = requests.post(f"{server.base}/activelearning/random", json={}, timeout=60).json()
    assert random_pick["id"] in set(server.ids.values()) - labeled


def test_a_train_request_that_cannot_be_honoured_ends_in_one_line(server, first_train):
    runs = server.app / "model" / TRAIN / "runs"
    before = sorted(p.name for p in runs.iterdir())
    served = (server.app / "model" / TRAIN / "models" / "model.pt").read_bytes()
    task = server.train(TRAIN, {"learning_rat": 0.1})
    assert task["status"] == "ERROR", task
    assert task["details"][-1].endswith("cover_seg retrain failed: BadSettingError: learning_rat: neither a retrain "
                                        "option (continue_from_model, promote, val_fraction) nor a cover_seg train "
                                        "setting (see bundles/cover_seg/docs/README.md, All settings)"), task["details"]
    assert not any("Traceback" in line for line in task["seen"])
    assert sorted(p.name for p in runs.iterdir()) == before  # no run started
    assert (server.app / "model" / TRAIN / "models" / "model.pt").read_bytes() == served
