"""Trainable binarized hash grid: spec 5 in torch, with a straight-through estimator.

Each table holds float latents; the grid's value is their sign (+1 where ``latent >= 0``),
and gradients pass straight through to the latents where ``|latent| <= 1`` (HAC's binary
STE). Lookup indices and interpolation weights depend only on the integer voxel coordinates,
so they are computed once per anchor set by the codec's own lookup
(:func:`progs_codec.build.grid_corners`, spec 5.3): cell ``floor((2c+1) R / 2**(d+1))``, 8-bit
weights, the dense row-major index or the instant-ngp hash. The forward value is the requantized integer feature
of spec 5.3 divided by 127, exactly; the backward pass sees the float interpolation.
:func:`to_hash_grid` exports the signs as a :class:`progs_codec.build.HashGrid`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from progs_codec.build import FEATURE_LIMIT, HashGrid, HashGridConfig, grid_corners, table_sizes

__all__ = ["GridLookup", "HashGridTorch", "grid_lookup", "binarize_ste", "to_hash_grid",
           "hash_rate_bits"]

def binarize_ste(latent: torch.Tensor) -> torch.Tensor:
    """``+1`` where ``latent >= 0`` else ``-1``; gradient 1 where ``|latent| <= 1``, else 0."""
    hard = torch.where(latent >= 0, 1.0, -1.0).to(latent.dtype)
    soft = latent.clamp(-1.0, 1.0)
    return soft + (hard - soft).detach()


@dataclass(frozen=True, eq=False)
class GridLookup:
    """Per anchor and table, the corner entries and integer weights of spec 5.3.

    ``index[t]`` is ``[N, corners] int64`` into table ``t`` (global parameter row: entry plus
    the table's offset in entries), ``weight[t]`` ``[N, corners] int64`` summing to
    ``2**(dims * 8)``.
    """

    index: tuple[torch.Tensor, ...]
    weight: tuple[torch.Tensor, ...]
    shifts: tuple[int, ...]

    def to(self, device: torch.device | str) -> GridLookup:
        """The same lookup with its tensors on ``device``."""
        return GridLookup(tuple(t.to(device) for t in self.index),
                          tuple(t.to(device) for t in self.weight), self.shifts)


def grid_lookup(config: HashGridConfig, coords: np.ndarray, depth: np.ndarray | int,
                device: torch.device | str = "cpu") -> GridLookup:
    """Corner indices and weights of voxel centres ``coords [N, 3]`` at ``depth`` (scalar or
    ``[N]``): :func:`progs_codec.build.grid_corners` (spec 5.3's integers), with each table's
    entries offset to rows of the latent array, as tensors on ``device``."""
    indices, weights, shifts = [], [], []
    entry_offset = 0
    for corners, (_, _, entries) in zip(grid_corners(config, coords, depth),
                                        table_sizes(config)):
        indices.append(torch.from_numpy(corners.index + entry_offset).to(device))
        weights.append(torch.from_numpy(corners.weight).to(device))
        shifts.append(corners.shift)
        entry_offset += entries
    return GridLookup(tuple(indices), tuple(weights), tuple(shifts))


class HashGridTorch(torch.nn.Module):
    """The binarized grid of ``config`` as trainable latents ``[entries_total, F_l]``.

    Latent rows follow the stream order of spec 5.1 (tables in order, entry-major, then
    feature), so ``to_hash_grid`` is a flatten.
    """

    def __init__(self, config: HashGridConfig, *, init_scale: float = 1e-2, seed: int = 0,
                 signed_init: bool = False):
        super().__init__()
        problems = config.problems()
        if problems:
            raise ValueError("invalid hash grid configuration: " + "; ".join(problems))
        self.config = config
        entries = sum(size for _, _, size in table_sizes(config))
        gen = torch.Generator().manual_seed(seed)
        # All bits start at +1: entries no anchor ever touches stay +1, so the stream's
        # Bernoulli-coded grid (spec 5.4) costs little for them.
        self.latent = torch.nn.Parameter(
            (torch.rand(entries, config.features_per_level, generator=gen)
             * (2 if signed_init else 1) - (1 if signed_init else 0)) * init_scale)

    def forward(self, lookup: GridLookup) -> torch.Tensor:
        """Features ``[N, feature_width]`` in ``[-1, 1]``: spec 5.3's integers / 127 forward,
        float interpolation of the STE signs backward."""
        signs = binarize_ste(self.latent)
        parts = []
        for index, weight, shift in zip(lookup.index, lookup.weight, lookup.shifts):
            corner = signs[index]                                    # [N, corners, F_l]
            w = weight.to(signs.dtype) / float(1 << shift)
            soft = (w[..., None] * corner).sum(1)
            with torch.no_grad():
                total = (weight[..., None] * torch.where(corner > 0, 1, -1)).sum(1)
                exact = ((total * FEATURE_LIMIT + (1 << (shift - 1))) >> shift).to(signs.dtype)
            parts.append(soft + (exact / FEATURE_LIMIT - soft).detach())
        return torch.cat(parts, dim=1)


def hash_rate_bits(grid: HashGridTorch) -> torch.Tensor:
    """``R_hash`` (ProGS eq. 18, HAC's ``get_binary_vxl_size``): the grid's bits under the one
    Bernoulli probability the stream codes them with (spec 5.4), ``p`` = the fraction of +1.

    ``sum_i -(1 + s_i) / 2 log2 p - (1 - s_i) / 2 log2 (1 - p)`` over the STE signs ``s_i``
    with ``p`` held fixed: at the empirical ``p`` this has the gradient of ``n H(p)``
    (``n`` entries), which pushes every latent towards the majority sign, so the grid gets
    cheaper to code where the context model does not need its bits.
    """
    signs = binarize_ste(grid.latent)
    with torch.no_grad():
        p = (signs > 0).float().mean().clamp(1e-6, 1 - 1e-6)
    ones = (1 + signs) / 2
    return -(ones * torch.log2(p) + (1 - ones) * torch.log2(1 - p)).sum()


def to_hash_grid(grid: HashGridTorch) -> HashGrid:
    """The signs as a :class:`HashGrid` (True = +1, spec 5.1)."""
    bits = (grid.latent.detach() >= 0).cpu().numpy().reshape(-1)
    return HashGrid(grid.config, bits)
