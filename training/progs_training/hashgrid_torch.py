"""Trainable binarized hash grid: spec 5 in torch, with a straight-through estimator.

Each table holds float latents; the grid's value is their sign (+1 where ``latent >= 0``),
and gradients pass straight through to the latents where ``|latent| <= 1`` (HAC's binary
STE). Lookup indices and interpolation weights depend only on the integer voxel coordinates,
so they are computed once per anchor set with exactly the integer arithmetic of spec 5.3
(:mod:`progs_codec.entropy.hashgrid`): cell ``floor((2c+1) R / 2**(d+1))``, 8-bit weights, the dense
row-major index or the instant-ngp hash. The forward value is the requantized integer feature
of spec 5.3 divided by 127, exactly; the backward pass sees the float interpolation.
:func:`to_hash_grid` exports the signs as a :class:`progs_codec.entropy.hashgrid.HashGrid`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from progs_codec.entropy.hashgrid import (
    FEATURE_LIMIT,
    PLANES,
    PRIMES,
    WEIGHT_BITS,
    HashGrid,
    HashGridConfig,
    table_sizes,
)

__all__ = ["GridLookup", "HashGridTorch", "grid_lookup", "binarize_ste", "to_hash_grid"]

_MASK32 = (1 << 32) - 1


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


def _table_axes(config: HashGridConfig) -> list[tuple[int, ...]]:
    axes = [(0, 1, 2)] * len(config.resolutions_3d)
    return axes + [plane for plane in PLANES for _ in config.resolutions_2d]


def grid_lookup(config: HashGridConfig, coords: np.ndarray, depth: np.ndarray | int,
                device: torch.device | str = "cpu") -> GridLookup:
    """Corner indices and weights of voxel centres ``coords [N, 3]`` at ``depth`` (scalar or
    ``[N]``), in int64 numpy arithmetic identical to spec 5.3."""
    coords = np.asarray(coords, np.int64)
    depth = np.broadcast_to(np.asarray(depth, np.int64), (len(coords),))
    indices, weights, shifts = [], [], []
    entry_offset = 0
    for axes, (dims, resolution, entries) in zip(_table_axes(config), table_sizes(config)):
        dense = (resolution + 1) ** dims <= entries
        cells, fracs = [], []
        for a in axes:
            num = (2 * coords[:, a] + 1) * resolution
            cell = num >> (depth + 1)
            rem = num - (cell << (depth + 1))
            cells.append(cell)
            fracs.append((rem << WEIGHT_BITS) >> (depth + 1))
        corner_index, corner_weight = [], []
        for corner in range(1 << dims):
            bits = [(corner >> (dims - 1 - j)) & 1 for j in range(dims)]
            weight = np.ones(len(coords), np.int64)
            index = np.zeros(len(coords), np.int64)
            for j, (cell, frac, bit) in enumerate(zip(cells, fracs, bits)):
                weight = weight * (frac if bit else (1 << WEIGHT_BITS) - frac)
                v = cell + bit
                if dense:
                    index = index + v * (resolution + 1) ** j
                else:
                    index = index ^ ((v * PRIMES[j]) & _MASK32)
            if not dense:
                index = index & (entries - 1)
            corner_index.append(index + entry_offset)
            corner_weight.append(weight)
        indices.append(torch.from_numpy(np.stack(corner_index, 1)).to(device))
        weights.append(torch.from_numpy(np.stack(corner_weight, 1)).to(device))
        shifts.append(dims * WEIGHT_BITS)
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


def to_hash_grid(grid: HashGridTorch) -> HashGrid:
    """The signs as a :class:`HashGrid` (True = +1, spec 5.1)."""
    bits = (grid.latent.detach() >= 0).cpu().numpy().reshape(-1)
    return HashGrid(grid.config, bits)
