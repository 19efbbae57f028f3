"""Attribute coding of spec 7: contexts, symbol order, escapes, dequantization."""

import struct
from dataclasses import dataclass

import numpy as np

from pgs_context import parse_context, run_context
from pgs_errors import fail
from pgs_hashgrid import grid_features, parse_grid
from pgs_rans import Rans
from pgs_tables import FREQUENCIES, HALF_WIDTHS, STARTS, STEP_MULTIPLIERS

LIMIT = (1 << 24) - 1
BLOCK = 4096


@dataclass(frozen=True)
class EntropyParts:
    grid: object
    layers: list
    steps: tuple          # per group: the 32 steps of 7.2


def parse_entropy_parts(grid_part, context_part, frame):
    grid = parse_grid(grid_part)
    channels = frame["feature_dim"] + frame["scaling_dim"] + 3 * frame["num_offsets"]
    base_steps, layers = parse_context(context_part, grid.width, channels)
    steps = tuple(tuple(max(1, (b * m + (1 << 11)) >> 12) for m in STEP_MULTIPLIERS)
                  for b in base_steps)
    return EntropyParts(grid, layers, steps)


def contexts(model, coords, parent_coords, depth):
    g = model.grid.width
    x = np.zeros((len(coords), 2 * g), np.int64)
    if len(coords):
        x[:, :g] = grid_features(model.grid, coords, depth)
        if parent_coords is not None:
            x[:, g:] = grid_features(model.grid, parent_coords, depth - 1)
    channels = model.layers[-1][0].shape[0] // 3
    if not len(coords):
        empty = np.zeros((0, channels), np.int64)
        return empty, empty, empty
    return run_context(model.layers, x, channels)


def _escape_reader(section):
    bits = "".join(f"{b:08b}" for b in section)
    pos = 0

    def read():
        nonlocal pos
        z = 0
        while True:
            if pos + z >= len(bits):
                fail("escape section ends inside a code")
            if bits[pos + z] == "1":
                break
            z += 1
            if z > 24:
                fail("escape code with more than 24 leading zeros")
        end = pos + 2 * z + 2
        if end > len(bits):
            fail("escape section ends inside a code")
        m = int(bits[pos + z: pos + 2 * z + 1], 2) - 1
        sign = bits[pos + 2 * z + 1] == "1"
        pos = end
        return m, sign

    return read, lambda: (pos + 7) // 8


def _group(payload, mean, scale, step_index, steps):
    n, width = scale.shape
    if len(payload) < 4:
        fail("group payload shorter than 4 bytes")
    (m,) = struct.unpack_from("<I", payload, 0)
    if 4 + 4 * m > len(payload):
        fail("num_words beyond the group payload", "limit")
    rans = Rans(struct.unpack_from(f"<{m}I", payload, 4))
    index = np.zeros((n, width), np.int64)
    flat_index = index.reshape(-1)
    flat_scale = scale.reshape(-1)
    for start in range(0, n, BLOCK):
        lo, hi = start * width, min(start + BLOCK, n) * width
        order = lo + np.argsort(flat_scale[lo:hi], kind="stable")
        for pos, s in zip(order.tolist(), flat_scale[order].tolist()):
            flat_index[pos] = rans.decode(FREQUENCIES[s], STARTS[s])
    rans.end_check()
    half = np.array(HALF_WIDTHS, np.int64)[scale]
    k = index - half
    step = np.array(steps, np.int64)[step_index]
    v = mean + k * step
    escaped = index == 2 * half + 1
    read, used = _escape_reader(payload[4 + 4 * m:])
    # raster order, channel by channel: its escape (if any), then |V| (7.6; 8.4 row E5)
    over = np.flatnonzero((np.abs(v) > LIMIT) & ~escaped)
    first_over = int(over[0]) if len(over) else None
    for pos in np.flatnonzero(escaped).tolist():
        if first_over is not None and first_over < pos:
            break
        a, j = divmod(pos, width)
        mag, negative = read()
        value = mag + half[a, j] + 1
        k[a, j] = -value if negative else value
        v[a, j] = mean[a, j] + k[a, j] * step[a, j]
        if abs(v[a, j]) > LIMIT:
            first_over = pos
            break
    if first_over is not None:
        fail("a decoded value exceeds 2**24 - 1", "limit")
    if used() != len(payload) - 4 - 4 * m:
        fail("escape section length differs from what its codes need")
    return k, (v.astype(np.float64) * 2.0 ** -16).astype(np.float32)


def decode_attributes(groups, head, k, coords, parent_coords):
    """``(contexts, symbols, values)`` of one level: contexts ``(mean, scale, step)``
    ``[N, C]``; symbols and values per group ``[N, C_g]``."""
    model = head.entropy
    depth = head.base_depth + k - 1
    mean, scale, step = contexts(model, coords, parent_coords, depth)
    symbols, values, c0 = [], [], 0
    for g, (payload, width) in enumerate(zip(groups, head.group_channels)):
        cols = slice(c0, c0 + width)
        c0 += width
        sym, val = _group(payload, mean[:, cols], scale[:, cols], step[:, cols], model.steps[g])
        symbols.append(sym)
        values.append(val)
    return (mean, scale, step), symbols, values
