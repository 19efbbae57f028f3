"""The trainer's door: float arrays in, a :class:`ProgsModel` for :func:`progs_codec.encode` out.

A trainer (``progs_training``, or any HAC-style code) ends with float arrays: anchors per
octree level, a binarized hash grid, a float context MLP and the Gaussian-generation MLPs.
:func:`build_model` turns them into a model the encoder takes: it puts every level in
canonical order (spec 4.2) and checks the octree is strict, converts the base steps to the
stream's fixed point (spec 6.5), rounds the generation MLPs to float16 (spec 3.4), exports the
float context MLP to the integer model (spec 6.6) and measures what that export costs in bits.

Everything a trainer needs from the codec is a public name of one of :data:`TRAINER_MODULES`:

- ``progs_codec``: ``encode``, ``decode``, ``inspect``, ``Decoder``, the model classes,
  ``Refinement`` and the errors.
- ``progs_codec.build`` (this module): :func:`build_model`, :class:`LevelArrays`,
  :class:`BuildResult`, :class:`RateGap`, :func:`context_inputs`; the octree helpers
  :func:`frame_for_points`, :func:`octree_from_points`, :func:`levels_from_coords`,
  :func:`morton_codes`; the hash grid (:class:`HashGrid`, :class:`HashGridConfig`,
  :data:`PRESETS`, :func:`grid_corners`, :func:`hash_features`, :data:`FEATURE_LIMIT`); the
  context model's :data:`ACTIVATION_MAX`; the spec 7.3 tables (:func:`load_tables`, with
  ``scale_range`` and ``steps_per_octave``; :data:`NUM_SCALES`, :data:`NUM_STEPS`,
  :data:`STEP_ONE_INDEX`); :func:`write_atomic` and :func:`atomic_path`; and the model
  classes a builder names (:class:`CoordinateConvention`, :class:`MLP`, ...).
- ``progs_codec.render``: cameras (``Camera``, ``look_at``, ``orbit_cameras``, ...),
  ``render``, the CPU rasterizer, neural-Gaussian generation (numpy and torch), splat files.

A test walks ``progs_training``'s imports and fails on any other module or ``_`` name.

Example (a tiny scene; ``examples/third_party_trainer.py`` shows a whole run):
    >>> rng = np.random.default_rng(0)
    >>> points = rng.normal(0, 1, (500, 3))
    >>> frame = frame_for_points(points, base_depth=2, num_levels=3)
    >>> dims = AttributeDims(feature=4, scaling=2, num_offsets=1)
    >>> levels = [LevelArrays(coords=c,
    ...                       feature=rng.normal(0, 1, (len(c), 4)).astype(np.float32),
    ...                       scaling=np.full((len(c), 2), -4, np.float32),
    ...                       offsets=np.zeros((len(c), 1, 3), np.float32))
    ...           for c in octree_from_points(points, frame)]
    >>> grid = HashGrid(PRESETS["small"], rng.random(PRESETS["small"].num_params) < 0.5)
    >>> width = 2 * grid.config.feature_width
    >>> layers = [(rng.normal(0, 0.1, (8, width)).astype(np.float32), np.zeros(8, np.float32)),
    ...           (rng.normal(0, 0.1, (3 * dims.channels, 8)).astype(np.float32),
    ...            np.repeat([0.0, 20.0, 16.0], dims.channels).astype(np.float32))]
    >>> result = build_model(frame=frame, levels=levels, hash_grid=grid, context_layers=layers,
    ...                      base_steps=(1 / 64, 1 / 64, 1 / 64))
    >>> from progs_codec import decode, encode
    >>> decode(encode(result.model)).num_anchors() == sum(len(lv.coords) for lv in levels)
    True
    >>> result.rate_gap.coded_bits > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .entropy.context_model import ACTIVATION_MAX
from .entropy.export import FloatLayers, RateGap, export_context_model, rate_gap
from .entropy.hashgrid import (FEATURE_LIMIT, PRESETS, HashGrid, HashGridConfig, TableCorners,
                               grid_corners, hash_features, table_axes, table_sizes)
from .entropy.model import FIXED_POINT_BITS, MAX_BASE_STEP, EntropyModel
from .entropy.tables import NUM_SCALES, NUM_STEPS, STEP_ONE_INDEX, CodingTables, load_tables
from .errors import ModelError
from .files import atomic_path, write_atomic
from .format.header import frame_problems, mlp_shapes
from .format.structure import levels_from_coords, morton_codes
from .model import (MLP, AttributeDims, CoordinateConvention, GaussianMLPs, Level, ProgsModel,
                    Refinement, SceneFrame)

__all__ = [
    # building a model
    "build_model", "LevelArrays", "BuildResult", "RateGap", "FloatLayers", "context_inputs",
    # octrees
    "frame_for_points", "octree_from_points", "levels_from_coords", "morton_codes",
    # the model classes a builder names
    "SceneFrame", "CoordinateConvention", "AttributeDims", "MLP", "GaussianMLPs", "Level",
    "ProgsModel", "Refinement",
    # hash grid (spec 5) and context model (spec 6)
    "HashGrid", "HashGridConfig", "PRESETS", "TableCorners", "grid_corners", "table_sizes",
    "table_axes", "hash_features", "FEATURE_LIMIT", "ACTIVATION_MAX",
    # coding tables (spec 7.3)
    "load_tables", "CodingTables", "NUM_SCALES", "NUM_STEPS", "STEP_ONE_INDEX",
    # files
    "write_atomic", "atomic_path",
    "TRAINER_MODULES",
]

#: The modules a trainer imports from the codec; their public names are its whole interface.
TRAINER_MODULES = ("progs_codec", "progs_codec.build", "progs_codec.render")


# -- octrees ------------------------------------------------------------------------------------


def frame_for_points(points: np.ndarray, base_depth: int, num_levels: int, *,
                     margin: float = 1e-3,
                     convention: CoordinateConvention = CoordinateConvention.OPENCV) -> SceneFrame:
    """The cube frame enclosing ``points [N, 3]`` with a relative ``margin`` (spec 3.1).

    Origin and root voxel size are float32 values, as the stream stores them.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"points must be a non-empty [N, 3] array, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points hold non-finite values")
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float((high - low).max()) * (1 + 2 * margin) or 1.0
    centre = (low + high) / 2
    origin = centre - extent / 2
    # float32 origin and voxel size are what the stream stores: use them from the start.
    return SceneFrame(origin=tuple(float(np.float32(v)) for v in origin),
                      root_voxel_size=float(np.float32(extent / 2 ** base_depth)),
                      base_depth=base_depth, num_levels=num_levels, convention=convention)


