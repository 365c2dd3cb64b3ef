"""One retraining of a cover_seg bundle on the labels of a MONAI Label datastore, run after run.

``retrain`` is what the app's ``Train`` does (``apps/cover_label``): it fine-tunes through the bundle's own
``configs/train.json`` (settings checked by :func:`monai_cover.config.check_bundle`, reruns guarded by
:class:`~monai_cover.handlers.RunGuard`), each time in a new run folder (:mod:`monai_cover.labeling.runs`), so a
retrain after new labels is a new run, not a refused rerun:

1. the labeled images are split (validation sticky across runs, :func:`~monai_cover.labeling.split_validation`);
2. it starts from the served model (``--init_model``, head included) when there is one, else from the COVER backbone
   the server was given (``--pretrained``); ``continue_from_model: false`` starts from the backbone again;
3. a run stopped before its end (server stopped, training cancelled) is resumed from its last checkpoint by a retrain
   with the same inputs (labels, starting model, settings other than the budget);
4. the served model is scored on the new run's validation images (``configs/evaluate.json``) and replaced
   (atomically, :func:`~monai_cover.labeling.promote`) only when the new run scores at least as high, or
   ``promote: always``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from monai_cover.config.checks import choice, flag, share
from monai_cover.config.declarations import BUNDLES, MODEL, RUN
from monai_cover.errors import BadSettingError, find_cover_error, first_line
from monai_cover.labeling.runs import (
    FAILED,
    KEPT,
    SERVED,
    TRAINING,
    RetrainRuns,
    file_sha1,
    labeled_images,
    promote,
    served_run,
    split_validation,
    write_json,
)
from monai_cover.utils import read_json

__all__ = ["RETRAIN_OPTIONS", "label_names", "retrain", "train_options"]

#: options of a retrain request that are not bundle settings: name -> (default, check, meaning)
RETRAIN_OPTIONS: dict[str, tuple[Any, Callable[[str, Any], None], str]] = {
    "continue_from_model": (True, flag, "start from the served model (False: from the COVER backbone again)"),
    "promote": ("if_better", choice("if_better", "always"),
                "serve the new model if it scores at least as high as the served one on the same images, or always"),
    "val_fraction": (0.2, share, "share of the labeled images held out to validate (at least one)"),
}
#: keys MONAI Label itself adds to a train request (routing, devices): no training settings
PLUMBING = frozenset({"model", "local_rank", "gpus", "device", "bundle_path", "multi_gpu"})
#: cover_seg train settings the retraining sets itself: name -> where the value comes from
OWNED = {
    "bundle_root": "the app's model/<name> folder", "data_file": "the datastore's labels",
    "images_dir": "the datastore's labels", "labels_dir": "the datastore's labels",
    "output_dir": "runs/<run>/outputs", "model_dir": "runs/<run>/models", "ckpt_dir": "runs/<run>/outputs",
    "log_dir": "runs/<run>/outputs", "resume": "a stopped run is resumed by a retrain with the same inputs",
    "pretrained": "the server's --conf pretrained", "init_model": "continue_from_model",
    "label_names": "configs/metadata.json channel_def",
}
#: settings recorded with a trained model: a run continuing from it takes them from its model.json
MODEL_SETTINGS = tuple(n for n, s in BUNDLES["cover_seg"].settings.items() if MODEL in s.roles)
#: settings a rerun into the same folders must repeat (the others, e.g. the budget, extend a stopped run)
RUN_SETTINGS = frozenset(n for n, s in BUNDLES["cover_seg"].settings.items() if RUN in s.roles)
logger = logging.getLogger(__name__)


def train_options(request: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a train request into retrain options (:data:`RETRAIN_OPTIONS`, defaults filled in) and cover_seg
    train settings (passed to the bundle as overrides); MONAI Label's own keys are dropped.

    A MONAI Label client sends back the option lists of the trainer's ``config()``; a list is read as its first
    entry (the client's choice comes first).

    Raises:
        BadSettingError: a key that is no option or train setting, or a setting the retraining sets itself.
    """
    settings_of_train = {n for n, s in BUNDLES["cover_seg"].settings.items() if "train" in s.configs}
    options = {k: v[0] for k, v in RETRAIN_OPTIONS.items()}
    settings: dict[str, Any] = {}
    for key, value in request.items():
        if key in PLUMBING:
            continue
        if key in RETRAIN_OPTIONS:
            value = value[0] if isinstance(value, list) and value else value
            RETRAIN_OPTIONS[key][1](key, value)
            options[key] = value
        elif key in OWNED:
            raise BadSettingError(f"{key}: set by the retraining ({OWNED[key]}), not by a train request")
        elif key in settings_of_train:
            settings[key] = value
        else:
            raise BadSettingError(f"{key}: neither a retrain option ({', '.join(RETRAIN_OPTIONS)}) nor a cover_seg "
                                  "train setting (see bundles/cover_seg/docs/README.md, All settings)")
    return options, settings


