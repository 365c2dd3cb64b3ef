"""Share pretrained backbones through the Hugging Face Hub: a model folder, a model card, and ``--pretrained <id>``.

A hub folder is what ``cover_pretrain`` writes to ``models/`` (``model.safetensors`` + its ``model.json`` config)
plus ``config.json`` (the same config under the Hub's name) and ``README.md``, a model card generated from the run
(dimensions, widths, iterations, held-out endpoint error, data description, licence). ``cover_seg --pretrained``
accepts a weights file, such a folder, or a Hub id ``owner/name``, downloaded once through ``huggingface_hub`` into
its cache (``HF_HUB_OFFLINE=1`` reads the cache only).

    python -m monai_cover.hub export --model_dir bundles/cover_pretrain/models --out hub/cover-cxr \\
        --data "20 NIH chest radiographs" [--push owner/cover-cxr]

For model-zoo style distribution, ``large_files`` writes a bundle's ``large_files.yml`` (URLs and SHA-256 of its
weights) for ``python -m monai.bundle download_large_files``:

    python -m monai_cover.hub large_files --bundle_dir bundles/cover_seg \\
        --url_base https://huggingface.co/owner/cover-seg/resolve/main
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch.nn as nn

from monai_cover.errors import CoverError, MissingFileError, RunMismatchError, first_line
from monai_cover.utils import atomic_write, read_json
from monai_cover.weights import FIELD_MODEL, backbone_config, load_backbone

__all__ = [
    "export_hub_folder", "from_pretrained", "large_files", "model_card", "push_to_hub", "released_names",
    "resolve_field_model", "resolve_model_dir", "resolve_pretrained", "seg_model_card",
]

#: what a hub folder holds (the weights, our config sidecar, the Hub's config, the card; a segmentation model also
#: its model.pt, which cover_seg inference loads; a pretraining run also its whole network, cover_net.pt, which
#: label propagation loads)
HUB_FILES = ("model.safetensors", "model.pt", "model.json", "config.json", "README.md", FIELD_MODEL)
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth", ".json")
#: the backbones this project releases, one hub folder each (``released/<name>/``), reachable by name
RELEASED_DIR = Path(__file__).resolve().parents[1] / "released"
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")


def released_names() -> list[str]:
    """The names of the released backbones (``--pretrained <name>``) in this checkout."""
    return sorted(p.parent.name for p in RELEASED_DIR.glob("*/model.safetensors"))


def _released(source: str, path: Path) -> Path | None:
    """The released folder that ``source`` names when it is a bare name and no file or folder here; a bare name
    that is neither (``cover-hipocampus-3d``) is one line listing the released names."""
    if path.exists() or not _NAME.match(source) or source.endswith(_WEIGHTS_SUFFIXES):
        return None
    if (RELEASED_DIR / source / "model.safetensors").is_file():
        return RELEASED_DIR / source
    raise MissingFileError(f"{source}: no such file or folder here, and no released backbone of that name "
                           f"(released: {', '.join(released_names()) or 'none in this checkout'})")


def _is_repo_id(source: str) -> bool:
    return bool(_REPO_ID.match(source)) and not source.endswith(_WEIGHTS_SUFFIXES)


def _hub_id(source: str, path: Path) -> bool:
    """Whether ``source``, which is not a file or folder here, is read as a Hub id ``owner/name``. A path whose
    folder exists here (``outputs/modles``) is a mistyped local path: one line saying so, not a Hub lookup."""
    if path.exists() or not _is_repo_id(source):
        return False
    if path.parent.is_dir():
        raise MissingFileError(f"{path}: no such file or folder (the folder {path.parent} exists here, so this is read "
                               "as a local path, not a Hugging Face Hub id; check the name)")
    return True


def resolve_pretrained(source: str | Path | None) -> str | None:
    """The weights file behind ``--pretrained``: a file as given, ``model.safetensors`` (else ``model.pt``) of a
    folder, of a released backbone's folder (a bare name, :func:`released_names`), or of a Hugging Face Hub id
    ``owner/name`` downloaded into the Hub cache; ``None`` stays ``None``.

    Raises:
        MissingFileError: one line, for a folder without weights, an unknown bare name or an id that cannot be
            fetched.
    """
    if source is None:
        return None
    path = Path(str(source)).expanduser()
    path = _released(str(source), path) or path
    if path.is_dir():
        for name in ("model.safetensors", "model.pt"):
            if (path / name).is_file():
                return str(path / name)
        raise MissingFileError(f"{path}: no model.safetensors or model.pt in this folder (give the weights file, "
                               "or a folder written by cover_pretrain or `python -m monai_cover.hub export`)")
    if not _hub_id(str(source), path):
        return str(path)  # a file, or a missing path the weights loader reports in one line
    return resolve_pretrained(_download(str(source)))


def resolve_model_dir(source: str | Path) -> str:
    """cover_seg's ``--model_dir``: a folder as given, or a Hub id ``owner/name`` of a segmentation model exported
    with ``python -m monai_cover.hub export`` (downloaded once into the Hub cache)."""
    path = Path(str(source)).expanduser()
    if not _hub_id(str(source), path):
        return str(path)  # a folder, or a missing one that loading the model reports in one line
    return _download(str(source))


def resolve_field_model(source: str | Path) -> str:
    """The field model (``cover_net.pt``, backbone and vector heads) behind propagation's ``--model_path``: a file
    as given, ``cover_net.pt`` of a folder (a cover_pretrain ``models/`` folder or a hub folder), or of a Hugging
    Face Hub id ``owner/name`` downloaded into the Hub cache.

    Raises:
        MissingFileError: one line, for a folder or Hub model without ``cover_net.pt`` or an id that cannot be
            fetched.
    """
    path = Path(str(source)).expanduser()
    path = _released(str(source), path) or path
    if _hub_id(str(source), path):
        path = Path(_download(str(source)))
    if path.is_dir():
        if (path / FIELD_MODEL).is_file():
            return str(path / FIELD_MODEL)
        raise MissingFileError(f"{path}: no {FIELD_MODEL} in this folder (propagation needs the whole pretrained "
                               "network: give the models/ folder of a cover_pretrain run, or export the hub folder "
                               "again from one)")
    return str(path)  # a file, or a missing path the loader reports in one line


def _download(repo_id: str) -> str:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise MissingFileError(f"{repo_id}: not a file or folder here; to fetch it from the Hugging Face Hub install "
                               "huggingface_hub (pip install -e '.[hub]')") from None
    try:
        return snapshot_download(repo_id, allow_patterns=list(HUB_FILES))
    except Exception as e:  # not found, offline without a cached copy, no network, no access
        raise MissingFileError(f"{repo_id}: not a file or folder here, and not found on the Hugging Face Hub or in "
                               f"its local cache ({first_line(e)})") from None


def _seg_settings(weights: str) -> dict[str, Any] | None:
    """The cover_seg settings recorded beside ``weights`` (``model.json`` with ``settings``), else ``None``."""
    record = Path(weights).with_name("model.json")
    content = read_json(record) if record.is_file() else {}
    return dict(content["settings"]) if isinstance(content, Mapping) and content.get("settings") else None


def _seg_net(settings: Mapping[str, Any]) -> nn.Module:
    """The :class:`~monai_cover.networks.CoverSegNet` that cover_seg builds for ``settings``."""
    from monai_cover.networks import CoverSegNet

    out = len(settings["label_names"]) + (0 if settings.get("multilabel") else 1)
    in_channels = 3 if settings.get("color") == "rgb" else 1
    return CoverSegNet(2 if settings.get("slicewise") else settings["spatial_dims"], in_channels, out,
                       settings["channels"], settings["decoder_channels"], head_levels=settings.get("head_levels"))


def from_pretrained(source: str | Path) -> nn.Module:
    """The network saved at ``source`` (a file, a hub folder or a Hub id, as :func:`resolve_pretrained`), built from
    its config and loaded strictly: a :class:`~monai_cover.networks.CoverUNet` backbone, or for a cover_seg model
    (its ``model.json`` holds the training settings) the :class:`~monai_cover.networks.CoverSegNet`."""
    from monai_cover.networks import CoverUNet
    from monai_cover.weights import load_model_file

    path = resolve_pretrained(source)
    settings = _seg_settings(path)
    if settings is not None:
        net = _seg_net(settings)
        return load_model_file(net, Path(path).with_name("model.pt"))
    cfg = backbone_config(path)
    keys = ("spatial_dims", "in_channels", "channels", "decoder_channels", "group_size", "negative_slope")
    net = CoverUNet(**{k: cfg[k] for k in keys if k in cfg})
    load_backbone(net, path, strict=True)
    return net


def _input_row(settings: Mapping[str, Any]) -> str:
    """The card row saying how inputs were scaled and resampled (``intensity``, ``pixdim`` or 2D ``image_size`` of a
    ``model.json``; an older file without them was scaled by percentiles at native spacing and size)."""
    from monai_cover.transforms.intensity import PERCENTILES, intensity_window

    window = intensity_window(settings.get("intensity", "percentile"))
    scaling = (f"HU window {window[0]:g}..{window[1]:g} -> [0, 1]" if window else
               f"{PERCENTILES[0]:g}-{PERCENTILES[1]:g} percentiles -> [0, 1]")
    if settings.get("image_size"):
        return f"| input | {scaling}, resized to {'x'.join(str(s) for s in settings['image_size'])} |"
    return f"| input | {scaling}, spacing {settings.get('pixdim') or 'native'} |"


def model_card(config: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = (), data: str = "",
               license: str = "other", name: str = "COVER backbone", field_model: bool = False, note: str = "",
               effect: Mapping[str, Any] | None = None, half: bool = False) -> str:
    """A Hugging Face model card (YAML front matter + Markdown) for a backbone saved with ``config`` and, when
    given, the run's validation history (``val_history.json``: held-out endpoint error by iteration);
    ``field_model``: the folder also holds ``cover_net.pt`` (label propagation); ``note``: a paragraph under the
    title (what it is for, attribution); ``effect``: the measured effect of fine-tuning from it against scratch
    (:mod:`monai_cover.label_efficiency.effect`'s ``results.json``); ``half``: the weights are stored as float16."""
    dims = config.get("spatial_dims", "?")
    lines = ["---", f"license: {license}", "library_name: monai-cover",
             "tags: [medical-imaging, self-supervised-learning, monai, cover, " + f"{dims}d]", "---", "",
             f"# {name}", "",
             "A U-Net backbone pretrained with COVER (vector contrastive learning: the network regresses the "
             "displacement between two deformed views of one image; He & Li, ICCV 2025) by monai-cover's "
             "`cover_pretrain` bundle. Fine-tune it with `cover_seg --pretrained <this id or folder>`.", "",
             *([note, ""] if note else []),
             "| | |", "|---|---|", f"| dimensions | {dims}D, {config.get('in_channels', 1)} input channel(s) |",
             f"| encoder widths | {config.get('channels')} |", f"| decoder widths | {config.get('decoder_channels')} |",
             _input_row(config), f"| initialisation | {config.get('init', '?')} |",
             f"| pretraining iterations | {config.get('pretrain_iterations', '?')} |",
             f"| pretraining data | {data or 'not described'} |",
             *(["| stored as | float16 (loaded into float32 networks) |"] if half else [])]
    if history:
        last = history[-1]
        lines.append(f"| held-out endpoint error | {last['val_epe']:.2f} voxels at iteration {last['iteration']} "
                     f"(predicting no motion: {last['val_epe_zero']:.2f}) |")
    lines += ["", "Load it: `monai_cover.hub.from_pretrained(\"<id or folder>\")` (a `CoverUNet`), or pass it to "
              "`cover_seg` as `--pretrained`.", ""]
    if effect is not None:
        from monai_cover.label_efficiency.effect import effect_table

        lines += ["## Fine-tuning from it against scratch", "", *effect_table(effect), ""]
    if field_model:
        lines += [f"`{FIELD_MODEL}` is the whole pretrained network (backbone and vector heads): it propagates a "
                  "label through a sequence, `python -m monai.bundle run --config_file "
                  "bundles/cover_pretrain/configs/propagate.json --model_path <id or folder> --sequence <file> "
                  "--label <label of frame 0>`.", ""]
    return "\n".join(lines)


def _refuse_another_model(out_dir: Path, name: str, source: Path, overwrite: bool, stored: bytes | None = None
                          ) -> None:
    """One line, before anything is written, when ``out_dir`` already holds another model's ``name`` (the same
    model exported again is fine; ``stored``: the bytes it would write, when not ``source``'s own)."""
    existing = out_dir / name
    if existing.is_file() and not overwrite and existing.read_bytes() != (stored or source.read_bytes()):
        raise RunMismatchError(f"{out_dir}: holds the hub folder of another model (its {name} differs from {source}); "
                               "nothing was written (choose another --out, or pass --overwrite to replace it)")


def _half(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def _half_safetensors(weights: Path) -> bytes:
    """The bytes of ``weights`` (safetensors) with floating-point tensors as float16, same keys and metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save

    with safe_open(str(weights), "pt") as f:
        metadata = f.metadata()
    return save(_half(load_file(weights)), metadata=metadata)


def _copy_field_model(src: Path, dst: str, half: bool) -> None:
    """Copy ``cover_net.pt``; with ``half``, its floating-point weights as float16."""
    if not half:
        shutil.copyfile(src, dst)
        return
    import torch

    obj = torch.load(src, map_location="cpu", weights_only=True)
    torch.save({**obj, "state_dict": _half(obj["state_dict"])}, dst)


def export_hub_folder(model_dir: str | Path, out_dir: str | Path, run_dir: str | Path | None = None,
                      data: str = "", license: str = "other", overwrite: bool = False, name: str = "COVER backbone",
                      note: str = "", effect: str | Path | None = None, half: bool = False) -> Path:
    """Write a hub folder (``HUB_FILES``) into ``out_dir`` from a ``cover_pretrain`` ``models/`` folder (with
    ``run_dir``, its ``outputs/<d>d``, the card reports the last held-out endpoint error) or from a trained
    ``cover_seg`` ``models/`` folder (``model.pt`` + ``model.json``; the card reports the best validation Dice).
    A folder that holds another model's export is refused unless ``overwrite``. A backbone's card also takes a
    ``name``, a ``note`` and the ``effect`` measured from it (the ``results.json`` of
    ``python -m monai_cover.label_efficiency.effect``, which must have fine-tuned from these very weights);
    ``half`` stores its floating-point weights as float16 (half the size; they load into float32 networks)."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    weights = model_dir / "model.safetensors"
    if not weights.is_file() and (model_dir / "model.pt").is_file() and _seg_settings(str(model_dir / "model.pt")):
        _refuse_another_model(out_dir, "model.pt", model_dir / "model.pt", overwrite)
        return _export_seg_folder(model_dir, out_dir, data, license)
    if not weights.is_file():
        raise MissingFileError(f"{weights}: no exported backbone here (run cover_pretrain first, or give its "
                               "--model_dir)")
    stored = _half_safetensors(weights) if half else weights.read_bytes()
    _refuse_another_model(out_dir, "model.safetensors", weights, overwrite, stored)
    measured = None
    if effect is not None:
        measured = read_json(effect)
        if measured.get("backbone_sha1") != hashlib.sha1(stored).hexdigest():
            raise RunMismatchError(f"{effect}: measured with other weights than {weights} (its backbone_sha1 "
                                   "differs); measure this backbone, or give the effect of the run that made it")
    config = dict(read_json(model_dir / "model.json"))
    history_file = Path(run_dir) / "val_history.json" if run_dir else None
    history = json.loads(history_file.read_text()) if history_file and history_file.is_file() else []
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "model.safetensors", lambda tmp: Path(tmp).write_bytes(stored))
    if (model_dir / FIELD_MODEL).is_file():  # the whole network, for label propagation from the hub
        atomic_write(out_dir / FIELD_MODEL, lambda tmp: _copy_field_model(model_dir / FIELD_MODEL, tmp, half))
    for file in ("model.json", "config.json"):
        atomic_write(out_dir / file, lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2)))
    card = model_card(config, history, data, license, name, (out_dir / FIELD_MODEL).is_file(), note, measured, half)
    atomic_write(out_dir / "README.md", lambda tmp: Path(tmp).write_text(card))
    return out_dir


