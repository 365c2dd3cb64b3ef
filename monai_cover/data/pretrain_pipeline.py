"""Deterministic loading pipelines for pretraining (cached once), and the random crop that follows in 3D."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from monai.data import DataLoader
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    RandSpatialCropd,
    RandSpatialCropSamplesd,
    Resized,
    Spacingd,
    SpatialPadd,
    SqueezeDimd,
)

from monai_cover.config import check_crops_per_image, check_modality_intensity
from monai_cover.transforms.checks import CheckImaged
from monai_cover.transforms.compose import CheckedCompose
from monai_cover.transforms.intensity import intensity_scalingd, percentile_scalingd
from monai_cover.transforms.io import SafeLoadImaged, to_ras
from monai_cover.transforms.sequences import LoadSequenced, RandFrameWindowd

__all__ = [
    "feature_image_size", "feature_postprocessing", "feature_preprocessing", "pretrain_loader", "pretrain_transforms",
]


def pretrain_transforms(
    spatial_dims: int = 2,
    load_size: Sequence[int] | int = 192,
    key: str = "image",
    pixdim: Sequence[float] | None = None,
    intensity: Any = "percentile",
    check: bool = True,
    rgb_to_gray: bool = True,
    slicewise: bool = False,
    num_crops: int = 1,
    channels: int = 1,
    modalities: int = 1,
    frames: int = 0,
) -> CheckedCompose:
    """Files -> float images on a grid of ``load_size`` in ``[0, 1]``: one channel, RGB with ``channels=3``, or
    ``modalities`` co-registered channels.

    2D: load, channel first, intensity scaling, resize to ``load_size`` (all deterministic, so it is cached).
    3D: load, channel first, RAS orientation, optional resampling to ``pixdim`` mm, intensity scaling, pad to at
    least ``load_size``, then a random ``load_size`` crop (after the cache). Views are cut from this grid on the
    training device (the authors load at 1.5x the crop size). With ``slicewise`` (``spatial_dims`` 3 and a 2D
    ``load_size``) the random crop is one axial slice (last axis after RAS) of ``load_size`` in-plane, at the native
    in-plane resolution, as ``cover_seg --slicewise True`` fine-tunes and infers: 2D images out of volumes.

    Args:
        spatial_dims: 2 or 3.
        load_size: grid size handed to the view sampler (voxels per axis).
        key: image key.
        pixdim: 3D target spacing in mm (``None`` keeps the native spacing).
        intensity: ``"percentile"`` (0.5-99.5 percentiles -> [0, 1], for X-ray and MRI), ``"ct"`` (HU window
            -1000..1000) or a window ``[low, high]`` (:func:`~monai_cover.transforms.intensity.intensity_scalingd`).
        check: validate each image after loading (:class:`~monai_cover.transforms.checks.CheckImaged`: one channel,
            ``spatial_dims`` axes, finite, not constant). Unreadable files always raise a one-line
            :class:`~monai_cover.errors.BadInputError` naming the file.
        rgb_to_gray: with ``check``, average RGB/RGBA 2D images to one channel (otherwise an error).
        slicewise: volumes in, random axial slices out (``load_size`` in-plane).
        num_crops: 3D: random crops cut from each decoded volume (``RandSpatialCropSamplesd``: a list of that many
            items per volume, which MONAI's ``DataLoader`` flattens into the batch), so each decode serves several
            training samples when volumes are read from disk (more than one only for volumes:
            :func:`~monai_cover.config.check_crops_per_image`).
        channels: 1 (RGB averaged, with ``rgb_to_gray``) or 3 (2D colour: RGB kept, its channels scaled together
            so colours keep their balance; gray images repeated, alpha dropped).
        modalities: above 1, each case is that many co-registered modalities (a datalist item
            ``"image": [t1, t2]`` or one file with that many channels), exactly that many channels are required and
            each is scaled by its own percentiles (``intensity`` must be ``"percentile"``); ``channels`` is ignored.
        frames: above 0, each file is a sequence (:func:`~monai_cover.transforms.load_sequence`: NIfTI 2D+t / 3D+t,
            multi-frame DICOM, video) with its frames as channels, scaled together, and a random window of that many
            consecutive frames is taken after the cache (:class:`~monai_cover.transforms.RandFrameWindowd`).
    """
    check_modality_intensity(modalities, intensity)
    check_crops_per_image(num_crops, spatial_dims)
    plane = 2 if slicewise else spatial_dims
    size = (load_size,) * plane if isinstance(load_size, int) else tuple(load_size)
    scale = intensity_scalingd(key, intensity, channel_wise=modalities > 1)
    many = modalities > 1
    checks = [CheckImaged(key, spatial_dims, channels=modalities if many else channels, rgb_to_gray=rgb_to_gray,
                          modalities=many)] if check else []
    if frames:  # sequences: load_sequence checks them (2+ frames, finite); frames are scaled together
        checks = []
        scale = percentile_scalingd(key)
        xs = [LoadSequenced(key, spatial_dims, min_frames=frames)]  # a short one fails when cached, not at a batch
    else:
        xs = [SafeLoadImaged(key, image_only=True), EnsureChannelFirstd(key)]
    if spatial_dims == 2:
        xs += [*checks, scale, Resized(key, spatial_size=size, mode="area")]
    else:
        xs += [to_ras(key), *checks]
        if pixdim is not None:
            xs += [Spacingd(key, pixdim=pixdim, mode="bilinear")]
        if slicewise:  # a (1, H, W, 1) crop: one slice, squeezed to 2D
            size = (*size, 1)
        crop = (RandSpatialCropd(key, roi_size=size, random_size=False) if num_crops == 1 else
                RandSpatialCropSamplesd(key, roi_size=size, num_samples=num_crops, random_size=False))
        xs += [scale, SpatialPadd(key, spatial_size=size), crop]
        if slicewise:
            xs += [SqueezeDimd(key, dim=3)]
    if frames:
        xs += [RandFrameWindowd(key, frames)]
    xs += [EnsureTyped(key, track_meta=False)]
    return CheckedCompose(xs)


def feature_image_size(config: Mapping[str, Any], image_size: Any = "auto") -> Sequence[int] | None:
    """The 2D size feature extraction resizes images to: ``image_size`` as given, or for ``"auto"`` the size the
    backbone was pretrained at (``config``: :func:`~monai_cover.weights.backbone_config`; volumes are not resized)."""
    if image_size != "auto":
        return image_size
    return config["image_size"] if config["spatial_dims"] == 2 else None


def feature_preprocessing(config: Mapping[str, Any], image_size: Any = "auto", key: str = "image") -> Compose:
    """Files -> images as the backbone of ``config`` (:func:`~monai_cover.weights.backbone_config`) was pretrained
    on them, for feature extraction: channel first, 3D RAS and its ``pixdim``, checked (not for constant images),
    its intensity scaling, 2D resized to :func:`feature_image_size`. Invertible (features are mapped back to the
    input grid with ``Invertd``)."""
    dims, pixdim, size = config["spatial_dims"], config["pixdim"], feature_image_size(config, image_size)
    xs: list[Any] = [SafeLoadImaged(key, ensure_channel_first=True)]
    if dims == 3:
        xs.append(to_ras(key))
        if pixdim is not None:
            xs.append(Spacingd(key, pixdim=pixdim, mode="bilinear"))
    xs += [CheckImaged(key, dims, channels=config["in_channels"], check_constant=False),
           intensity_scalingd(key, config["intensity"])]
    if size is not None:
        xs.append(Resized(key, spatial_size=size, mode="area"))
    return Compose([*xs, EnsureTyped(key)])


def feature_postprocessing(config: Mapping[str, Any], invert: Any, save: Any, image_size: Any = "auto") -> Compose:
    """``invert`` (back to the input grid; only where :func:`feature_preprocessing` changed it: volumes, or resized
    2D images), then ``save``."""
    moved = config["spatial_dims"] == 3 or feature_image_size(config, image_size)
    return Compose([invert, save] if moved else [save])


def pretrain_loader(dataset: Any, batch_size: int, crops_per_image: int = 1, **options: Any) -> DataLoader:
    """MONAI's ``DataLoader`` of pretraining: ``batch_size`` views per step, made of ``crops_per_image`` random crops
    of each decoded image, so ``batch_size // crops_per_image`` images per batch (at least one); the last, smaller
    batch is dropped when the data holds more than one batch (steps of one size). ``options``: ``DataLoader``'s (a
    ``batch_size`` or ``drop_last`` among them wins over the rule)."""
    rule = {"batch_size": max(1, batch_size // crops_per_image),
            "drop_last": len(dataset) > batch_size // crops_per_image}
    return DataLoader(dataset, **{**rule, **options})