def label_names(bundle_dir: str | os.PathLike) -> list[str]:
    """The structure names of a bundle from its ``configs/metadata.json`` (``channel_def`` of the output, as MONAI
    Label reads it), background (channel 0) left out.

    Raises:
        BadSettingError: no names, or channels that are not ``0..K`` (one line naming the file).
    """
    meta_file = Path(bundle_dir) / "configs" / "metadata.json"
    meta = read_json(meta_file)
    try:
        channel_def = next(iter(meta["network_data_format"]["outputs"].values()))["channel_def"]
        by_channel = {int(k): str(v) for k, v in channel_def.items()}
    except (KeyError, TypeError, ValueError, StopIteration):
        by_channel = {}
    if sorted(by_channel) != list(range(len(by_channel))) or len(by_channel) < 2:
        raise BadSettingError(f"{meta_file}: network_data_format.outputs.pred.channel_def must name channels 0 "
                              "(background), 1, 2, ... (the structures MONAI Label labels and training learns)")
    return [by_channel[k] for k in range(1, len(by_channel))]


def _digest(value: Any) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _start(models: Path, backbone: str | None, from_model: bool) -> dict[str, Any]:
    """What the run starts from: the served model (``from: model``) or the COVER backbone (``from: backbone``)."""
    if from_model and (models / "model.pt").is_file():
        if not (models / "model.json").is_file():
            raise BadSettingError(f"{models / 'model.pt'}: no model.json beside it to say how it was trained; cannot "
                                  "continue from it (copy its model.json there, or pass continue_from_model false "
                                  "to start from the COVER backbone)")
        return {"from": "model", "sha1": file_sha1(models / "model.pt"), "run": served_run(models)}
    if backbone is None:
        why = "continue_from_model is false" if from_model is False else "no served model yet"
        raise BadSettingError(f"nothing to start training from ({why}): start the server with --conf pretrained "
                              "<COVER backbone: cover_pretrain's models/model.pt or .safetensors>")
    if not Path(backbone).is_file():
        raise BadSettingError(f"{backbone}: no such file (the server's --conf pretrained: the COVER backbone, "
                              "cover_pretrain's models/model.pt or .safetensors)")
    return {"from": "backbone", "backbone": str(backbone), "sha1": file_sha1(backbone)}