#: the files of a bundle's models/ folder that large_files.yml lists (those present)
LARGE_FILES = ("model.safetensors", "model.pt", "model.json", FIELD_MODEL)


def large_files(bundle_dir: str | Path, url_base: str) -> Path:
    """Write ``<bundle_dir>/large_files.yml``, MONAI's model-zoo list of a bundle's weights: each file of
    ``models/`` in :data:`LARGE_FILES` with its URL (``url_base`` + file name) and SHA-256, so that whoever has the
    bundle's configs gets the weights with ``python -m monai.bundle download_large_files --bundle_path <bundle>``
    (checked against the hash). Host the files at ``url_base`` yourself (e.g. a Hub repo's ``resolve/main/``).

    Raises:
        MissingFileError: no weights in ``<bundle_dir>/models``.
    """
    import hashlib

    from monai.utils import optional_import

    yaml, has_yaml = optional_import("yaml")
    if not has_yaml:
        raise CoverError("large_files.yml needs PyYAML: pip install pyyaml (it comes with the hub extra)")
    bundle_dir = Path(bundle_dir)
    files = [bundle_dir / "models" / name for name in LARGE_FILES if (bundle_dir / "models" / name).is_file()]
    if not any(f.suffix in (".safetensors", ".pt") for f in files):
        raise MissingFileError(f"{bundle_dir / 'models'}: no model.safetensors or model.pt to list (train the bundle "
                               "first, or give its folder)")
    entries = [{"path": f"models/{f.name}", "url": f"{url_base.rstrip('/')}/{f.name}",
                "hash_val": hashlib.sha256(f.read_bytes()).hexdigest(), "hash_type": "sha256"} for f in files]
    out = bundle_dir / "large_files.yml"
    atomic_write(out, lambda tmp: Path(tmp).write_text(yaml.safe_dump({"large_files": entries}, sort_keys=False)))
    return out


