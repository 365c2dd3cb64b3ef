"""One COVER pretraining iteration for MONAI's ignite trainers (``SupervisedTrainer(iteration_update=...)``)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from monai.utils import convert_to_tensor

from monai_cover.errors import TrainingDivergedError
from monai_cover.losses import CoverLoss
from monai_cover.losses.temporal import TEMPORAL
from monai_cover.networks.blocks.bf16_conv3d import avoid_bf16_depth2_conv3d
from monai_cover.transforms.sampler import CoverViewSampler

__all__ = ["CoverPretrainStep"]

logger = logging.getLogger(__name__)


def _channels_last(dims: int) -> torch.memory_format:
    return torch.channels_last if dims == 2 else torch.channels_last_3d


class CoverPretrainStep:
    """Views on the training device, forward, COVER loss, backward, clip, step.

    Views for the whole batch are generated on ``engine.state.device`` by ``sampler`` (a GPU never waits for
    per-sample CPU resampling). With ``engine.amp`` on CUDA the network runs under float16 autocast and the engine's
    ``GradScaler`` scales the loss; the loss itself is computed in float32.

    Args:
        sampler: view generator (SeVR).
        loss_function: COVER loss; default :class:`CoverLoss` ``(1, 1)``.
        grad_clip: max gradient norm (``<= 0`` disables clipping).
        image_key: batch key of the images ``(B, C, *S)``.
        bf16: autocast the network in bfloat16 on the training device, CPU included (no loss scaling needed;
            takes the place of ``engine.amp``'s float16). Its 3D convolutions of depth-2 inputs run in float32
            (:mod:`~monai_cover.networks.blocks.bf16_conv3d`: a PyTorch CPU bug corrupts their weight gradient).
        channels_last: channels-last memory format for the network and the views (``channels_last_3d`` in 3D).
        compile: run the network through ``torch.compile`` (compiled once, on the first step).
        max_skipped: a step whose loss or gradient norm is not finite is skipped (the weights and the optimizer
            state stay as they were, a warning says so); this many skipped steps in a row stop the run with
            :class:`~monai_cover.errors.TrainingDivergedError`. (With ``engine.amp``'s float16 the ``GradScaler``
            skips overflowing steps itself.)

    The fast-path options change speed and memory, not the computation: tests hold each to the default within
    float tolerance, and ``benchmarks/step.py --options ...`` measures them.

    ``engine.state.output`` becomes the loss dict's entries (``loss`` and its terms, e.g. ``loss_vec``,
    ``loss_con``) plus ``grad_norm`` and ``lr``, all floats.
    """

    def __init__(
        self,
        sampler: CoverViewSampler | None,
        loss_function: torch.nn.Module | None = None,
        grad_clip: float = 1.0,
        image_key: str = "image",
        bf16: bool = False,
        channels_last: bool = False,
        compile: bool = False,
        max_skipped: int = 5,
    ) -> None:
        self.sampler = sampler
        self.loss_function = loss_function if loss_function is not None else CoverLoss()
        self.grad_clip = grad_clip
        self.image_key = image_key
        self.bf16, self.channels_last, self.compile = bf16, channels_last, compile
        self._prepared: dict[int, torch.nn.Module] = {}
        self.max_skipped, self.skipped_in_a_row = max_skipped, 0

    def _model(self, net: torch.nn.Module, dims: int) -> torch.nn.Module:
        """``net`` as the options run it, set up once: converted in place (the optimizer keeps its parameters)."""
        if id(net) not in self._prepared:
            if self.bf16:  # a CPU bfloat16 bug corrupts the weight gradient of depth-2 3D convolutions
                avoid_bf16_depth2_conv3d(net)
            if self.channels_last:
                net.to(memory_format=_channels_last(dims))
            self._prepared[id(net)] = torch.compile(net) if self.compile else net
        return self._prepared[id(net)]

    def update(self, net: torch.nn.Module, opt: torch.optim.Optimizer, views: dict, amp: bool = False,
               scaler: torch.amp.GradScaler | None = None) -> dict[str, float]:
        """One optimisation step of ``net`` on ``views`` (``view_a``, ``view_b``, ``ddf``, ``mask``). ``amp``:
        float16 autocast on CUDA with ``scaler``; ``bf16`` overrides it on any device."""
        x_a, x_b = views["view_a"], views["view_b"]
        dims, batch = x_a.ndim - 2, x_a.shape[0]
        if getattr(self.loss_function, "needs_clean_pairs", False):  # temporal transitivity: one call for both
            rows = torch.nonzero(views["pair"] == TEMPORAL)[:, 0].to(x_a.device)
            x_a, x_b = torch.cat([x_a, x_a[rows]]), torch.cat([x_b, views["clean_b"][rows]])
        if self.channels_last:
            x_a, x_b = (x.contiguous(memory_format=_channels_last(dims)) for x in (x_a, x_b))
        model = self._model(net, dims)
        net.train()
        opt.zero_grad(set_to_none=True)
        device_type = x_a.device.type
        amp = amp and device_type == "cuda" and not self.bf16
        dtype = torch.bfloat16 if self.bf16 else torch.float16
        with torch.autocast(device_type, dtype=dtype, enabled=amp or self.bf16):
            ddf_pred, fa, fb = model(x_a, x_b)
        if ddf_pred.shape[0] > batch:  # the appended (view_a, clean_b) pairs
            views = {**views, "ddf_clean": ddf_pred[batch:].float()}
            ddf_pred, fa, fb = ddf_pred[:batch], fa[:batch], fb[:batch]
        extra = {"views": views} if getattr(self.loss_function, "needs_views", False) else {}  # temporal COVER
        out = self.loss_function(ddf_pred.float(), fa.float(), fb.float(), views["ddf"], views["mask"], **extra)
        scaler = scaler if amp else None
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
        elif torch.isfinite(grad_norm) and torch.isfinite(out["loss"]):
            opt.step()
            self.skipped_in_a_row = 0
        else:  # an update with NaN/inf would leave NaN weights for the rest of the run: skip it
            opt.zero_grad(set_to_none=True)
            self.skipped_in_a_row += 1
            logger.warning(f"non-finite loss {float(out['loss']):.4g} or gradient norm {float(grad_norm):.4g}: step "
                           f"skipped, weights unchanged ({self.skipped_in_a_row} in a row)")
            if self.skipped_in_a_row >= self.max_skipped:
                raise TrainingDivergedError(
                    f"{self.skipped_in_a_row} steps in a row had a non-finite loss or gradient; the weights are those "
                    "of the last finite step (lower --learning_rate, run with --bf16 False, or check the images)")
        result = {k: float(v.detach()) for k, v in out.items()}
        result.update(grad_norm=float(grad_norm), lr=float(opt.param_groups[0]["lr"]))
        return result

    def __call__(self, engine: Any, batchdata: dict) -> dict[str, float]:
        device = engine.state.device
        images = convert_to_tensor(batchdata[self.image_key], track_meta=False).to(device, non_blocking=True)
        with torch.no_grad():
            views = self.sampler(images)
        engine.state.output = self.update(engine.network, engine.optimizer, views,
                                          amp=bool(getattr(engine, "amp", False)),
                                          scaler=getattr(engine, "scaler", None))
        return engine.state.output
