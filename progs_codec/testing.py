"""Valid random models for tests and benchmarks.

Not a test of anything by itself: the models follow every rule of the format and have
attribute statistics like trained scenes (features in a few units, log scales near -4,
offsets within a few voxels), so that sizes and speeds measured on them mean something.
"""

from __future__ import annotations

import math

import numpy as np

from .entropy.attributes import level_contexts, sample_attributes
from .entropy.export import export_context_model, synthetic_float_mlp
from .entropy.hashgrid import PRESETS, hash_features, random_hash_grid
from .entropy.model import EntropyModel
from .model import (
    MLP,
    AttributeDims,
    CoordinateConvention,
    GaussianMLPs,
    Level,
    ProgsModel,
    SceneFrame,
)

__all__ = ["synthetic_model", "random_octree", "random_gaussian_mlps", "random_entropy_model"]


def _level_sizes(num_anchors: int, num_levels: int, growth: float) -> list[int]:
    weights = np.array([growth ** k for k in range(num_levels)])
    sizes = np.maximum(1, np.floor(num_anchors * weights / weights.sum())).astype(int)
    sizes[-1] += max(0, num_anchors - int(sizes.sum()))
    return [int(s) for s in sizes]


def random_octree(num_anchors: int, num_levels: int, rng: np.random.Generator, *,
                  base_depth: int | None = None, growth: float = 3.0
                  ) -> tuple[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """A random strict octree in canonical order.

    Returns ``(base_depth, [(coords, parent_index, octant) per level])``. Level sizes grow
    geometrically by ``growth`` (capped by 8 children per parent); total about ``num_anchors``.
    """
    sizes = _level_sizes(num_anchors, num_levels, growth)
    if base_depth is None:
        base_depth = max(1, math.ceil(math.log2(max(2, 4 * sizes[0])) / 3))
    sizes[0] = min(sizes[0], 1 << (3 * base_depth))
    # Distinct Morton codes in increasing order are distinct roots in canonical order.
    root_codes = np.sort(rng.choice(1 << (3 * base_depth), size=sizes[0], replace=False))
    coords = np.zeros((sizes[0], 3), np.int32)
    for bit in range(base_depth):
        for axis in range(3):
            coords[:, axis] |= ((root_codes >> (3 * bit + 2 - axis)) & 1).astype(np.int32) << bit
    levels = [(coords, np.full(sizes[0], -1, np.int32), np.zeros(sizes[0], np.uint8))]
    for size in sizes[1:]:
        previous = levels[-1][0]
        size = min(size, 8 * len(previous))
        slots = np.sort(rng.choice(8 * len(previous), size=size, replace=False))
        parent_index, octant = (slots // 8).astype(np.int32), (slots % 8).astype(np.uint8)
        o = octant.astype(np.int32)
        child = 2 * previous[parent_index] + np.stack([(o >> 2) & 1, (o >> 1) & 1, o & 1], 1)
        levels.append((child.astype(np.int32), parent_index, octant))
    return base_depth, levels


def random_gaussian_mlps(dims: AttributeDims, rng: np.random.Generator, *,
                         hidden_width: int = 32, use_distance: bool = True) -> GaussianMLPs:
    """Random generation MLPs with float16-representable weights (spec 3.4)."""
    inputs = dims.feature + 3 + int(use_distance)

    def mlp(outputs: int) -> MLP:
        def dense(n_out, n_in):
            w = rng.normal(0, 1 / math.sqrt(n_in), (n_out, n_in))
            return w.astype(np.float16).astype(np.float32)
        return MLP(weights=(dense(hidden_width, inputs), dense(outputs, hidden_width)),
                   biases=(np.zeros(hidden_width, np.float32),
                           rng.normal(0, 0.1, outputs).astype(np.float16).astype(np.float32)))

    k = dims.num_offsets
    return GaussianMLPs(opacity=mlp(k), color=mlp(3 * k), covariance=mlp(7 * k),
                        use_distance=use_distance)


def random_entropy_model(dims: AttributeDims, *, preset: str = "small", seed: int = 0,
                         hidden: tuple[int, ...] = (64, 64)) -> EntropyModel:
    """A valid random model with realistic outputs, for tests and synthetic scenes.

    A random float MLP is scaled so that means, scale indices and step indices spread over
    plausible ranges, then exported to integers (spec 6.6, :mod:`progs_codec.entropy.export`).
    """
    rng = np.random.default_rng(seed)
    grid = random_hash_grid(PRESETS[preset], seed=seed)
    coords = rng.integers(0, 1 << 8, (2048, 3))
    width = grid.config.feature_width
    calibration = np.concatenate([hash_features(grid, coords, 8),
                                  hash_features(grid, coords >> 1, 7)], axis=1)
    calibration[:256, width:] = 0                         # roots have no parent
    base_steps = (1 << 11, 1 << 6, 1 << 10)               # 1/32, 1/1024, 1/64
    layers = synthetic_float_mlp(calibration, dims, hidden, base_steps, rng)
    return EntropyModel(grid, export_context_model(layers, calibration), base_steps)


def synthetic_model(num_anchors: int = 1000, num_levels: int = 4, seed: int = 0, *,
                    dims: AttributeDims = AttributeDims(), base_depth: int | None = None,
                    attribute_coding: str = "entropy", preset: str = "small",
                    gaussian_mlps: bool = True) -> ProgsModel:
    """A valid random model of about ``num_anchors`` anchors in ``num_levels`` levels.

    Args:
        attribute_coding: ``"entropy"`` gives the model a random integer context model
            (chapters 5-7) and draws attributes from its own predictions, so their coded size
            is realistic; ``"raw"`` leaves it out (attributes stored as float32).
        preset: hash grid preset for ``"entropy"``.
        gaussian_mlps: include random generation MLPs.

    Example:
        >>> m = synthetic_model(num_anchors=500, num_levels=3, seed=0)
        >>> m.lod, m.positions().shape[1]
        (3, 3)
    """
    if attribute_coding not in ("entropy", "raw"):
        raise ValueError(f"attribute_coding must be 'entropy' or 'raw', got {attribute_coding!r}")
    rng = np.random.default_rng(seed)
    base_depth, octree = random_octree(num_anchors, num_levels, rng, base_depth=base_depth)
    frame = SceneFrame(origin=(-1.0, -1.0, -1.0), root_voxel_size=2.0 / (1 << base_depth),
                       base_depth=base_depth, num_levels=num_levels,
                       convention=CoordinateConvention.OPENCV)
    entropy_model = None
    if attribute_coding == "entropy":
        entropy_model = random_entropy_model(dims, preset=preset, seed=seed)
    levels = []
    for k, (coords, parent_index, octant) in enumerate(octree, start=1):
        n = len(coords)
        if entropy_model is not None:
            parent_coords = None if k == 1 else octree[k - 2][0][parent_index]
            prediction = level_contexts(entropy_model, coords, parent_coords,
                                        frame.depth(k))
            feature, scaling, offsets = sample_attributes(entropy_model, prediction, dims, rng)
        else:
            feature = rng.normal(0, 1, (n, dims.feature)).astype(np.float32)
            scaling = rng.normal(-4, 0.5, (n, dims.scaling)).astype(np.float32)
            offsets = rng.normal(0, 0.5, (n, dims.num_offsets, 3)).astype(np.float32)
        levels.append(Level(coords, parent_index, octant, feature, scaling, offsets))
    mlps = random_gaussian_mlps(dims, rng) if gaussian_mlps else None
    return ProgsModel(frame=frame, dims=dims, levels=levels, gaussian_mlps=mlps,
                      entropy_model=entropy_model)
