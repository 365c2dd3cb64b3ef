"""PNG figures people look at: displacement fields, feature PCA maps, segmentations, curves."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["field_to_rgb", "feature_pca_rgb", "label_map", "save_panel", "save_segmentation_panel", "save_curves"]


def _mid_slice(t: torch.Tensor) -> torch.Tensor:
    """``(C, *S)`` -> ``(C, H, W)``: the middle slice along the last axis for 3D."""
    return t[..., t.shape[-1] // 2] if t.ndim == 4 else t


def field_to_rgb(field: torch.Tensor, max_norm: float | None = None) -> np.ndarray:
    """Colour-code the in-plane part (axes 0, 1) of a ``(d, *S)`` field: hue = direction, value = length."""
    import matplotlib.colors as mcolors

    f = _mid_slice(field.detach().float().cpu())[:2].numpy()
    mag = np.sqrt((f**2).sum(0))
    max_norm = max_norm or float(mag.max()) or 1.0
    hsv = np.stack([(np.arctan2(f[1], f[0]) / (2 * np.pi)) % 1.0, np.ones_like(mag), np.clip(mag / max_norm, 0, 1)], -1)
    return mcolors.hsv_to_rgb(hsv)


def feature_pca_rgb(features: torch.Tensor, max_samples: int = 4096) -> np.ndarray:
    """First three principal components of ``(F, *S)`` features as an RGB image in ``[0, 1]``."""
    f = _mid_slice(features.detach().float().cpu())
    c, h, w = f.shape
    x = f.reshape(c, -1).t()
    x = x - x.mean(0, keepdim=True)
    idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))[:max_samples]
    _, _, v = torch.linalg.svd(x[idx], full_matrices=False)
    comps = x @ v[: min(3, c)].t()
    lo, hi = comps.quantile(0.01, 0), comps.quantile(0.99, 0)
    rgb = ((comps - lo) / (hi - lo).clamp_min(1e-8)).clamp(0, 1)
    if rgb.shape[1] < 3:
        rgb = torch.cat([rgb, rgb.new_zeros(rgb.shape[0], 3 - rgb.shape[1])], 1)
    return rgb.reshape(h, w, 3).numpy()


def _image(view: torch.Tensor) -> tuple[np.ndarray | torch.Tensor, str | None]:
    """A view ``(C, *S)`` for ``imshow``: RGB (clipped to [0, 1]) for 3 channels, else the first channel in gray."""
    v = _mid_slice(view.float().cpu())
    if v.shape[0] == 3:
        return v.permute(1, 2, 0).clamp(0, 1).numpy(), None
    return v[0], "gray"


def save_panel(
    path: str | os.PathLike, view_a: torch.Tensor, view_b: torch.Tensor, ddf: torch.Tensor, pred: torch.Tensor,
    mask: torch.Tensor, features: torch.Tensor | None = None, title: str = "", max_rows: int = 2,
) -> Path:
    """Write a PNG: per row the two views, true and predicted field, endpoint-error map, feature PCA.

    All tensors are batched: views ``(B, C, *S)``, fields ``(B, d, *S)``, mask ``(B, 1, *S)``, features
    ``(B, F, *S)``; 3D shows the middle slice along the last axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = min(max_rows, view_a.shape[0])
    cols = 6 if features is not None else 5
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows + 0.4), squeeze=False)
    for r in range(rows):
        true_norm = float(_mid_slice(ddf[r].float()).norm(dim=0).max().clamp_min(1e-6))
        err = _mid_slice(((pred[r] - ddf[r]).float().norm(dim=0, keepdim=True) * mask[r]).cpu())[0]
        panels = [
            ("view a", *_image(view_a[r])),
            ("view b", *_image(view_b[r])),
            ("true field", field_to_rgb(ddf[r], true_norm), None),
            ("predicted field", field_to_rgb(pred[r], true_norm), None),
            (f"error (vox), mean {float(err.sum() / _mid_slice(mask[r].cpu()).sum().clamp_min(1)):.2f}", err, "magma"),
        ]
        if features is not None:
            panels.append(("feature PCA", feature_pca_rgb(features[r]), None))
        for c, (name, img, cmap) in enumerate(panels):
            ax = axes[r][c]
            im = ax.imshow(img, cmap=cmap)
            if name.startswith("error"):
                fig.colorbar(im, ax=ax, fraction=0.046)
            ax.set_title(name, fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path, dpi=80)


