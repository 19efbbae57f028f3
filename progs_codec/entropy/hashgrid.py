"""Binarized multiresolution hash grid: layout, integer interpolation, coding (spec 5).

A grid is a set of tables of +-1 parameters: one per 3D level, and one per 2D level for each
of the three planes xy, xz, yz. An anchor's feature is interpolated from the table vertices
around its position in integer arithmetic, so every decoder gets the same integers.

>>> grid = random_hash_grid(PRESETS["small"], seed=0)
>>> hash_features(grid, np.array([[3, 5, 7]]), depth=4).shape
(1, 34)
>>> parse_hash_grid(write_hash_grid(grid)) == grid
True
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import FormatError, LimitError, ModelError
from .coder import decode_bits, encode_bits

__all__ = [
    "HashGridConfig",
    "HashGrid",
    "PRESETS",
    "WEIGHT_BITS",
    "FEATURE_LIMIT",
    "PRIMES",
    "PLANES",
    "MAX_PARAMS",
    "table_sizes",
    "table_axes",
    "TableCorners",
    "grid_corners",
    "hash_features",
    "hash_features_reference",
    "random_hash_grid",
    "write_hash_grid",
    "parse_hash_grid",
]

WEIGHT_BITS = 8                        # W: fractional bits of an interpolation weight (5.3)
FEATURE_LIMIT = 127                    # features are requantized to [-127, 127] (5.3)
PRIMES = (1, 2654435761, 805459861)    # spatial hash of instant-ngp / tcnn (5.2)
PLANES = ((0, 1), (0, 2), (1, 2))      # xy, xz, yz: the axes of each 2D plane
MAX_LEVELS = 32
MAX_LOG2_TABLE = 24
MAX_FEATURES_PER_LEVEL = 8
MAX_RESOLUTION = 65535
MAX_PARAMS = 1 << 26                   # bound on all tables together (5.4)
MAX_INPUT_WIDTH = 1024                 # own + parent feature (6.1, 6.5)

_CHUNK = 16384                         # rows per chunk: the int64 work arrays stay in cache
_PACK_BITS = 26                        # two features per int64 sum (see _table_features)
_HEAD = struct.Struct("<5B")
_COUNTS = struct.Struct("<II")


@dataclass(frozen=True)
class HashGridConfig:
    """Grid shape (spec 5.1): explicit resolutions, table sizes as powers of two."""

    resolutions_3d: tuple[int, ...]
    log2_table_3d: int
    resolutions_2d: tuple[int, ...]
    log2_table_2d: int
    features_per_level: int = 2

    @property
    def feature_width(self) -> int:
        """Integer features per position: ``F_l * (L3 + 3 * L2)``."""
        return self.features_per_level * (len(self.resolutions_3d) + 3 * len(self.resolutions_2d))

    def problems(self) -> list[str]:
        """What makes this configuration invalid (empty if valid)."""
        out = []
        if not 1 <= self.features_per_level <= MAX_FEATURES_PER_LEVEL:
            out.append(f"features_per_level {self.features_per_level} not in 1..8")
        for name, res, log2 in (("3d", self.resolutions_3d, self.log2_table_3d),
                                ("2d", self.resolutions_2d, self.log2_table_2d)):
            if len(res) > MAX_LEVELS:
                out.append(f"{len(res)} {name} levels, at most {MAX_LEVELS}")
            if not 1 <= log2 <= MAX_LOG2_TABLE:
                out.append(f"log2_table_{name} {log2} not in 1..{MAX_LOG2_TABLE}")
            if any(not 1 <= r <= MAX_RESOLUTION for r in res):
                out.append(f"a {name} resolution is not in 1..{MAX_RESOLUTION}")
        if not out:
            if self.feature_width == 0:
                out.append("the grid has no levels")
            if 2 * self.feature_width > MAX_INPUT_WIDTH:
                out.append(f"2 x {self.feature_width} features exceed {MAX_INPUT_WIDTH}")
            if self.num_params > MAX_PARAMS:
                out.append(f"{self.num_params} parameters, at most {MAX_PARAMS}")
        return out

    @property
    def num_params(self) -> int:
        return self.features_per_level * sum(size for _, _, size in table_sizes(self))


def table_sizes(config: HashGridConfig) -> list[tuple[int, int, int]]:
    """``(dims, resolution, entries)`` of every table in stream order (spec 5.1).

    Order: the 3D levels, then for each plane xy, xz, yz its 2D levels.
    ``entries = min(2**log2_table, (R + 1)**dims)``.
    """
    out = [(3, r, min(1 << config.log2_table_3d, (r + 1) ** 3)) for r in config.resolutions_3d]
    for _ in PLANES:
        out += [(2, r, min(1 << config.log2_table_2d, (r + 1) ** 2))
                for r in config.resolutions_2d]
    return out


def table_axes(config: HashGridConfig) -> list[tuple[int, ...]]:
    """The coordinate axes each table reads, in stream order: ``(0, 1, 2)`` for the 3D
    levels, then the plane's two axes (xy, xz, yz) for the 2D levels (spec 5.1)."""
    return [(0, 1, 2)] * len(config.resolutions_3d) + \
        [plane for plane in PLANES for _ in config.resolutions_2d]


