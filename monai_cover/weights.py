"""Save, load and export pretrained backbones: ``.pt`` (weights + config) and safetensors + JSON config.

Every loader here reads tensors only (``torch.load(weights_only=True)`` or safetensors): nothing unpickles
arbitrary objects from a weights file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from monai_cover.errors import BadInputError, MissingFileError, WeightsError, first_line
from monai_cover.utils import atomic_write, read_json

__all__ = [
    "save_backbone", "load_backbone_state", "backbone_config", "backbone_default", "backbone_inputs", "feature_network",
    "TrainedSettings", "trained_settings", "model_settings", "trained_network", "load_backbone", "load_model_file",
    "load_init_model", "reseed_backbone", "initial_weights", "KeyReport", "compare_keys", "BACKBONE_FORMAT",
    "FIELD_MODEL", "save_field_model", "load_field_model",
]

BACKBONE_FORMAT = "monai_cover.backbone/1"
FIELD_MODEL_FORMAT = "monai_cover.cover_net/1"
#: file name of the whole pretrained network (backbone + vector heads) beside the exported backbone
FIELD_MODEL = "cover_net.pt"
logger = logging.getLogger(__name__)


def save_backbone(model_dir: str | os.PathLike, backbone: nn.Module, config: Mapping[str, Any]) -> dict[str, Path]:
    """Export backbone weights as ``model.pt`` and ``model.safetensors`` + ``model.json`` in ``model_dir``.

    Args:
        model_dir: output folder (created).
        backbone: the backbone module (e.g. ``CoverNet.backbone``); its ``state_dict`` keys are stored unprefixed.
        config: constructor arguments needed to rebuild it (``spatial_dims``, ``in_channels``, ``channels``,
            ``decoder_channels``); stored beside the weights.

    Returns:
        paths of the written files by format.
    """
    from safetensors.torch import save_file

    model_dir = Path(model_dir)
    state = {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
    cfg = {"format": BACKBONE_FORMAT, **json.loads(json.dumps(dict(config)))}
    paths = {ext: model_dir / f"model.{ext}" for ext in ("pt", "safetensors", "json")}
    atomic_write(paths["pt"], lambda tmp: torch.save({"state_dict": state, "config": cfg}, tmp))
    atomic_write(paths["safetensors"], lambda tmp: save_file(state, tmp, metadata={"format": BACKBONE_FORMAT}))
    atomic_write(paths["json"], lambda tmp: Path(tmp).write_text(json.dumps(cfg, indent=2)))
    return paths


def save_field_model(model_dir: str | os.PathLike, network: nn.Module, config: Mapping[str, Any]) -> Path:
    """Write the whole pretrained ``CoverNet`` (backbone and vector heads: what predicts fields, e.g. for label
    propagation) as ``<model_dir>/cover_net.pt``: its state dict and the constructor arguments (``config``)."""
    path = Path(model_dir) / FIELD_MODEL
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    cfg = {"format": FIELD_MODEL_FORMAT, **json.loads(json.dumps(dict(config)))}
    atomic_write(path, lambda tmp: torch.save({"state_dict": state, "config": cfg}, tmp))
    return path


def load_field_model(path: str | os.PathLike) -> nn.Module:
    """Rebuild the ``CoverNet`` saved by :func:`save_field_model` (evaluation mode, on the CPU).

    Raises:
        MissingFileError / WeightsError: one line naming the file (missing; unreadable; a backbone-only file).
    """
    from monai_cover.networks import CoverNet

    path = Path(path)
    obj = _torch_load(path, f"no pretrained field model (cover_pretrain writes models/{FIELD_MODEL}; pretrain first "
                            "or pass --model_path)")
    cfg = dict(obj.get("config") or {}) if isinstance(obj, Mapping) else {}
    if cfg.get("format") != FIELD_MODEL_FORMAT:
        raise WeightsError(f"{path}: not a field model (a backbone-only model.pt predicts no fields; use the "
                           f"{FIELD_MODEL} that cover_pretrain writes beside it).")
    args = {k: cfg[k] for k in ("spatial_dims", "in_channels", "channels", "decoder_channels", "heads", "head_dim",
                                "radius") if k in cfg}
    net = CoverNet(**args)
    try:
        net.load_state_dict(obj["state_dict"])
    except RuntimeError as e:
        raise WeightsError(f"{path}: weights do not fit the network saved with them ({first_line(e)}).") from None
    return net.eval()


def _strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "backbone.") -> dict[str, torch.Tensor]:
    # accept whole-model checkpoints (CoverNet / CoverSegNet) as well as bare backbones
    if any(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return dict(state)


def _torch_load(path: Path, missing: str) -> Any:
    """``torch.load`` of tensors only, on the CPU; one-line errors: ``"<path>: <missing>."`` for a missing file,
    :func:`_unreadable` for anything else."""
    if not path.is_file():
        raise MissingFileError(f"{path}: {missing}.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise _unreadable(path, e) from None


#: what a Git LFS pointer file starts with (a repository cloned without its large files)
_LFS_POINTER = b"version https://git-lfs"
_TEXT_BYTES = frozenset(range(32, 127)) | {9, 10, 13}


def _not_weights(path: Path) -> str | None:
    """Why ``path`` holds no weights at all, judged from its first bytes (``None`` when they could be weights).

    A Git LFS pointer or any other text would otherwise reach PyTorch's unpickler, which reports it as refused
    pickled objects (or as ``KeyError: 101``); ``torch.save`` zips, legacy pickles and safetensors headers all start
    with bytes that are not text."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError:
        return None
    if not head:
        return "an empty file (0 bytes); copy or export it again"
    if head.startswith(_LFS_POINTER):
        return "a Git LFS pointer, not the weights; fetch them with `git lfs pull` in its repository"
    if all(b in _TEXT_BYTES for b in head):
        text = head.decode("ascii").strip().splitlines()[0][:40] if head.strip() else ""
        return f"a text file beginning {text!r}, not torch.save or safetensors weights; give the weights file"
    return None


