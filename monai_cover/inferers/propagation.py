"""Label propagation through a sequence with predicted (or known) displacement fields (issue 17).

A label of one frame is carried to the other frames by warping its class probabilities,
``x_{t+1}(p) = x_t(p + ddf_t(p))`` (the backward-warp convention of the views: ``ddf_t`` maps positions of frame
``t + 1`` to positions of frame ``t``). Probabilities rather than hard labels are carried, so sub-voxel motion does
not round away frame after frame; each frame's label is their argmax.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.transforms import DivisiblePad
from monai.utils import look_up_option

from monai_cover.config.declarations import PROPAGATION_MODES
from monai_cover.errors import BadSettingError, CoverError
from monai_cover.networks.blocks.warp import warp
from monai_cover.utils import atomic_write

__all__ = ["PROPAGATION_MODES", "propagate_file", "propagate_labels", "propagate_sequence"]

logger = logging.getLogger(__name__)


def propagate_labels(label: torch.Tensor, ddfs: Iterable[torch.Tensor], num_classes: int) -> list[torch.Tensor]:
    """Carry ``label`` (frame 0) through the sequence frame by frame.

    Args:
        label: ``(1, *S)`` integer class map of frame 0 (values in ``range(num_classes)``).
        ddfs: ``ddf_0, ddf_1, ...``, each ``(d, *S)`` in voxels: frame ``t + 1`` at ``p`` shows frame ``t`` at
            ``p + ddf_t(p)``.
        num_classes: number of classes, background (0) included.

    Returns:
        ``[label_0, label_1, ...]``, each ``(1, *S)`` int64 (``label_0`` is ``label``); positions whose source falls
        outside the grid become background.
    """
    lab = label.long()
    if lab.ndim < 3 or lab.shape[0] != 1:
        raise ValueError(f"propagate_labels: label must be (1, *S), got {tuple(label.shape)}.")
    probs = F.one_hot(lab[0], num_classes).movedim(-1, 0)[None].float()  # (1, K, *S)
    out = [lab]
    for ddf in ddfs:
        if ddf.shape[1:] != lab.shape[1:] or ddf.shape[0] != lab.ndim - 1:
            raise ValueError(f"propagate_labels: field {tuple(ddf.shape)} does not fit label {tuple(lab.shape)}.")
        probs = warp(probs, ddf[None].to(probs))
        out.append(probs[0].argmax(0, keepdim=True))
    return out


def _divisor(net: nn.Module) -> int:
    """Input sizes the network takes: multiples of 2 ** (number of poolings) of its backbone."""
    channels = getattr(net, "config", {}).get("channels") or getattr(getattr(net, "backbone", None), "config",
                                                                     {}).get("channels", [0] * 5)
    return 2 ** (len(channels) - 1)


@torch.no_grad()
def propagate_sequence(
    net: nn.Module, frames: torch.Tensor, label: torch.Tensor, reference: int = 0, mode: str = "direct",
    num_classes: int | None = None, batch_size: int = 4, progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Carry the label of frame ``reference`` to every frame of a sequence with the fields ``net`` predicts.

    Args:
        net: a field network (``CoverNet``): ``net(x_a, x_b)[0]`` is the ``(B, d, *S)`` field in voxels with
            ``x_b(p) ~ x_a(p + ddf(p))``.
        frames: ``(T, *S)`` frames, intensities as in pretraining (``[0, 1]``); padded to sizes the network takes
            (edge values) and cropped back.
        label: ``(1, *S)`` integer class map of frame ``reference``.
        reference: index of the labelled frame (frames before it are reached backwards in time).
        mode: ``"direct"``: each frame's field from the reference frame (errors do not add up, but far frames move
            more); ``"chain"``: fields between neighbouring frames, carried step by step (small motions, errors
            add up).
        num_classes: classes including background (default: the label's maximum + 1).
        batch_size: frame pairs per forward pass.
        progress: called with ``(fields done, fields in all)``.

    Returns:
        ``(T, *S)`` int64 labels; frame ``reference`` keeps ``label``.
    """
    mode = look_up_option(mode, PROPAGATION_MODES)
    t_len, shape = frames.shape[0], tuple(frames.shape[1:])
    if not 0 <= reference < t_len:
        raise BadSettingError(f"reference frame {reference} is outside the sequence's frames 0..{t_len - 1}")
    if tuple(label.shape) != (1, *shape):
        raise ValueError(f"propagate_sequence: label {tuple(label.shape)} does not fit frames {tuple(frames.shape)}.")
    num_classes = int(label.max()) + 1 if num_classes is None else num_classes
    device = next(net.parameters()).device
    k = _divisor(net)
    x = DivisiblePad(k, method="end", mode="edge")(frames.float()).as_tensor()[:, None].to(device)
    lab = DivisiblePad(k, method="end")(label.long()).as_tensor().to(device)
    crop = (slice(None), *(slice(0, s) for s in shape))
    if mode == "direct":
        pairs = [(reference, t) for t in range(t_len) if t != reference]
    else:
        pairs = [(t - 1, t) for t in range(reference + 1, t_len)] + [(t + 1, t) for t in range(reference - 1, -1, -1)]
    ddfs: dict[tuple[int, int], torch.Tensor] = {}
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        ddf = net(x[[i for i, _ in chunk]], x[[j for _, j in chunk]])[0].float()
        ddfs.update(zip(chunk, ddf))
        if progress is not None:
            progress(min(start + batch_size, len(pairs)), len(pairs))
    out = [None] * t_len
    out[reference] = lab
    if mode == "direct":
        for (_, t), ddf in ddfs.items():
            out[t] = propagate_labels(lab, [ddf], num_classes)[-1]
    else:
        ahead = propagate_labels(lab, [ddfs[(t - 1, t)] for t in range(reference + 1, t_len)], num_classes)
        back = propagate_labels(lab, [ddfs[(t + 1, t)] for t in range(reference - 1, -1, -1)], num_classes)
        for n, t in enumerate(range(reference, t_len)):
            out[t] = ahead[n]
        for n, t in enumerate(range(reference, -1, -1)):
            out[t] = back[n]
    return torch.cat([o[crop] for o in out]).cpu()


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else path.stem