def seg_model_card(record: Mapping[str, Any], data: str = "", license: str = "other",
                   name: str = "COVER segmentation model") -> str:
    """A model card for a cover_seg model from its ``model.json`` record (settings and best validation metric)."""
    st = record.get("settings", {})
    dims = st.get("spatial_dims", "?")
    lines = ["---", f"license: {license}", "library_name: monai-cover",
             f"tags: [medical-imaging, segmentation, monai, cover, {dims}d]", "---", "", f"# {name}", "",
             "A segmentation network fine-tuned by monai-cover's `cover_seg` bundle (a U-Net backbone, typically "
             "pretrained with COVER, and a 1x1 head).", "",
             "| | |", "|---|---|", f"| structures | {', '.join(st.get('label_names', []))} "
             f"({'binary channels' if st.get('multilabel') else 'one label map'}) |",
             f"| dimensions | {dims}D{', slice by slice' if st.get('slicewise') else ''} |",
             f"| encoder widths | {st.get('channels')} |", f"| decoder widths | {st.get('decoder_channels')} |",
             f"| window | {st.get('roi_size')} voxels |", _input_row(st),
             f"| training data | {data or 'not described'} |"]
    if "best" in record:
        lines.append(f"| best validation {record.get('metric', 'metric')} | {record['best']:.4f} "
                     f"(epoch {record.get('epoch', '?')}) |")
    lines += ["", "Segment with it: `python -m monai.bundle run --config_file bundles/cover_seg/configs/inference.json "
              "--model_dir <this id or folder> --dataset_dir <images>`; in Python "
              "`monai_cover.hub.from_pretrained(\"<id or folder>\")` (a `CoverSegNet`).", ""]
    return "\n".join(lines)