def _unreadable(path: Path, e: BaseException) -> WeightsError:
    reason = _not_weights(path)
    if reason is not None:
        return WeightsError(f"{path}: not a readable weights file ({reason}).")
    if "weights only load failed" in str(e).lower():
        # never repeat PyTorch's advice to retry with weights_only=False: for an untrusted file that runs its code
        return WeightsError(f"{path}: not a readable weights file (it holds pickled Python objects, which are never "
                            "loaded: they could run code; save a plain state_dict of tensors instead).")
    return WeightsError(f"{path}: not a readable weights file ({first_line(e)}) (truncated or not written by torch.save"
                        " / safetensors; copy or export it again).")


def load_backbone_state(path: str | os.PathLike, missing: str = "check the path given as --pretrained",
                        ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read backbone weights and their config from ``.pt`` or ``.safetensors`` (+ ``.json`` beside it).

    Args:
        path: the weights file.
        missing: what to do when it does not exist (the setting that names it differs between workflows).

    Raises:
        MissingFileError / WeightsError: one line with the file name and the problem, for missing, truncated, pickled
            or foreign files.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: pretrained weights file not found ({missing}).")
    config: dict[str, Any] = {}
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
            cfg_path = path.with_suffix(".json")
            if cfg_path.is_file():
                config = json.loads(cfg_path.read_text())
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, Mapping) and "state_dict" in obj:
                state, config = obj["state_dict"], dict(obj.get("config") or {})
            elif isinstance(obj, Mapping) and "network" in obj:  # a training checkpoint
                state = obj["network"]
            elif isinstance(obj, Mapping):
                state = obj
            else:
                raise ValueError(f"unexpected content of type {type(obj).__name__}")
    except Exception as e:  # truncated zip, bad header, refused pickle...
        raise _unreadable(path, e) from None
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: not a readable weights file (its state dict holds non-tensor values).")
    return _strip_prefix(state), config


def _backbone_defaults() -> dict[str, Any]:
    """What a backbone without a record of its own was built with: :class:`~monai_cover.networks.CoverUNet`'s
    defaults, scaled by percentiles, at native spacing and size."""
    import inspect

    from monai_cover.networks.nets.backbone import CoverUNet

    params = inspect.signature(CoverUNet).parameters
    net = {k: list(p.default) if isinstance(p.default, tuple) else p.default for k, p in params.items()
           if k in ("spatial_dims", "in_channels", "channels", "decoder_channels")}
    return {**net, "intensity": "percentile", "pixdim": None, "image_size": None}