def octree_from_points(points: np.ndarray, frame: SceneFrame) -> list[np.ndarray]:
    """Unique voxel coordinates per level, ``[N_k, 3] int32`` each, sorted in Morton order.

    The finest level holds the voxels that contain points (points outside the frame are
    clipped to its border); coarser levels hold their ancestors, so the octree is strict.
    """
    depth = frame.depth(frame.num_levels)
    finest_voxel = frame.voxel_size(frame.num_levels)
    coords = np.floor((np.asarray(points, np.float64) - np.asarray(frame.origin)) / finest_voxel)
    coords = np.unique(np.clip(coords, 0, (1 << depth) - 1).astype(np.int64), axis=0)
    levels = [coords]
    for _ in range(frame.num_levels - 1):
        levels.append(np.unique(levels[-1] >> 1, axis=0))
    out = []
    for k, level in enumerate(reversed(levels), start=1):
        order = np.argsort(morton_codes(level, frame.depth(k)), kind="stable")
        out.append(level[order].astype(np.int32))
    return out


# -- building a model ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LevelArrays:
    """One octree level as a trainer holds it, anchors in any order.

    Attributes:
        coords: ``[N, 3]`` integer voxel coordinates at depth ``base_depth + k - 1``.
        feature: ``[N, F]`` float32 anchor features.
        scaling: ``[N, S]`` float32 log scales.
        offsets: ``[N, K, 3]`` float32 offsets, in units of the anchor's offset scale.
    """

    coords: np.ndarray
    feature: np.ndarray
    scaling: np.ndarray
    offsets: np.ndarray


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_model` returns.

    Attributes:
        model: the :class:`ProgsModel`, ready for :func:`progs_codec.encode`.
        rate_gap: the attributes' bits under the float context model (the trainer's estimate)
            and under the exported integer model, and their coded size
            (:attr:`RateGap.export_gap`, :attr:`RateGap.coder_overhead`); ``None`` for raw
            attribute coding or ``measure_rate=False``.
    """

    model: ProgsModel
    rate_gap: RateGap | None


def _dims_of(frame: SceneFrame, levels: Sequence[LevelArrays]) -> AttributeDims:
    """Check shapes, dtypes and values of every level; the dimensions level 1 gives."""
    if len(levels) != frame.num_levels:
        raise ModelError(f"frame.num_levels is {frame.num_levels} but {len(levels)} levels "
                         f"were given")
    if not levels:
        raise ModelError("no levels given")
    first = levels[0]
    f, s = np.shape(first.feature)[-1], np.shape(first.scaling)[-1]
    k = np.shape(first.offsets)[1] if np.ndim(first.offsets) == 3 else 0
    for level, arrays in enumerate(levels, start=1):
        coords = np.asarray(arrays.coords)
        if coords.ndim != 2 or coords.shape[1] != 3 or not np.issubdtype(coords.dtype,
                                                                          np.integer):
            raise ModelError(f"level {level}: coords must be [N, 3] integers, got shape "
                             f"{coords.shape} {coords.dtype}")
        n = len(coords)
        for name, shape in (("feature", (n, f)), ("scaling", (n, s)), ("offsets", (n, k, 3))):
            values = np.asarray(getattr(arrays, name))
            if values.shape != shape:
                raise ModelError(f"level {level}: {name} has shape {values.shape}, expected "
                                 f"{shape} (widths from level 1, rows from coords)")
            if not np.isfinite(values).all():
                raise ModelError(f"level {level}: {name} holds non-finite values")
    dims = AttributeDims(feature=int(f), scaling=int(s), num_offsets=int(k))
    for field, message in frame_problems(frame, dims):
        raise ModelError(f"{field}: {message}")
    return dims


def _float16_mlps(mlps: GaussianMLPs, dims: AttributeDims) -> GaussianMLPs:
    """The generation MLPs with every value rounded to float16, as the stream stores them."""
    hidden = np.shape(mlps.opacity.weights[0])[0] if mlps.opacity.weights else 0
    rounded = {}
    for name, shapes in mlp_shapes(dims, hidden, mlps.use_distance):
        mlp = getattr(mlps, name)
        if len(mlp.weights) != 2 or len(mlp.biases) != 2:
            raise ModelError(f"gaussian_mlps.{name} must have 2 layers, has "
                             f"{len(mlp.weights)} weights and {len(mlp.biases)} biases")
        values = []
        for part, shape, value in zip(("W1", "b1", "W2", "b2"), shapes,
                                      (mlp.weights[0], mlp.biases[0], mlp.weights[1],
                                       mlp.biases[1])):
            value = np.asarray(value, np.float32)
            if value.shape != shape:
                raise ModelError(f"gaussian_mlps.{name} {part} has shape {value.shape}, "
                                 f"expected {shape}")
            with np.errstate(over="ignore"):
                half = value.astype(np.float16).astype(np.float32)
            if not np.isfinite(half).all():
                raise ModelError(f"gaussian_mlps.{name} {part} holds values that are not "
                                 f"finite in float16 (|x| < 65520)")
            values.append(half)
        rounded[name] = MLP(weights=(values[0], values[2]), biases=(values[1], values[3]))
    return GaussianMLPs(**rounded, use_distance=mlps.use_distance)


def _base_step_units(base_steps: Sequence[float]) -> tuple[int, int, int]:
    """Float steps (value units) -> the stream's integers in units of ``2**-16`` (spec 6.5)."""
    if len(base_steps) != 3:
        raise ModelError(f"base_steps must be (feature, scaling, offsets), got {base_steps}")
    units = []
    for group, step in zip(("feature", "scaling", "offsets"), base_steps):
        unit = round(float(step) * (1 << FIXED_POINT_BITS)) if np.isfinite(step) else 0
        if not 1 <= unit <= MAX_BASE_STEP:
            raise ModelError(f"base step of {group} is {step}: it must round to 1..2**20 units "
                             f"of 2**-16, i.e. lie in [2**-16, 16]")
        units.append(unit)
    return units[0], units[1], units[2]


def _check_context_layers(layers: Sequence[tuple[np.ndarray, np.ndarray]], width: int,
                          channels: int) -> FloatLayers:
    if not layers:
        raise ModelError("context_layers is empty")
    out, n_in = [], width
    for i, (w, b) in enumerate(layers):
        w, b = np.asarray(w), np.asarray(b)
        n_out = 3 * channels if i == len(layers) - 1 else (w.shape[0] if w.ndim == 2 else -1)
        if w.shape != (n_out, n_in) or b.shape != (n_out,):
            raise ModelError(f"context layer {i}: W {w.shape} and b {b.shape}, expected "
                             f"({n_out}, {n_in}) and ({n_out},) (inputs 2 x grid features = "
                             f"{width}, outputs 3 x {channels} channels)")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ModelError(f"context layer {i} holds non-finite values")
        out.append((w, b))
        n_in = n_out
    return out


def context_inputs(hash_grid: HashGrid, frame: SceneFrame, levels: Sequence[Level]) -> np.ndarray:
    """The integer context-model inputs of every anchor, levels in order (spec 6.1).

    Args:
        hash_grid: the grid.
        frame: the scene frame (depths of the levels).
        levels: canonical levels, as :func:`levels_from_coords` returns them.

    Returns:
        ``[N, 2G] int32`` in ``[-127, 127]``: each anchor's grid features, then its parent's
        (zeros for level 1). A float context MLP sees them divided by :data:`ACTIVATION_MAX`.
    """
    width = hash_grid.config.feature_width
    parts = []
    for k, level in enumerate(levels, start=1):
        inputs = np.zeros((len(level), 2 * width), np.int32)
        inputs[:, :width] = hash_features(hash_grid, level.coords, frame.depth(k))
        if k > 1:
            parents = levels[k - 2].coords[level.parent_index]
            inputs[:, width:] = hash_features(hash_grid, parents, frame.depth(k - 1))
        parts.append(inputs)
    return np.concatenate(parts) if parts else np.zeros((0, 2 * width), np.int32)


def build_model(*, frame: SceneFrame, levels: Sequence[LevelArrays],
                hash_grid: HashGrid | None,
                context_layers: Sequence[tuple[np.ndarray, np.ndarray]] | None,
                base_steps: tuple[float, float, float] | None,
                gaussian_mlps: GaussianMLPs | None = None,
                measure_rate: bool = True,
                refine: Refinement = Refinement.ADD) -> BuildResult:
    """A :class:`ProgsModel` from a trainer's float arrays (spec 3.4, 4.2, 6.5, 6.6).

    Args:
        frame: where the octree sits (:func:`frame_for_points` makes one from points).
        levels: ``frame.num_levels`` :class:`LevelArrays`, level 1 first, anchors in any
            order; ``F``, ``S``, ``K`` are taken from level 1.
        hash_grid: the binarized grid (spec 5), or ``None`` for raw attribute coding.
        context_layers: the float context MLP, ``[(W [out, in] float32, b [out] float32),
            ...]`` with ReLU between layers. It sees :func:`context_inputs` divided by 127
            (``[N, 2G]``, the parent half zero for level 1) and outputs ``[N, 3C]``: per
            channel (feature, scaling, offsets x, y, z order) the mean in value units, then
            the continuous scale index (into the spec 7.3 scale table), then the continuous
            step index (``step = base_step * 2**((t - 16) / 8)``). ``None`` for raw coding.
        base_steps: ``(feature, scaling, offsets)`` quantization steps in value units, each
            in ``[2**-16, 16]``; rounded to the stream's units of ``2**-16``. ``None`` for raw
            coding.
        gaussian_mlps: the generation MLPs (spec 3.4) in float32; rounded to float16 here,
            as the stream stores them, so that what the trainer renders is what decodes.
        measure_rate: compute :attr:`BuildResult.rate_gap` (codes every attribute once).
        refine: how LoD ``k`` is rendered (spec 3.5, 9.1): ``Refinement.ADD`` draws every
            anchor of levels ``1..k``; ``Refinement.REPLACE`` draws level ``k`` and the coarser
            anchors without a child in the next level, for coarse levels trained to stand in
            for the finer ones (the stream is then version 1.1).

    Returns:
        A :class:`BuildResult`: the model (levels in canonical order, parent indices and
        octants filled in) and the measured rate gap.

    Raises:
        ModelError: wrong shapes or non-finite values (naming level and array), an octree
            that is not strict or holds an anchor twice, a frame the stream cannot hold,
            base steps out of range, context layers whose widths do not fit the grid and the
            channels, generation MLPs of the wrong shape or beyond float16.
        ValueError: some but not all of ``hash_grid``, ``context_layers``, ``base_steps``.
    """
    entropy_parts = (hash_grid, context_layers, base_steps)
    if any(p is None for p in entropy_parts) and not all(p is None for p in entropy_parts):
        raise ValueError("pass hash_grid, context_layers and base_steps together (entropy "
                         "coding) or none of them (raw attribute coding)")
    dims = _dims_of(frame, levels)
    canonical = levels_from_coords(
        [np.asarray(lv.coords) for lv in levels], frame.base_depth,
        [{"feature": lv.feature, "scaling": lv.scaling, "offsets": lv.offsets} for lv in levels])
    mlps = None if gaussian_mlps is None else _float16_mlps(gaussian_mlps, dims)
    if hash_grid is None:
        return BuildResult(ProgsModel(frame=frame, dims=dims, levels=canonical,
                                      gaussian_mlps=mlps, refine=refine), None)
    steps = _base_step_units(base_steps)
    layers = _check_context_layers(context_layers, 2 * hash_grid.config.feature_width,
                                   dims.channels)
    inputs = context_inputs(hash_grid, frame, canonical)
    entropy_model = EntropyModel(hash_grid, export_context_model(layers, inputs), steps)
    gap = None
    if measure_rate:
        gap = rate_gap(layers, entropy_model, inputs, dims,
                       *(np.concatenate([lv.attributes(g) for lv in canonical])
                         for g in ("feature", "scaling", "offsets")))
    return BuildResult(ProgsModel(frame=frame, dims=dims, levels=canonical, gaussian_mlps=mlps,
                                  entropy_model=entropy_model, refine=refine), gap)