@dataclass(frozen=True, eq=False)
class TableCorners:
    """The vertices one table interpolates for each voxel centre (spec 5.2, 5.3).

    Attributes:
        index: ``[N, 2**dims] int64`` entry of each corner within the table.
        weight: ``[N, 2**dims] int64`` integer weights, summing to ``2**shift`` per row.
        shift: ``dims * W`` (``W = 8``): a feature is
            ``(sum(weight * sign[index]) * 127 + 2**(shift - 1)) >> shift``.
    """

    index: np.ndarray
    weight: np.ndarray
    shift: int


def grid_corners(config: HashGridConfig, coords: np.ndarray,
                 depth: int | np.ndarray) -> list[TableCorners]:
    """Corner entries and weights of every table for voxel centres (spec 5.2, 5.3).

    The lookup half of :func:`hash_features`, for code that interpolates its own table
    values (a trainer's float latents): the same integer cells, weights and dense or hashed
    indices, so that its features match the decoder's exactly.

    Args:
        config: the grid shape.
        coords: ``[N, 3]`` integer voxel coordinates.
        depth: octree depth of the coordinates, a scalar or ``[N]`` integers.

    Returns:
        One :class:`TableCorners` per table, in stream order (:func:`table_sizes`).

    Example:
        >>> grid = random_hash_grid(PRESETS["small"], seed=0)
        >>> corners = grid_corners(grid.config, np.array([[3, 5, 7]]), 4)
        >>> len(corners), corners[0].index.shape, int(corners[0].weight.sum())
        (17, (1, 8), 16777216)
    """
    coords = np.asarray(coords, np.int64)
    depth = np.broadcast_to(np.asarray(depth, np.int64), (len(coords),))
    out = []
    for axes, (dims, resolution, entries) in zip(table_axes(config), table_sizes(config)):
        dense = (resolution + 1) ** dims <= entries
        cells, fracs = [], []
        for a in axes:
            num = (2 * coords[:, a] + 1) * resolution
            cell = num >> (depth + 1)
            cells.append(cell)
            fracs.append(((num - (cell << (depth + 1))) << WEIGHT_BITS) >> (depth + 1))
        index = np.zeros((len(coords), 1 << dims), np.int64)
        weight = np.ones((len(coords), 1 << dims), np.int64)
        for corner in range(1 << dims):
            for j, (cell, frac) in enumerate(zip(cells, fracs)):
                bit = (corner >> (dims - 1 - j)) & 1
                weight[:, corner] *= frac if bit else (1 << WEIGHT_BITS) - frac
                if dense:
                    index[:, corner] += (cell + bit) * (resolution + 1) ** j
                else:
                    index[:, corner] ^= ((cell + bit) * PRIMES[j]) & 0xFFFFFFFF
        if not dense:
            index &= entries - 1
        out.append(TableCorners(index, weight, dims * WEIGHT_BITS))
    return out


