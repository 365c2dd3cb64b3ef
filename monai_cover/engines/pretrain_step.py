"""One COVER pretraining iteration for MONAI's ignite trainers (``SupervisedTrainer(iteration_update=...)``)."""

from __future__ import annotations

from typing import Any

import torch
from monai.utils import convert_to_tensor

from monai_cover.losses import CoverLoss
from monai_cover.transforms.sampler import CoverViewSampler

__all__ = ["CoverPretrainStep"]


class CoverPretrainStep:
    """Views on the training device, forward, COVER loss, backward, clip, step.

    Views for the whole batch are generated on ``engine.state.device`` by ``sampler`` (a GPU never waits for
    per-sample CPU resampling). With ``engine.amp`` on CUDA the network runs under autocast and the engine's
    ``GradScaler`` scales the loss; the loss itself is computed in float32.

    Args:
        sampler: view generator (SeVR).
        loss_function: COVER loss; default :class:`CoverLoss` ``(1, 1)``.
        grad_clip: max gradient norm (``<= 0`` disables clipping).
        image_key: batch key of the images ``(B, C, *S)``.

    ``engine.state.output`` becomes the loss dict's entries (``loss`` and its terms, e.g. ``loss_vec``,
    ``loss_con``) plus ``grad_norm`` and ``lr``, all floats.
    """

    def __init__(
        self,
        sampler: CoverViewSampler,
        loss_function: torch.nn.Module | None = None,
        grad_clip: float = 1.0,
        image_key: str = "image",
    ) -> None:
        self.sampler = sampler
        self.loss_function = loss_function if loss_function is not None else CoverLoss()
        self.grad_clip = grad_clip
        self.image_key = image_key

    def __call__(self, engine: Any, batchdata: dict) -> dict[str, float]:
        device = engine.state.device
        images = convert_to_tensor(batchdata[self.image_key], track_meta=False).to(device, non_blocking=True)
        with torch.no_grad():
            views = self.sampler(images)
        net, opt = engine.network, engine.optimizer
        net.train()
        opt.zero_grad(set_to_none=True)
        use_amp = bool(getattr(engine, "amp", False)) and torch.device(device).type == "cuda"
        with torch.autocast("cuda", enabled=use_amp):
            psi, fa, fb = net(views["view_a"], views["view_b"])
        out = self.loss_function(psi, fa, fb, views["dvf"], views["mask"])
        scaler = getattr(engine, "scaler", None) if use_amp else None
        if scaler is not None:
            scaler.scale(out["loss"]).backward()
            scaler.unscale_(opt)
        else:
            out["loss"].backward()
        params = [p for p in net.parameters() if p.grad is not None]
        max_norm = self.grad_clip if self.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        engine.state.output = {k: float(v.detach()) for k, v in out.items()}
        engine.state.output.update(grad_norm=float(grad_norm), lr=float(opt.param_groups[0]["lr"]))
        return engine.state.output