def _export_seg_folder(model_dir: Path, out_dir: Path, data: str, license: str) -> Path:
    """A hub folder from a cover_seg ``models/`` folder: ``model.pt`` (what inference loads), the same tensors as
    ``model.safetensors``, ``model.json`` (the settings), ``config.json`` and the card."""
    from safetensors.torch import save_file

    from monai_cover.weights import load_model_file

    record = dict(read_json(model_dir / "model.json"))
    net = load_model_file(_seg_net(record["settings"]), model_dir / "model.pt")  # fails in one line if it does not fit
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "model.pt", lambda tmp: shutil.copyfile(model_dir / "model.pt", tmp))
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    atomic_write(out_dir / "model.safetensors", lambda tmp: save_file(state, tmp))
    atomic_write(out_dir / "model.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2)))
    atomic_write(out_dir / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(record["settings"], indent=2)))
    atomic_write(out_dir / "README.md", lambda tmp: Path(tmp).write_text(seg_model_card(record, data, license)))
    return out_dir


def push_to_hub(folder: str | Path, repo_id: str, private: bool = True, token: str | None = None) -> str:
    """Upload a hub folder to ``repo_id`` (created, private unless told otherwise); returns the repo URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, allow_patterns=list(HUB_FILES))
    return str(url)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m monai_cover.hub", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write a hub folder from a cover_pretrain models/ folder")
    ex.add_argument("--model_dir", required=True)
    ex.add_argument("--out", required=True)
    ex.add_argument("--run_dir", default=None, help="the run's outputs/<d>d (for the held-out endpoint error)")
    ex.add_argument("--data", default="", help="one line describing the pretraining data, for the model card")
    ex.add_argument("--license", default="other")
    ex.add_argument("--push", default=None, metavar="OWNER/NAME", help="also upload it (private)")
    ex.add_argument("--overwrite", action="store_true", help="replace another model's export in --out")
    ex.add_argument("--name", default="COVER backbone", help="the model card's title")
    ex.add_argument("--note", default="", help="a paragraph for the card: what it is for, attribution")
    ex.add_argument("--effect", default=None, help="results.json of monai_cover.label_efficiency.effect on it")
    ex.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
    lf = sub.add_parser("large_files", help="write <bundle>/large_files.yml (weights' URLs and SHA-256)")
    lf.add_argument("--bundle_dir", required=True, help="the bundle folder (its models/ holds the weights)")
    lf.add_argument("--url_base", required=True, help="where the files of models/ are hosted")
    args = ap.parse_args(argv)
    if args.command == "large_files":
        print(f"wrote {large_files(args.bundle_dir, args.url_base)}")
        return
    folder = export_hub_folder(args.model_dir, args.out, args.run_dir, args.data, args.license, args.overwrite,
                               args.name, args.note, args.effect, args.half)
    print(f"wrote {folder}")
    if args.push:
        print(f"uploaded to {push_to_hub(folder, args.push)}")


if __name__ == "__main__":
    from monai_cover.errors import install_one_line_errors

    install_one_line_errors()
    main()