def _model_settings(models: Path, settings: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``settings`` with every model setting of the served model (it is continued, so it keeps its kind)."""
    from monai_cover.weights import trained_settings

    trained = trained_settings(models)
    out = dict(settings)
    for name in MODEL_SETTINGS:
        if name in settings and json.loads(json.dumps(settings[name])) != json.loads(json.dumps(trained[name])):
            raise BadSettingError(f"{name} {settings[name]!r}: the served model was trained with {trained[name]!r} "
                                  "and this run continues from it (leave it out, or pass continue_from_model false "
                                  "to start from the COVER backbone)")
        if name != "label_names":
            out[name] = trained[name]
    if list(trained["label_names"]) != names:
        raise BadSettingError(f"{models / 'model.json'}: the served model labels {trained['label_names']}, "
                              f"configs/metadata.json's channel_def {names} (make them agree, or pass "
                              "continue_from_model false to start from the COVER backbone)")
    return out


def _snapshot(models: Path, run_dir: Path) -> Path:
    """The served model as this run found it, in ``run_dir/start`` (a hard link where possible: promotion replaces
    the served file by a new one, so the link keeps these bytes)."""
    start = run_dir / "start"
    start.mkdir(exist_ok=True)
    for name in ("model.pt", "model.json"):
        if not (start / name).exists():
            try:
                os.link(models / name, start / name)
            except OSError:
                shutil.copy2(models / name, start / name)
    return start / "model.pt"


def _workflow(configs: list[Path], run: bool = True, **overrides: Any):
    """Run a bundle config in this process, as ``python -m monai.bundle run`` does; returns the workflow."""
    from monai.bundle import ConfigWorkflow

    wf = ConfigWorkflow(config_file=[str(c) for c in configs], meta_file=str(configs[0].parent / "metadata.json"),
                        logging_file=False, workflow_type=None, **overrides)
    wf.initialize()
    if run:
        wf.run()
    wf.finalize()
    return wf


def _score_served(bundle: Path, run_dir: Path, names: list[str]) -> tuple[float | None, str]:
    """Validation mean Dice of the served model on ``run_dir``'s validation images (the bundle's evaluate.json, into
    ``run_dir/served_eval``), or ``None`` and why it cannot be scored."""
    from monai_cover.weights import trained_settings

    models = bundle / "models"
    if not (models / "model.json").is_file():
        return None, f"{models / 'model.pt'} has no model.json (its settings are unknown)"
    served_names = list(trained_settings(models)["label_names"])
    if served_names != names:
        return None, f"it labels {served_names}, the datastore's labels are {names}"
    configs = bundle / "configs"
    wf = _workflow([configs / "train.json", configs / "evaluate.json"], bundle_root=str(bundle),
                   data_file=str(run_dir / "datalist.json"), model_dir=str(models),
                   output_dir=str(run_dir / "served_eval"), overwrite=True)
    value = wf.parser.get_parsed_content("validate#evaluator").state.metrics.get("val_mean_dice")
    return (None, "its evaluation gave no Dice") if value is None else (float(value), "")


def retrain(
    bundle_dir: str | os.PathLike, datalist: Iterable[Mapping[str, Any]], request: Mapping[str, Any] | None = None,
    backbone: str | None = None,
) -> dict[str, Any]:
    """Fine-tune the cover_seg bundle in ``bundle_dir`` on ``datalist`` (MONAI Label's ``datastore.datalist()``) as
    a new run, and serve its model if it validated at least as well as the served one (module docstring).

    Args:
        bundle_dir: the bundle (``<app>/model/cover_seg``): ``configs/``, ``models/`` (served), ``runs/``.
        datalist: the labeled images, ``[{"image": path, "label": path}, ...]``.
        request: retrain options (:data:`RETRAIN_OPTIONS`) and cover_seg train settings (``iterations``,
            ``learning_rate``, ``roi_size`` ...); MONAI Label's own keys are ignored.
        backbone: the COVER backbone a run starts from when it does not continue the served model.

    Returns:
        the run's record (``run``, ``status`` served / kept, ``dice``, ``served_dice``, ``start``, ``labels``, ...).

    Raises:
        BadSettingError / BadInputError / CoverError: one line; the run's record then says ``failed`` and why.
    """
    bundle = Path(bundle_dir).resolve()
    models = bundle / "models"
    options, settings = train_options(request or {})
    images = labeled_images(datalist)
    runs = RetrainRuns(bundle)
    previous = runs.last(SERVED, KEPT)
    train_ids, val_ids = split_validation([i.id for i in images], (previous or {}).get("validation", []),
                                          options["val_fraction"])
    names = label_names(bundle)
    start = _start(models, backbone, options["continue_from_model"])
    if start["from"] == "model":
        settings = _model_settings(models, settings, names)
    labels = [{"image": i.id, "label": i.label, "sha1": i.sha1} for i in images]
    # what makes it another run, as the bundle's RunGuard sees it: a budget (epochs, iterations) only extends one
    run_settings = {k: v for k, v in settings.items() if k in RUN_SETTINGS}
    inputs = _digest([labels, val_ids, start, run_settings, names])

    run_dir = runs.resumable(inputs)
    resumed = run_dir is not None
    run_dir = run_dir or runs.new()
    record: dict[str, Any] = {
        "run": run_dir.name, "status": TRAINING, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "labels": labels,
        "training": train_ids, "validation": val_ids, "start": start, "label_names": names, "settings": settings,
        "options": options, "inputs": inputs,
    }
    if resumed:
        record = {**read_json(run_dir / "retrain.json"), "settings": settings, "options": options,
                  "resumed": time.strftime("%Y-%m-%d %H:%M:%S")}
    by_id = {i.id: {"image": i.image, "label": i.label} for i in images}
    split = {"training": [by_id[i] for i in train_ids], "validation": [by_id[i] for i in val_ids]}
    write_json(run_dir / "datalist.json", {**split, "test": split["validation"]})
    init_model = str(_snapshot(models, run_dir)) if start["from"] == "model" else None
    runs.write(record)
    origin = (f"the served model (run {start['run']})" if start.get("run") else "the served model") \
        if init_model else f"the COVER backbone {backbone}"
    logger.info(f"cover_seg retrain {run_dir.name}{' (resumed)' if resumed else ''}: {len(train_ids)} training, "
                f"{len(val_ids)} validation image(s) ({', '.join(val_ids)}), from {origin}")

    try:
        _workflow([bundle / "configs" / "train.json"], bundle_root=str(bundle),
                  data_file=str(run_dir / "datalist.json"), output_dir=str(run_dir / "outputs"),
                  model_dir=str(run_dir / "models"), pretrained=None if init_model else backbone,
                  init_model=init_model, label_names=names, **settings)
        dice = float(read_json(run_dir / "models" / "model.json")["best"])
        served_dice, why = (None, "no served model") if not (models / "model.pt").is_file() else \
            _score_served(bundle, run_dir, names)
    except Exception as e:
        expected = find_cover_error(e)  # MONAI wraps what a config expression raises
        error = f"{type(expected).__name__}: {expected}" if expected else first_line(e)
        record.update(status=FAILED, error=error, finished=time.strftime("%Y-%m-%d %H:%M:%S"))
        runs.write(record)
        raise
    has_served = (models / "model.pt").is_file()
    serve = not has_served or options["promote"] == "always" or (served_dice is not None and dice >= served_dice)
    record.update(dice=dice, served_dice=served_dice, finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    before = f"{served_dice:.4f}" if served_dice is not None else f"not scored: {why}" if has_served else "none"
    if serve:
        aside = promote(run_dir, models, {"run": run_dir.name, "dice": dice, "validation": val_ids})
        record.update(status=SERVED, replaced_model_kept_in=str(aside) if aside else None)
        decision = "now served"
    else:
        record.update(status=KEPT)
        why = "it scores higher" if served_dice is not None else why
        decision = (f"the served model stays ({why}; the new model is in {run_dir / 'models'}; a train request "
                    'with "promote": "always" serves a new run whatever its score)')
    runs.write(record)
    logger.info(f"cover_seg retrain {run_dir.name}: validation mean Dice {dice:.4f} on {', '.join(val_ids)} "
                f"(served model: {before}): {decision}")
    return record
