"""Segmentation pre/post-processing shared by the cover_seg configs (2D and 3D, multi-class or multi-label)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from monai.transforms import (
    Activationsd,
    AsDiscreted,
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    Resized,
    Spacingd,
    SpatialPadd,
)

from monai_cover.capabilities import resolve_dicom_seg
from monai_cover.config import check_modality_intensity, seg_input_channels, seg_output_channels, seg_patch_size
from monai_cover.transforms.checks import CheckImaged
from monai_cover.transforms.compose import CheckedCompose
from monai_cover.transforms.intensity import intensity_scalingd
from monai_cover.transforms.io import SafeLoadImaged, to_ras

__all__ = ["SEG_ROTATE_RAD", "model_postprocessing", "model_preprocessing", "prediction_savers", "seg_preprocessing",
           "seg_postprocessing", "seg_rotate_range"]


def seg_preprocessing(
    spatial_dims: int = 2,
    keys: Sequence[str] = ("image", "label"),
    image_size: Sequence[int] | None = None,
    pixdim: Sequence[float] | None = None,
    pad_size: Sequence[int] | None = None,
    multilabel: bool = False,
    num_classes: int | None = None,
    check: bool = True,
    rgb_to_gray: bool = True,
    channels: int = 1,
    modalities: int = 1,
    intensity: Any = "percentile",
) -> CheckedCompose:
    """Deterministic loading: channel first, 3D RAS + optional spacing, intensity to [0, 1], optional 2D resize.

    ``keys[0]`` is the image; further keys are labels (nearest-neighbour resampling; binarised when
    ``multilabel``, e.g. 0/255 PNG masks). Every step is invertible, so predictions can be mapped back to the
    input geometry with ``Invertd``.

    With ``check`` (default) every item is validated after channel-first loading and orientation
    (:class:`~monai_cover.transforms.checks.CheckImaged`): one image channel (2D RGB/RGBA averaged to gray with
    ``rgb_to_gray``), ``spatial_dims`` axes, finite and non-constant intensities; labels with values in
    ``range(num_classes)`` (if given, classes only) or {0, 1, 255} (``multilabel``), on the image's grid (shape and
    affine).
    Unreadable files always raise a one-line :class:`~monai_cover.errors.BadInputError` naming the file.
    ``channels=3``: 2D colour images stay RGB (gray ones repeated, alpha dropped), scaled together.
    ``modalities`` above 1: each image is that many co-registered modalities (a datalist ``"image": [t1, t2]`` or
    one file with that many channels), exactly that many channels are required, each scaled on its own.
    ``intensity``: ``"percentile"``, ``"ct"`` or ``[low, high]`` (a fixed window), as the backbone was pretrained
    (:func:`~monai_cover.transforms.intensity.intensity_scalingd`); ``percentile`` only with ``modalities`` above 1.
    """
    check_modality_intensity(modalities, intensity)
    keys = list(keys)
    image, labels = keys[0], keys[1:]
    modes = ["bilinear"] + ["nearest"] * len(labels)
    xs = [SafeLoadImaged(keys, image_only=True), EnsureChannelFirstd(keys)]
    if spatial_dims == 3:
        xs.append(to_ras(keys))
    if check:
        xs.append(CheckImaged(image, spatial_dims, label_key=labels or None,
                              num_classes=None if multilabel else num_classes,
                              multilabel=multilabel, rgb_to_gray=rgb_to_gray,
                              channels=modalities if modalities > 1 else channels, modalities=modalities > 1))
    if spatial_dims == 3 and pixdim is not None:
        xs.append(Spacingd(keys, pixdim=pixdim, mode=modes))
    xs.append(intensity_scalingd(image, intensity, channel_wise=modalities > 1))
    if labels and multilabel:
        xs.append(AsDiscreted(labels, threshold=0.5))
    if image_size is not None and spatial_dims == 2:
        xs.append(Resized(keys, spatial_size=image_size, mode=["area"] + ["nearest"] * len(labels)))
    if pad_size is not None:
        xs.append(SpatialPadd(keys, spatial_size=pad_size))
    xs.append(EnsureTyped(keys))
    return CheckedCompose(xs)


def seg_postprocessing(num_classes: int, multilabel: bool = False, label_key: str | None = "label",
                       one_hot: bool = True) -> Compose:
    """Logits -> classes: multi-class softmax + argmax (one-hot with ``one_hot``, else a label map, e.g. for saving),
    multi-label per-channel sigmoid > 0.5.

    With ``label_key`` the label is one-hot encoded as well (multi-class), for metrics.
    """
    if multilabel:
        xs = [Activationsd("pred", sigmoid=True), AsDiscreted("pred", threshold=0.5)]
    else:
        xs = [Activationsd("pred", softmax=True),
              AsDiscreted("pred", argmax=True, to_onehot=num_classes if one_hot else None)]
        if label_key:
            xs.append(AsDiscreted(label_key, to_onehot=num_classes))
    return Compose(xs)


def model_preprocessing(settings: Mapping[str, Any], keys: Sequence[str] = ("image",), pad: bool = False,
                        **options: Any) -> CheckedCompose:
    """:func:`seg_preprocessing` of the images (and labels: further ``keys``) of a cover_seg model of ``settings``
    (:func:`monai_cover.weights.model_settings`): its dimension, size, spacing, channels and scaling; with ``pad``
    padded to at least its training patch (:func:`~monai_cover.config.seg_patch_size`), as training validated it.
    ``options``: :func:`seg_preprocessing`'s (one given wins over the model's)."""
    spatial_dims, multilabel = settings["spatial_dims"], settings["multilabel"]
    model = {"spatial_dims": spatial_dims, "image_size": settings["image_size"], "pixdim": settings["pixdim"],
             "multilabel": multilabel, "num_classes": seg_output_channels(settings["label_names"], multilabel),
             "channels": seg_input_channels(settings["color"], spatial_dims, settings["modalities"]),
             "modalities": settings["modalities"], "intensity": settings["intensity"]}
    if pad:
        model["pad_size"] = seg_patch_size(settings["roi_size"], settings["slicewise"])
    return seg_preprocessing(keys=keys, **{**model, **options})


def model_postprocessing(settings: Mapping[str, Any], label_key: str | None = "label", one_hot: bool = True
                         ) -> Compose:
    """:func:`seg_postprocessing` of the logits of a cover_seg model of ``settings``."""
    multilabel = settings["multilabel"]
    return seg_postprocessing(seg_output_channels(settings["label_names"], multilabel), multilabel, label_key, one_hot)


def prediction_savers(settings: Mapping[str, Any], nifti: Any, png: Any, dicom_seg: Any,
                      dicom_seg_setting: Any = "auto") -> list[Any]:
    """The savers of an inference run: the ``nifti`` label map always; the ``png`` too for 2D models that are not
    multi-label (a label map in an image format); the ``dicom_seg`` one as the ``dicom_seg`` setting says
    (:func:`~monai_cover.capabilities.resolve_dicom_seg`)."""
    savers = [nifti]
    if settings["spatial_dims"] == 2 and not settings["multilabel"]:
        savers.append(png)
    if resolve_dicom_seg(dicom_seg_setting):
        savers.append(dicom_seg)
    return savers


#: the random rotation of fine-tuning patches (radians, about each axis of a 3D patch)
SEG_ROTATE_RAD = 0.17


def seg_rotate_range(net_dims: int) -> list[float]:
    """``RandAffined``'s ``rotate_range`` for fine-tuning patches of a ``net_dims`` network: :data:`SEG_ROTATE_RAD`
    in 2D, about each of the three axes in 3D."""
    return [SEG_ROTATE_RAD] * (1 if net_dims == 2 else 3)