def propagate_file(
    model_path: str | os.PathLike, sequence: str | os.PathLike | None, label: str | os.PathLike | None,
    output_dir: str | os.PathLike, reference_frame: int = 0, mode: str = "direct", overwrite: bool = False,
    device: torch.device | str | None = None, batch_size: int = 4,
) -> Path:
    """Propagate one frame's label through a sequence file with a pretrained field model; write the labels.

    The sequence is read by :func:`~monai_cover.transforms.load_sequence` (NIfTI 2D+t / 3D+t, multi-frame DICOM, video),
    its intensities scaled to ``[0, 1]`` between its 0.5th and 99.5th percentiles (as pretraining scales images);
    the label (NIfTI, PNG, DICOM) by :func:`~monai_cover.transforms.load_frame_label`. Writes
    ``<output_dir>/<name>_labels.nii.gz``: int16, frames along the last axis, the sequence's affine (the input
    geometry), and ``<name>_labels.png`` (a few frames with the labels' outlines).

    Args:
        model_path: ``cover_net.pt`` written by cover_pretrain (:func:`~monai_cover.weights.save_field_model`), a
            folder holding it (``models/``, a hub folder) or a Hugging Face Hub id
            (:func:`~monai_cover.hub.resolve_field_model`).
        sequence, label: the sequence file and the label file of frame ``reference_frame``.
        output_dir: output folder (created).
        reference_frame: the labelled frame's index (0-based).
        mode: ``"direct"`` or ``"chain"`` (:func:`propagate_sequence`).
        overwrite: replace an existing output; otherwise an existing one stops the run (one line), nothing lost.
        device: default CUDA when available.
        batch_size: frame pairs per forward pass.

    Returns:
        the written label file.
    """
    from monai_cover.hub import resolve_field_model
    from monai_cover.transforms.intensity import percentile_scaling
    from monai_cover.transforms.sequences import load_frame_label, load_sequence
    from monai_cover.weights import load_field_model

    if not sequence or not label:
        raise BadSettingError("propagate needs --sequence <file> and --label <label of one frame>")
    if mode not in PROPAGATION_MODES:
        raise BadSettingError(f"--mode {mode!r}: one of {', '.join(PROPAGATION_MODES)}")
    sequence, out_dir = Path(sequence), Path(output_dir)
    out = out_dir / f"{_stem(sequence)}_labels.nii.gz"
    if out.exists() and not overwrite:
        raise CoverError(f"{out}: exists (an earlier propagation); nothing was replaced (pass --overwrite True or "
                         "another --output_dir)")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net = load_field_model(resolve_field_model(model_path)).to(device)
    seq = load_sequence(sequence, net.config.get("spatial_dims", 2))
    lab = load_frame_label(label, tuple(seq.shape[1:]))
    frames = percentile_scaling()(seq).as_tensor()
    logger.info(f"propagate: {sequence} ({seq.shape[0]} frames of {tuple(seq.shape[1:])}), label of frame "
                f"{reference_frame} from {label}, {mode} fields")
    step = max(1, (seq.shape[0] - 1) // 10)

    def report(done: int, total: int) -> None:
        if done == total or done // step != (done - batch_size) // step:
            logger.info(f"propagate: {done}/{total} fields")

    labels = propagate_sequence(net, frames, lab, reference_frame, mode, batch_size=batch_size, progress=report)
    _write_labels(out, labels, np.asarray(seq.affine, dtype=np.float64))
    png = _save_outline_panel(out.with_name(f"{_stem(sequence)}_labels.png"), frames, labels, reference_frame)
    logger.info(f"propagate: wrote {out} and {png}")
    return out


def _write_labels(path: Path, labels: torch.Tensor, affine: np.ndarray) -> None:
    import gzip

    import nibabel as nib

    data = np.moveaxis(labels.numpy().astype(np.int16), 0, -1)  # time last, as NIfTI sequences are read
    raw = gzip.compress(nib.Nifti1Image(data, affine).to_bytes(), compresslevel=6)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(raw))  # (the temporary name has no .nii.gz for nibabel)


def _save_outline_panel(path: Path, frames: torch.Tensor, labels: torch.Tensor, reference: int,
                        shown: int = 6) -> Path:
    """A PNG of up to ``shown`` evenly spaced frames (3D: middle slice of the last axis) with label outlines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx: Sequence[int] = sorted({int(round(i)) for i in np.linspace(0, frames.shape[0] - 1, shown)})
    fig, axes = plt.subplots(1, len(idx), figsize=(2.2 * len(idx), 2.4), squeeze=False)
    for ax, t in zip(axes[0], idx):
        img, lab = frames[t], labels[t]
        if img.ndim == 3:
            img, lab = img[..., img.shape[-1] // 2], lab[..., lab.shape[-1] // 2]
        ax.imshow(img.numpy(), cmap="gray")
        if int(lab.max()) > 0:
            ax.contour(lab.numpy(), levels=np.arange(0.5, int(lab.max()) + 1), colors="yellow", linewidths=0.8)
        ax.set_title(f"frame {t}" + (" (label)" if t == reference else ""), fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    plt.close(fig)
    return path
