"""Binarized hash grid: part hash_grid, parameter bits, interpolated features (spec 5)."""

import struct
from dataclasses import dataclass

import numpy as np

from pgs_errors import fail
from pgs_rans import Rans

W = 8
PRIMES = (1, 2654435761, 805459861)
PLANE_AXES = ((0, 1), (0, 2), (1, 2))


@dataclass(frozen=True)
class Table:
    axes: tuple      # coordinate axes of the table's dimensions
    resolution: int
    entries: int
    dense: bool
    offset: int      # first parameter of the table


@dataclass(frozen=True)
class Grid:
    features: int            # F_l
    tables: tuple
    params: np.ndarray       # [P] int64 of +-1

    @property
    def width(self):         # G
        return self.features * len(self.tables)


def parse_grid(part):
    if len(part) < 5:
        fail("hash_grid part too short")
    f, l3, b3, l2, b2 = part[:5]
    head = 5 + 2 * (l3 + l2) + 8
    if len(part) < head:
        fail("hash_grid part too short for its fields")
    res = struct.unpack_from(f"<{l3 + l2}H", part, 5)
    ones, m = struct.unpack_from("<II", part, head - 8)
    if not (1 <= f <= 8 and l3 <= 32 and l2 <= 32 and 1 <= b3 <= 24 and 1 <= b2 <= 24
            and l3 + l2 >= 1 and all(r >= 1 for r in res)):
        fail("hash_grid field out of range", "limit")
    tables, offset = [], 0
    layout = [((0, 1, 2), r, b3) for r in res[:l3]]
    layout += [(axes, r, b2) for axes in PLANE_AXES for r in res[l3:]]
    for axes, r, b in layout:
        full = (r + 1) ** len(axes)
        entries = min(1 << b, full)
        tables.append(Table(axes, r, entries, full <= 1 << b, offset))
        offset += entries * f
    total = offset
    if 2 * f * len(tables) > 1024 or total > 1 << 26:
        fail("hash grid too large", "limit")
    if head + 4 * m > len(part):
        fail("num_words runs past the hash_grid part", "limit")
    if len(part) != head + 4 * m:
        fail("hash_grid part longer than its words")
    if ones > total:
        fail("num_ones > P", "limit")
    rans = Rans(struct.unpack_from(f"<{m}I", part, head))
    f1 = min(max((ones * (1 << 24) + total // 2) // total, 1), (1 << 24) - 1)
    bits = rans.decode_bits(total, (1 << 24) - f1)
    rans.end_check()
    bits = np.frombuffer(bytes(bits), np.uint8)
    if int(bits.sum()) != ones:
        fail("decoded one bits differ from num_ones")
    return Grid(f, tuple(tables), bits.astype(np.int64) * 2 - 1)


def grid_features(grid, coords, depth):
    """``[N, G]`` int64 features of voxels ``coords`` at ``depth`` (5.3)."""
    coords = np.asarray(coords, np.int64)
    out = []
    for t in grid.tables:
        n = len(t.axes)
        cells, fracs = [], []
        for a in t.axes:
            u = (2 * coords[:, a] + 1) * t.resolution
            i = u >> (depth + 1)
            cells.append(i)
            fracs.append(((u - (i << (depth + 1))) << W) >> (depth + 1))
        total = np.zeros((len(coords), grid.features), np.int64)
        for corner in range(1 << n):
            b = [(corner >> (n - 1 - j)) & 1 for j in range(n)]
            weight = np.ones(len(coords), np.int64)
            entry = np.zeros(len(coords), np.int64)
            for j in range(n):
                v = cells[j] + b[j]
                weight = weight * (fracs[j] if b[j] else (1 << W) - fracs[j])
                if t.dense:
                    entry = entry + v * (t.resolution + 1) ** j
                else:
                    entry = entry ^ ((v * PRIMES[j]) & 0xFFFFFFFF)
            if not t.dense:
                entry = entry % t.entries
            index = t.offset + entry[:, None] * grid.features + np.arange(grid.features)
            total += weight[:, None] * grid.params[index]
        out.append((total * 127 + (1 << (n * W - 1))) >> (n * W))
    return np.concatenate(out, axis=1) if out else np.zeros((len(coords), 0), np.int64)
