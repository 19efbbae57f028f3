"""Rebuild the conformance suite deterministically (spec 10).

    python conformance/generate.py            # rewrite vectors/, invalid/, manifest, README
    python conformance/generate.py --out DIR  # write the suite somewhere else

Every vector is built from a seeded model and encoded by the reference encoder; edge cases
that the encoder cannot produce (unknown chunks, a newer minor version) are made by stream
surgery below. Expected digests come from the reference decoder, and every invalid stream is
checked to be rejected by it with the expected error class. A trained stream,
``examples/plant.progs``, is included as vector ``trained-plant`` when it exists.
"""

from __future__ import annotations

import argparse
import json
import lzma
import math
import shutil
import struct
import sys
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from progs_codec import ProgsError, decode, encode  # noqa: E402
from progs_codec.entropy.attributes import level_contexts, sample_attributes  # noqa: E402
from progs_codec.entropy.context_model import (  # noqa: E402
    ContextLayer,
    ContextModel,
    random_context_model,
)
from progs_codec.entropy.hashgrid import PRESETS, HashGridConfig, random_hash_grid  # noqa: E402
from progs_codec.entropy.model import EntropyModel  # noqa: E402
from progs_codec.format.occupancy import (  # noqa: E402
    children_masks,
    virtual_masks,
    write_occupancy,
)
from progs_codec.format.structure import levels_from_coords, write_children  # noqa: E402
from progs_codec.model import (  # noqa: E402
    AttributeDims,
    CoordinateConvention,
    Level,
    ProgsModel,
    Refinement,
    SceneFrame,
)
from progs_codec.testing import random_gaussian_mlps, random_octree, synthetic_model  # noqa: E402
from progs_codec.tools.canonical import decode_to_dump, digest, error_class  # noqa: E402

SUITE = Path(__file__).resolve().parent
PLANT = ROOT / "examples" / "plant.progs"
#: Streams larger than this are stored xz-compressed (``stream.progs.xz``).
COMPRESS_ABOVE = 1 << 20
TINY = AttributeDims(feature=1, scaling=0, num_offsets=1)


@dataclass(frozen=True)
class Vector:
    name: str
    description: str
    spec: tuple[str, ...]
    build: Callable[[], bytes]
    light: bool = False     # few decoder calls: the stream is large or slow to decode
    #: ``[(name, max_lod, bytes)]`` instead of the usual cases (for streams that are prefixes
    #: or that are invalid above some LoD); ``records_lod``: the LoD whose records are listed.
    cases: tuple[tuple[str, int, int | None], ...] | None = None
    records_lod: int = 16
    #: Not a whole valid stream (a prefix, or invalid above the LoDs it is asked for): it goes
    #: to ``partial/``, so that ``vectors/`` holds only whole valid streams.
    partial: bool = False


@dataclass(frozen=True)
class Invalid:
    name: str
    description: str
    spec: tuple[str, ...]
    error_class: str
    build: Callable[[], bytes]
    max_lod: int = 16       # the request the decoder gets (16: every level)


# --- models ----------------------------------------------------------------------------------

def _attributes(rng: np.random.Generator, n: int, dims: AttributeDims) -> dict:
    return {"feature": rng.normal(0, 1, (n, dims.feature)).astype(np.float32),
            "scaling": rng.normal(-4, 0.5, (n, dims.scaling)).astype(np.float32),
            "offsets": rng.normal(0, 0.5, (n, dims.num_offsets, 3)).astype(np.float32)}


def _model(coords_by_level, *, base_depth: int, dims: AttributeDims = TINY, seed: int = 0,
           origin=(-1.0, -1.0, -1.0), voxel: float = 0.25,
           convention=CoordinateConvention.OPENCV, mlps: dict | None = None,
           attributes=None) -> ProgsModel:
    """A raw-coded model from per-level voxel coordinates in any order."""
    rng = np.random.default_rng(seed)
    coords_by_level = [np.asarray(c, np.int64).reshape(-1, 3) for c in coords_by_level]
    attrs = attributes or [_attributes(rng, len(c), dims) for c in coords_by_level]
    levels = levels_from_coords(coords_by_level, base_depth, attrs)
    frame = SceneFrame(origin=origin, root_voxel_size=voxel, base_depth=base_depth,
                       num_levels=len(levels), convention=convention)
    gaussian_mlps = None if mlps is None else random_gaussian_mlps(dims, rng, **mlps)
    return ProgsModel(frame=frame, dims=dims, levels=levels, gaussian_mlps=gaussian_mlps)


def _random_raw(num_anchors: int, num_levels: int, seed: int, dims: AttributeDims, *,
                base_depth: int | None = None, mlps: dict | None = None) -> ProgsModel:
    rng = np.random.default_rng(seed)
    base_depth, octree = random_octree(num_anchors, num_levels, rng, base_depth=base_depth)
    return _model([c for c, _, _ in octree], base_depth=base_depth, dims=dims, seed=seed,
                  mlps=mlps)


def _children(parents: np.ndarray, octants) -> np.ndarray:
    o = np.asarray(octants)
    bits = np.stack([(o >> 2) & 1, (o >> 1) & 1, o & 1], axis=1)
    return (2 * np.asarray(parents)[:, None, :] + bits[None]).reshape(-1, 3)


# --- stream surgery ----------------------------------------------------------------------------

def chunks_of(stream: bytes) -> tuple[bytes, list[list]]:
    """``(file header, [[type, payload], ...])`` of a well-formed stream, not validated."""
    pos, chunks = 10, []
    while pos < len(stream):
        (length,) = struct.unpack_from("<I", stream, pos + 4)
        chunks.append([stream[pos: pos + 4], stream[pos + 8: pos + 8 + length]])
        pos += 12 + length
    return stream[:10], chunks


def _toc_position(head: bytes) -> int:
    (frame_length,) = struct.unpack_from("<I", head, 0)
    return 8 + frame_length