def label_map(channels: torch.Tensor, multilabel: bool = False) -> torch.Tensor:
    """``(C, *S)`` channels -> ``(*S)`` map with ``k`` where structure ``k`` is (0: background).

    Multi-class: one-hot with background first (structure ``k`` = channel ``k``), or a 1-channel label map as is.
    Multi-label: one mask per structure (structure ``k`` = channel ``k - 1``; the highest ``k`` where they overlap).
    """
    c = channels.detach().float().cpu()
    if c.shape[0] == 1 and not multilabel:
        return c[0]
    ks = torch.arange(c.shape[0], dtype=c.dtype) + (1 if multilabel else 0)
    return ((c > 0.5) * ks.view(-1, *([1] * (c.ndim - 1)))).amax(0)


def save_segmentation_panel(path: str | os.PathLike, cases: Sequence[tuple[str, torch.Tensor, torch.Tensor,
                            torch.Tensor]], num_classes: int, title: str = "") -> Path:
    """Write a PNG: per case (row) the image, the reference labels and the prediction over the image.

    ``cases``: ``(name, image (C, *S), label map (*S), predicted map (*S))`` each, maps from :func:`label_map` with
    values ``0..num_classes - 1`` (0 = background, not drawn); 3D shows the middle slice along the last axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(cases), 3, figsize=(7.8, 2.6 * len(cases) + 0.4), squeeze=False)
    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "tab20")
    for r, (name, image, label, pred) in enumerate(cases):
        img = _mid_slice(image.detach().float().cpu())[0]
        for c, (what, lab) in enumerate((("image", None), ("reference", label), ("prediction", pred))):
            ax = axes[r][c]
            ax.imshow(img, cmap="gray")
            if lab is not None:
                lab = _mid_slice(lab.detach().float().cpu()[None])[0]
                overlay = np.ma.masked_where(lab.numpy() == 0, lab.numpy())
                ax.imshow(overlay, cmap=cmap, vmin=0, vmax=cmap.N - 1, alpha=0.5, interpolation="nearest")
            ax.set_title(f"{name}: {what}" if c == 0 else what, fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path, dpi=80)


def save_curves(path: str | os.PathLike, xs: Sequence[float], curves: dict[str, Sequence[float]], xlabel: str,
                ylabel: str, title: str = "", errors: dict[str, Sequence[float]] | None = None,
                xscale: str = "linear") -> Path:
    """Write a line plot of one or more curves sharing ``xs`` (optional ``errors``: +-bars per curve)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, ys in curves.items():
        err = (errors or {}).get(name)
        ax.errorbar(xs[: len(ys)], ys, yerr=err, marker="o", ms=3, capsize=3 if err is not None else 0, label=name)
    ax.set_xscale(xscale)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, dpi=90)


def save_points(path: str | os.PathLike, categories: Sequence[str], series: dict[str, Sequence[float | None]],
                ylabel: str, title: str = "", errors: dict[str, Sequence[float | None]] | None = None) -> Path:
    """Write a dot plot: for each category (x), one marker per series (+-bar from ``errors``), side by side and not
    joined (categories are not a scale); ``None`` values are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(categories), 3.5))
    width = 0.6 / max(1, len(series))
    for i, (name, ys) in enumerate(series.items()):
        err = (errors or {}).get(name) or [None] * len(ys)
        shift = (i - (len(series) - 1) / 2) * width
        pts = [(j + shift, y, e) for j, (y, e) in enumerate(zip(ys, err)) if y is not None]
        if pts:
            xs, vals, es = zip(*pts)
            ax.errorbar(xs, vals, yerr=[e or 0 for e in es], marker="o", ms=4, ls="none", capsize=3, label=name)
    ax.set_xticks(range(len(categories)), categories, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, path, dpi=90)


def _save(fig, path: str | os.PathLike, dpi: int) -> Path:
    """Lay out, write (creating the folder) and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