def backbone_config(path: str | os.PathLike | None, missing: str = "check the path given as --pretrained",
                    ) -> dict[str, Any]:
    """The settings a pretrained backbone was saved with, complete (``spatial_dims``, ``in_channels``, ``channels``,
    ``decoder_channels``, ``intensity``, ``pixdim``, ``image_size``), so fine-tuning and feature extraction build and
    feed the matching network without the user repeating them. Keys the file does not record (a training checkpoint,
    a bare state dict; ``None``: no pretraining) have the backbone's defaults: this is the one place they are filled
    in.

    Raises:
        MissingFileError / WeightsError: as :func:`load_backbone_state` (``missing``: what to do when ``path`` does not
            exist).
    """
    recorded: dict[str, Any] = {}
    if path is not None:
        sidecar = Path(path).with_suffix(".json")
        if Path(path).suffix == ".safetensors" and Path(path).is_file() and sidecar.is_file():
            recorded = dict(read_json(sidecar))  # without reading the tensors (load_backbone reads them later)
        else:
            recorded = load_backbone_state(path, missing)[1]
    return {**_backbone_defaults(), **recorded}


@dataclass
class KeyReport:
    """What happened when loading a state dict into a module."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the module, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the module
    mismatched: list[str] = field(default_factory=list)  # same key, different shape ("key: file -> module")

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        parts = [f"loaded {len(self.loaded)} tensors"]
        for name in ("missing", "unexpected", "mismatched"):
            keys = getattr(self, name)
            if keys:
                shown = ", ".join(keys[:5]) + (f", ... (+{len(keys) - 5})" if len(keys) > 5 else "")
                parts.append(f"{len(keys)} {name}: {shown}")
        return "; ".join(parts)


def compare_keys(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> KeyReport:
    """Which tensors of ``state`` fit a module whose ``state_dict()`` is ``own`` (same key and shape)."""
    rep = KeyReport()
    for k, v in state.items():
        if k not in own:
            rep.unexpected.append(k)
        elif own[k].shape != v.shape:
            rep.mismatched.append(f"{k}: {tuple(v.shape)} -> {tuple(own[k].shape)}")
        else:
            rep.loaded.append(k)
    rep.missing = [k for k in own if k not in state]
    return rep


def _inflate_input_convs(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor],
                         path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A single-channel backbone's input convolution, repeated over the ``C`` input channels of ``own`` and divided
    by ``C`` (so ``C`` identical channels give the pretrained response): a backbone pretrained on one modality at a
    time (``--modalities``) fine-tuned on all of them stacked. Other tensors are returned unchanged."""
    out = dict(state)
    for k, v in state.items():
        target = own.get(k)
        if (target is not None and v.ndim >= 3 and target.ndim == v.ndim and v.shape[1] == 1 and target.shape[1] > 1
                and v.shape[0] == target.shape[0] and v.shape[2:] == target.shape[2:]):
            c = target.shape[1]
            out[k] = v.repeat(1, c, *([1] * (v.ndim - 2))) / c
            logger.info(f"{path}: {k}: the single-channel input convolution spread over {c} input channels (/ {c})")
    return out


def load_backbone(module: nn.Module, path: str | os.PathLike, strict: bool = True) -> KeyReport:
    """Load pretrained backbone weights from ``path`` into ``module`` (a backbone, e.g. ``CoverSegNet.backbone``).

    Matching tensors are always loaded; the report lists missing, unexpected and shape-mismatched keys.

    Args:
        module: target backbone (a multi-channel one takes a single-channel backbone's input convolution spread over
            its channels).
        path: ``model.pt`` / ``model.safetensors`` written by :func:`save_backbone`, or a whole-model checkpoint.
        strict: raise :class:`~monai_cover.errors.WeightsError` (with the report) if any key is missing, unexpected or
            mismatched.

    Raises:
        WeightsError: unreadable file, nothing matched, or ``strict`` and the keys differ (one line).
    """
    state, _ = load_backbone_state(path)
    own = module.state_dict()
    _check_same_kind(state, own, path)
    state = _inflate_input_convs(state, own, path)
    rep = compare_keys(state, own)
    to_load = {k: state[k] for k in rep.loaded}
    if not rep.loaded:
        raise WeightsError(f"{path}: no tensor matches the network ({rep.summary()}) (is it a backbone of this "
                           "spatial_dims?).")
    if strict and not rep.ok:
        raise WeightsError(f"{path}: weights do not match the network: {rep.summary()} (set --channels and "
                           "--decoder_channels to the pretraining run's, or --pretrained_strict False).")
    module.load_state_dict(to_load, strict=False)
    # a partial load (--pretrained_strict False) leaves part of the network random: say so where it is seen
    (logger.info if rep.ok else logger.warning)(f"{path}: {rep.summary()}")
    return rep


