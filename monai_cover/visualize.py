"""PNG figures people look at: displacement fields, feature PCA maps, curves."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["field_to_rgb", "feature_pca_rgb", "save_panel", "save_curves"]


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


def save_panel(
    path: str | os.PathLike, view_a: torch.Tensor, view_b: torch.Tensor, dvf: torch.Tensor, pred: torch.Tensor,
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
        true_norm = float(_mid_slice(dvf[r].float()).norm(dim=0).max().clamp_min(1e-6))
        err = _mid_slice(((pred[r] - dvf[r]).float().norm(dim=0, keepdim=True) * mask[r]).cpu())[0]
        panels = [
            ("view a", _mid_slice(view_a[r].float().cpu())[0], "gray"),
            ("view b", _mid_slice(view_b[r].float().cpu())[0], "gray"),
            ("true field", field_to_rgb(dvf[r], true_norm), None),
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


def _save(fig, path: str | os.PathLike, dpi: int) -> Path:
    """Lay out, write (creating the folder) and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
