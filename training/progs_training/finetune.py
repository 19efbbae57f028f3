"""Image-space fine-tuning of a finished model (a decoded stream, a distilled model).

Distillation fits anchors to a teacher's Gaussians in 3D, with no rendering; a short
fine-tune against the teacher's *images* corrects what the 3D loss cannot see (overlaps,
occlusion, the merged slots' footprints). :func:`finetune` takes any :class:`ProgsModel`
with an entropy model, whatever made it (:func:`progs_codec.decode` of a stream, or the
``model`` of :func:`progs_training.distill.export_model` for a ``DistillModel``), and

1. makes its anchors' features, scalings and offsets and its generation MLPs trainable
   (:class:`FinetuneModel`; anchor positions, octree, hash grid and context model stay);
2. renders every LoD of each step (the model's own ``refine``: :meth:`ProgsModel.drawn`)
   through :func:`.render_torch.rasterize` (gsplat on CUDA, the torch twin elsewhere),
   with the attributes rounded around the context model's predicted means and steps
   (straight-through), as the encoder will quantize them, plus the rate of those values
   under the same predictions (``lambda``, bits per value as in training);
3. re-exports through :func:`progs_codec.build.build_model` with the same grid, the context
   model as float layers (:func:`float_context_layers`, the integer model read back), the
   same base steps and the same ``refine``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from progs_codec import ProgsModel
from progs_codec.build import (BuildResult, LevelArrays, build_model,
                               context_inputs)
from progs_codec.render import NeuralGaussians, generate_gaussians_torch, mlp_to_torch

from .context_torch import rate_bits, round_ste, step_size
from .data import View
from .errors import TrainingError
from .export import gaussian_mlps_from_torch
from .machine import pick_device
from .losses import photometric_loss, psnr
from .render_torch import rasterize

__all__ = ["FinetuneConfig", "FinetuneModel", "FinetuneResult", "finetune",
           "float_context_layers"]

_FIXED_POINT = 2.0 ** -16     # the stream's unit of means and base steps (spec 6.4, 6.5)


@dataclass(frozen=True)
class FinetuneConfig:
    """Steps, learning rates (Adam, cosine decay to 10%) and loss weights.

    ``lod_weights``: weight of LoD ``1..L`` (default: 1 for the full LoD, 0.5 for the
    others). ``lambda_rate``: rate weight, bits per value (0 turns the rate off).
    """

    steps: int = 300
    lr_feature: float = 2e-3
    lr_scaling: float = 1e-3
    lr_offsets: float = 1e-3
    lr_mlps: float = 5e-4
    lambda_rate: float = 0.002
    ssim_weight: float = 0.2
    lod_weights: tuple[float, ...] | None = None
    seed: int = 0
    device: str = "auto"


@dataclass
class FinetuneResult:
    built: BuildResult
    log: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def float_context_layers(progs: ProgsModel) -> list[tuple[np.ndarray, np.ndarray]]:
    """The integer context model (spec 6.2) as float layers for
    :func:`~progs_codec.build.build_model`: layer ``i`` computes ``(W x + b) m / 2**s``
    before its clip, so ``W m / 2**s`` and ``b m / 2**s`` are its float weights, with hidden
    activations in integer units, the first layer's inputs scaled by 127 (the door's
    ``inputs / 127``) and the mean outputs from ``2**-16`` to value units."""
    layers = progs.entropy_model.context_model.layers
    channels = progs.entropy_model.context_model.channels
    out = []
    for i, layer in enumerate(layers):
        gain = layer.multiplier.astype(np.float64) * np.exp2(-layer.shift.astype(np.float64))
        w = layer.weight.astype(np.float64) * gain[:, None]
        b = layer.bias.astype(np.float64) * gain
        if i == 0:
            w = w * 127.0
        if i == len(layers) - 1:
            w[:channels] *= _FIXED_POINT
            b[:channels] *= _FIXED_POINT
        out.append((w.astype(np.float32), b.astype(np.float32)))
    return out


class FinetuneModel(torch.nn.Module):
    """A :class:`ProgsModel`'s anchors (levels concatenated, canonical order) and generation
    MLPs as trainable tensors, with the context model's fixed predictions of every value."""

    def __init__(self, progs: ProgsModel, device: str | torch.device = "cpu"):
        super().__init__()
        if progs.entropy_model is None or progs.gaussian_mlps is None:
            raise TrainingError("fine-tuning needs a model with an entropy model and "
                                "generation MLPs")
        if not progs.complete:
            raise TrainingError(f"fine-tuning needs every level; the model holds LoD "
                                f"{progs.lod} of {progs.frame.num_levels}")
        dev = torch.device(device)
        self.progs, self.device = progs, dev
        def values(group: str) -> torch.Tensor:
            return torch.tensor(progs.attributes(group), dtype=torch.float32, device=dev)
        self.feature = torch.nn.Parameter(values("feature"))
        self.scaling = torch.nn.Parameter(values("scaling"))
        self.offsets = torch.nn.Parameter(values("offsets"))
        self.register_buffer("positions", torch.tensor(progs.positions(), device=dev))
        mlps = progs.gaussian_mlps
        self.opacity_mlp = mlp_to_torch(mlps.opacity, device=dev)
        self.color_mlp = mlp_to_torch(mlps.color, device=dev)
        self.covariance_mlp = mlp_to_torch(mlps.covariance, device=dev)
        self.use_distance = mlps.use_distance
        self.drawn = [torch.tensor(progs.drawn(k), device=dev)
                      for k in range(1, progs.frame.num_levels + 1)]
        self._predict(progs, dev)

    def _predict(self, progs: ProgsModel, dev) -> None:
        """Mean, scale index and step per value from the float twin of the context model
        (what :func:`build_model` will export again), fixed: they depend on the octree only."""
        entropy = progs.entropy_model
        inputs = context_inputs(entropy.hash_grid, progs.frame, progs.levels)
        h = torch.tensor(np.asarray(inputs, np.float64) / 127.0, device=dev)
        layers = float_context_layers(progs)
        for i, (w, b) in enumerate(layers):
            h = h @ torch.tensor(w, dtype=torch.float64, device=dev).T + \
                torch.tensor(b, dtype=torch.float64, device=dev)
            if i < len(layers) - 1:
                h = torch.relu(h)           # as build_model's float model (no upper clip)
        c = h.shape[1] // 3
        dims = progs.dims
        base = np.repeat(np.asarray(entropy.base_steps, np.float64) * _FIXED_POINT,
                         [dims.feature, dims.scaling, 3 * dims.num_offsets])
        scale_idx = torch.round(h[:, c:2 * c]).clamp(0, 63)
        step_idx = torch.round(h[:, 2 * c:]).clamp(0, 31)
        step = step_size(torch.tensor(base, device=dev), step_idx)
        self.register_buffer("mean", h[:, :c].float())
        self.register_buffer("scale_idx", scale_idx.float())
        self.register_buffer("step", step.float())

    def attributes(self) -> torch.Tensor:
        return torch.cat([self.feature, self.scaling, self.offsets.flatten(1)], 1)

    def quantized(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Values rounded around the predicted means (straight-through) and their bits."""
        x = self.attributes()
        xq = self.mean + round_ste((x - self.mean) / self.step) * self.step
        return xq, rate_bits(xq, self.mean, self.scale_idx, self.step)

    def gaussians(self, values: torch.Tensor, lod: int,
                  camera_center: torch.Tensor) -> NeuralGaussians:
        dims = self.progs.dims
        f, s = dims.feature, dims.scaling
        n = len(self.drawn[lod - 1])
        return generate_gaussians_torch(
            self.positions[:n], values[:n, :f], values[:n, f:f + s],
            values[:n, f + s:].reshape(n, dims.num_offsets, 3), camera_center,
            opacity_mlp=self.opacity_mlp, color_mlp=self.color_mlp,
            covariance_mlp=self.covariance_mlp, use_distance=self.use_distance,
            drawn=self.drawn[lod - 1])

    def export(self, *, measure_rate: bool = True) -> BuildResult:
        """Through :func:`build_model`: same frame, grid, base steps and ``refine``."""
        progs = self.progs
        dims = progs.dims
        with torch.no_grad():
            values = self.attributes().cpu().numpy()
        f, s = dims.feature, dims.scaling
        levels, start = [], 0
        for lv in progs.levels:
            rows = values[start:start + len(lv)]
            start += len(lv)
            levels.append(LevelArrays(coords=lv.coords, feature=rows[:, :f],
                                      scaling=rows[:, f:f + s],
                                      offsets=rows[:, f + s:].reshape(-1, dims.num_offsets, 3)))
        entropy = progs.entropy_model
        mlps = gaussian_mlps_from_torch(self, use_distance=self.use_distance)
        return build_model(frame=progs.frame, levels=levels, hash_grid=entropy.hash_grid,
                           context_layers=float_context_layers(progs),
                           base_steps=tuple(float(b) * _FIXED_POINT for b in entropy.base_steps),
                           gaussian_mlps=mlps, measure_rate=measure_rate, refine=progs.refine)


def finetune(progs: ProgsModel, views: list[View], config: FinetuneConfig = FinetuneConfig(),
             *, background=(0.0, 0.0, 0.0),
             progress: Callable[[int, dict], None] | None = None) -> FinetuneResult:
    """Fine-tune ``progs`` against ``views`` (module docstring); returns the re-exported
    model (:class:`~progs_codec.build.BuildResult`) and a log.

    Raises:
        TrainingError: no views, a model without entropy model or MLPs, an incomplete
            model, or a loss that stopped being finite.
    """
    if not views:
        raise TrainingError("fine-tuning needs views")
    start = time.time()
    dev = pick_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = FinetuneModel(progs, dev)
    levels = progs.frame.num_levels
    weights = config.lod_weights or tuple([0.5] * (levels - 1) + [1.0])
    groups = [{"params": [model.feature], "lr": config.lr_feature},
              {"params": [model.scaling], "lr": config.lr_scaling},
              {"params": [model.offsets], "lr": config.lr_offsets},
              {"params": [*model.opacity_mlp.parameters(), *model.color_mlp.parameters(),
                          *model.covariance_mlp.parameters()], "lr": config.lr_mlps}]
    for g in groups:
        g["initial_lr"] = g["lr"]
    optimizer = torch.optim.Adam(groups, eps=1e-15)
    bg = torch.tensor(background, dtype=torch.float32, device=dev)
    targets = [torch.tensor(v.image, device=dev) for v in views]
    centers = [torch.tensor(v.camera.center, dtype=torch.float32, device=dev) for v in views]
    log: list[dict] = []
    for step in range(1, config.steps + 1):
        decay = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - 1) / max(config.steps, 1)))
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"] * decay
        i = int(rng.integers(len(views)))
        values, bits = model.quantized()
        loss = torch.zeros((), device=dev)
        lod_psnr = {}
        for lod in range(1, levels + 1):
            if weights[lod - 1] <= 0:
                continue
            g = model.gaussians(values, lod, centers[i])
            image = rasterize(g.means, g.quats, g.scales, g.opacities, g.colors,
                              views[i].camera, background=bg).image
            loss = loss + weights[lod - 1] * photometric_loss(image, targets[i],
                                                              ssim_weight=config.ssim_weight)
            lod_psnr[lod] = round(psnr(image.detach(), targets[i]), 2)
        rate = bits.mean()
        if config.lambda_rate > 0:
            loss = loss + config.lambda_rate * rate
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingError(f"fine-tuning loss became {value} at step {step}")
        info = {"step": step, "loss": round(value, 5), "bits_per_value": round(float(rate.detach()), 4),
                "psnr": lod_psnr, "seconds": round(time.time() - start, 2)}
        if step % max(1, config.steps // 20) == 0 or step in (1, config.steps):
            log.append(info)
        if progress is not None:
            progress(step, info)
    built = model.export()
    return FinetuneResult(built=built, log=log, seconds=time.time() - start)