def _check_same_kind(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor],
                     path: str | os.PathLike) -> None:
    """One line for a backbone of another kind than the network, which no width setting or non-strict load can
    fix: 2D kernels for a 3D network (or the reverse: only biases and norms would load), or an input convolution
    for other image channels (RGB vs gray, another number of modalities; one channel is spread over several)."""
    kernels = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items()
               if k in own and v.ndim >= 3 and own[k].ndim >= 3]
    if not kernels:
        return
    k, theirs, ours = kernels[0]  # the first convolution: the one reading the image
    if len(theirs) != len(ours):
        raise WeightsError(f"{path}: a {len(theirs) - 2}D backbone cannot initialise a {len(ours) - 2}D network "
                           f"({k}: {theirs} -> {ours}); pretrain in {len(ours) - 2}D"
                           + (", or fine-tune a 2D backbone slice by slice (--slicewise True)."
                              if len(theirs) < len(ours) else "."))
    if theirs[1] != ours[1] and theirs[1] != 1:
        raise WeightsError(f"{path}: the backbone reads {theirs[1]} image channel(s) and the network {ours[1]} "
                           f"({k}); fine-tune with the channels it was pretrained on (--color rgb for 3, --modalities "
                           "as in pretraining) or pretrain on these images.")


def backbone_default(name: str, backbone: Mapping[str, Any], spatial_dims: int | None = None, slicewise: bool = False,
                     modalities: int = 1) -> Any:
    """cover_seg's default of the setting ``name`` from the pretrained ``backbone`` (:func:`backbone_config`), so
    fine-tuning builds and feeds the network the backbone was pretrained as: ``spatial_dims`` (3 with
    ``slicewise``: volumes, whatever the 2D backbone's), ``pixdim`` (volumes of ``spatial_dims`` 3 only), ``color``
    (``rgb`` for a 3-channel backbone), ``intensity`` (percentiles for several ``modalities``), ``channels`` and
    ``decoder_channels``."""
    if name == "spatial_dims":
        return 3 if slicewise else backbone["spatial_dims"]
    if name == "pixdim":
        return backbone["pixdim"] if spatial_dims == 3 else None
    if name == "color":
        return "rgb" if backbone["in_channels"] == 3 else "gray"
    if name == "intensity":
        return "percentile" if modalities > 1 else backbone["intensity"]
    return backbone[name]


def backbone_inputs(spatial_dims: int, view_sizes: Sequence[Any], intensity: Any, pixdim: Any, frames: int = 0
                    ) -> dict[str, Any]:
    """How a pretrained backbone's inputs were made, recorded beside its weights (``model.json``) for fine-tuning and
    feature extraction to make theirs alike: the ``intensity`` scaling (percentiles for sequences: their frames are
    scaled together by percentiles), the 3D ``pixdim``, and for 2D images the ``image_size`` they were resized to
    (the load size of ``view_sizes``, :func:`~monai_cover.data.auto_view_sizes`; ``None`` for volumes)."""
    from monai.utils import ensure_tuple_rep

    image_size = [int(s) for s in ensure_tuple_rep(view_sizes[1], 2)] if spatial_dims == 2 else None
    return {"intensity": "percentile" if frames else intensity, "pixdim": pixdim, "image_size": image_size}


def feature_network(config: Mapping[str, Any]) -> nn.Module:
    """The feature extractor of a pretrained backbone: a :class:`~monai_cover.networks.CoverFeatureNet` of the
    architecture its record ``config`` (:func:`backbone_config`) names, so the architecture travels with the
    weights (loaded into its ``backbone`` with :func:`load_backbone`)."""
    from monai_cover.networks import CoverFeatureNet

    return CoverFeatureNet(spatial_dims=config["spatial_dims"], in_channels=config["in_channels"],
                           channels=config["channels"], decoder_channels=config["decoder_channels"])


def reseed_backbone(module: nn.Module, seed: int) -> nn.Module:
    """Redraw ``module``'s random initialisation from ``seed``: a new backbone built from its ``config`` under
    ``torch.manual_seed(seed)`` (the same scheme, the global random state untouched), copied in place.

    cover_seg's ``backbone_seed``: a scratch model whose backbone is drawn from one seed while its head, data order
    and augmentations follow ``seed`` (the benchmark pairs a scratch backbone with a pretraining seed).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        fresh = type(module)(**module.config)
    module.load_state_dict(fresh.state_dict())
    return module


def load_model_file(network: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a trained model's state dict (``models/model.pt`` of cover_seg) into ``network`` for inference.

    Raises:
        MissingFileError: no such file (no model trained yet).
        WeightsError: unreadable, pickled, or not fitting ``network`` (other labels or widths); one line each.
    """
    return _load_whole_model(
        network, Path(path),
        missing="no trained model (train one with configs/train.json first, or pass --model_dir with the folder "
                "holding model.pt)",
        not_a_model="expected the models/model.pt written by training",
        misfit="{path}: the model does not fit these inference settings ({report}) (set --label_names, --channels, "
               "--decoder_channels, --head_levels and --spatial_dims as in training).")