#: Grid presets. ``small`` (default) costs about 45 kB; ``hac`` follows HAC (about 2 MB).
PRESETS: dict[str, HashGridConfig] = {
    "small": HashGridConfig((16, 24, 36, 54, 81, 122, 182, 273), 14, (64, 128, 256), 13),
    "hac": HashGridConfig((18, 24, 33, 44, 59, 80, 108, 148, 201, 275, 376, 514), 19,
                          (130, 258, 514, 1026), 17),
}


@dataclass(frozen=True, eq=False)
class HashGrid:
    """A binarized grid (spec 5): ``params`` is ``[num_params] bool`` (True = +1) in stream
    order, each table entry-major (entry, then feature)."""

    config: HashGridConfig
    params: np.ndarray

    def __post_init__(self):
        problems = self.config.problems()
        if problems:
            raise ModelError("invalid hash grid configuration: " + "; ".join(problems))
        if self.params.dtype != bool or self.params.shape != (self.config.num_params,):
            raise ModelError(f"hash grid params must be [{self.config.num_params}] bool, "
                             f"got {self.params.shape} {self.params.dtype}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HashGrid):
            return NotImplemented
        return self.config == other.config and np.array_equal(self.params, other.params)

    @functools.cached_property
    def _packed(self) -> list[list[np.ndarray]]:
        """Each table's features in pairs, ``[entries] int64`` holding ``p0 + p1 * 2**26`` of
        the +-1 values (``p1 = 0`` for a last odd feature): one ``take`` per corner gives both
        (see :func:`_table_features`). Made straight from the bool parameters, 4 bytes per
        parameter, one table's column at a time (a grid of ``2**26`` parameters: 256 MiB)."""
        f = self.config.features_per_level
        out, start = [], 0
        for _, _, size in table_sizes(self.config):
            table = self.params[start:start + size * f].reshape(size, f)
            pairs = []
            for j in range(0, f, 2):
                packed = table[:, j].astype(np.int64)
                packed *= 2
                packed -= 1                                  # +-1
                if j + 1 < f:
                    high = table[:, j + 1].astype(np.int64)
                    high *= 2
                    high -= 1
                    high <<= _PACK_BITS
                    packed += high
                pairs.append(packed)
            out.append(pairs)
            start += size * f
        return out


def _axis(odd: np.ndarray, resolution: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Spec 5.3: cell ``i = floor(u)`` and weight ``w = floor(frac(u) * 2**W)`` of
    ``u = (2c + 1) * R / 2**(depth + 1)``, as ``int64``, from ``odd = 2c + 1`` (int64)."""
    num = odd * resolution
    cell = num >> (depth + 1)
    num &= (1 << (depth + 1)) - 1                 # u - (i << (depth + 1))
    num <<= WEIGHT_BITS
    num >>= depth + 1
    return cell, num


def _table_features(coords, axes, resolution, entries, packed, depth, out, work) -> None:
    """One table's requantized features (spec 5.2, 5.3) into ``out [N, F_l] int32``.

    ``packed`` holds the table's features in pairs (:attr:`HashGrid._packed`), so one
    ``take`` per corner fetches two. The sums are exact integers in int64: with
    ``|S| <= 2**(n W) <= 2**24`` per feature, ``T = S_0 + S_1 * 2**26`` and
    ``S_0 = ((T + 2**25) mod 2**26) - 2**25``, ``S_1 = (T - S_0) >> 26``. Corner indices and
    weights are built axis by axis into the preallocated ``work`` arrays (``[2, 8, N]`` and
    ``[N]`` int64); ``coords`` is ``[3, N] int64`` holding ``2c + 1``. Any summation order gives the same integers. Indices are int64: the
    hash's low ``B`` bits do not depend on products being taken modulo ``2**32`` first, and
    every index is in range, so ``take`` may skip its bounds check (``mode="clip"``).
    """
    n = coords.shape[1]
    index, weight, buf, total = work[0][:, :n], work[1][:, :n], work[2][:n], work[3][:n]
    dims = len(axes)
    dense = (resolution + 1) ** dims <= entries
    for j, a in enumerate(axes):
        cell, w = _axis(coords[a], resolution, depth)
        factor = (resolution + 1) ** j if dense else PRIMES[j]
        low = cell * factor
        high = low + factor                       # (cell + 1) * factor
        if j == 0:
            index[0], index[1] = low, high
            np.subtract(1 << WEIGHT_BITS, w, out=weight[0])
            weight[1] = w
            continue
        combine = np.add if dense else np.bitwise_xor
        w0 = (1 << WEIGHT_BITS) - w
        for k in range((1 << j) - 1, -1, -1):     # corner k -> corners 2k, 2k + 1
            combine(index[k], high, out=index[2 * k + 1])
            combine(index[k], low, out=index[2 * k])
            np.multiply(weight[k], w, out=weight[2 * k + 1])
            np.multiply(weight[k], w0, out=weight[2 * k])
    corners = 1 << dims
    if not dense:
        np.bitwise_and(index[:corners], entries - 1, out=index[:corners])
    shift = dims * WEIGHT_BITS
    half, mask, centre = 1 << (shift - 1), (1 << _PACK_BITS) - 1, 1 << (_PACK_BITS - 1)
    for p, table in enumerate(packed):
        np.take(table, index[0], out=total, mode="clip")
        total *= weight[0]
        for k in range(1, corners):
            np.take(table, index[k], out=buf, mode="clip")
            buf *= weight[k]
            total += buf
        first = ((total + centre) & mask) - centre
        out[:, 2 * p] = (first * FEATURE_LIMIT + half) >> shift
        if 2 * p + 1 < out.shape[1]:
            total -= first
            total >>= _PACK_BITS
            total *= FEATURE_LIMIT
            total += half
            total >>= shift
            out[:, 2 * p + 1] = total


def hash_features(grid: HashGrid, coords: np.ndarray, depth: int) -> np.ndarray:
    """Integer grid feature at the centres of voxels ``coords`` at ``depth`` (spec 5.3).

    Args:
        grid: the hash grid.
        coords: ``[N, 3]`` integer voxel coordinates in ``[0, 2**depth)``.
        depth: octree depth of the coordinates.

    Returns:
        ``[N, feature_width] int32`` in ``[-127, 127]``.
    """
    coords = np.asarray(coords)
    cfg, f = grid.config, grid.config.features_per_level
    axes = table_axes(cfg)
    out = np.empty((len(coords), cfg.feature_width), np.int32)
    rows = min(_CHUNK, len(coords))
    work = (np.empty((8, rows), np.int64), np.empty((8, rows), np.int64),
            np.empty(rows, np.int64), np.empty(rows, np.int64))
    for start in range(0, len(coords), _CHUNK):     # chunks keep the work in cache
        part = 2 * coords[start:start + _CHUNK].T.astype(np.int64) + 1    # [3, n]: 2c + 1
        for t, (a, (_, r, entries), packed) in enumerate(zip(axes, table_sizes(cfg),
                                                             grid._packed)):
            _table_features(part, a, r, entries, packed, depth,
                            out[start:start + _CHUNK, t * f:(t + 1) * f], work)
    return out


def hash_features_reference(grid: HashGrid, coords, depth: int) -> np.ndarray:
    """Spec 5.3 pseudo-code, one anchor at a time in Python integers (for tests)."""
    cfg, f = grid.config, grid.config.features_per_level
    tables, start = [], 0
    for dims, r, size in table_sizes(cfg):
        tables.append((dims, r, size, start))
        start += size * f
    out = []
    for c in np.asarray(coords).tolist():
        row = []
        for t, (dims, r, size, offset) in enumerate(tables):
            axes = (0, 1, 2) if dims == 3 else PLANES[(t - len(cfg.resolutions_3d))
                                                      // len(cfg.resolutions_2d)]
            u = [(2 * c[a] + 1) * r for a in axes]
            cell = [x >> (depth + 1) for x in u]
            frac = [((x - (i << (depth + 1))) << WEIGHT_BITS) >> (depth + 1)
                    for x, i in zip(u, cell)]
            acc = [0] * f
            for corner in range(1 << dims):
                bits = [(corner >> (dims - 1 - j)) & 1 for j in range(dims)]
                v = [i + b for i, b in zip(cell, bits)]
                weight = 1
                for b, w in zip(bits, frac):
                    weight *= w if b else (1 << WEIGHT_BITS) - w
                if (r + 1) ** dims <= size:
                    index = sum(x * (r + 1) ** j for j, x in enumerate(v))
                else:
                    h = 0
                    for x, prime in zip(v, PRIMES):
                        h ^= (x * prime) % (1 << 32)
                    index = h % size
                for k in range(f):
                    acc[k] += weight * (1 if grid.params[offset + index * f + k] else -1)
            shift = dims * WEIGHT_BITS
            row += [(a * FEATURE_LIMIT + (1 << (shift - 1))) >> shift for a in acc]
        out.append(row)
    return np.array(out, dtype=np.int32).reshape(len(out), cfg.feature_width)


def random_hash_grid(config: HashGridConfig, *, seed: int = 0, p_one: float = 0.5) -> HashGrid:
    """A grid of independent random bits, +1 with probability ``p_one``."""
    rng = np.random.default_rng(seed)
    return HashGrid(config, rng.random(config.num_params) < p_one)


def write_hash_grid(grid: HashGrid) -> bytes:
    """The ``hash_grid`` part of ``HEAD`` (spec 5.4)."""
    cfg = grid.config
    ones, words = encode_bits(grid.params)
    return b"".join([
        _HEAD.pack(cfg.features_per_level, len(cfg.resolutions_3d), cfg.log2_table_3d,
                   len(cfg.resolutions_2d), cfg.log2_table_2d),
        np.array(cfg.resolutions_3d + cfg.resolutions_2d, "<u2").tobytes(),
        _COUNTS.pack(ones, len(words)),
        words.astype("<u4").tobytes(),
    ])


def parse_hash_grid(data: bytes) -> HashGrid:
    """Parse the ``hash_grid`` part (spec 5.4); errors name ``HEAD``/``hash_grid``.

    Checks in the order of spec 8.4 (rows G1-G14): the fixed fields and resolutions present
    (format), the ranges (limit), the words within the part (limit), the exact length (format),
    ``num_ones <= P`` (limit), then the coded bits (format).
    """
    def fail(cls, message):
        return cls(message, chunk="HEAD", field="hash_grid")

    data = bytes(data)
    if len(data) < _HEAD.size:
        raise fail(FormatError, "hash_grid part too short")
    f, n3, log2_3d, n2, log2_2d = _HEAD.unpack_from(data)
    end = _HEAD.size + 2 * (n3 + n2) + _COUNTS.size
    if len(data) < end:
        raise fail(FormatError, "hash_grid part too short for its resolutions")
    res = np.frombuffer(data, "<u2", n3 + n2, _HEAD.size).tolist()
    cfg = HashGridConfig(tuple(res[:n3]), log2_3d, tuple(res[n3:]), log2_2d, f)
    problems = cfg.problems()
    if problems:
        raise fail(LimitError, "invalid hash grid configuration: " + "; ".join(problems))
    ones, num_words = _COUNTS.unpack_from(data, end - _COUNTS.size)
    if end + 4 * num_words > len(data):           # a word count past the part: limit (8.4, G9)
        raise fail(LimitError, f"num_words {num_words} runs past the hash_grid part of "
                               f"{len(data)} bytes")
    if len(data) != end + 4 * num_words:
        raise fail(FormatError, f"hash_grid part is {len(data)} bytes, its fields need "
                                f"{end + 4 * num_words}")
    if ones > cfg.num_params:
        raise fail(LimitError, f"{ones} one bits in {cfg.num_params} parameters")
    words = np.frombuffer(data, "<u4", num_words, end).astype(np.uint32)
    try:
        bits = decode_bits(words, cfg.num_params, ones)
    except FormatError as e:
        raise fail(type(e), f"hash grid bits: {e.message}") from e
    return HashGrid(cfg, bits)
