"""LEVL chunk: layout, limits, fixed-layout structure, raw attributes (spec 4).

The occupancy layout (4.6) is in pgs_occupancy.py."""

import struct
from dataclasses import dataclass

import numpy as np

from pgs_errors import fail


@dataclass
class DecodedLevel:
    level: int
    coords: np.ndarray      # [N, 3] int64
    parent: np.ndarray      # [N] int64, -1 at level 1
    octant: np.ndarray      # [N] int64, 0 at level 1
    contexts: object        # None (raw coding) or (mean, scale_index, step_index) [N, C]
    symbols: object         # None (raw coding) or three [N, C_g] int64 arrays
    values: list            # three [N, C_g] float32 arrays: feature, scaling, offsets


def _bit_fields(buf, count, widths):
    """Unsigned MSB-first fields, ``widths`` per anchor, anchor after anchor (1.2)."""
    per = sum(widths)
    bits = np.unpackbits(np.frombuffer(buf, np.uint8))[: count * per].reshape(count, per)
    out, col = [], 0
    for w in widths:
        value = np.zeros(count, np.int64)
        for j in range(w):
            value = (value << 1) | bits[:, col + j]
        out.append(value)
        col += w
    return out


def _morton(coords, depth):
    code = np.zeros(len(coords), np.uint64)
    for b in range(depth - 1, -1, -1):
        for axis in range(3):
            code = (code << np.uint64(1)) | ((coords[:, axis] >> b) & 1).astype(np.uint64)
    return code


def _roots(buf, n, depth):
    x, y, z = _bit_fields(buf, n, [depth] * 3)
    coords = np.stack([x, y, z], axis=1)
    code = _morton(coords, depth)
    if n > 1 and not (code[1:] > code[:-1]).all():
        fail("roots not in strictly increasing Morton order (duplicate or out of order)")
    return coords, np.full(n, -1, np.int64), np.zeros(n, np.int64)


def _children(buf, n, previous):
    parent, octant = _bit_fields(buf, n, [20, 3])
    if n and parent.max() >= len(previous.coords):
        fail("parent index out of range")
    key = parent * 8 + octant
    if n > 1 and (key[1:] == key[:-1]).any():
        fail("duplicate child")
    if n > 1 and (key[1:] < key[:-1]).any():
        fail("children out of canonical order")
    bits = np.stack([(octant >> 2) & 1, (octant >> 1) & 1, octant & 1], axis=1)
    return 2 * previous.coords[parent] + bits, parent, octant


def _raw(groups, n, channels):
    values = []
    for payload, c in zip(groups, channels):
        if len(payload) != 4 * n * c:
            fail("raw group length is not 4 * N * C_g")
        v = np.frombuffer(payload, "<f4").reshape(n, c)
        if not np.isfinite(v).all():
            fail("raw value not finite")
        values.append(v)
    return values


def decode_level(payload, k, head, previous):
    if len(payload) < 10:
        fail("LEVL payload shorter than its fixed fields")
    level, mode, n, structure_length = struct.unpack_from("<BBII", payload, 0)
    if level != k:
        fail(f"LEVL says level {level}, expected {k}")
    if mode not in (0, 1):
        fail(f"unknown structure_mode {mode}", "unsupported")
    depth = head.base_depth + k - 1
    if k == 1:
        if n < 1:
            fail("level 1 has no anchors", "limit")
        if n > 1 << (3 * depth):
            fail("more roots than voxels", "limit")
        needed = (3 * depth * n + 7) // 8
    else:
        if n > 8 * len(previous.coords):
            fail("more than 8 children per parent", "limit")
        needed = (23 * n + 7) // 8
    if k < head.num_levels and n > 1 << 20:
        fail("a level with children holds more than 2**20 anchors", "limit")
    if mode == 0 and structure_length != needed:
        fail(f"structure_length {structure_length}, {n} anchors need {needed}")
    pos = 10
    if pos + structure_length > len(payload):
        fail("structure section runs past the payload", "limit")
    structure = payload[pos:pos + structure_length]
    pos += structure_length
    groups = []
    for _ in range(3):
        if pos + 4 > len(payload):
            fail("payload ends before a group length")
        (length,) = struct.unpack_from("<I", payload, pos)
        if pos + 4 + length > len(payload):
            fail("group runs past the payload", "limit")
        groups.append(payload[pos + 4:pos + 4 + length])
        pos += 4 + length
    if pos != len(payload):
        fail("bytes after the attribute section")
    if n != head.toc[k - 1].anchor_count:          # after the layout (8.4, row L9)
        fail("anchor_count differs from the table of contents")
    if mode == 1:
        import pgs_occupancy
        coords, parent, octant = (pgs_occupancy.roots(structure, n, depth) if k == 1 else
                                  pgs_occupancy.children(structure, n, previous))
    elif k == 1:
        coords, parent, octant = _roots(structure, n, depth)
    else:
        coords, parent, octant = _children(structure, n, previous)
    if head.attribute_coding == 0:
        ctx, symbols, values = None, None, _raw(groups, n, head.group_channels)
    else:
        from pgs_entropy import decode_attributes
        parent_coords = None if k == 1 else previous.coords[parent]
        ctx, symbols, values = decode_attributes(groups, head, k, coords, parent_coords)
    return DecodedLevel(k, coords, parent, octant, ctx, symbols, values)