def _load_whole_model(network: nn.Module, path: Path, missing: str, not_a_model: str, misfit: str) -> nn.Module:
    """Every tensor of a trained cover_seg model (or of a training checkpoint's ``network``) into ``network`` (DDP
    unwrapped), or one line: ``missing`` for no file, ``not_a_model`` for another kind of file, ``misfit`` (with
    ``{path}`` and ``{report}``) for other labels or widths."""
    state = _torch_load(path, missing)
    state = state.get("network", state) if isinstance(state, Mapping) else state  # a training checkpoint works too
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: not a model state dict ({not_a_model}).")
    net = getattr(network, "module", network)
    rep = compare_keys(state, net.state_dict())
    if not rep.ok:
        report = rep.summary().split("; ", 1)[1]  # without "loaded n tensors"
        raise WeightsError(misfit.format(path=path, report=report))
    net.load_state_dict(state)
    return network


def load_init_model(network: nn.Module, path: str | os.PathLike, label_names: list[str]) -> nn.Module:
    """Start training from a trained cover_seg model (``--init_model models/model.pt``): every tensor, head included,
    is loaded into ``network`` (a retrain after new labels continues from the current model instead of the backbone).

    The model's ``model.json`` (written with it), when present, must record the same ``label_names``: a head trained
    for other structures would keep predicting them under the new names.

    Raises:
        MissingFileError: no such file.
        WeightsError / BadSettingError: unreadable, not fitting this run's widths, or other structures; one line each.
    """
    from monai_cover.errors import BadSettingError

    path = Path(path)
    record = path.with_suffix(".json")
    if record.is_file():
        recorded = trained_settings(path.parent)
        if "label_names" in recorded and list(recorded["label_names"]) != list(label_names):
            raise BadSettingError(f"--init_model {path}: trained for {recorded['label_names']}, this run has "
                                  f"--label_names {list(label_names)} (give the same names, or start from the "
                                  "backbone: --init_model None)")
    _load_whole_model(
        network, path, missing="check the path given as --init_model",
        not_a_model="--init_model takes the models/model.pt written by cover_seg training",
        misfit="--init_model {path}: the model does not fit this run's network ({report}) (give the --channels, "
               "--decoder_channels, --head_levels and --spatial_dims it was trained with).")
    logger.info(f"started from the trained model {path} (every tensor, head included)")
    return network


def initial_weights(network: nn.Module, backbone_seed: int | None = None, pretrained: str | os.PathLike | None = None,
                    strict: bool = True, init_model: str | os.PathLike | None = None,
                    label_names: list[str] | None = None) -> nn.Module:
    """Where cover_seg training starts, in this order, for one device and for DDP alike (both configs call this):
    the backbone's random draw from ``backbone_seed`` (scratch paired with a pretraining seed), the pretrained
    backbone (``pretrained``, :func:`load_backbone`), then a whole trained model (``init_model``,
    :func:`load_init_model`: a retrain continues from it). ``network`` is a ``CoverSegNet``; returns it."""
    if backbone_seed is not None:
        reseed_backbone(network.backbone, backbone_seed)
    if pretrained:
        load_backbone(network.backbone, pretrained, strict=strict)
    if init_model:
        load_init_model(network, init_model, list(label_names or []))
    return network


#: the settings that fix a segmentation model's tensors: a bare ``model.pt`` (without its ``model.json``) is used
#: only with them given on the command line
SIZES = ("label_names", "roi_size", "channels", "decoder_channels")
#: the other trained settings of a bare ``model.pt``: what cover_seg training uses unless told otherwise (a test holds
#: them to its train.json and the backbone's defaults)
BARE_MODEL_DEFAULTS = {"spatial_dims": 2, "slicewise": False, "multilabel": False, "head_levels": None, "modalities": 1,
                       "color": "gray", "intensity": "percentile", "pixdim": None, "image_size": None}


