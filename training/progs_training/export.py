"""Trained model -> :func:`progs_codec.build.build_model` -> ``.progs``; evaluation per LoD.

The trainer hands the codec's door its float arrays: the anchors of each level (in the tree's
order; the door sorts them canonically), the grid's signs, the float context MLP (its layers
as :func:`.context_torch.float_layers` gives them) and the generation MLPs; the door exports
the integer context model (spec 6.6), calibrated on every anchor, and measures the rate gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from progs_codec import ProgsModel, decode, encode, inspect
from progs_codec.build import (MLP, BuildResult, GaussianMLPs, LevelArrays, build_model,
                               write_atomic)
from progs_codec.render import render

from .context_torch import float_layers
from .data import View
from .hashgrid_torch import to_hash_grid
from .losses import psnr, ssim
from .model import AnchorModel

__all__ = ["build", "to_progs_model", "write_progs", "evaluate_stream", "LodQuality",
           "mlp_from_torch", "gaussian_mlps_from_torch"]


def mlp_from_torch(seq: torch.nn.Sequential) -> MLP:
    """The float32 weights of a ``Linear``-``ReLU``-``Linear`` stack (the door rounds them to
    float16, spec 3.4)."""
    linears = [m for m in seq if isinstance(m, torch.nn.Linear)]

    def f32(t):
        return t.detach().cpu().numpy().astype(np.float32)
    return MLP(weights=tuple(f32(m.weight) for m in linears),
               biases=tuple(f32(m.bias) for m in linears))


def gaussian_mlps_from_torch(owner: torch.nn.Module, *, use_distance: bool) -> GaussianMLPs:
    """Spec 3.4's three generation MLPs from a module's ``opacity_mlp``, ``color_mlp`` and
    ``covariance_mlp`` (every trainer here: images route, distillation, fine-tune)."""
    return GaussianMLPs(opacity=mlp_from_torch(owner.opacity_mlp),
                        color=mlp_from_torch(owner.color_mlp),
                        covariance=mlp_from_torch(owner.covariance_mlp),
                        use_distance=use_distance)


def build(model: AnchorModel, *, measure_rate: bool = True) -> BuildResult:
    """The trained model through the codec's door: a :class:`ProgsModel` with an integer
    entropy model (lossless structure; attributes are quantized when encoded) and, with
    ``measure_rate``, the float model's estimated bits against the integer model's coded bits
    on every anchor."""
    tree = model.tree
    frame = tree.frame
    with torch.no_grad():
        feature = model.feature.cpu().numpy()
        scaling = model.scaling.cpu().numpy()
        offsets = model.offsets.cpu().numpy()
    levels = []
    for k in range(1, frame.num_levels + 1):
        rows = tree.level == k
        levels.append(LevelArrays(coords=tree.coords[rows], feature=feature[rows],
                                  scaling=scaling[rows], offsets=offsets[rows]))
    mlps = gaussian_mlps_from_torch(model, use_distance=model.config.use_distance)
    return build_model(frame=frame, levels=levels, hash_grid=to_hash_grid(model.grid),
                       context_layers=float_layers(model.context),
                       base_steps=model.config.base_steps, gaussian_mlps=mlps,
                       measure_rate=measure_rate)


def to_progs_model(model: AnchorModel) -> ProgsModel:
    """The trained model as a :class:`ProgsModel` (:func:`build` without the rate gap)."""
    return build(model, measure_rate=False).model


def write_progs(progs: ProgsModel, path: str | Path) -> bytes:
    """Encode and write atomically (a temporary name in the same folder, then rename)."""
    stream = encode(progs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, stream)
    return stream


@dataclass(frozen=True)
class LodQuality:
    lod: int
    anchors: int
    stream_bytes: int
    psnr: float
    ssim: float


def evaluate_stream(stream: bytes, views: list[View], *, background=(0.0, 0.0, 0.0),
                    backend: str = "auto") -> list[LodQuality]:
    """Decode every LoD prefix of ``stream`` and measure it on ``views`` (mean PSNR, SSIM)."""
    info = inspect(stream)
    full = decode(stream)
    out = []
    for lod in range(1, full.lod + 1):
        psnrs, ssims = [], []
        for v in views:
            image = render(full, v.camera, lod=lod, background=background, backend=backend).image
            a, b = torch.from_numpy(image), torch.from_numpy(v.image)
            psnrs.append(psnr(a, b))
            ssims.append(float(ssim(a, b)))
        level = info.levels[lod - 1]
        out.append(LodQuality(lod=lod, anchors=full.num_anchors(lod),
                              stream_bytes=int(level.cumulative_bytes),
                              psnr=float(np.mean(psnrs)), ssim=float(np.mean(ssims))))
    return out