def assemble(file_header: bytes, chunks: list, *, fix_toc: bool = True,
             bad_crc: int | None = None) -> bytes:
    """Join chunks with fresh CRCs; ``fix_toc`` points the HEAD table of contents at the
    ``LEVL`` chunks where they now lie; ``bad_crc`` is the index of a chunk whose CRC to spoil."""
    offsets, pos = [], len(file_header)
    for chunk_type, payload in chunks:
        offsets.append(pos)
        pos += 12 + len(payload)
    chunks = [list(c) for c in chunks]
    heads = [i for i, c in enumerate(chunks) if c[0] == b"HEAD"]
    if fix_toc and heads:
        head = bytearray(chunks[heads[0]][1])
        toc = _toc_position(head)
        levels = [(o, 12 + len(p)) for o, (t, p) in zip(offsets, chunks) if t == b"LEVL"]
        (toc_length,) = struct.unpack_from("<I", head, toc - 4)
        for i, (offset, size) in enumerate(levels[: toc_length // 16]):
            struct.pack_into("<QI", head, toc + 16 * i, offset, size)
        chunks[heads[0]][1] = bytes(head)
    out = [file_header]
    for i, (chunk_type, payload) in enumerate(chunks):
        crc = zlib.crc32(payload, zlib.crc32(chunk_type)) ^ (0xDEADBEEF if i == bad_crc else 0)
        out.append(chunk_type + struct.pack("<I", len(payload)) + payload + struct.pack("<I", crc))
    return b"".join(out)


def edit(stream: bytes, change: Callable[[list], None], *, fix_toc: bool = True,
         file_header: bytes | None = None) -> bytes:
    """Apply ``change`` to the chunk list of ``stream`` and reassemble with valid CRCs."""
    header, chunks = chunks_of(stream)
    change(chunks)
    return assemble(file_header or header, chunks, fix_toc=fix_toc)


def patch(payload: bytes, offset: int, fmt: str, *values) -> bytes:
    out = bytearray(payload)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def head_parts(head: bytes) -> list[bytes]:
    parts, pos = [], 0
    for _ in range(5):
        (length,) = struct.unpack_from("<I", head, pos)
        parts.append(head[pos + 4: pos + 4 + length])
        pos += 4 + length
    return parts


def join_parts(parts: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(p)) + p for p in parts)


def split_level(payload: bytes) -> tuple[list, bytes, list[bytes]]:
    """``([level, mode, count, structure_length], structure, [group payloads])``."""
    fields = list(struct.unpack_from("<BBII", payload))
    pos = 10 + fields[3]
    structure, groups = payload[10:pos], []
    for _ in range(3):
        (length,) = struct.unpack_from("<I", payload, pos)
        groups.append(payload[pos + 4: pos + 4 + length])
        pos += 4 + length
    return fields, structure, groups


def join_level(fields: list, structure: bytes, groups: list[bytes]) -> bytes:
    return struct.pack("<BBII", *fields) + structure + b"".join(
        struct.pack("<I", len(g)) + g for g in groups)


# --- vectors -----------------------------------------------------------------------------------

def v_minimal() -> bytes:
    return encode(_model([[[0, 0, 0]]], base_depth=0))


def v_basic() -> bytes:
    return encode(_random_raw(120, 3, seed=1, dims=AttributeDims(),
                              mlps=dict(hidden_width=32, use_distance=True)))


def v_opengl() -> bytes:
    model = _random_raw(60, 2, seed=2, dims=AttributeDims(8, 6, 2),
                        mlps=dict(hidden_width=1, use_distance=False))
    return encode(replace(model, frame=replace(model.frame,
                                               convention=CoordinateConvention.OPENGL)))


def v_max_levels() -> bytes:
    """16 levels over base depth 6: the last level has depth 21, the deepest allowed."""
    corners = np.array([[0, 0, 0], [63, 63, 63], [5, 40, 17]])
    levels = [corners]
    rng = np.random.default_rng(3)
    for _ in range(15):
        parents = levels[-1]
        kids = [_children(parents[:1], [0]), _children(parents[1:2], [7])]
        extra = _children(parents[2:], range(8))
        kids.append(extra[rng.choice(len(extra), size=min(len(extra), 4), replace=False)])
        levels.append(np.concatenate(kids))
    return encode(_model(levels, base_depth=6, seed=3))


def v_max_base_depth() -> bytes:
    top = (1 << 16) - 1
    roots = np.array([[0, 0, 0], [top, top, top], [top, 0, top], [0, top, 0], [12345, 54321, 777]])
    return encode(_model([roots, _children(roots[:2], [0, 7])], base_depth=16, seed=4))


def v_max_dims() -> bytes:
    dims = AttributeDims(feature=1024, scaling=64, num_offsets=64)
    roots = np.array([[0, 1, 0], [1, 0, 1]])
    return encode(_model([roots, _children(roots[:1], [1, 2, 6])], base_depth=1, dims=dims,
                         seed=5))


def v_wide_mlp() -> bytes:
    roots = np.array([[2, 3, 1], [0, 0, 0]])
    return encode(_model([roots], base_depth=2, seed=6,
                         mlps=dict(hidden_width=1024, use_distance=True)))


def v_dense() -> bytes:
    roots = _children(np.zeros((1, 3), np.int64), range(8))   # all 8 voxels of depth 1
    level2 = _children(roots, range(8))                       # all 64 voxels of depth 2
    level3 = _children(level2[::7], range(8))
    return encode(_model([roots, level2, level3], base_depth=1, seed=7))


def _structure_modes(stream: bytes) -> list[int]:
    return [split_level(p)[0][1] for t, p in chunks_of(stream)[1] if t == b"LEVL"]


def v_occupancy() -> bytes:
    stream = encode(_random_raw(6000, 3, seed=11, dims=TINY, base_depth=4))
    assert _structure_modes(stream) == [1, 1, 1], _structure_modes(stream)
    return stream


def v_mixed_layouts() -> bytes:
    # 16 roots at base depth 6: 36 bytes fixed, more in the occupancy layout (its presence
    # bitmap alone is 32 bytes).
    stream = encode(_random_raw(2000, 5, seed=12, dims=TINY, base_depth=6))
    modes = _structure_modes(stream)
    assert modes[0] == 0 and 1 in modes, modes
    return stream


def v_empty_levels() -> bytes:
    empty = np.zeros((0, 3), np.int64)
    return encode(_model([[[1, 0, 1]], empty, empty], base_depth=1, seed=8))


def v_float_extremes() -> bytes:
    f32 = np.finfo(np.float32)
    special = np.array([f32.max, -f32.max, f32.tiny, -f32.tiny, f32.smallest_subnormal,
                        -f32.smallest_subnormal, 0.0, -0.0, 1.0, -1.0, np.pi, 65504.0],
                       np.float32)
    dims = AttributeDims(feature=4, scaling=2, num_offsets=1)
    roots = np.array([[0, 0, 0], [1, 1, 1], [3, 2, 1], [0, 3, 3]])
    flat = np.resize(special, (len(roots), dims.channels))
    attrs = [{"feature": flat[:, :4].copy(), "scaling": flat[:, 4:6].copy(),
              "offsets": flat[:, 6:].reshape(-1, 1, 3).copy()}]
    # A subnormal root voxel size and a far origin: positions need binary64, then one rounding.
    return encode(_model([roots], base_depth=2, dims=dims, attributes=attrs,
                         origin=(-3.0e38, 1.0e-30, 0.1), voxel=float(np.float32(3e-39))))


def v_optional_chunks() -> bytes:
    stream = encode(_random_raw(40, 3, seed=9, dims=TINY))

    def change(chunks):
        chunks.insert(1, [b"xtra", b"ignored by decoders"])
        chunks.insert(3, [b"nOTE", b""])
        chunks.insert(len(chunks) - 1, [b"zzzz", bytes(range(256))])
    return edit(stream, change)


def v_minor_version() -> bytes:
    """Minor version 1.7: part 5 (rendering, refine 0) and a seventh HEAD part that decoders
    of 1.1 ignore (2.1, 3). (The 1.0 suite's version of this vector had a five-byte part 5;
    1.1 gives part 5 a meaning, so that stream is now invalid, spec/CHANGES.md.)"""
    stream = encode(_random_raw(30, 2, seed=10, dims=TINY))

    def change(chunks):
        chunks[0][1] += struct.pack("<I", 1) + b"\0" + struct.pack("<I", 5) + b"later"
    return edit(stream, change, file_header=stream[:8] + bytes([1, 7]))


def v_refine_replace() -> bytes:
    """A version 1.1 stream with refine REPLACE (3.5): four levels, generation MLPs."""
    model = _random_raw(90, 4, seed=13, dims=AttributeDims(8, 6, 2),
                        mlps=dict(hidden_width=4, use_distance=True))
    stream = encode(replace(model, refine=Refinement.REPLACE))
    assert stream[8:10] == bytes([1, 1])
    return stream


def v_zup() -> bytes:
    """A version 1.1 stream whose frame is Z-up (convention 2, 3.1): the encoder writes minor
    version 1 (with part 5, refine 0) because 1.0 cannot express it."""
    model = _random_raw(50, 3, seed=15, dims=AttributeDims(4, 6, 2),
                        mlps=dict(hidden_width=4, use_distance=True))
    stream = encode(replace(model, frame=replace(model.frame,
                                                 convention=CoordinateConvention.ZUP)))
    assert stream[8:10] == bytes([1, 1])
    return stream


def v_minor_0_trailing_part() -> bytes:
    """A 1.0 stream whose HEAD holds a sixth part with the byte 1 after the five parts of 1.0:
    a 1.0 stream has no rendering part, so it is ignored (refine ADD, no RNDR record)."""
    stream = encode(_random_raw(30, 2, seed=14, dims=TINY))

    def change(chunks):
        chunks[0][1] += struct.pack("<I", 1) + b"\x01"
    return edit(stream, change)


def v_parent_index_max() -> bytes:
    """Level 1 holds 2**20 roots, the most a level with children may hold (4.1); level 2's
    children name parents 0 and 2**20 - 1, the largest 20-bit parent index."""
    axis = np.arange(128)
    roots = np.stack(np.meshgrid(axis, axis, axis[::2], indexing="ij"), -1).reshape(-1, 3)
    kids = np.array([[0, 0, 0], [1, 1, 1], [255, 255, 253], [254, 254, 252], [254, 255, 252]])
    n = len(roots)
    zeros = {"feature": np.zeros((n, 1), np.float32), "scaling": np.zeros((n, 0), np.float32),
             "offsets": np.zeros((n, 1, 3), np.float32)}
    zeros["feature"][-3:, 0] = [1.5, -2.5, 3.5]   # lets a misplaced last anchor show
    kid_attrs = _attributes(np.random.default_rng(11), len(kids), TINY)
    return encode(_model([roots, kids], base_depth=7, attributes=[zeros, kid_attrs]))


# --- entropy-coded vectors (chapters 5-7) ------------------------------------------------------

def _entropy(model: ProgsModel, entropy: EntropyModel, seed: int,
             overwrite: Callable[[int, list], None] | None = None) -> bytes:
    """Encode ``model``'s structure with ``entropy``, attributes drawn from its predictions;
    ``overwrite(k, [feature, scaling, offsets])`` may then plant extreme values."""
    rng = np.random.default_rng(seed)
    levels = []
    for k, level in enumerate(model.levels, start=1):
        parents = None if k == 1 else model.levels[k - 2].coords[level.parent_index]
        prediction = level_contexts(entropy, level.coords, parents, model.frame.depth(k))
        attrs = list(sample_attributes(entropy, prediction, model.dims, rng))
        if overwrite:
            overwrite(k, attrs)
        levels.append(Level(level.coords, level.parent_index, level.octant, *attrs))
    return encode(replace(model, levels=levels, entropy_model=entropy))


def _grid_model(config: HashGridConfig, dims: AttributeDims, seed: int, *, p_one=0.5,
                hidden=(16,), base_steps=(1 << 11, 1 << 6, 1 << 10)) -> EntropyModel:
    rng = np.random.default_rng(seed)
    grid = random_hash_grid(config, seed=seed, p_one=p_one)
    widths = [2 * config.feature_width, *hidden, 3 * dims.channels]
    return EntropyModel(grid, random_context_model(widths, rng), base_steps)


def v_entropy_small() -> bytes:
    return encode(synthetic_model(150, 3, seed=30, preset="small", gaussian_mlps=False))


def v_entropy_hac() -> bytes:
    """The hac preset's 10 million grid bits, mostly -1 so that they code small."""
    dims = AttributeDims(feature=4, scaling=2, num_offsets=1)
    structure = _random_raw(40, 2, seed=31, dims=dims)
    return _entropy(structure, _grid_model(PRESETS["hac"], dims, 31, p_one=0.001), 31)


def v_entropy_grid_3d() -> bytes:
    """3D tables only, 8 features per level; resolution 1 (dense) and 65535 (hashed) at
    depth 21, where the vertex arithmetic needs 64 bits."""
    config = HashGridConfig((1, 65535, 40), 12, (), 1, 8)
    top = (1 << 16) - 1
    roots = np.array([[0, 0, 0], [top, top, top], [7, 30000, 65000]])
    levels = [roots]
    for _ in range(5):
        levels.append(np.concatenate([_children(levels[-1][:1], [0]),
                                      _children(levels[-1][1:], [7, 3])]))
    structure = _model(levels, base_depth=16, dims=TINY, seed=32)
    return _entropy(structure, _grid_model(config, TINY, 32), 32)


def v_entropy_grid_2d() -> bytes:
    """2D tables only (planes xy, xz, yz), one feature per level, dense and hashed."""
    config = HashGridConfig((), 1, (2, 17, 300), 9, 1)
    dims = AttributeDims(feature=3, scaling=1, num_offsets=2)
    structure = _random_raw(120, 3, seed=33, dims=dims)
    return _entropy(structure, _grid_model(config, dims, 33), 33)


def _extreme_context(width: int, channels: int, rng: np.random.Generator) -> ContextModel:
    """Two layers whose outputs reach every scale and step row and both mean limits.

    The hidden layer uses weights +-127, a bias near -2**31, multipliers up to 65535 and
    shifts 0 and 40, so activations clip at 0 and 127. The last layer is mostly bias:
    channel ``c`` asks for scale index ``c - 1`` (clipped to 0..63) and step index
    ``c - 1`` modulo 34 (clipped to 0..31); channels 0-3 ask for means beyond +-(2**24 - 1).
    """
    hidden = 16
    weight = rng.integers(-127, 128, (hidden, width)).astype(np.int8)
    weight[0, :] = 127
    weight[1, :] = -127
    bias = rng.integers(-3000, 3000, hidden).astype(np.int32)
    bias[2] = -(1 << 31) + 1
    multiplier = rng.integers(1, 1 << 16, hidden).astype(np.uint16)
    multiplier[:4] = 65535
    shift = np.full(hidden, 16, np.uint8)
    shift[3], shift[4] = 40, 0
    first = ContextLayer(weight, bias, multiplier, shift)
    c = np.arange(channels)
    mean = rng.integers(-3000, 3000, channels)
    mean[:4] = [(1 << 24) + 5, -(1 << 24) - 5, (1 << 24) - 1, -(1 << 24) + 1]
    out_bias = np.concatenate([mean, c - 1, (c % 34) - 1]).astype(np.int32)
    out_weight = np.zeros((3 * channels, hidden), np.int8)
    out_weight[:channels] = rng.integers(-127, 128, (channels, hidden))
    last = ContextLayer(out_weight, out_bias, np.ones(3 * channels, np.uint16),
                        np.zeros(3 * channels, np.uint8))
    return ContextModel((first, last), channels)


def v_entropy_extremes() -> bytes:
    """Every scale table and step multiplier in use, clipped outputs, base steps 1 and
    2**20, escapes with up to 24 leading zeros and values at +-(2**24 - 1)."""
    dims = AttributeDims(feature=70, scaling=2, num_offsets=1)
    config = HashGridConfig((2, 9), 6, (5,), 5, 2)
    rng = np.random.default_rng(34)
    entropy = EntropyModel(random_hash_grid(config, seed=34),
                           _extreme_context(2 * config.feature_width, dims.channels, rng),
                           (1, 1 << 20, 77))
    structure = _random_raw(40, 2, seed=34, dims=dims)
    limit = ((1 << 24) - 1) / (1 << 16)

    def overwrite(k, attrs):
        feature = attrs[0]
        feature[:, 0] = limit           # mean clipped to 2**24 - 1: symbol 0
        feature[:, 1] = limit           # mean -(2**24 - 1), step 1: the longest escape
        feature[:, 2] = -limit
        feature[::3, 64:70] = rng.choice([-limit, limit, 100.0, -37.5], (len(feature[::3]), 6))
        attrs[2][1::2] = 200.0          # offsets far from their means: escapes
    return _entropy(structure, entropy, 34, overwrite)


def v_entropy_deep_mlp() -> bytes:
    """Eight context layers (the maximum)."""
    dims = AttributeDims(feature=5, scaling=3, num_offsets=2)
    config = HashGridConfig((4, 12), 8, (6,), 6, 2)
    structure = _random_raw(80, 3, seed=35, dims=dims)
    return _entropy(structure, _grid_model(config, dims, 35, hidden=(24, 20, 16, 12, 8, 6, 4)),
                    35)


def v_entropy_blocks() -> bytes:
    """A level of 4100 anchors: symbols of two 4096-anchor blocks share one coder (7.5)."""
    axis = np.arange(16)
    roots = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    kids = _children(roots, [1, 6])[:4100]
    structure = _model([roots[:2050], kids], base_depth=4, dims=TINY, seed=36)
    config = HashGridConfig((3, 20), 8, (7,), 6, 2)
    return _entropy(structure, _grid_model(config, TINY, 36), 36)


def v_entropy_empty() -> bytes:
    """No scaling channels (an empty group in every level) and empty levels 2 and 3."""
    dims = AttributeDims(feature=2, scaling=0, num_offsets=1)
    empty = np.zeros((0, 3), np.int64)
    structure = _model([[[1, 0, 1], [0, 1, 1]], empty, empty], base_depth=1, dims=dims, seed=37)
    return _entropy(structure, _grid_model(HashGridConfig((2,), 4, (3,), 4, 1), dims, 37), 37)


def _padding_bits(section: bytes) -> int:
    """Padding bits at the end of an escape section: after the last code, all zero (7.5)."""
    bits, pos = "".join(f"{b:08b}" for b in section), 0
    while "1" in bits[pos:]:
        z = bits.index("1", pos) - pos
        pos += 2 * z + 2
    return len(bits) - pos


def v_nonzero_padding() -> bytes:
    """Every padding bit set to 1: of the structure sections and of the escape sections.
    Decoders ignore padding (1.2)."""
    stream = _entropy_base()
    base_depth = decode(stream, max_lod=1).frame.base_depth

    def change(chunks):
        for k, chunk in enumerate((c for c in chunks if c[0] == b"LEVL"), start=1):
            fields, structure, groups = split_level(chunk[1])
            used = fields[2] * (3 * base_depth if k == 1 else 23)
            structure = bytearray(structure)
            if len(structure) * 8 > used:
                structure[-1] |= (1 << (len(structure) * 8 - used)) - 1
            padded = []
            for group in groups:
                (m,) = struct.unpack_from("<I", group)
                section = bytearray(group[4 + 4 * m:])
                if section:
                    section[-1] |= (1 << _padding_bits(section)) - 1
                padded.append(group[: 4 + 4 * m] + bytes(section))
            chunk[1] = join_level(fields, bytes(structure), padded)
    return edit(stream, change)


#: The trained vector keeps the LoDs of examples/plant.progs up to this many coded symbols
#: (anchors x channels), so that a plain-Python decoder stays within seconds.
TRAINED_SYMBOLS = 400_000


def v_trained_plant() -> bytes:
    """examples/plant.progs, or its largest LoD within TRAINED_SYMBOLS re-encoded as a stream
    of its own (``encode(decode(s))`` reproduces the level chunks byte for byte)."""
    stream = PLANT.read_bytes()
    model = decode(stream)
    lod = 1
    while lod < model.lod and model.num_anchors(lod + 1) * model.dims.channels <= TRAINED_SYMBOLS:
        lod += 1
    return stream if lod == model.lod and model.num_anchors() * model.dims.channels \
        <= TRAINED_SYMBOLS else encode(model.truncated(lod))



# --- spec 1.1: the readings chapter 8 settles ------------------------------------------------

def _level_end(stream: bytes, k: int) -> int:
    offset, size = _toc(stream)[k - 1]
    return offset + size


def _varint(value: int, length: int) -> bytes:
    """Unsigned LEB128 of ``value`` in exactly ``length`` bytes (overlong when longer than
    needed): 7 bits per byte, low group first, bit 7 on every byte but the last."""
    out = []
    for i in range(length):
        out.append((value >> (7 * i)) & 0x7F | (0x80 if i < length - 1 else 0))
    assert value >> (7 * length) == 0
    return bytes(out)


def _overlong_counts(section: bytes) -> bytes:
    """The occupancy section with its mask counts re-coded: every third one in one byte more
    than it needs, every third in 5 bytes (4.6 allows 1 to 5 bytes, value 1..2**32 - 1)."""
    present = np.flatnonzero(np.unpackbits(np.frombuffer(section[:32], np.uint8)))
    pos, counts = 32, []
    for _ in present:
        value, shift = 0, 0
        while True:
            byte = section[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        counts.append(value)
    coded = b""
    for i, value in enumerate(counts):
        needed = max(1, (value.bit_length() + 6) // 7)
        coded += _varint(value, (needed, min(needed + 1, 5), 5)[i % 3])
    assert any(i % 3 for i in range(len(counts)))
    return section[:32] + coded + section[pos:]


def v_overlong_counts() -> bytes:
    """Occupancy-layout levels whose mask counts use overlong LEB128 forms (``81 00`` for 1,
    5-byte forms): valid, the same masks."""
    stream = encode(_random_raw(900, 3, seed=15, dims=TINY, base_depth=3))
    assert _structure_modes(stream)[1:] == [1, 1], _structure_modes(stream)

    def change(chunks):
        for chunk in chunks:
            if chunk[0] == b"LEVL" and split_level(chunk[1])[0][1] == 1:
                fields, structure, groups = split_level(chunk[1])
                structure = _overlong_counts(structure)
                chunk[1] = join_level(fields[:3] + [len(structure)], structure, groups)
    out = edit(stream, change)
    assert b"\x81\x00" in out or b"\x80\x00" in out
    return out


def v_cut_in_chunk_header() -> bytes:
    """A prefix: LEVL 1 and 2, then 7 bytes of a chunk header whose type '1EVL' is not four
    letters. Fewer than 8 bytes of that chunk are present, so nothing of it is checked."""
    stream = _base()
    return stream[: _level_end(stream, 2)] + b"1EVL" + struct.pack("<I", 40)[:3]


def v_ignores_what_follows() -> bytes:
    """toc[3] is nonsense (offset 0, size 0, 2**32 - 1 anchors) and LEVL 3's CRC is wrong: a
    decoder of LoD 1 or 2 reads and checks nothing after LEVL 2, and no toc entry of a level it
    does not decode (the whole stream is invalid)."""
    header, chunks = chunks_of(_base())
    out = bytearray(assemble(header, chunks, bad_crc=3))
    head = chunks[0][1]
    pos = 10 + 8 + _toc_position(head) + 32
    struct.pack_into("<QII", out, pos, 0, 0, 0xFFFFFFFF)
    (length,) = struct.unpack_from("<I", out, 14)
    struct.pack_into("<I", out, 18 + length, zlib.crc32(bytes(out[18: 18 + length]),
                                                        zlib.crc32(b"HEAD")))
    return bytes(out)


def _positions(coords: np.ndarray, origin, voxel: float, level: int) -> tuple[np.ndarray, ...]:
    """Centres as spec 3.1 computes them, and as binary32 arithmetic would."""
    exact = (np.asarray(origin, np.float64) + (coords + 0.5) * (voxel / 2.0 ** (level - 1))
             ).astype(np.float32)
    f32 = np.float32
    single = (np.asarray(origin, f32) + (coords.astype(f32) + f32(0.5))
              * (f32(voxel) / f32(2.0 ** (level - 1)))).astype(np.float32)
    return exact, single


def v_positions_binary64() -> bytes:
    """Deep coordinates, a voxel size with a full mantissa and a far origin: centres computed
    in binary32 arithmetic round differently from binary64-then-binary32 for most anchors."""
    rng = np.random.default_rng(16)
    roots = np.unique(rng.integers(0, 1 << 16, (120, 3)), axis=0)
    kids = _children(roots[::3], [0, 5])
    origin, voxel = (1000.1, -3.3e3, 7.77), float(np.float32(0.1))
    origin = tuple(float(np.float32(v)) for v in origin)
    for coords, level in ((roots, 1), (kids, 2)):
        exact, single = _positions(coords.astype(np.float64), origin, voxel, level)
        assert (exact != single).any(axis=1).mean() > 0.5
    return encode(_model([roots, kids], base_depth=16, seed=16, origin=origin, voxel=voxel))


def v_positions_subnormal() -> bytes:
    """A subnormal origin and root voxel size, so that every centre is a binary32 subnormal:
    decoders keep subnormals (no flush to zero)."""
    f32 = np.finfo(np.float32)
    voxel = float(f32.smallest_subnormal * 6)
    origin = (float(f32.smallest_subnormal * 3), 0.0, -float(f32.smallest_subnormal * 1000))
    roots = np.array([[0, 0, 0], [1, 2, 3], [3, 3, 1], [2, 0, 3]])
    kids = _children(roots[:2], [1, 6])
    for coords, level in ((roots, 1), (kids, 2)):
        exact, _ = _positions(coords.astype(np.float64), origin, voxel, level)
        assert ((exact != 0) & (np.abs(exact) < f32.tiny)).any()
    return encode(_model([roots, kids], base_depth=2, seed=17, origin=origin, voxel=voxel))


def v_occupancy_empty() -> bytes:
    """The occupancy layout where no mask is coded: level 1 at base depth 0 (a single root,
    no virtual ancestor) and level 3 after an empty level 2 (``H = 0``): each section is the
    32-byte presence bitmap of zeros and ``num_words`` 0."""
    empty = np.zeros((0, 3), np.int64)
    stream = encode(_model([[[0, 0, 0]], empty, empty], base_depth=0, seed=18))
    section = bytes(32) + struct.pack("<I", 0)

    def change(chunks):
        levels = [c for c in chunks if c[0] == b"LEVL"]
        for k in (1, 3):
            fields, _, groups = split_level(levels[k - 1][1])
            levels[k - 1][1] = join_level([fields[0], 1, fields[2], len(section)], section,
                                          groups)
    return edit(stream, change)

VECTORS = [
    Vector("raw-minimal", "One level, one root, base depth 0 (a zero-bit structure section), "
           "the smallest dims (F=1, S=0, K=1), no generation MLPs.",
           ("2", "3.1", "3.3", "4.1", "4.3", "4.5"), v_minimal),
    Vector("raw-basic", "Three levels of a random octree, default dims (50, 6, 10), generation "
           "MLPs (hidden 32, use_distance). Includes a prefix that ends inside level 1 "
           "(LoD 0: header only).",
           ("2", "3.1", "3.3", "3.4", "4.2", "4.3", "4.4", "4.5", "8.2", "8.3"), v_basic),
    Vector("raw-opengl-mlp-nodistance", "OpenGL convention; generation MLPs without the "
           "distance input and hidden width 1.", ("3.1", "3.4"), v_opengl),
    Vector("raw-max-levels", "16 levels (the maximum) over base depth 6, so the last level "
           "has depth 21; corner anchors reach coordinates 0 and 2**21 - 1.",
           ("3.1", "4.2", "4.4", "8.2"), v_max_levels),
    Vector("raw-max-base-depth", "Base depth 16 (the maximum): 48-bit root fields, corner "
           "roots at 0 and 65535.", ("3.1", "4.2", "4.3"), v_max_base_depth),
    Vector("raw-max-dims", "The largest attribute dims: F=1024, S=64, K=64 (1280 channels).",
           ("3.1", "4.5"), v_max_dims),
    Vector("raw-wide-mlp", "Generation MLPs of hidden width 1024 (the maximum) with the "
           "smallest dims.", ("3.4",), v_wide_mlp),
    Vector("raw-dense-octree", "Every voxel occupied at depths 1 and 2, all eight octants of "
           "a parent in use.", ("4.2", "4.3", "4.4"), v_dense),
    Vector("structure-occupancy", "Every level in the occupancy layout, level 1 through its "
           "virtual ancestors from depth 0.", ("4.6",), v_occupancy),
    Vector("structure-mixed-layouts", "Level 1 in the fixed layout, later levels in the "
           "occupancy layout.", ("4.3", "4.6"), v_mixed_layouts),
    Vector("raw-empty-levels", "Levels 2 and 3 hold no anchors (N = 0 is allowed for k > 1).",
           ("4.1", "4.4", "4.5"), v_empty_levels),
    Vector("raw-float-extremes", "Raw values at the f32 extremes (max, smallest normal and "
           "subnormal, -0.0); a subnormal root voxel size and an origin near -f32 max, so "
           "positions need binary64 and one final rounding.", ("1.1", "3.1", "4.5", "10.2"),
           v_float_extremes),
    Vector("raw-optional-chunks", "Unknown optional chunks (xtra, nOTE with an empty payload, "
           "zzzz) after HEAD, between levels and before ENDS; the table of contents accounts "
           "for them.", ("2.2", "2.3", "8.1"), v_optional_chunks),
    Vector("raw-minor-version", "Minor version 7: the rendering part (refine 0) and a seventh "
           "HEAD part, to be ignored. (Rewritten for 1.1: the 1.0 suite's stream had a "
           "five-byte part 5.)", ("2.1", "3", "3.5"), v_minor_version),
    Vector("refine-replace", "Version 1.1: the rendering part with refine 1 (REPLACE), four "
           "levels with generation MLPs; the dump holds an RNDR record.",
           ("2.1", "3", "3.5", "9.1", "10.2"), v_refine_replace),
    Vector("frame-zup", "Version 1.1: convention 2 (Z-up), which needs minor version 1; "
           "refine 0 (ADD), so the dump holds an RNDR record of 0. Three levels with "
           "generation MLPs.", ("2.4", "3.1", "3.5", "9.2", "10.2"), v_zup),
    Vector("minor-0-trailing-part", "A 1.0 stream whose HEAD payload holds a sixth part "
           "(the byte 1) after the five parts: ignored, since 1.0 streams have no rendering "
           "part (refine ADD, no RNDR record).", ("2.1", "3", "3.5"), v_minor_0_trailing_part),
    Vector("raw-parent-index-max", "A non-last level with exactly 2**20 anchors and children "
           "of parent 2**20 - 1 (stored xz-compressed: 19.5 MB of mostly zero raw values).",
           ("4.1", "4.3", "4.4"), v_parent_index_max, light=True),
    Vector("entropy-small-preset", "Entropy coding with the `small` hash-grid preset and a "
           "context model exported from a float MLP, default dims, three levels.",
           ("5", "6", "7"), v_entropy_small),
    Vector("entropy-hac-preset", "The `hac` preset: 12 + 3x4 tables of up to 2**19 entries, "
           "10 156 174 grid bits (mostly -1, so they code to a few kB).",
           ("5.1", "5.2", "5.3", "5.4"), v_entropy_hac, light=True),
    Vector("entropy-grid-3d-only", "A grid of 3D tables only with 8 features per level, "
           "resolutions 1 and 65535, coordinates at depth 21.",
           ("5.1", "5.2", "5.3", "6.1"), v_entropy_grid_3d),
    Vector("entropy-grid-2d-only", "A grid of 2D tables only (xy, xz, yz), dense and hashed.",
           ("5.1", "5.2", "5.3"), v_entropy_grid_2d),
    Vector("entropy-table-extremes", "Every scale table (0..63) and step multiplier (0..31) in "
           "use; context outputs clipped at both ends; hidden activations clipped at 0 and 127; "
           "shifts 0 and 40; base steps 1 and 2**20; escapes up to 24 leading zeros; values "
           "at +-(2**24 - 1).", ("6.2", "6.4", "6.5", "7.1", "7.2", "7.3", "7.5"),
           v_entropy_extremes),
    Vector("entropy-deep-context", "A context model of 8 layers (the maximum).",
           ("6.2", "6.5"), v_entropy_deep_mlp),
    Vector("entropy-two-blocks", "4100 anchors in one level: two symbol blocks (7.5).",
           ("7.4", "7.5"), v_entropy_blocks),
    Vector("nonzero-padding", "Every padding bit of the structure and escape sections is 1; "
           "decoders ignore padding.", ("1.2", "4.3", "4.4", "7.5"), v_nonzero_padding),
    Vector("entropy-empty-groups", "scaling_dim 0 (an empty group) and levels without "
           "anchors, entropy coded.", ("7.6",), v_entropy_empty),
    Vector("structure-occupancy-overlong-counts", "Mask counts in overlong LEB128 forms "
           "(81 00 for 1, 5-byte forms): valid, decoders accept them.", ("4.6",),
           v_overlong_counts),
    Vector("structure-occupancy-empty", "The occupancy layout with no mask to code: level 1 "
           "at base depth 0 and level 3 after an empty level 2 (H = 0).", ("4.6",),
           v_occupancy_empty),
    Vector("prefix-cut-in-chunk-header", "A prefix ending 7 bytes into a chunk header whose "
           "type '1EVL' is not four letters: fewer than 8 bytes of the chunk, nothing of it "
           "is checked; LoD 2 decodes.", ("2.2", "8.1", "8.3"), v_cut_in_chunk_header,
           cases=(("all", 16, None), ("lod-1", 1, None)), partial=True),
    Vector("lod-2-ignores-what-follows", "toc[3] is nonsense and LEVL 3's CRC is wrong: LoD "
           "1 and 2 decode, since a decoder of LoD k reads nothing after LEVL k and checks no "
           "toc entry of a level it does not decode (the whole stream is invalid).",
           ("3.3", "8.1", "8.2", "8.5"), v_ignores_what_follows,
           cases=(("lod-2", 2, None), ("lod-1", 1, None)), records_lod=2, partial=True),
    Vector("positions-binary64", "Anchor centres at depth 16 and 17 with a full-mantissa "
           "voxel size and a far origin: binary32 arithmetic gives other centres than "
           "binary64 with one final rounding.", ("1.1", "3.1", "10.2"), v_positions_binary64),
    Vector("positions-subnormal", "A subnormal origin and root voxel size: the centres are "
           "binary32 subnormals, which a decoder that flushes subnormals to zero loses.",
           ("1.1", "3.1", "10.2"), v_positions_subnormal),
]


# --- invalid streams ---------------------------------------------------------------------------

def _base() -> bytes:
    """A small valid stream that the invalid cases corrupt: 3 levels, tiny dims, MLPs."""
    return encode(_random_raw(40, 3, seed=20, dims=TINY,
                              mlps=dict(hidden_width=2, use_distance=True)))


def _frame_patch(fmt: str, offset: int, *values) -> Callable[[], bytes]:
    """Overwrite a frame field (offset within the frame part) with valid CRCs."""
    def build():
        def change(chunks):
            chunks[0][1] = patch(chunks[0][1], 4 + offset, fmt, *values)
        return edit(_base(), change)
    return build


def _head_parts(change_parts: Callable[[list], None]) -> Callable[[], bytes]:
    def build():
        def change(chunks):
            parts = head_parts(chunks[0][1])
            change_parts(parts)
            chunks[0][1] = join_parts(parts)
        return edit(_base(), change)
    return build


def _level(k: int, change_level: Callable[[list, bytes, list], tuple],
           stream: Callable[[], bytes] = _base) -> Callable[[], bytes]:
    """Rewrite LEVL ``k``'s fields, structure and groups (and fix CRCs and the TOC)."""
    def build():
        def change(chunks):
            levels = [c for c in chunks if c[0] == b"LEVL"]
            fields, structure, groups = split_level(levels[k - 1][1])
            levels[k - 1][1] = join_level(*change_level(fields, structure, groups))
        return edit(stream(), change)
    return build


def _chunks(change: Callable[[list], None], **kwargs) -> Callable[[], bytes]:
    return lambda: edit(_base(), change, **kwargs)


def _structure(k: int, parents_octants: Callable[[np.ndarray, np.ndarray], None]):
    """Rewrite level ``k``'s (k > 1) parent indices and octants, in the fixed layout."""
    def change_level(fields, structure, groups):
        level = decode(_base(), max_lod=k).levels[k - 1]
        parent = level.parent_index.astype(np.int64)
        octant = level.octant.astype(np.int64)
        parents_octants(parent, octant)
        structure = write_children(parent, octant)
        return [fields[0], 0, fields[2], len(structure)], structure, groups
    return _level(k, change_level)


def _roots(change_coords: Callable[[np.ndarray], None]):
    def change_level(fields, structure, groups):
        model = decode(_base(), max_lod=1)
        coords = model.levels[0].coords.copy()
        change_coords(coords)
        from progs_codec.format.structure import write_roots
        structure = write_roots(coords, model.frame.base_depth)
        return [fields[0], 0, fields[2], len(structure)], structure, groups
    return _level(1, change_level)


def _occupancy(k: int, change_masks: Callable[[np.ndarray], np.ndarray] = lambda m: m,
               change_section: Callable[[bytes], bytes] = lambda s: s):
    """Rewrite level ``k`` in the occupancy layout (4.6) from edited masks or section bytes."""
    def change_level(fields, structure, groups):
        model = decode(_base(), max_lod=k)
        if k == 1:
            masks = virtual_masks(model.levels[0].coords, model.frame.base_depth)
        else:
            level = model.levels[k - 1]
            masks = children_masks(level.parent_index, level.octant, len(model.levels[k - 2]))
        structure = change_section(write_occupancy(change_masks(masks.copy())))
        return [fields[0], 1, fields[2], len(structure)], structure, groups
    return _level(k, change_level)


def _extra_child(masks: np.ndarray) -> np.ndarray:
    leaf = int(np.flatnonzero(masks != 0xFF)[0])
    masks[leaf] |= 1 << int(np.flatnonzero(~(masks[leaf] >> np.arange(8)) & 1)[0])
    return masks


def _num_words_offset(section: bytes) -> int:
    """Where num_words sits in an occupancy section: after the presence bits and varints."""
    pos = 32
    for _ in range(int(np.unpackbits(np.frombuffer(section[:32], np.uint8)).sum())):
        while section[pos] & 0x80:
            pos += 1
        pos += 1
    return pos


def _grow_num_words(section: bytes) -> bytes:
    """num_words one larger than the words present (4.6: a limit error)."""
    pos = _num_words_offset(section)
    return patch(section, pos, "<I", struct.unpack_from("<I", section, pos)[0] + 1)


def _set(array_changes):
    def f(parent, octant):
        for name, index, value in array_changes:
            (parent if name == "parent" else octant)[index] = value
    return f


def _raw_value(value: float):
    def change_level(fields, structure, groups):
        groups[2] = patch(groups[2], 4, "<f", value)
        return fields, structure, groups
    return _level(2, change_level)


def _one_level(n_roots: int, depth: int):
    """A one-level stream declaring ``n_roots`` roots at ``depth`` (payload sized to match)."""
    def build():
        stream = encode(_model([[[0, 0, 0]]], base_depth=depth))

        def change(chunks):
            fields, structure, groups = split_level(chunks[1][1])
            fields[2] = n_roots
            fields[3] = (3 * depth * n_roots + 7) // 8
            groups = [bytes(4 * n_roots), b"", bytes(12 * n_roots)]
            chunks[1][1] = join_level(fields, bytes(fields[3]), groups)
            chunks[0][1] = patch(chunks[0][1], _toc_position(chunks[0][1]) + 12, "<I", n_roots)
        return edit(stream, change)
    return build


def i_checksum_optional() -> bytes:
    header, chunks = chunks_of(_base())
    chunks.insert(2, [b"xtra", b"abc"])
    return assemble(header, chunks, bad_crc=2)


def _count_over_8x() -> bytes:
    def change(chunks):
        first = split_level(chunks[1][1])[0][2]
        fields, structure, groups = split_level(chunks[2][1])
        fields[2] = 8 * first + 1
        chunks[2][1] = join_level(fields, structure, groups)
    return edit(_base(), change)


def _count_over_2pow20() -> bytes:
    """Level 1 of 2 at base depth 7 (2**21 voxels) declares 2**20 + 1 roots."""
    stream = encode(_model([[[0, 0, 0]], [[1, 1, 1]]], base_depth=7))

    def change(chunks):
        fields, structure, groups = split_level(chunks[1][1])
        fields[2] = (1 << 20) + 1
        chunks[1][1] = join_level(fields, structure, groups)
    return edit(stream, change)


def i_truncated_in_head() -> bytes:
    stream = _base()
    (length,) = struct.unpack_from("<I", stream, 14)
    return stream[: 18 + length // 2]


def _set_field(index: int, value: int):
    def change_level(fields, structure, groups):
        fields[index] = value
        return fields, structure, groups
    return change_level


def _toc_field(level: int, fmt: str, field_offset: int, delta: int):
    def change(chunks):
        head = chunks[0][1]
        pos = _toc_position(head) + 16 * (level - 1) + field_offset
        (value,) = struct.unpack_from(fmt, head, pos)
        chunks[0][1] = patch(head, pos, fmt, value + delta)
    return _chunks(change, fix_toc=False)


def _append_to_level(k: int, extra: bytes):
    def change_level(fields, structure, groups):
        return fields, structure, groups[:2] + [groups[2] + extra]
    return _level(k, change_level)


def _frame_levels(base_depth: int | None, num_levels: int):
    """Declare ``base_depth`` and ``num_levels`` in the frame; the TOC gets as many entries
    (extra ones zero), so that only the frame rule is broken."""
    def change_parts(parts):
        if base_depth is not None:
            parts[0] = patch(parts[0], 16, "<B", base_depth)
        parts[0] = patch(parts[0], 17, "<B", num_levels)
        parts[1] = parts[1][: 16 * num_levels].ljust(16 * num_levels, b"\0")
    return _head_parts(change_parts)


def _cut_level_payload(k: int, keep: int):
    def change(chunks):
        levels = [c for c in chunks if c[0] == b"LEVL"]
        levels[k - 1][1] = levels[k - 1][1][:keep]
    return _chunks(change)


def _rendering(part: bytes | None, minor: int = 1) -> Callable[[], bytes]:
    """The base stream as version 1.``minor`` with ``part`` as its rendering part (3.5);
    ``None``: no part 5."""
    def build():
        stream = _base()

        def change(chunks):
            if part is not None:
                chunks[0][1] += struct.pack("<I", len(part)) + part
        return edit(stream, change, file_header=stream[:8] + bytes([1, minor]))
    return build


def _mlp_half(index: int, value: int):
    """Overwrite an f16 of the gaussian_mlps part (after its 3-byte head)."""
    def change_parts(parts):
        parts[4] = patch(parts[4], 3 + 2 * index, "<H", value)
    return _head_parts(change_parts)


def _entropy_base() -> bytes:
    """A small entropy-coded stream with escapes in every group of level 2."""
    dims = AttributeDims(feature=3, scaling=1, num_offsets=1)
    structure = _random_raw(30, 2, seed=40, dims=dims)
    config = HashGridConfig((2, 9), 6, (5,), 5, 2)

    def overwrite(k, attrs):
        if k == 2:
            attrs[0][::4, 1], attrs[1][::5, 0], attrs[2][::3, 0, 2] = 90.0, -2.0, -70.0
    return _entropy(structure, _grid_model(config, dims, 40), 40, overwrite)


def _head_part(index: int, change_part: Callable[[bytes], bytes]) -> Callable[[], bytes]:
    """Rewrite HEAD part ``index`` of the entropy base stream (CRC and TOC fixed)."""
    def build():
        def change(chunks):
            parts = head_parts(chunks[0][1])
            parts[index] = change_part(parts[index])
            chunks[0][1] = join_parts(parts)
        return edit(_entropy_base(), change)
    return build


def _escape_codes(section: bytes, count: int) -> list[tuple[int, int]]:
    """The first ``count`` ``(m, sign)`` Exp-Golomb codes of an escape section (7.5)."""
    bits = "".join(f"{b:08b}" for b in section)
    codes, pos = [], 0
    for _ in range(count):
        z = bits.index("1", pos) - pos
        value = int(bits[pos + z: pos + 2 * z + 1], 2)
        codes.append((value - 1, int(bits[pos + 2 * z + 1])))
        pos += 2 * z + 2
    return codes


def _escape_bits(codes: list[tuple[int, int]]) -> str:
    return "".join("0" * ((m + 1).bit_length() - 1) + f"{m + 1:b}" + str(sign) for m, sign in codes)


def _pack_bits(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def _group(k: int, g: int, change_group: Callable[[bytes], bytes]) -> Callable[[], bytes]:
    """Rewrite group ``g`` of LEVL ``k`` of the entropy base stream."""
    def change_level(fields, structure, groups):
        groups = list(groups)
        groups[g] = change_group(groups[g])
        return fields, structure, groups
    return _level(k, change_level, _entropy_base)


def _escapes(change_bits: Callable[[str, list], str]) -> Callable[[], bytes]:
    """Rewrite the escape section of level 2's feature group: ``change_bits(bits, codes)``
    gets the section as a bit string and its first two codes, returns the new bit string."""
    def change_group(payload):
        (m,) = struct.unpack_from("<I", payload)
        section = payload[4 + 4 * m:]
        bits = "".join(f"{b:08b}" for b in section)
        return payload[: 4 + 4 * m] + _pack_bits(change_bits(bits, _escape_codes(section, 2)))
    return _group(2, 0, change_group)


def _words(change_words: Callable[[list], list]) -> Callable[[], bytes]:
    """Rewrite the rANS words of level 2's offsets group (the escape section kept)."""
    def change_group(payload):
        (m,) = struct.unpack_from("<I", payload)
        words = list(struct.unpack_from(f"<{m}I", payload, 4))
        words = change_words(words)
        return struct.pack(f"<I{len(words)}I", len(words), *words) + payload[4 + 4 * m:]
    return _group(2, 2, change_group)


def _context_field(offset: int, fmt: str, value) -> Callable[[], bytes]:
    return _head_part(3, lambda part: patch(part, offset, fmt, value))


def _context_layer0(field: str, value) -> Callable[[], bytes]:
    """Overwrite the first entry of ``field`` of context layer 0."""
    def change(part):
        n, width = part[12], struct.unpack_from("<H", part, 13)[0]
        first_out = struct.unpack_from("<H", part, 15)[0]
        start = 15 + 2 * n
        offsets = {"weight": (start, "<b"), "bias": (start + first_out * width, "<i"),
                   "shift": (start + first_out * (width + 6), "<B")}
        pos, fmt = offsets[field]
        return patch(part, pos, fmt, value)
    return _head_part(3, change)



def _minor(minor: int, change: Callable[[list], None] = lambda chunks: None,
           part5: bytes = b"\0") -> Callable[[], bytes]:
    """The base stream as version 1.``minor`` (part 5 ``rendering`` = ``part5``), then
    ``change`` applied to its chunks."""
    def build():
        stream = _base()

        def both(chunks):
            chunks[0][1] += struct.pack("<I", len(part5)) + part5
            change(chunks)
        return edit(stream, both, file_header=stream[:8] + bytes([1, minor]))
    return build


def _frame_fields(*patches) -> Callable[[list], None]:
    def change(chunks):
        for fmt, offset, value in patches:
            chunks[0][1] = patch(chunks[0][1], 4 + offset, fmt, value)
    return change


def _mlp_flags(flags: int) -> Callable[[list], None]:
    def change(chunks):
        parts = head_parts(chunks[0][1])
        rest = chunks[0][1][len(join_parts(parts)):]
        parts[4] = patch(parts[4], 0, "<B", flags)
        chunks[0][1] = join_parts(parts) + rest
    return change


def i_cut_header_bad_type() -> bytes:
    stream = _base()
    return stream[: _level_end(stream, 2)] + b"1EVL" + struct.pack("<I", 40)


def i_grid_b3_unused() -> bytes:
    """A grid of 2D tables only (L3 = 0) whose log2_table_3d is 0."""
    dims = AttributeDims(feature=2, scaling=1, num_offsets=1)
    structure = _random_raw(30, 2, seed=41, dims=dims)
    stream = _entropy(structure, _grid_model(HashGridConfig((), 1, (3, 7), 4, 1), dims, 41), 41)

    def change(chunks):
        parts = head_parts(chunks[0][1])
        parts[2] = patch(parts[2], 2, "<B", 0)
        chunks[0][1] = join_parts(parts)
    return edit(stream, change)


def _grid_words_offset(part: bytes) -> int:
    """Offset of num_words in a hash_grid part (5.4)."""
    return 5 + 2 * (part[1] + part[3]) + 4


def _grid_params(part: bytes) -> int:
    n3, n2 = part[1], part[3]
    res = struct.unpack_from(f"<{n3 + n2}H", part, 5)
    return HashGridConfig(res[:n3], part[2], res[n3:], part[4], part[0]).num_params


def _feature_end_check_fails(groups: list) -> None:
    """An extra word before level 2's feature words: the symbols stay, the end check fails."""
    (m,) = struct.unpack_from("<I", groups[0])
    words = list(struct.unpack_from(f"<{m}I", groups[0], 4))
    groups[0] = struct.pack(f"<I{m + 1}I", m + 1, 0x12345678, *words) + groups[0][4 + 4 * m:]


def _first_escape_over(groups: list, keep_rest: bool = True) -> None:
    """Level 2's first feature escape gets magnitude 2**25 - 2: |V| > 2**24 - 1; without
    ``keep_rest`` the section ends after that code, inside the next escape."""
    (m,) = struct.unpack_from("<I", groups[0])
    section = groups[0][4 + 4 * m:]
    codes = _escape_codes(section, 2)
    bits = "".join(f"{b:08b}" for b in section)
    first = _escape_bits([((1 << 25) - 2, codes[0][1])])
    new = first + (bits[len(_escape_bits(codes[:1])):] if keep_rest else "")
    groups[0] = groups[0][: 4 + 4 * m] + _pack_bits(new)


def _level2_groups(*changes) -> Callable[[], bytes]:
    def change_level(fields, structure, groups):
        groups = list(groups)
        for change in changes:
            change(groups)
        return fields, structure, groups
    return _level(2, change_level, _entropy_base)


def i_level_layout_before_toc() -> bytes:
    """LEVL 2's offsets group runs past the payload (L7, limit) and toc[2].anchor_count is
    one too many (L9, format)."""
    def change(chunks):
        chunks[2][1] = chunks[2][1][:-4]
        head = chunks[0][1]
        pos = _toc_position(head) + 16 + 12
        chunks[0][1] = patch(head, pos, "<I", struct.unpack_from("<I", head, pos)[0] + 1)
    return edit(_base(), change)


def _context_input_width_and_weight(part: bytes) -> bytes:
    """input_width 2 G + 1 with a weight column added to layer 0, so that the length fits;
    the added weights are -128."""
    n, width = part[12], struct.unpack_from("<H", part, 13)[0]
    outs = struct.unpack_from(f"<{n}H", part, 15)
    start = 15 + 2 * n
    weights = part[start: start + outs[0] * width]
    rows = b"".join(weights[r * width:(r + 1) * width] + b"\x80" for r in range(outs[0]))
    return (part[:13] + struct.pack("<H", width + 1) + part[15:start] + rows
            + part[start + outs[0] * width:])


def _grid_length_and_ones(part: bytes) -> bytes:
    pos = _grid_words_offset(part) - 4
    return patch(part, pos, "<I", _grid_params(part) + 1) + b"\0"


def i_parts_split_first() -> bytes:
    """The frame part is 27 bytes (F1, format) and gaussian_mlps runs past the payload (P2,
    limit)."""
    def change(chunks):
        parts = head_parts(chunks[0][1])
        parts[0] = parts[0][:27]
        chunks[0][1] = join_parts(parts)[:-10]
    return edit(_base(), change)


def i_crc_before_type() -> bytes:
    header, chunks = chunks_of(_base())
    chunks.insert(2, [b"XTRA", b"\0"])
    return assemble(header, chunks, bad_crc=2)

INVALID = [
    # container (2)
    Invalid("bad-magic", "The magic's second byte is 'Q'.", ("2.1",), "format",
            lambda: _base()[:1] + b"Q" + _base()[2:]),
    Invalid("truncated-file-header", "Only the first 6 bytes of the magic.", ("2.1", "8.3"),
            "truncated", lambda: _base()[:6]),
    Invalid("truncated-head-chunk", "The stream ends inside the HEAD chunk.", ("2.2", "8.3"),
            "truncated", i_truncated_in_head),
    Invalid("unsupported-major-version", "major_version 2.", ("2.1",), "unsupported",
            lambda: _base()[:8] + bytes([2, 0]) + _base()[10:]),
    Invalid("checksum-head", "The HEAD chunk's CRC is wrong.", ("2.2",), "checksum",
            lambda: assemble(*chunks_of(_base()), bad_crc=0)),
    Invalid("checksum-level", "LEVL 2's CRC is wrong.", ("2.2",), "checksum",
            lambda: assemble(*chunks_of(_base()), bad_crc=2)),
    Invalid("checksum-optional-chunk", "An unknown optional chunk with a wrong CRC: skipped "
            "chunks are CRC checked too.", ("2.2",), "checksum",
            i_checksum_optional),
    Invalid("unknown-critical-chunk", "A critical chunk XTRA between LEVL 1 and LEVL 2.",
            ("2.2",), "unsupported", _chunks(lambda c: c.insert(2, [b"XTRA", b"\0"]))),
    Invalid("chunk-type-not-letters", "A chunk type 'x1y2' that is not four letters.",
            ("2.2",), "format", _chunks(lambda c: c.insert(2, [b"x1y2", b""]))),
    Invalid("first-chunk-not-head", "An optional chunk before HEAD.", ("2.3",), "format",
            _chunks(lambda c: c.insert(0, [b"xtra", b""]))),
    Invalid("second-head", "A second HEAD chunk after LEVL 1.", ("2.3",), "format",
            _chunks(lambda c: c.insert(2, list(c[0])))),
    Invalid("ends-too-early", "ENDS right after LEVL 1 of 3.", ("2.3", "8.1"), "format",
            _chunks(lambda c: c.__delitem__(slice(2, 4)))),
    Invalid("extra-level-chunk", "A fourth LEVL chunk when 3 are declared.", ("2.3",), "format",
            _chunks(lambda c: c.insert(4, list(c[3])))),
    Invalid("data-after-ends", "A byte after the ENDS chunk.", ("2.3",), "format",
            lambda: _base() + b"\0"),
    Invalid("ends-payload-not-empty", "ENDS with a one-byte payload.", ("2.2",), "format",
            _chunks(lambda c: c[-1].__setitem__(1, b"\0"))),
    Invalid("toc-offset-mismatch", "toc[2].offset is one byte off.", ("2.3", "3.3"), "format",
            _toc_field(2, "<Q", 0, 1)),
    Invalid("toc-size-mismatch", "toc[3].size is one byte short.", ("2.3", "3.3"), "format",
            _toc_field(3, "<I", 8, -1)),
    Invalid("toc-anchor-count-mismatch", "toc[1].anchor_count is one more than LEVL 1 holds.",
            ("3.3", "4.1"), "format", _toc_field(1, "<I", 12, 1)),
    # header (3)
    Invalid("head-frame-part-short", "The frame part is 27 bytes.", ("3",), "format",
            _head_parts(lambda p: p.__setitem__(0, p[0][:27]))),
    Invalid("head-toc-part-wrong-size", "The toc part lacks its last entry.", ("3", "3.3"),
            "format", _head_parts(lambda p: p.__setitem__(1, p[1][:-16]))),
    Invalid("head-missing-part", "The HEAD payload ends after four parts.", ("3",), "format",
            _chunks(lambda c: c[0].__setitem__(1, join_parts(head_parts(c[0][1])[:4])))),
    Invalid("head-part-past-payload", "The gaussian_mlps part declares more bytes than the "
            "payload holds.", ("3",), "limit",
            _chunks(lambda c: c[0].__setitem__(1, c[0][1][:-10]))),
    Invalid("head-hash-grid-with-raw", "A non-empty hash_grid part with attribute_coding 0.",
            ("3",), "format", _head_parts(lambda p: p.__setitem__(2, b"\0"))),
    Invalid("head-origin-nan", "origin.y is NaN.", ("3.1",), "format",
            _frame_patch("<f", 4, math.nan)),
    Invalid("head-origin-inf", "origin.z is +inf.", ("3.1",), "format",
            _frame_patch("<f", 8, math.inf)),
    Invalid("head-voxel-size-zero", "root_voxel_size 0.", ("3.1",), "format",
            _frame_patch("<f", 12, 0.0)),
    Invalid("head-voxel-size-negative", "root_voxel_size -1.", ("3.1",), "format",
            _frame_patch("<f", 12, -1.0)),
    Invalid("head-base-depth-17", "base_depth 17.", ("3.1",), "format",
            _frame_patch("<B", 16, 17)),
    Invalid("head-num-levels-0", "num_levels 0.", ("3.1",), "format",
            _frame_patch("<B", 17, 0)),
    Invalid("head-num-levels-17", "num_levels 17 (the TOC sized to match).", ("3.1",), "format",
            _frame_levels(None, 17)),
    Invalid("head-depth-over-21", "base_depth 16 with 6 levels: depth 22 > 21.", ("3.1",),
            "format", _frame_levels(16, 6)),
    Invalid("head-convention-2", "convention 2 (Z-up) in a 1.0 stream: it is defined only "
            "in streams of minor version 1 or more.", ("2.4", "3.1"), "format",
            _frame_patch("<B", 18, 2)),
    Invalid("head-attribute-coding-2", "attribute_coding 2 (undefined).", ("3.1",), "format",
            _frame_patch("<B", 19, 2)),
    Invalid("head-feature-dim-0", "feature_dim 0.", ("3.1",), "format",
            _frame_patch("<H", 20, 0)),
    Invalid("head-scaling-dim-65", "scaling_dim 65.", ("3.1",), "format",
            _frame_patch("<H", 22, 65)),
    Invalid("head-num-offsets-0", "num_offsets 0.", ("3.1",), "format",
            _frame_patch("<H", 24, 0)),
    Invalid("head-num-offsets-65", "num_offsets 65.", ("3.1",), "format",
            _frame_patch("<H", 24, 65)),
    Invalid("head-reserved-nonzero", "reserved 1.", ("3.1",), "format",
            _frame_patch("<H", 26, 1)),
    Invalid("mlp-part-wrong-length", "The gaussian_mlps part has one byte more than its "
            "shapes need.", ("3", "3.4"), "format",
            _head_parts(lambda p: p.__setitem__(4, p[4] + b"\0"))),
    Invalid("mlp-unknown-flags", "gaussian_mlps flags 2.", ("3.4",), "format",
            _head_parts(lambda p: p.__setitem__(4, patch(p[4], 0, "<B", 2)))),
    Invalid("mlp-hidden-width-0", "gaussian_mlps hidden_width 0.", ("3.4",), "format",
            _head_parts(lambda p: p.__setitem__(4, patch(p[4], 1, "<H", 0)))),
    Invalid("mlp-not-finite", "An f16 weight of the colour MLP is +inf.", ("3.4",), "format",
            _mlp_half(20, 0x7C00)),
    Invalid("rendering-refine-2", "A 1.1 stream whose refine is 2 (reserved for later "
            "versions).", ("3.5",), "unsupported", _rendering(b"\x02")),
    Invalid("rendering-part-wrong-length", "A 1.1 stream whose rendering part is 2 bytes.",
            ("3", "3.5"), "format", _rendering(b"\x01\x00")),
    Invalid("rendering-part-missing", "A 1.1 stream whose HEAD payload ends after the five "
            "parts of 1.0.", ("3", "3.5"), "format", _rendering(None)),
    # level (4)
    Invalid("level-number-wrong", "LEVL 2 says it is level 3.", ("4.1",), "format",
            _level(2, _set_field(0, 3))),
    Invalid("level-structure-mode-2", "structure_mode 2 (undefined in 1.0).", ("4.1",),
            "unsupported", _level(2, _set_field(1, 2))),
    Invalid("occupancy-extra-child", "Level 3 in the occupancy layout: one mask has a bit "
            "more than anchor_count allows.", ("4.6",), "format", _occupancy(3, _extra_child)),
    Invalid("occupancy-virtual-mask-zero", "Level 1 in the occupancy layout: the depth-0 "
            "virtual node has mask 0.", ("4.6",), "format",
            _occupancy(1, lambda m: np.concatenate([[0], m[1:]]).astype(np.uint8))),
    Invalid("occupancy-masks-short", "Level 2 in the occupancy layout codes one mask fewer "
            "than level 1 has anchors.", ("4.6",), "format", _occupancy(2, lambda m: m[:-1])),
    Invalid("occupancy-num-words-over", "Level 2 in the occupancy layout: num_words one more "
            "than the words present.", ("4.6",), "limit",
            _occupancy(2, change_section=_grow_num_words)),
    Invalid("level-structure-length-mismatch", "structure_length one byte longer than N "
            "anchors need (the payload grown to match).", ("4.1",), "format",
            _level(2, lambda f, s, g: (f[:3] + [f[3] + 1], s + b"\0", g))),
    Invalid("level-count-beyond-payload", "anchor_count and structure_length agree but the "
            "payload ends inside the structure section.", ("4.1",), "limit",
            _cut_level_payload(3, 12)),
    Invalid("level-group-beyond-payload", "The offsets group declares more bytes than remain.",
            ("4.1",), "limit", _cut_level_payload(2, -4)),
    Invalid("level-trailing-bytes", "A byte after the attribute section.", ("4.1",), "format",
            _chunks(lambda c: c[2].__setitem__(1, c[2][1] + b"\0"))),
    Invalid("level1-no-anchors", "Level 1 declares 0 anchors.", ("4.1",), "limit",
            _one_level(0, 2)),
    Invalid("level1-count-over-grid", "9 roots at base depth 1 (at most 8 voxels).", ("4.1",),
            "limit", _one_level(9, 1)),
    Invalid("level-count-over-8x", "Level 2 declares more than 8 times level 1's anchors.",
            ("4.1",), "limit",
            _count_over_8x),
    Invalid("level-count-over-2pow20", "A non-last level 1 declares 2**20 + 1 roots.",
            ("4.1",), "limit", _count_over_2pow20),
    Invalid("raw-group-wrong-length", "The feature group is 4 bytes short.", ("4.5",), "format",
            _level(2, lambda f, s, g: (f, s, [g[0][:-4], g[1], g[2]]))),
    Invalid("raw-nan", "A raw offset is NaN.", ("4.5",), "format", _raw_value(math.nan)),
    Invalid("raw-inf", "A raw offset is -inf.", ("4.5",), "format", _raw_value(-math.inf)),
    Invalid("roots-duplicate", "Two roots share a voxel.", ("4.2", "4.3"), "format",
            _roots(lambda c: c.__setitem__(1, c[0]))),
    Invalid("roots-out-of-order", "Roots 0 and 1 swapped.", ("4.2", "4.3"), "format",
            _roots(lambda c: c.__setitem__(slice(0, 2), c[1::-1].copy()))),
    Invalid("parent-index-out-of-range", "A level-3 anchor names a parent past level 2's "
            "anchors.", ("4.4",), "format", _structure(3, _set([("parent", -1, 1000)]))),
    Invalid("parent-index-max-out-of-range", "The last anchor names parent 2**20 - 1.",
            ("4.4",), "format", _structure(2, _set([("parent", -1, (1 << 20) - 1)]))),
    Invalid("duplicate-child", "Two anchors with the same parent and octant.", ("4.4",),
            "format", _structure(2, lambda p, o: (p.__setitem__(1, p[0]),
                                                  o.__setitem__(1, o[0])))),
    Invalid("children-out-of-order", "(parent, octant) decreases between anchors 0 and 1.",
            ("4.2", "4.4"), "format",
            _structure(2, lambda p, o: (p.__setitem__(slice(0, 2), p[1::-1].copy()),
                                        o.__setitem__(slice(0, 2), o[1::-1].copy())))),
    # entropy coding (5, 6, 7)
    Invalid("escape-too-many-zeros", "An escape code with 25 leading zeros.", ("7.5",),
            "format", _escapes(lambda bits, codes: "0" * 25 + "1" + "0" * 26 + bits)),
    Invalid("escape-section-truncated", "The escape section loses its last byte, so it ends "
            "inside a code.", ("7.5",), "format", _escapes(lambda bits, codes: bits[:-8])),
    Invalid("escape-section-extra-byte", "A zero byte after the escape codes.", ("7.5",),
            "format", _escapes(lambda bits, codes: bits + "0" * 8)),
    Invalid("escape-value-over-limit", "The first escape's magnitude is 2**25 - 2: |V| "
            "exceeds 2**24 - 1.", ("7.2", "7.5"), "limit",
            _escapes(lambda bits, codes: _escape_bits([((1 << 25) - 2, codes[0][1])])
                     + bits[len(_escape_bits(codes[:1])):])),
    Invalid("rans-last-word-zero", "A zero word appended to the rANS words.", ("7.4",),
            "format", _words(lambda w: w + [0])),
    Invalid("rans-words-left-over", "An extra word before the rANS words: the end check "
            "finds a word left or a nonzero state.", ("7.4",), "format",
            _words(lambda w: [0x12345678] + w)),
    Invalid("group-words-beyond-payload", "num_words larger than the group payload holds.",
            ("7.6",), "limit", _group(2, 1, lambda p: patch(p, 0, "<I", 1000))),
    Invalid("group-payload-short", "A group payload of 2 bytes.", ("7.6",), "format",
            _group(2, 1, lambda p: b"\0\0")),
    Invalid("hash-grid-ones-mismatch", "num_ones one more than the coded bits hold.",
            ("5.4",), "format",
            _head_part(2, lambda p: patch(p, 11, "<I", struct.unpack_from("<I", p, 11)[0] + 1))),
    Invalid("hash-grid-length-mismatch", "A byte after the hash grid words.", ("5.4",),
            "format", _head_part(2, lambda p: p + b"\0")),
    Invalid("hash-grid-features-per-level-9", "features_per_level 9.", ("5.4",), "limit",
            _head_part(2, lambda p: patch(p, 0, "<B", 9))),
    Invalid("hash-grid-no-levels", "num_levels_3d = num_levels_2d = 0.", ("5.4",), "limit",
            _head_part(2, lambda p: patch(patch(p, 1, "<B", 0), 3, "<B", 0)[:5] + p[11:])),
    Invalid("hash-grid-log2-table-25", "log2_table_3d 25.", ("5.4",), "limit",
            _head_part(2, lambda p: patch(p, 2, "<B", 25))),
    Invalid("hash-grid-resolution-0", "A 3D resolution of 0.", ("5.4",), "limit",
            _head_part(2, lambda p: patch(p, 5, "<H", 0))),
    Invalid("context-base-step-0", "base_step of the feature group 0.", ("6.5",), "limit",
            _context_field(0, "<I", 0)),
    Invalid("context-base-step-too-large", "base_step of the offsets group 2**20 + 1.",
            ("6.5",), "limit", _context_field(8, "<I", (1 << 20) + 1)),
    Invalid("context-no-layers", "num_layers 0.", ("6.5",), "limit",
            _context_field(12, "<B", 0)),
    Invalid("context-nine-layers", "num_layers 9.", ("6.5",), "limit",
            _context_field(12, "<B", 9)),
    Invalid("context-input-width-mismatch", "input_width is not 2 G of the hash grid.",
            ("6.5",), "format", _context_field(13, "<H", 7)),
    Invalid("context-last-width-not-3c", "The last layer's output width is not 3 C.",
            ("6.5",), "limit", _context_field(17, "<H", 22)),
    Invalid("context-length-mismatch", "A byte after the last layer.", ("6.5",), "format",
            _head_part(3, lambda p: p + b"\0")),
    Invalid("context-weight-minus-128", "A weight of -128.", ("6.2", "6.5"), "limit",
            _context_layer0("weight", -128)),
    Invalid("context-bias-min", "A bias of -2**31.", ("6.2", "6.5"), "limit",
            _context_layer0("bias", -(1 << 31))),
    Invalid("context-shift-41", "A shift of 41.", ("6.2", "6.5"), "limit",
            _context_layer0("shift", 41)),
    Invalid("head-entropy-parts-empty", "attribute_coding 1 with empty hash_grid and "
            "context_mlp parts.", ("3",), "format",
            _head_parts(lambda p: p.__setitem__(0, patch(p[0], 19, "<B", 1)))),
    # spec 1.1: what every level means, prefixes, classes (8.1-8.4)
    Invalid("data-after-ends-max-lod-3", "A byte after ENDS, with MAX_LOD = L = 3: asking for "
            "every level reads through ENDS.", ("2.3", "8.1", "8.2"), "format",
            lambda: _base() + b"\0", max_lod=3),
    Invalid("extra-level-chunk-max-lod-3", "A fourth LEVL chunk when 3 are declared, with "
            "MAX_LOD = L = 3.", ("2.3", "8.1", "8.2"), "format",
            _chunks(lambda c: c.insert(4, list(c[3]))), max_lod=3),
    Invalid("ends-payload-not-empty-max-lod-3", "ENDS with a one-byte payload, with MAX_LOD "
            "= L = 3.", ("2.2", "8.1", "8.2"), "format",
            _chunks(lambda c: c[-1].__setitem__(1, b"\0")), max_lod=3),
    Invalid("prefix-chunk-type-not-letters", "A prefix: LEVL 1 and 2, then the first 8 bytes "
            "of a chunk whose type '1EVL' is not four letters: checked once 8 bytes of a chunk "
            "are present.", ("2.2", "8.1", "8.3"), "format", i_cut_header_bad_type),
    Invalid("truncated-before-major-version", "9 bytes: the magic and major_version 2; the "
            "version is checked only once both version bytes are present.", ("2.1", "8.3",
                                                                             "8.4"),
            "truncated", lambda: _base()[:8] + b"\x02"),
    Invalid("hash-grid-log2-table-3d-unused-0", "A grid of 2D tables only (L3 = 0) whose "
            "log2_table_3d is 0: the range holds whether or not the tables exist.",
            ("5.4", "8.4"), "limit", i_grid_b3_unused),
    Invalid("hash-grid-num-words-over", "num_words one more than the words in the hash_grid "
            "part: a word count past its part is limit.", ("5.4", "8.4"), "limit",
            _head_part(2, lambda p: patch(p, _grid_words_offset(p), "<I",
                                          struct.unpack_from("<I", p, _grid_words_offset(p))[0]
                                          + 1))),
    Invalid("occupancy-trailing-bytes", "Level 2 in the occupancy layout: 4 bytes after the "
            "words of the structure section (bytes after the fields are format).",
            ("4.6", "8.4"), "format", _occupancy(2, change_section=lambda s: s + bytes(4))),
    Invalid("occupancy-section-short", "Level 2 in the occupancy layout: a structure section "
            "of 31 bytes, shorter than its presence bits (8.4 O1).", ("4.6", "8.4"), "format",
            _occupancy(2, change_section=lambda s: s[:31])),
    Invalid("occupancy-count-past-section", "Level 2 in the occupancy layout: the section ends "
            "inside the first mask count's varint (8.4 O2).", ("4.6", "8.4"), "format",
            _occupancy(2, change_section=lambda s: s[:32] + b"\x80")),
    Invalid("occupancy-num-words-cut", "Level 2 in the occupancy layout: the section ends two "
            "bytes into num_words (8.4 O3).", ("4.6", "8.4"), "format",
            _occupancy(2, change_section=lambda s: s[:_num_words_offset(s) + 2])),
    Invalid("head-reserved-nonzero-minor-2", "reserved 1 in a stream of minor version 2: a "
            "later minor version's extension.", ("2.4", "3.1"), "unsupported",
            _minor(2, _frame_fields(("<H", 26, 1)))),
    Invalid("mlp-unknown-flags-minor-2", "gaussian_mlps flags 2 in a stream of minor version "
            "2.", ("2.4", "3.4"), "unsupported", _minor(2, _mlp_flags(2))),
    Invalid("head-convention-3-minor-1", "convention 3 in a 1.1 stream: undefined in 1.1, and "
            "a stream of minor version 1 holds only what 1.1 defines.", ("2.4", "3.1"),
            "format", _minor(1, _frame_fields(("<B", 18, 3)))),
    Invalid("head-convention-3-minor-2", "convention 3 in a stream of minor version 2: a "
            "later minor version's extension.", ("2.4", "3.1"), "unsupported",
            _minor(2, _frame_fields(("<B", 18, 3)))),
    # precedence (8.4): two faults, the first in the order of 8.4 decides the class
    Invalid("precedence-crc-before-chunk-type", "An unknown critical chunk XTRA with a wrong "
            "CRC: the CRC (C2) comes before what the type means (C10).", ("2.2", "8.4"),
            "checksum", i_crc_before_type),
    Invalid("precedence-parts-split-first", "The frame part is 27 bytes (F1, format) and the "
            "gaussian_mlps part runs past the payload (P2, limit): all parts are split "
            "before any is read.", ("3", "8.4"), "limit", i_parts_split_first),
    Invalid("precedence-frame-field-order", "A minor-version-2 stream with a NaN origin "
            "(format) and reserved 1 (unsupported there): the frame's fields are checked in "
            "field order.", ("2.4", "3.1", "8.4"), "format",
            _minor(2, _frame_fields(("<f", 4, math.nan), ("<H", 26, 1)))),
    Invalid("precedence-hash-grid-length-before-ones", "A byte after the hash grid words "
            "(G10, format) and num_ones P + 1 (G11, limit).", ("5.4", "8.4"), "format",
            _head_part(2, _grid_length_and_ones)),
    Invalid("precedence-context-input-width", "input_width 2 G + 1 (X6, format) with a weight "
            "column of -128 added so that the length fits (X10, limit).", ("6.5", "8.4"),
            "format", _head_part(3, _context_input_width_and_weight)),
    Invalid("precedence-level-layout-before-toc", "LEVL 2's offsets group runs past the "
            "payload (L7, limit) and toc[2].anchor_count is one too many (L9, format).",
            ("4.1", "8.4"), "limit", i_level_layout_before_toc),
    Invalid("precedence-end-check-before-values", "Level 2's feature group: the end check "
            "fails (an extra word) and the first escape gives |V| > 2**24 - 1: the end check "
            "(E4) comes first.", ("7.6", "8.4"), "format",
            _level2_groups(_feature_end_check_fails, _first_escape_over)),
    Invalid("precedence-raster-order", "Level 2's feature group: the first escape gives "
            "|V| > 2**24 - 1 and the section ends inside the second escape: values and "
            "escapes are checked channel by channel in raster order (E5).", ("7.5", "7.6",
                                                                             "8.4"),
            "limit", _level2_groups(lambda g: _first_escape_over(g, keep_rest=False))),
    Invalid("precedence-groups-in-order", "Level 2: the feature group's end check fails "
            "(format) and the scaling group's words run past its payload (limit): each group "
            "is decoded completely before the next.", ("7.6", "8.4"), "format",
            _level2_groups(_feature_end_check_fails,
                           lambda g: g.__setitem__(1, patch(g[1], 0, "<I", 1000)))),
]


# --- writing the suite -------------------------------------------------------------------------

def _toc(stream: bytes) -> list[tuple[int, int]]:
    head = chunks_of(stream)[1][0][1]
    pos = _toc_position(head)
    (length,) = struct.unpack_from("<I", head, pos - 4)
    return [struct.unpack_from("<QI", head, pos + 16 * i) for i in range(length // 16)]


def _cases(stream: bytes, num_levels: int, *, light: bool, cut_in_level_1: bool) -> list[dict]:
    """Decoder calls of a vector: LoD 1 and the last LoD of the whole stream, the range
    request (8.2) of the LoD before the last, and a cut inside the last level (8.3). Every
    call costs a process start; the dump of the last LoD covers the levels in between, since
    each LoD's dump is a prefix of the next. ``light`` (large or slow streams) keeps two."""
    toc = _toc(stream)
    end = [offset + size for offset, size in toc]
    last = num_levels
    cases = [dict(name=f"lod-{last}", max_lod=last, bytes=None)]
    if light:
        cases.append(dict(name="lod-1-range", max_lod=1, bytes=end[0]))
        return _digests(stream, cases)
    if last > 1:
        cases.append(dict(name="lod-1", max_lod=1, bytes=None))
    ranged = max(1, last - 1)
    cases.append(dict(name=f"lod-{ranged}-range", max_lod=ranged, bytes=end[ranged - 1]))
    cases.append(dict(name=f"cut-inside-level-{last}", max_lod=last,
                      bytes=(toc[-1][0] + end[-1]) // 2))
    if cut_in_level_1 and last > 1:
        cases.append(dict(name="cut-inside-level-1", max_lod=last,
                          bytes=(toc[0][0] + end[0]) // 2))
    return _digests(stream, cases)


def _digests(stream: bytes, cases: list[dict]) -> list[dict]:
    for case in cases:
        data = stream if case["bytes"] is None else stream[: case["bytes"]]
        dump = decode_to_dump(data, case["max_lod"])
        case["lod"] = decode(data, max_lod=case["max_lod"]).lod
        case["sha256"] = digest(dump)
    return cases


def _records(stream: bytes, max_lod: int = 16) -> list[dict]:
    from progs_codec.tools.canonical import split_dump
    return [dict(name=r.name, level=r.level, sha256=digest(r.payload))
            for r in split_dump(decode_to_dump(stream, max_lod))]


def write_vector(out: Path, vector: Vector) -> dict:
    stream = vector.build()
    folder = out / ("partial" if vector.partial else "vectors") / vector.name
    folder.mkdir(parents=True)
    model = decode(stream, max_lod=vector.records_lod)
    name = "stream.progs"
    if len(stream) > COMPRESS_ABOVE:
        name += ".xz"
        (folder / name).write_bytes(lzma.compress(stream, preset=6))
    else:
        (folder / name).write_bytes(stream)
    levels = model.frame.num_levels
    expected = dict(name=vector.name, stream=name, stream_sha256=digest(stream),
                    stream_bytes=len(stream), num_levels=levels,
                    anchors=[len(level) for level in model.levels],
                    attribute_coding=int(model.entropy_model is not None),
                    spec=list(vector.spec), description=vector.description,
                    cases=_cases(stream, levels, light=vector.light,
                                 cut_in_level_1=vector.name == "raw-basic")
                    if vector.cases is None else
                    _digests(stream, [dict(name=n, max_lod=lod, bytes=cut)
                                      for n, lod, cut in vector.cases]),
                    records=_records(stream, vector.records_lod))
    (folder / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    rows = "\n".join(f"| `{c['name']}` | {c['max_lod']} | "
                     f"{'all' if c['bytes'] is None else c['bytes']} | {c['lod']} | "
                     f"`{c['sha256'][:16]}…` |" for c in expected["cases"])
    (folder / "README.md").write_text(
        f"# {vector.name}\n\n{vector.description}\n\n"
        f"Spec sections: {', '.join(vector.spec)}. Levels: {levels}; anchors per level: "
        f"{expected['anchors']}; stream: {len(stream):,} bytes"
        f"{' (stored xz-compressed)' if name.endswith('.xz') else ''}.\n\n"
        f"| case | MAX_LOD | input bytes | decoded levels | SHA-256 of the dump |\n"
        f"|---|---|---|---|---|\n{rows}\n")
    return expected


def write_invalid(out: Path, case: Invalid) -> dict:
    stream = case.build()
    try:
        decode(stream, max_lod=case.max_lod)
    except ProgsError as error:
        got = error_class(error)
        if got != case.error_class:
            raise AssertionError(f"{case.name}: reference reports {got}, "
                                 f"expected {case.error_class}: {error}") from error
        message = str(error)
    else:
        raise AssertionError(f"{case.name}: the reference decoder accepts it")
    folder = out / "invalid" / case.name
    folder.mkdir(parents=True)
    (folder / "stream.progs").write_bytes(stream)
    expected = dict(name=case.name, stream="stream.progs", error_class=case.error_class,
                    max_lod=case.max_lod, spec=list(case.spec), description=case.description,
                    reference_message=message)
    (folder / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    asked = "" if case.max_lod == 16 else \
        f" asked for LoD {case.max_lod} (`MAX_LOD` {case.max_lod})"
    (folder / "README.md").write_text(
        f"# {case.name}\n\n{case.description}\n\nA decoder{asked} shall reject it with error "
        f"class `{case.error_class}` (spec {', '.join(case.spec)}). The reference decoder says: "
        f"{message}\n")
    return expected


def vectors() -> list[Vector]:
    found = list(VECTORS)
    if PLANT.is_file():
        found.append(Vector("trained-plant", "A stream of a real scene: examples/plant.progs, "
                            "distilled from a real capture (format 1.1, refine replace); its "
                            "first LoDs when the whole stream holds more than 400 000 symbols.", ("2", "3", "4", "5", "6", "7"),
                            v_trained_plant, light=True))
    return found


README_HEAD = """\
# Conformance suite of the `.progs` format

Test vectors (valid streams with the digest of every decoded LoD), invalid streams (each with
the error class a decoder must report) and a runner that checks any decoder command. This
file is written by `generate.py`; edit that, not this.

## Run it against your decoder
```
git clone <this repository> progs && cd progs && pip install .
progs-codec conformance run --decoder "/path/to/your-decoder --its-flags" --results out.json
python -m json.tool out.json      # every case, passed or not, with the reason
```
The exit status is 0 only when every case passes (1 when one fails, 2 when the suite is
unusable). `python -m progs_codec.tools.conformance` takes the same options (`--suite DIR`,
`--select REGEX`, `--timeout S`, `--jobs N`).

Where the suite comes from: this folder, in a source checkout (or the source distribution).
An installed wheel of progs-codec does **not** ship it (about 2.5 MB of streams). Without
`--suite`, the runner looks for a folder holding `vectors/` and `invalid/`, or a
`conformance/` folder that does, in the current folder and each folder above it, then above
the installed package (an editable install); when it finds none it stops with exit status 2
and says to pass `--suite DIR`. So run it from inside the checkout, or pass
`--suite /path/to/progs/conformance`.

## The decoder command (spec 10.4)
The runner calls `CMD INPUT MAX_LOD OUTPUT`. The decoder decodes levels `1..MAX_LOD` of the
stream (or prefix) in `INPUT`, as spec 8.3 says for prefixes (not strictly), writes the
canonical dump of spec chapter 10 to `OUTPUT` and exits 0. On an invalid stream it exits with
a non-zero status (a crash by signal counts as a failure) and prints one line
`error-class: NAME` on stderr, with `NAME` one of `format`, `checksum`, `truncated`,
`unsupported`, `limit`: the class that the table of spec 8.4 gives to the first failing
check. The runner requires that line and compares the class exactly (`--lenient-classes`
checks as version 1.0 did: a missing line, or `format` for any class, passes). Each call has a
timeout (`--timeout`, default 60 s).

- Vectors: `vectors/<name>/stream.progs` (or `stream.progs.xz`, which the runner inflates),
  `expected.json` and `README.md`. Each case of `expected.json` gives `MAX_LOD`, how many
  leading bytes of the stream the decoder gets (`null`: all of it; a cut at a level's end is
  the range request of spec 8.2; a cut inside a chunk is a prefix of 8.3), the number of
  levels it must decode and the SHA-256 of the dump. `records` holds one digest per dump
  record of the full decode, so the runner names the first record that differs.
- Invalid streams: `invalid/<name>/stream.progs`, decoded with the `max_lod` of
  `expected.json` (16, every level, unless the case is about a LoD request); `expected.json`
  gives `error_class`. A case named `precedence-*` holds two faults: the class is the first
  one's in the order of spec 8.4.
- Partial streams: `partial/<name>/`, laid out as vectors, but the input is not a whole valid
  stream (a prefix, or a stream invalid above the LoDs it is asked for): only the listed
  cases are valid requests. Every stream in `vectors/` is a whole valid stream.
- Reference decoder: `python -m progs_codec.tools.canonical`; independent decoder written from
  `spec/` alone: `python conformance/independent_decoder` (numpy only). CI runs both
  (`tests/test_conformance.py`).
- Regenerate with `python conformance/generate.py`; a test checks that the committed suite
  is what the generator writes. `examples/plant.progs`, a stream of a real scene, is included
  as `trained-plant` when present.
"""


def _readme(manifest: dict) -> str:
    vector_rows = "\n".join(
        f"| [`{v['name']}`](vectors/{v['name']}/README.md) | {v['num_levels']} | "
        f"{('raw', 'entropy')[v['attribute_coding']]} | {v['stream_bytes']:,} | "
        f"{', '.join(v['spec'])} | {v['description']} |" for v in manifest["vectors"])
    invalid_rows = "\n".join(
        f"| `{c['name']}` | `{c['error_class']}` | {', '.join(c['spec'])} | "
        f"{c['description']} |" for c in manifest["invalid"])
    partial_rows = "\n".join(
        f"| [`{v['name']}`](partial/{v['name']}/README.md) | {v['num_levels']} | "
        f"{v['stream_bytes']:,} | {', '.join(v['spec'])} | {v['description']} |"
        for v in manifest["partial"])
    sections: dict[str, list[str]] = {}
    for entry in manifest["vectors"] + manifest["partial"] + manifest["invalid"]:
        for section in entry["spec"]:
            sections.setdefault(section, []).append(entry["name"])

    def key(section):
        return tuple(int(x) for x in section.split("."))
    coverage = "\n".join(f"| {s} | {len(names)} | {', '.join(f'`{n}`' for n in names)} |"
                          for s, names in sorted(sections.items(), key=lambda i: key(i[0])))
    return (README_HEAD +
            "\n## Vectors\n| vector | levels | attributes | bytes | spec | covers |\n"
            "|---|---|---|---|---|---|\n" + vector_rows +
            "\n\n## Partial streams\nValid only as the cases ask for them: prefixes, or streams "
            "invalid above the LoDs they are decoded to.\n\n"
            "| input | levels | bytes | spec | covers |\n|---|---|---|---|---|\n" + partial_rows +
            "\n\n## Invalid streams\n| case | class | spec | what is wrong |\n"
            "|---|---|---|---|\n" + invalid_rows +
            "\n\n## Coverage by spec section\n| section | cases | vectors and invalid "
            "streams |\n|---|---|---|\n" + coverage + "\n")


def generate(out: Path = SUITE) -> None:
    """Write ``vectors/``, ``invalid/``, ``manifest.json`` and ``README.md`` under ``out``."""
    for sub in ("vectors", "invalid", "partial"):
        shutil.rmtree(out / sub, ignore_errors=True)
    found = vectors()
    written = [write_vector(out, v) for v in found]
    invalid = [write_invalid(out, c) for c in INVALID]
    keys = ("name", "spec", "description", "num_levels", "attribute_coding", "stream_bytes")
    manifest = dict(
        vectors=[{k: e[k] for k in keys} for v, e in zip(found, written) if not v.partial],
        invalid=[{k: e[k] for k in ("name", "spec", "description", "error_class")}
                 for e in invalid],
        partial=[{k: e[k] for k in keys} for v, e in zip(found, written) if v.partial])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (out / "README.md").write_text(_readme(manifest))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SUITE, help="suite folder to write")
    args = parser.parse_args()
    if args.out.resolve() != SUITE:
        args.out.mkdir(parents=True, exist_ok=True)
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
