"""The next image to label by COVER features: the unlabeled image least like every labeled one.

Each image is described once by the pretrained backbone: the mean and standard deviation over space of every decoder
level's channels, each level's part L2-normalised, the whole L2-normalised (a unit vector; images are compared by
cosine). The descriptor is cached in a folder under the SHA-1 of the image's content (a renamed or copied file is
not computed again) and of the backbone's weights and the preprocessing.

The pick is the farthest point (core-set style, one step): the unlabeled image whose nearest labeled image is
farthest away, i.e. the kind of image the labels cover least. With no labels yet, the most typical image (closest to
the mean of all) is picked instead: the first label is then the most representative.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from monai_cover.data.fingerprint import content_fingerprint
from monai_cover.errors import find_cover_error, first_line
from monai_cover.labeling.runs import file_sha1
from monai_cover.utils import atomic_write

__all__ = ["FeatureIndex", "farthest_unlabeled", "pooled_descriptor"]

#: changes when the descriptor changes, so that old cache entries are not mixed with new ones
DESCRIPTOR_VERSION = 1
#: longest side an image is described at (larger ones are resized down): bounds the time and memory per image
MAX_SIDE = {2: 512, 3: 128}
logger = logging.getLogger(__name__)


def pooled_descriptor(backbone: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The unit descriptor of one image: per decoder level, the channels' mean and standard deviation over space
    (``2 C_l`` values, L2-normalised, so that every level weighs the same), concatenated and L2-normalised.

    Args:
        backbone: a COVER backbone (:class:`~monai_cover.networks.CoverUNet`: levels finest first).
        image: ``(1, C, *S)``, preprocessed as in pretraining.

    Returns:
        ``(sum_l 2 C_l,)`` float32 on the CPU.
    """
    with torch.no_grad():
        levels = backbone(image)
    parts = []
    for level in levels:
        flat = level[0].flatten(1).float()
        # population std: the bottleneck of a small image can be one voxel, where the sample std is NaN
        parts.append(F.normalize(torch.cat([flat.mean(1), flat.std(1, correction=0)]), dim=0))
    return F.normalize(torch.cat(parts), dim=0).cpu()


def farthest_unlabeled(features: Mapping[str, np.ndarray], labeled: Sequence[str]) -> tuple[str, float]:
    """The unlabeled id whose nearest labeled image is farthest (cosine distance ``1 - cos``), and that distance;
    with no labeled image among ``features``, the unlabeled id closest to the mean of all, and its distance to it.
    Ties go to the first id in sorted order.

    Raises:
        ValueError: no unlabeled image in ``features``.
    """
    ids = sorted(features)
    unlabeled = [i for i in ids if i not in set(labeled)]
    if not unlabeled:
        raise ValueError("every image is labeled")
    vectors = {i: np.asarray(features[i], np.float64) for i in ids}
    known = [vectors[i] for i in ids if i in set(labeled)]
    if known:
        reference = np.stack(known)
        distance = {u: float(np.min(1.0 - reference @ vectors[u])) for u in unlabeled}
        best = max(unlabeled, key=lambda u: (distance[u], -unlabeled.index(u)))
    else:
        mean = np.mean(np.stack(list(vectors.values())), 0)
        mean /= np.linalg.norm(mean) or 1.0
        distance = {u: float(1.0 - mean @ vectors[u]) for u in unlabeled}
        best = min(unlabeled, key=lambda u: (distance[u], unlabeled.index(u)))
    return best, distance[best]


class FeatureIndex:
    """Pooled COVER descriptors of images (:func:`pooled_descriptor`), computed once per image content and kept in
    ``cache_dir`` (``<content sha1>_<key>.npy``; ``key`` names the backbone weights and the preprocessing).

    The backbone is loaded only when an image is not cached. Images are preprocessed as the backbone was pretrained:
    RAS orientation, its ``pixdim`` (3D) or ``image_size`` (2D), its intensity scaling; then resized down to at most
    :data:`MAX_SIDE` voxels along the longest side and padded to the backbone's smallest input.

    Args:
        backbone_file: the COVER backbone (cover_pretrain's ``models/model.pt`` or ``.safetensors``).
        cache_dir: where descriptors are kept (created).
    """

    def __init__(self, backbone_file: str | os.PathLike, cache_dir: str | os.PathLike) -> None:
        from monai_cover.weights import backbone_config

        self.backbone_file, self.cache_dir = Path(backbone_file), Path(cache_dir)
        self.config = backbone_config(self.backbone_file)
        settings = {k: self.config.get(k) for k in ("spatial_dims", "in_channels", "pixdim", "image_size",
                                                    "intensity")}
        text = json.dumps([file_sha1(self.backbone_file), settings, DESCRIPTOR_VERSION], sort_keys=True, default=str)
        self.key = hashlib.sha1(text.encode()).hexdigest()[:12]
        self._net: torch.nn.Module | None = None
        self._transform = None

    def _load(self) -> None:
        from monai.transforms import Compose, SpatialPadd

        from monai_cover.config import seg_input_channels
        from monai_cover.data import seg_preprocessing
        from monai_cover.networks import CoverUNet
        from monai_cover.weights import load_backbone

        cfg = self.config
        params = inspect.signature(CoverUNet).parameters
        net = CoverUNet(**{k: v for k, v in cfg.items() if k in params})
        load_backbone(net, self.backbone_file, strict=True)
        self._net = net.eval()
        dims = cfg["spatial_dims"]
        color = "rgb" if cfg["in_channels"] == 3 else "gray"
        smallest = 2 ** (len(cfg["channels"]) - 1)
        self._transform = Compose([
            seg_preprocessing(spatial_dims=dims, keys=["image"], image_size=cfg.get("image_size") if dims == 2 else
                              None, pixdim=cfg.get("pixdim") if dims == 3 else None,
                              channels=seg_input_channels(color, dims, 1), intensity=cfg.get("intensity")),
            _Shrink(MAX_SIDE[dims]),
            SpatialPadd(keys="image", spatial_size=[smallest] * dims),
        ])

    def _compute(self, path: str) -> np.ndarray:
        if self._net is None:
            self._load()
        image = self._transform({"image": path})["image"]
        return pooled_descriptor(self._net, torch.as_tensor(image)[None]).numpy()

    def features(self, images: Mapping[str, str]) -> dict[str, np.ndarray]:
        """``{id: descriptor}`` of ``images`` (``{id: path}``), from the cache where possible. An image that cannot
        be read is left out with one log line naming it (the others are still compared)."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        out: dict[str, np.ndarray] = {}
        for image_id, path in images.items():
            entry = self.cache_dir / f"{content_fingerprint(path)}_{self.key}.npy"
            if entry.is_file():
                out[image_id] = np.load(entry)
                continue
            try:
                vector = self._compute(path)
            except Exception as e:
                expected = find_cover_error(e)
                logger.warning(f"{path}: left out of the choice of the next image ({expected or first_line(e)})")
                continue
            buffer = io.BytesIO()
            np.save(buffer, vector)
            atomic_write(entry, lambda tmp, data=buffer.getvalue(): Path(tmp).write_bytes(data))
            out[image_id] = vector
        return out


class _Shrink:
    """Resize ``image`` down (trilinear/bilinear, aspect kept) when its longest side exceeds ``max_side``."""

    def __init__(self, max_side: int) -> None:
        self.max_side = max_side

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        from monai.transforms import Resize

        image = data["image"]
        if max(image.shape[1:]) > self.max_side:
            data = dict(data)
            data["image"] = Resize(spatial_size=self.max_side, size_mode="longest", mode="area")(image)
        return data
