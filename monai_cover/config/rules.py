"""Rules between bundle settings (a value that only fits with others, or with a trained model), each raising a
one-line :class:`~monai_cover.errors.BadSettingError`; single values are checked by their declarations
(:mod:`monai_cover.config.declarations`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from monai_cover.config.declarations import COLOR
from monai_cover.errors import BadSettingError

__all__ = [
    "check_crops_per_image", "check_modalities", "check_modality_intensity", "check_slicewise", "check_temporal",
    "check_trained_settings", "fit_patch_size", "image_channels", "network_dims", "seg_input_channels",
    "seg_output_channels", "seg_image_size", "seg_max_epochs", "seg_patch_size", "temporal_pairs",
]

logger = logging.getLogger(__name__)


def check_trained_settings(trained: Mapping[str, Any], given: Mapping[str, Any], model_dir: str) -> bool:
    """Raise :class:`BadSettingError` if a setting of this run differs from the one the model was trained with.

    ``trained``: :func:`monai_cover.weights.trained_settings` of ``model_dir``; ``given``: this run's values of the
    same names. Evaluation and inference take their defaults from ``trained``, so a difference is an override that
    cannot fit the model (or one that would silently mislabel structures); ``"auto"`` means the model's value
    (:func:`monai_cover.weights.model_settings`). Returns ``True``.
    """
    for name, value in given.items():
        if value == "auto":
            continue
        # through JSON, so tuples equal lists (and 1 == 1.0 as in Python)
        if name in trained and json.loads(json.dumps(trained[name])) != json.loads(json.dumps(value)):
            raise BadSettingError(
                f"--{name} {value!r}: the model in {model_dir} was trained with {trained[name]!r} (leave the "
                "setting out to use the model's, or point --model_dir or --bundle_root at the model you mean)")
    return True


def fit_patch_size(name: str, size: int | Sequence[int], spatial_dims: int, num_levels: int) -> int | list[int]:
    """``size`` (one value, or one per axis) as the network can take it: ``spatial_dims`` values (else
    :class:`BadSettingError`), every axis at least ``2 ** (num_levels - 1)`` (the backbone halves every axis once
    per level). A smaller axis is raised to that with a log line (the images are padded to it); sizes need not be
    multiples of it, the decoder resamples to each skip's size. ``size`` itself is returned when it fits, so a run's
    recorded settings do not change form."""
    sizes = [size] * spatial_dims if isinstance(size, int) else list(size) if isinstance(size, (list, tuple)) else []
    need = 2 ** (num_levels - 1)
    if not sizes or not all(isinstance(v, int) and v > 0 for v in sizes):
        raise BadSettingError(f"--{name} {size!r}: whole numbers of voxels expected, one or one per axis (or auto)")
    if len(sizes) != spatial_dims:
        raise BadSettingError(f"--{name} {size!r}: {spatial_dims} values expected, one per axis of the network's "
                              f"{spatial_dims}D input")
    if min(sizes) >= need:
        return size
    fitted = [max(s, need) for s in sizes]
    logger.info(f"--{name} {sizes} raised to {fitted}: the {num_levels}-level backbone halves each axis "
                f"{num_levels - 1} times, so every axis needs at least {need} voxels (images are padded to it; "
                "for stacks of a few thick slices --slicewise True trains a 2D network on the slices instead)")
    return fitted


def check_crops_per_image(crops: int, spatial_dims: int) -> int:
    """``crops`` if the data can give that many random crops per decoded image (volumes; a 2D image is resized
    whole, so one), else :class:`BadSettingError`."""
    if not isinstance(crops, int) or crops < 1 or (crops > 1 and spatial_dims != 3):
        raise BadSettingError(f"--crops_per_image {crops!r}: a whole number >= 1, and above 1 only for volumes "
                              "(--spatial_dims 3; 2D images are resized whole, views are drawn from them each step)")
    return crops


def image_channels(color: str, spatial_dims: int) -> int:
    """Input channels of the network for the ``color`` setting: 1 (``gray``) or 3 (``rgb``, 2D images only)."""
    COLOR("color", color)
    if color == "rgb" and spatial_dims != 2:
        raise BadSettingError(f"--color rgb: colour is for 2D images (photos, dermatology, endoscopy, fundus); "
                              f"--spatial_dims is {spatial_dims} (leave --color out for volumes)")
    return 3 if color == "rgb" else 1


def check_temporal(temporal_gap: int, temporal_share: float, method: str, modalities: int = 1, color: str = "gray",
                   slicewise: bool = False) -> int:
    """The frames each training sequence contributes (``temporal_gap + 1``; 0 when ``temporal_gap`` is 0: images,
    not sequences) if the other settings allow it, else one-line :class:`BadSettingError`. Each value alone was
    checked by its declaration (:mod:`monai_cover.config.declarations`)."""
    if not temporal_gap:
        return 0
    clash = {"--modalities": modalities != 1, "--color": color != "gray", "--slicewise": bool(slicewise)}
    for name, bad in clash.items():
        if bad:
            raise BadSettingError(f"--temporal_gap {temporal_gap} with {name}: a sequence's channels are its frames "
                                  f"(gray, one file per case); leave {name} out")
    if method != "cover" and temporal_share:
        raise BadSettingError(f"--temporal_gap {temporal_gap} with --method {method}: pairs of two frames train the "
                              "field, which only --method cover learns (or set --temporal_share 0)")
    return temporal_gap + 1


def temporal_pairs(frames: int, temporal_share: float) -> bool:
    """Whether pretraining draws pairs of two frames (and its loss is the temporal one): sequences
    (``frames``, :func:`check_temporal`) and a ``temporal_share`` above 0."""
    return frames > 0 and temporal_share > 0


def check_modalities(modalities: Any, color: str, intensity: Any, cross_modal: Any = None) -> int:
    """``modalities`` (co-registered channels per case) if the other settings allow it, else one-line
    :class:`BadSettingError`: modalities are gray channels, each scaled by its own percentiles, and a cross-modal
    share needs two or more of them (else it would be ignored)."""
    if isinstance(modalities, bool) or not isinstance(modalities, int) or modalities < 1:
        raise BadSettingError(f"--modalities {modalities!r}: the number of co-registered images per case (1, 2, ...)")
    if modalities == 1 and cross_modal is not None:
        raise BadSettingError(f"--cross_modal {cross_modal}: pairs across modalities need --modalities 2 or more "
                              "(each case a list of co-registered files); for single-modality data see "
                              "--synthetic_contrast")
    if modalities > 1 and color != "gray":
        raise BadSettingError(f"--modalities {modalities} with --color {color}: modalities are gray channels "
                              "(leave --color out)")
    check_modality_intensity(modalities, intensity)
    return modalities


def check_modality_intensity(modalities: int, intensity: Any) -> None:
    """One-line :class:`BadSettingError` for co-registered modalities with another scaling than per-modality
    percentiles (pretraining, fine-tuning and inference share the rule)."""
    if modalities > 1 and intensity != "percentile":
        raise BadSettingError(f"--modalities {modalities} with --intensity {intensity}: each modality is scaled by its "
                              "own percentiles (leave --intensity out; a CT window would flatten PET or MR)")


def seg_input_channels(color: str, spatial_dims: int, modalities: Any = 1) -> int:
    """Input channels of the segmentation network: the ``modalities`` (co-registered images per case) when there
    are several, else the ``color`` setting's (:func:`image_channels`)."""
    check_modalities(modalities, color, "percentile")
    return modalities if modalities > 1 else image_channels(color, spatial_dims)


