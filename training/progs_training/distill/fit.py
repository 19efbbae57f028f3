"""Fitting a :class:`~.model.DistillModel` to slot targets: rate-distortion, no rendering.

The loss is ``distortion + lambda * bits per slot`` (:mod:`.loss`: distortion is an estimate
of the image MSE). Three phases, as in HAC:

1. ``exact``: values unquantized; the rate term at 2% of ``lambda`` lets the context model
   learn the attributes' statistics while the fit converges.
2. ``noise``: uniform noise of one quantization step stands in for rounding (differentiable
   in the step, so the context model picks each channel's step by rate-distortion).
3. ``round``: values rounded around the predicted mean (straight-through), the context MLP
   fake-quantized as the integer model will be (int8 weights, 8-bit activations), so the
   export to integers loses little.

Learning rates fall to a tenth over the second half.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .loss import SlotTargetsTorch, distortion
from .model import DistillModel

__all__ = ["FitSchedule", "FitResult", "fit", "phase_of"]


@dataclass(frozen=True)
class FitSchedule:
    """Steps and rate weight.

    Attributes:
        steps: Adam steps in all.
        exact_fraction, noise_fraction: shares of the first two phases (the rest rounds).
        lam: rate weight, image MSE per bit per slot (bigger: smaller streams).
        learning_rates: per parameter group.
        seed: for the noise and view directions.
    """

    steps: int = 2000
    exact_fraction: float = 0.4
    noise_fraction: float = 0.45
    lam: float = 3e-5
    learning_rates: dict = field(default_factory=lambda: {
        "feature": 1e-2, "scaling": 2e-3, "offsets": 1e-3, "mlps": 1e-3, "context": 3e-3,
        "grid": 1e-2})
    seed: int = 0


@dataclass
class FitResult:
    seconds: float
    log: list[dict]


def phase_of(step: int, schedule: FitSchedule) -> str:
    if step < schedule.exact_fraction * schedule.steps:
        return "exact"
    if step < (schedule.exact_fraction + schedule.noise_fraction) * schedule.steps:
        return "noise"
    return "round"


def _optimizer(model: DistillModel, schedule: FitSchedule) -> torch.optim.Optimizer:
    lr = schedule.learning_rates
    groups = [
        ("feature", [model.feature]), ("scaling", [model.scaling]),
        ("offsets", [model.offsets]),
        ("mlps", [p for mlp in model.mlps() for p in mlp.parameters()]),
        ("context", list(model.context.parameters())), ("grid", list(model.grid.parameters())),
    ]
    return torch.optim.Adam([{"params": params, "lr": lr[name], "name": name}
                             for name, params in groups])


def _random_directions(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, 3, generator=generator), dim=1)


def fit(model: DistillModel, targets: SlotTargetsTorch, schedule: FitSchedule, *,
        sh_basis: Callable[[torch.Tensor], torch.Tensor] | None = None,
        progress: Callable[[int, dict], None] | None = None, log_every: int = 50) -> FitResult:
    """Runs the schedule in place on ``model``; returns the time and a log of the steps."""
    start = time.time()
    optimizer = _optimizer(model, schedule)
    base_lr = [g["lr"] for g in optimizer.param_groups]
    generator = torch.Generator().manual_seed(schedule.seed)
    torch.manual_seed(schedule.seed)
    log = []
    fixed_colors = targets.colors(None, None)
    for step in range(schedule.steps):
        phase = phase_of(step, schedule)
        if phase == "round" and not model.context.quantize:
            with torch.no_grad():
                model.context.calibrate(model.context_inputs())
            model.context.quantize = True
        decay = 0.1 ** max(0.0, 2 * step / schedule.steps - 1)
        for group, lr in zip(optimizer.param_groups, base_lr):
            group["lr"] = lr * decay
        values, bits = model.quantized(phase)
        directions = None
        colors = fixed_colors
        if model.view_dependent:
            directions = _random_directions(len(values), generator).to(values.device)
            colors = targets.colors(directions, sh_basis)
        g = model.gaussians(values, directions)
        d, terms = distortion(g, targets, colors)
        rate = bits.sum() / targets.num_slots
        weight = schedule.lam * (0.02 if phase == "exact" else 1.0)
        loss = d + weight * rate
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        model.freeze_view_inputs()
        optimizer.step()
        if step % log_every == 0 or step == schedule.steps - 1:
            with torch.no_grad():
                per_group = _bits_per_group(model, bits, targets.num_slots)
            entry = {"step": step, "phase": phase, "distortion": float(d.detach()),
                     "psnr_estimate": float(-10 * np.log10(max(float(d.detach()), 1e-12))),
                     "bits_per_slot": float(rate.detach()), **per_group,
                     **{f"err_{k}": v for k, v in terms.items()},
                     "seconds": round(time.time() - start, 1)}
            log.append(entry)
        if progress is not None:
            progress(step, log[-1])
    return FitResult(seconds=time.time() - start, log=log)


def _bits_per_group(model: DistillModel, bits: torch.Tensor, slots: float) -> dict:
    f = model.sizes.feature
    per_channel = bits.detach().sum(0)
    return {"bits_feature": float(per_channel[:f].sum() / slots),
            "bits_scaling": float(per_channel[f:f + 6].sum() / slots),
            "bits_offsets": float(per_channel[f + 6:].sum() / slots)}
