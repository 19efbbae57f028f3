"""HEAD chunk: parts, scene frame, table of contents, generation MLPs (spec 3)."""

import math
import struct
from dataclasses import dataclass

import numpy as np

from pgs_errors import fail


@dataclass(frozen=True)
class TocEntry:
    offset: int
    size: int
    anchor_count: int


@dataclass(frozen=True)
class Head:
    origin: tuple
    root_voxel_size: float
    base_depth: int
    num_levels: int
    convention: int
    attribute_coding: int
    feature_dim: int
    scaling_dim: int
    num_offsets: int
    toc: tuple
    mlps: object            # None, or (flags, hidden_width, [12 float32 arrays])
    entropy: object         # None for raw coding, else the chapter 5-6 model
    refine: object          # None for a 1.0 stream (no rendering part), else 0 or 1 (3.5)

    @property
    def group_channels(self):
        return (self.feature_dim, self.scaling_dim, 3 * self.num_offsets)


def _parts(payload, minor):
    names = ["frame", "toc", "hash_grid", "context_mlp", "gaussian_mlps"]
    if minor >= 1:
        names.append("rendering")      # part 5, version 1.1 (3, 3.5)
    parts, pos = [], 0
    for name in names:
        if pos + 4 > len(payload):
            fail(f"HEAD payload ends before the length of part {name}")
        (n,) = struct.unpack_from("<I", payload, pos)
        if pos + 4 + n > len(payload):
            fail(f"part {name} declares {n} bytes past the HEAD payload", "limit")
        parts.append(payload[pos + 4:pos + 4 + n])
        pos += 4 + n
    return parts   # bytes after the parts of the stream's minor version are ignored (3)


def _frame(part, minor):
    if len(part) != 28:
        fail(f"frame part of {len(part)} bytes, expected 28")
    ox, oy, oz, voxel = struct.unpack_from("<4f", part, 0)
    base_depth, num_levels, convention, coding = part[16], part[17], part[18], part[19]
    feature_dim, scaling_dim, num_offsets, reserved = struct.unpack_from("<4H", part, 20)
    if not all(math.isfinite(v) for v in (ox, oy, oz)):
        fail("origin is not finite")
    if not (math.isfinite(voxel) and voxel > 0):
        fail("root_voxel_size is not finite and > 0")
    if base_depth > 16:
        fail("base_depth > 16")
    if not 1 <= num_levels <= 16 or base_depth + num_levels - 1 > 21:
        fail("num_levels out of range")
    # values this version leaves undefined: a later minor version's, in a newer stream (2.4)
    reserved_class = "unsupported" if minor > 1 else "format"
    # 0 OpenCV, 1 OpenGL; 2 Z-up only from minor version 1 on (3.1)
    if convention > 2 or (convention == 2 and minor < 1):
        fail("unknown convention", reserved_class)
    if coding not in (0, 1):
        fail("unknown attribute_coding", reserved_class)
    if not 1 <= feature_dim <= 1024 or scaling_dim > 64 or not 1 <= num_offsets <= 64:
        fail("attribute dims out of range")
    if reserved != 0:
        fail("reserved is not 0", reserved_class)
    return dict(origin=(ox, oy, oz), root_voxel_size=voxel, base_depth=base_depth,
                num_levels=num_levels, convention=convention, attribute_coding=coding,
                feature_dim=feature_dim, scaling_dim=scaling_dim, num_offsets=num_offsets)


def _mlps(part, feature_dim, num_offsets, minor):
    if not part:
        return None
    if len(part) < 3:
        fail("gaussian_mlps part too short")
    flags = part[0]
    (hidden,) = struct.unpack_from("<H", part, 1)
    if flags & 0xFE:
        fail("gaussian_mlps flags other than bit 0 set", "unsupported" if minor > 1 else "format")
    if not 1 <= hidden <= 1024:
        fail("hidden_width out of 1..1024")
    inputs = feature_dim + 3 + (flags & 1)
    shapes = []
    for outputs in (num_offsets, 3 * num_offsets, 7 * num_offsets):
        shapes += [(hidden, inputs), (hidden,), (outputs, hidden), (outputs,)]
    total = sum(int(np.prod(s)) for s in shapes)
    if len(part) != 3 + 2 * total:
        fail("gaussian_mlps part length does not match its shapes")
    values = np.frombuffer(part, dtype="<f2", offset=3).astype(np.float32)
    if not np.isfinite(values).all():
        fail("generation MLP value not finite")
    arrays, pos = [], 0
    for s in shapes:
        n = int(np.prod(s))
        arrays.append(values[pos:pos + n])
        pos += n
    return flags, hidden, arrays


def _rendering(part):
    if len(part) != 1:
        fail("rendering part is not 1 byte")
    if part[0] > 1:
        fail(f"refine {part[0]} is reserved", "unsupported")
    return part[0]


def parse_head(payload, minor):
    parts = _parts(payload, minor)
    frame_part, toc_part, grid_part, context_part, mlp_part = parts[:5]
    frame = _frame(frame_part, minor)
    levels = frame["num_levels"]
    if len(toc_part) != 16 * levels:
        fail("toc part length is not 16 * num_levels")
    toc = tuple(TocEntry(*struct.unpack_from("<QII", toc_part, 16 * i)) for i in range(levels))
    entropy = None
    if frame["attribute_coding"] == 0:
        if grid_part or context_part:
            fail("hash_grid / context_mlp parts must be empty with raw coding")
    else:
        from pgs_entropy import parse_entropy_parts
        entropy = parse_entropy_parts(grid_part, context_part, frame)
    mlps = _mlps(mlp_part, frame["feature_dim"], frame["num_offsets"], minor)
    refine = _rendering(parts[5]) if minor >= 1 else None
    return Head(toc=toc, mlps=mlps, entropy=entropy, refine=refine, **frame)
