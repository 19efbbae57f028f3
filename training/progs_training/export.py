"""Trained model -> integer entropy model -> :class:`ProgsModel` -> ``.progs``; evaluation.

The context MLP is exported to integers by :mod:`progs_codec.entropy.export` with every
anchor's integer grid features as calibration inputs; the grid's signs become the stream's
bits; levels are put in canonical order by :func:`progs_codec.format.structure.levels_from_coords`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from progs_codec import decode, encode
from progs_codec.entropy.export import export_context_model, rate_gap
from progs_codec.entropy.model import FIXED_POINT_BITS, EntropyModel
from progs_codec.format.structure import levels_from_coords
from progs_codec.model import MLP, GaussianMLPs, ProgsModel
from progs_codec.render import render

from .context_torch import float_layers
from .data import View
from .hashgrid_torch import to_hash_grid
from .losses import psnr, ssim
from .model import AnchorModel

__all__ = ["to_progs_model", "write_progs", "measure_rate_gap", "evaluate_stream", "LodQuality"]


def _mlp(seq: torch.nn.Sequential) -> MLP:
    """Float16-rounded weights: what the stream stores (spec 3.4)."""
    linears = [m for m in seq if isinstance(m, torch.nn.Linear)]
    def f16(t):
        return t.detach().cpu().numpy().astype(np.float16).astype(np.float32)
    return MLP(weights=tuple(f16(m.weight) for m in linears),
               biases=tuple(f16(m.bias) for m in linears))


def _context_inputs(model: AnchorModel) -> np.ndarray:
    with torch.no_grad():
        return np.rint(model.context_inputs().cpu().numpy()).astype(np.int32)


def _entropy_model(model: AnchorModel, inputs: np.ndarray) -> EntropyModel:
    steps = tuple(int(np.clip(round(s * (1 << FIXED_POINT_BITS)), 1, 1 << 20))
                  for s in model.config.base_steps)
    return EntropyModel(to_hash_grid(model.grid),
                        export_context_model(float_layers(model.context), inputs), steps)


def to_progs_model(model: AnchorModel) -> ProgsModel:
    """The trained model as a :class:`ProgsModel` with an integer entropy model (lossless
    structure; attributes are quantized when encoded)."""
    tree = model.tree
    frame = tree.frame
    with torch.no_grad():
        feature = model.feature.cpu().numpy()
        scaling = model.scaling.cpu().numpy()
        offsets = model.offsets.cpu().numpy()
    coords, attrs = [], []
    for k in range(1, frame.num_levels + 1):
        rows = tree.level == k
        coords.append(tree.coords[rows])
        attrs.append({"feature": feature[rows], "scaling": scaling[rows],
                      "offsets": offsets[rows]})
    levels = levels_from_coords(coords, frame.base_depth, attrs)
    mlps = GaussianMLPs(opacity=_mlp(model.opacity_mlp), color=_mlp(model.color_mlp),
                        covariance=_mlp(model.covariance_mlp),
                        use_distance=model.config.use_distance)
    return ProgsModel(frame=frame, dims=model.config.dims, levels=levels, gaussian_mlps=mlps,
                      entropy_model=_entropy_model(model, _context_inputs(model)))


def write_progs(progs: ProgsModel, path: str | Path) -> bytes:
    """Encode and write atomically (a temporary name in the same folder, then rename)."""
    stream = encode(progs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(stream)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return stream


def measure_rate_gap(model: AnchorModel, progs: ProgsModel) -> dict:
    """Float model's estimated bits vs the integer model's coded bits, all anchors at once."""
    inputs = _context_inputs(model)
    with torch.no_grad():
        gap = rate_gap(float_layers(model.context), progs.entropy_model, inputs,
                       model.config.dims, model.feature.cpu().numpy(),
                       model.scaling.cpu().numpy(), model.offsets.cpu().numpy())
    return {"float_bits": gap.float_bits, "ideal_bits": gap.ideal_bits,
            "coded_bits": gap.coded_bits, "export_gap": gap.export_gap,
            "coder_overhead": gap.coder_overhead}


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
    from progs_codec import inspect

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
