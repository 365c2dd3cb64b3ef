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
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch.nn as nn

from monai_cover.errors import MissingFileError, first_line
from monai_cover.utils import atomic_write, read_json
from monai_cover.weights import backbone_config, load_backbone

__all__ = ["export_hub_folder", "from_pretrained", "large_files", "model_card", "push_to_hub", "resolve_pretrained"]

#: what a hub folder holds (the weights, our config sidecar, the Hub's config, the card)
HUB_FILES = ("model.safetensors", "model.json", "config.json", "README.md")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth", ".json")


def _is_repo_id(source: str) -> bool:
    return bool(_REPO_ID.match(source)) and not source.endswith(_WEIGHTS_SUFFIXES)


def resolve_pretrained(source: str | Path | None) -> str | None:
    """The weights file behind ``--pretrained``: a file as given, ``model.safetensors`` (else ``model.pt``) of a
    folder, or of a Hugging Face Hub id ``owner/name`` downloaded into the Hub cache; ``None`` stays ``None``.

    Raises:
        MissingFileError: one line, for a folder without weights or an id that cannot be fetched.
    """
    if source is None:
        return None
    path = Path(str(source)).expanduser()
    if path.is_dir():
        for name in ("model.safetensors", "model.pt"):
            if (path / name).is_file():
                return str(path / name)
        raise MissingFileError(f"{path}: no model.safetensors or model.pt in this folder (give the weights file, "
                               "or a folder written by cover_pretrain or `python -m monai_cover.hub export`)")
    if path.exists() or not _is_repo_id(str(source)):
        return str(path)  # a file, or a missing path the weights loader reports in one line
    return resolve_pretrained(_download(str(source)))


def _download(repo_id: str) -> str:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise MissingFileError(f"{repo_id}: not a file or folder here; to fetch it from the Hugging Face Hub install "
                               "huggingface_hub (pip install -e '.[hub]')") from None
    try:
        return snapshot_download(repo_id, allow_patterns=list(HUB_FILES))
    except Exception as e:  # not found, offline without a cached copy, no network, no access
        raise MissingFileError(f"{repo_id}: not found on the Hugging Face Hub or in its local cache "
                               f"({first_line(e)})") from None


def from_pretrained(source: str | Path) -> nn.Module:
    """A :class:`~monai_cover.networks.CoverUNet` built from the saved config and loaded (strictly) with the weights
    of ``source`` (a file, a hub folder or a Hub id, as :func:`resolve_pretrained`)."""
    from monai_cover.networks import CoverUNet

    path = resolve_pretrained(source)
    cfg = backbone_config(path)
    keys = ("spatial_dims", "in_channels", "channels", "decoder_channels", "group_size", "negative_slope")
    net = CoverUNet(**{k: cfg[k] for k in keys if k in cfg})
    load_backbone(net, path, strict=True)
    return net


def model_card(config: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = (), data: str = "",
               license: str = "other", name: str = "COVER backbone") -> str:
    """A Hugging Face model card (YAML front matter + Markdown) for a backbone saved with ``config`` and, when
    given, the run's validation history (``val_history.json``: held-out endpoint error by iteration)."""
    dims = config.get("spatial_dims", "?")
    lines = ["---", f"license: {license}", "library_name: monai-cover",
             "tags: [medical-imaging, self-supervised-learning, monai, cover, " + f"{dims}d]", "---", "",
             f"# {name}", "",
             "A U-Net backbone pretrained with COVER (vector contrastive learning: the network regresses the "
             "displacement between two deformed views of one image; He & Li, ICCV 2025) by monai-cover's "
             "`cover_pretrain` bundle. Fine-tune it with `cover_seg --pretrained <this id or folder>`.", "",
             "| | |", "|---|---|", f"| dimensions | {dims}D, {config.get('in_channels', 1)} input channel(s) |",
             f"| encoder widths | {config.get('channels')} |", f"| decoder widths | {config.get('decoder_channels')} |",
             f"| initialisation | {config.get('init', '?')} |",
             f"| pretraining iterations | {config.get('pretrain_iterations', '?')} |",
             f"| pretraining data | {data or 'not described'} |"]
    if history:
        last = history[-1]
        lines.append(f"| held-out endpoint error | {last['val_epe']:.2f} voxels at iteration {last['iteration']} "
                     f"(predicting no motion: {last['val_epe_zero']:.2f}) |")
    lines += ["", "Load it: `monai_cover.hub.from_pretrained(\"<id or folder>\")` (a `CoverUNet`), or pass it to "
              "`cover_seg` as `--pretrained`.", ""]
    return "\n".join(lines)


def export_hub_folder(model_dir: str | Path, out_dir: str | Path, run_dir: str | Path | None = None,
                      data: str = "", license: str = "other") -> Path:
    """Write a hub folder (``HUB_FILES``) into ``out_dir`` from a ``cover_pretrain`` ``models/`` folder; with
    ``run_dir`` (its ``outputs/<d>d``) the card reports the last held-out endpoint error."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise MissingFileError(f"{weights}: no exported backbone here (run cover_pretrain first, or give its "
                               "--model_dir)")
    config = dict(read_json(model_dir / "model.json"))
    history_file = Path(run_dir) / "val_history.json" if run_dir else None
    history = json.loads(history_file.read_text()) if history_file and history_file.is_file() else []
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "model.safetensors", lambda tmp: shutil.copyfile(weights, tmp))
    for name in ("model.json", "config.json"):
        atomic_write(out_dir / name, lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2)))
    card = model_card(config, history, data, license)
    atomic_write(out_dir / "README.md", lambda tmp: Path(tmp).write_text(card))
    return out_dir


#: the files of a bundle's models/ folder that large_files.yml lists (those present)
LARGE_FILES = ("model.safetensors", "model.pt", "model.json")


def large_files(bundle_dir: str | Path, url_base: str) -> Path:
    """Write ``<bundle_dir>/large_files.yml``, MONAI's model-zoo list of a bundle's weights: each file of
    ``models/`` in :data:`LARGE_FILES` with its URL (``url_base`` + file name) and SHA-256, so that whoever has the
    bundle's configs gets the weights with ``python -m monai.bundle download_large_files --bundle_path <bundle>``
    (checked against the hash). Host the files at ``url_base`` yourself (e.g. a Hub repo's ``resolve/main/``).

    Raises:
        MissingFileError: no weights in ``<bundle_dir>/models``.
    """
    import hashlib

    import yaml

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
    lf = sub.add_parser("large_files", help="write <bundle>/large_files.yml (weights' URLs and SHA-256)")
    lf.add_argument("--bundle_dir", required=True, help="the bundle folder (its models/ holds the weights)")
    lf.add_argument("--url_base", required=True, help="where the files of models/ are hosted")
    args = ap.parse_args(argv)
    if args.command == "large_files":
        print(f"wrote {large_files(args.bundle_dir, args.url_base)}")
        return
    folder = export_hub_folder(args.model_dir, args.out, args.run_dir, args.data, args.license)
    print(f"wrote {folder}")
    if args.push:
        print(f"uploaded to {push_to_hub(folder, args.push)}")


if __name__ == "__main__":
    from monai_cover.errors import install_one_line_errors

    install_one_line_errors()
    main()
