"""Checks of loaded images and labels: every problem is ONE line naming the file (:class:`CheckImage`,
:class:`CheckImaged`).

After channel-first loading: channels (2D RGB/RGBA -> gray), spatial rank, NaN/Inf, constant images, label values,
image/label shape and geometry.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform

from monai_cover.errors import BadInputError
from monai_cover.transforms.io import source_name

__all__ = ["CheckImage", "CheckImaged", "check_finite", "check_label_values", "check_rank"]


def _shape(img) -> tuple[int, ...]:
    return tuple(int(s) for s in img.shape)


class CheckImage(Transform):
    """Check (and where harmless, fix) one channel-first image; errors are one-line :class:`BadInputError`.

    Args:
        spatial_dims: expected spatial rank (2 or 3).
        channels: expected channel count (``None``: any).
        rgb_to_gray: convert a 2D RGB/RGBA image (3 or 4 channels where 1 is expected) to gray by averaging the
            R, G, B channels (alpha is ignored); ``False`` makes it an error.
        check_constant: reject images of constant intensity (nothing to learn, the valid mask would be empty).
        modalities: the channels are co-registered modalities: exactly ``channels`` of them, never converted (no
            colour handling), and no one of them constant.
    """

    def __init__(
        self, spatial_dims: int, channels: int | None = 1, rgb_to_gray: bool = True, check_constant: bool = True,
        modalities: bool = False,
    ) -> None:
        self.spatial_dims, self.channels = spatial_dims, channels
        self.rgb_to_gray, self.check_constant, self.modalities = rgb_to_gray, check_constant, modalities

    def __call__(self, img, name: str | None = None):
        name = name or source_name(img)
        img = self.check_channels(img, name)
        check_rank(img, self.spatial_dims, name)
        check_finite(img, name)
        if self.check_constant and img.numel() and bool(img.min() == img.max()):
            raise BadInputError(f"{name}: constant intensity: nothing to learn (empty valid mask).")
        if self.modalities and self.check_constant:
            flat = img.reshape(img.shape[0], -1)
            constant = [i for i in range(img.shape[0]) if bool(flat[i].min() == flat[i].max())]
            if constant:
                raise BadInputError(f"{name}: modality {constant[0] + 1} of {img.shape[0]} has constant intensity.")
        return img

    def check_channels(self, img, name: str, label: bool = False):
        c = int(img.shape[0])
        # a label map has one channel, also beside colour images (None: channels are not checked)
        expected = 1 if label and self.channels is not None else self.channels
        if self.modalities and not label:
            if c != expected:
                raise BadInputError(f"{name}: {c} channel(s), expected {expected} co-registered modalities (give each "
                                    'case as a list of files in the datalist, "image": [t1, t2], or one file with '
                                    f"{expected} channels).")
            return img
        colour = expected == 3 and img.ndim - 1 == 2 == self.spatial_dims
        if colour and c in (1, 3, 4):
            # a colour run: gray images are repeated into 3 channels, RGBA loses its alpha; predictions written
            # from these images have one channel, so the colours' file axis must not be carried over to them
            return _no_channel_axis(img.repeat(3, *[1] * (img.ndim - 1)) if c == 1 else img[:3])
        if expected is None or c == expected:
            return img
        rgb = expected == 1 and c in (3, 4) and img.ndim - 1 == 2 == self.spatial_dims
        if rgb and self.rgb_to_gray:
            if not label:
                x = img[:3]
                return _no_channel_axis(x.mean(0, keepdim=True,
                                               dtype=x.dtype if x.is_floating_point() else torch.float32))
            if bool((img[1:3] == img[:1]).all()):  # gray label saved as RGB
                return _no_channel_axis(img[:1])
            raise BadInputError(f"{name}: color label image ({c} channels that differ), expected a 1-channel map.")
        what = "RGB/RGBA image" if rgb else f"{img.ndim}D image with {c} channels/volumes, shape {_shape(img)}"
        hint = " (rgb_to_gray=False)" if rgb else ""
        raise BadInputError(f"{name}: {what}, expected {expected} channel(s){hint}.")


def _no_channel_axis(img):
    """Record that an RGB file's colour axis is not carried over (to a gray image, or to the one-channel predictions
    made from a colour image): MONAI's writers otherwise put the prediction's single channel where the colours were
    and fail ("SaveImage cannot find a suitable writer")."""
    if isinstance(img, MetaTensor):
        img.meta = dict(img.meta)
        img.meta["original_channel_dim"] = float("nan")  # what LoadImage records for a gray PNG
    return img


def check_rank(img, spatial_dims: int, name: str) -> None:
    if img.ndim - 1 != spatial_dims:
        raise BadInputError(
            f"{name}: {img.ndim - 1}D image (channel-first shape {_shape(img)}), expected {spatial_dims}D."
        )


def check_finite(img, name: str) -> None:
    t = torch.as_tensor(img)
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
        raise BadInputError(f"{name}: non-finite intensities ({n_nan} NaN and {n_inf} Inf voxels).")


def check_label_values(lbl, name: str, num_classes: int | None, multilabel: bool) -> None:
    """Multi-class: values in ``range(num_classes)`` (skipped if ``None``); multi-label: values in {0, 1, 255}."""
    if not multilabel and num_classes is None:
        return
    vals = torch.unique(torch.as_tensor(lbl).detach().cpu()).double()
    if multilabel:
        bad = vals[(vals != 0) & (vals != 1) & (vals != 255)]
        expected = "{0, 1, 255} (multi-label masks)"
    else:
        bad = vals[(vals < 0) | (vals >= num_classes) | (vals != torch.round(vals))]
        expected = f"0..{num_classes - 1} (num_classes={num_classes})"
    if bad.numel():
        shown = ", ".join(f"{v:g}" for v in bad[:5].tolist()) + (", ..." if bad.numel() > 5 else "")
        raise BadInputError(f"{name}: label values [{shown}] outside {expected}.")


class CheckImaged(MapTransform):
    """Dictionary checks after channel-first loading (and 3D orientation); one-line :class:`BadInputError` each.

    Image keys (``keys``): channel count (2D RGB/RGBA -> gray with ``rgb_to_gray``), spatial rank ``spatial_dims``,
    no NaN/Inf, not constant. Label keys (``label_key``): one channel (multi-class; a gray label saved as RGB is
    reduced), spatial rank, no NaN/Inf, values in ``range(num_classes)`` (multi-class, if given) or {0, 1, 255}
    (``multilabel``), the same spatial shape as the first image, and (both MetaTensors, ``affine_atol`` not
    ``None``) the same affine within ``affine_atol``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        spatial_dims: int,
        channels: int | None = 1,
        label_key: str | Sequence[str] | None = None,
        num_classes: int | None = None,
        multilabel: bool = False,
        rgb_to_gray: bool = True,
        check_constant: bool = True,
        affine_atol: float | None = 1e-3,
        allow_missing_keys: bool = False,
        modalities: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.checker = CheckImage(spatial_dims, channels, rgb_to_gray, check_constant, modalities)
        self.label_keys: list[Hashable] = (
            [] if label_key is None else [label_key] if isinstance(label_key, str) else list(label_key)
        )
        self.num_classes, self.multilabel, self.affine_atol = num_classes, multilabel, affine_atol

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ref_key = None
        for key in self.key_iterator(d):
            d[key] = self.checker(d[key], source_name(d[key], default=str(key)))
            ref_key = ref_key if ref_key is not None else key
        for key in self.label_keys:
            if key not in d:
                if self.allow_missing_keys:
                    continue
                raise KeyError(f"CheckImaged: label key {key!r} not in the data (keys: {list(d)}).")
            lbl = d[key]
            name = source_name(lbl, default=str(key))
            if not self.multilabel:
                lbl = self.checker.check_channels(lbl, name, label=True)
            check_rank(lbl, self.checker.spatial_dims, name)
            check_finite(lbl, name)
            check_label_values(lbl, name, self.num_classes, self.multilabel)
            if ref_key is not None:
                self._check_geometry(d[ref_key], lbl, name)
            d[key] = lbl
        return d

    def _check_geometry(self, img, lbl, name: str) -> None:
        img_name = source_name(img, default="image")
        if tuple(img.shape[1:]) != tuple(lbl.shape[1:]):
            raise BadInputError(
                f"{name}: label spatial shape {_shape(lbl)[1:]} does not match image {img_name} {_shape(img)[1:]}."
            )
        if self.affine_atol is None or not (isinstance(img, MetaTensor) and isinstance(lbl, MetaTensor)):
            return
        a, b = img.affine.double().cpu(), lbl.affine.double().cpu()
        if a.shape != b.shape or not torch.allclose(a, b, rtol=0.0, atol=self.affine_atol):
            diff = float((a - b).abs().max()) if a.shape == b.shape else float("nan")
            raise BadInputError(
                f"{name}: label geometry (affine) differs from image {img_name} (max difference {diff:.3g}); "
                "resample the label onto the image grid."
            )