def check_slicewise(slicewise: bool, spatial_dims: int, label_transfer: bool = False) -> bool:
    """Raise :class:`BadSettingError` where ``--slicewise True`` cannot apply: the data must be volumes
    (``spatial_dims`` 3), and label transfer matches features of whole volumes. Returns ``True``."""
    if slicewise and spatial_dims != 3:
        raise BadSettingError(f"--slicewise True: runs a 2D network on the slices of volumes, but --spatial_dims is "
                              f"{spatial_dims} (use --spatial_dims 3, or leave --slicewise out for 2D images)")
    if slicewise and label_transfer:
        raise BadSettingError("--slicewise True: label transfer does not run slice by slice yet (leave --slicewise "
                              "out to transfer with a 3D backbone)")
    return True


def network_dims(spatial_dims: int, slicewise: bool = False) -> int:
    """The network's dimension: 2 with ``slicewise`` (a 2D network on the slices of volumes, which
    :func:`check_slicewise` requires), else the data's ``spatial_dims``."""
    check_slicewise(slicewise, spatial_dims)
    return 2 if slicewise else spatial_dims


def seg_output_channels(label_names: Sequence[str], multilabel: bool = False) -> int:
    """Output channels of the segmentation network: one per structure, plus the background's unless
    ``multilabel`` (one sigmoid per structure, overlaps allowed)."""
    return len(label_names) + (0 if multilabel else 1)


#: the size 2D images are resized to for fine-tuning unless ``--image_size`` says otherwise
SEG_IMAGE_SIZE = (256, 256)


def seg_image_size(spatial_dims: int) -> list[int] | None:
    """The default ``image_size`` of cover_seg: :data:`SEG_IMAGE_SIZE` for 2D images, ``None`` (not resized) for
    volumes."""
    return list(SEG_IMAGE_SIZE) if spatial_dims == 2 else None


def seg_patch_size(roi_size: list[int], slicewise: bool = False) -> list[int]:
    """The training patch of a ``roi_size`` network: ``roi_size``, one slice deep with ``slicewise`` (a 2D network
    trained on the slices of volumes)."""
    return [*roi_size, 1] if slicewise else roi_size


def seg_max_epochs(epochs: int, iterations: int | None, steps_per_epoch: int) -> int:
    """cover_seg's epochs: ``epochs``, or with ``iterations`` the fewest epochs of ``steps_per_epoch`` that reach
    them."""
    return epochs if iterations is None else -(-iterations // steps_per_epoch)
