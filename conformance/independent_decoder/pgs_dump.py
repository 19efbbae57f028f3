"""The canonical dump of spec 10."""

import struct

import numpy as np


def _record(tag, payload):
    return tag + struct.pack("<Q", len(payload)) + payload


def write_dump(decoded):
    h = decoded.head
    out = [b"PGSDUMP1",
           _record(b"FRAM", struct.pack("<4f4B3H", *h.origin, h.root_voxel_size, h.base_depth,
                                        h.num_levels, h.convention, h.attribute_coding,
                                        h.feature_dim, h.scaling_dim, h.num_offsets))]
    mlp = b""
    if h.mlps is not None:
        flags, hidden, arrays = h.mlps
        mlp = struct.pack("<BH", flags, hidden) + b"".join(a.astype("<f4").tobytes()
                                                           for a in arrays)
    out.append(_record(b"GMLP", mlp))
    if h.refine is not None:
        out.append(_record(b"RNDR", bytes([h.refine])))
    origin = np.array(h.origin, np.float64)
    for lv in decoded.levels:
        n = len(lv.coords)
        out.append(_record(b"STRC", struct.pack("<II", lv.level, n)
                           + lv.coords.astype("<u4").tobytes()
                           + lv.parent.astype("<i4").tobytes()
                           + lv.octant.astype("u1").tobytes()))
        size = h.root_voxel_size / 2.0 ** (lv.level - 1)
        out.append(_record(b"POSN", (origin + (lv.coords + 0.5) * size).astype("<f4").tobytes()))
        if lv.contexts is not None:
            mean, scale, step = lv.contexts
            out.append(_record(b"CTXT", mean.astype("<i4").tobytes() + scale.astype("u1").tobytes()
                               + step.astype("u1").tobytes()))
            out.append(_record(b"SYMB", b"".join(s.astype("<i4").tobytes() for s in lv.symbols)))
        out.append(_record(b"ATTR", b"".join(v.astype("<f4").tobytes() for v in lv.values)))
    return b"".join(out)