class TrainedSettings(Mapping):
    """The settings a cover_seg model was trained with: every setting with the ``MODEL`` role
    (:mod:`monai_cover.config.declarations`), from ``<model_dir>/model.json`` (written with the best model).
    Evaluation, inference, MONAI Label and Deploy read them from here, with no defaults of their own.

    A ``model.pt`` without its ``model.json`` runs with the :data:`SIZES` given on the command line (looking one of
    them up is a one-line :class:`WeightsError` naming it) and :data:`BARE_MODEL_DEFAULTS` for the rest; with no
    model yet, every setting is what training starts from (the network can be built; reading the weights fails);
    :class:`BadInputError` (at construction) when ``model.json`` is not JSON or lacks a setting.
    """

    def __init__(self, model_dir: str | os.PathLike) -> None:
        from monai_cover.config import BUNDLES, MODEL

        folder = Path(model_dir)
        self.record, self.model = folder / "model.json", folder / "model.pt"
        self._settings: dict[str, Any] | None = None
        if not self.record.is_file():
            return
        content = read_json(self.record)
        settings = content.get("settings") if isinstance(content, Mapping) else None
        settings = dict(settings) if isinstance(settings, Mapping) else {}
        missing = [n for n, s in BUNDLES["cover_seg"].settings.items() if MODEL in s.roles and n not in settings]
        if missing:
            raise BadInputError(f"{self.record}: the trained settings lack {', '.join(missing)} (not a cover_seg "
                                "model record; train the model again with configs/train.json)")
        self._settings = settings

    def __getitem__(self, name: str) -> Any:
        if self._settings is not None:
            return self._settings[name]
        if name in BARE_MODEL_DEFAULTS:
            return BARE_MODEL_DEFAULTS[name]
        if not self.model.is_file():
            # nothing trained yet: what training starts from, so that a MONAI Label app or a model-zoo check can
            # build the network before the first training; reading the weights then says there are none
            return {"label_names": ["foreground"], "roi_size": [256, 256],
                    **{k: v for k, v in _backbone_defaults().items() if k in SIZES}}[name]
        raise WeightsError(f"{self.model}: no model.json beside it to say the --{name} it was trained with (copy the "
                           f"model.json written with it into the folder, or pass --{name} and the other sizes: "
                           f"{', '.join('--' + s for s in SIZES)})")

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is recorded (a bare model records nothing)."""
        return name in (self._settings or {})

    def __iter__(self):
        return iter(self._settings or {})

    def __len__(self) -> int:
        return len(self._settings or {})


def trained_settings(model_dir: str | os.PathLike) -> TrainedSettings:
    """The settings the cover_seg model in ``model_dir`` was trained with (:class:`TrainedSettings`)."""
    return TrainedSettings(model_dir)


def model_settings(model_dir: str | os.PathLike, given: Mapping[str, Any]) -> dict[str, Any]:
    """The settings an inference run uses with the cover_seg model in ``model_dir``: each of ``given`` (the run's
    values of the settings with the ``MODEL`` role) as the model was trained with it where it is ``"auto"``, else
    as given (a bare ``model.pt`` without ``model.json`` needs its sizes given). A given value that differs from a
    recorded one is refused in one line (:func:`~monai_cover.config.check_trained_settings`)."""
    from monai_cover.config import check_trained_settings

    trained = TrainedSettings(model_dir)
    check_trained_settings(trained, given, str(model_dir))
    return {name: trained[name] if value == "auto" else value for name, value in given.items()}


def trained_network(settings: Mapping[str, Any], **options: Any) -> nn.Module:
    """The :class:`~monai_cover.networks.CoverSegNet` a cover_seg model of ``settings`` (:func:`model_settings`, or
    the ``model.json`` record) is: its architecture travels with its weights, which are loaded separately
    (:func:`load_model_file`; the network is built before a model exists, e.g. by a model-zoo check). ``options``:
    ``CoverSegNet``'s (one given wins over the settings')."""
    from monai_cover.config import network_dims, seg_input_channels, seg_output_channels
    from monai_cover.networks import CoverSegNet

    spatial_dims = settings["spatial_dims"]
    model = {"spatial_dims": network_dims(spatial_dims, settings["slicewise"]),
             "in_channels": seg_input_channels(settings["color"], spatial_dims, settings["modalities"]),
             "out_channels": seg_output_channels(settings["label_names"], settings["multilabel"]),
             "channels": settings["channels"], "decoder_channels": settings["decoder_channels"],
             "head_levels": settings["head_levels"]}
    return CoverSegNet(**{**model, **options})
