"""Header chunk ``HEAD``: scene frame, table of contents, model parts (spec 3)."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..entropy.model import EntropyModel, parse_entropy_model
from ..errors import FormatError, LimitError, UnsupportedError
from ..model import MLP, AttributeDims, CoordinateConvention, GaussianMLPs, Refinement, SceneFrame
from .container import VERSION

__all__ = [
    "AttributeCoding",
    "TocEntry",
    "Header",
    "HEADER_PARTS",
    "header_parts",
    "MAX_LEVELS",
    "MAX_BASE_DEPTH",
    "MAX_DEPTH",
    "write_header",
    "parse_header",
    "split_parts",
    "cut_header",
    "frame_problems",
    "mlp_shapes",
]

#: Part names of the HEAD payload, in stream order (spec 3): the five of version 1.0, then
#: ``rendering`` (spec 3.5), which streams of minor version 1 and later carry.
HEADER_PARTS = ("frame", "toc", "hash_grid", "context_mlp", "gaussian_mlps", "rendering")
_RENDERING = struct.Struct("<B")


def header_parts(minor_version: int) -> tuple[str, ...]:
    """The parts a stream of ``minor_version`` carries and a decoder reads (spec 3); any
    bytes after them are ignored."""
    return HEADER_PARTS if minor_version >= 1 else HEADER_PARTS[:5]

MAX_LEVELS = 16
MAX_BASE_DEPTH = 16
MAX_DEPTH = 21
MAX_FEATURE_DIM = 1024
MAX_SCALING_DIM = 64
MAX_OFFSETS = 64
MAX_HIDDEN_WIDTH = 1024

#: The fields of part ``frame`` in stream order: its checks are made in this order (8.4, F2).
FRAME_FIELDS = ("origin", "root_voxel_size", "base_depth", "num_levels", "convention",
                "attribute_coding", "feature_dim", "scaling_dim", "num_offsets", "reserved")

_PART_LENGTH = struct.Struct("<I")
_FRAME = struct.Struct("<3ffBBBBHHHH")
_TOC_ENTRY = struct.Struct("<QII")
_MLP_HEAD = struct.Struct("<BH")


class AttributeCoding(IntEnum):
    """How a level's attribute groups are stored (spec 3.1, 4.5)."""

    RAW = 0
    ENTROPY = 1


@dataclass(frozen=True)
class TocEntry:
    """Where level ``k``'s chunk lies (spec 3.3)."""

    offset: int
    size: int
    anchor_count: int


@dataclass(frozen=True)
class Header:
    """The parsed ``HEAD`` chunk (spec 3).

    ``entropy_model`` is the parsed hash grid and context model (chapter 5, 6) or ``None`` for
    raw attribute coding; ``part_sizes`` maps each part name to its byte length in the stream.
    ``minor_version`` is the stream's (spec 2.1): 1 or more when it carries the ``rendering``
    part, which holds ``refine`` (spec 3.5); ``refine`` is ``ADD`` for a 1.0 stream.
    """

    frame: SceneFrame
    dims: AttributeDims
    attribute_coding: AttributeCoding
    toc: tuple[TocEntry, ...]
    gaussian_mlps: GaussianMLPs | None
    entropy_model: EntropyModel | None
    part_sizes: dict[str, int]
    refine: Refinement = Refinement.ADD
    minor_version: int = 0


def frame_problems(frame: SceneFrame, dims: AttributeDims) -> list[tuple[str, str]]:
    """``(field, message)`` for every rule of spec 3.1 that ``frame``/``dims`` break."""
    problems = []
    if not all(math.isfinite(v) for v in frame.origin):
        problems.append(("origin", f"origin {frame.origin} is not finite"))
    if not (math.isfinite(frame.root_voxel_size) and frame.root_voxel_size > 0):
        problems.append(("root_voxel_size",
                         f"root_voxel_size {frame.root_voxel_size} must be finite and > 0"))
    if not 0 <= frame.base_depth <= MAX_BASE_DEPTH:
        problems.append(("base_depth", f"base_depth {frame.base_depth} outside 0..{MAX_BASE_DEPTH}"))
    if not 1 <= frame.num_levels <= MAX_LEVELS:
        problems.append(("num_levels", f"num_levels {frame.num_levels} outside 1..{MAX_LEVELS}"))
    elif frame.base_depth + frame.num_levels - 1 > MAX_DEPTH:
        problems.append(("num_levels", f"base_depth + num_levels - 1 = "
                         f"{frame.base_depth + frame.num_levels - 1} exceeds {MAX_DEPTH}"))
    if not 1 <= dims.feature <= MAX_FEATURE_DIM:
        problems.append(("feature_dim", f"feature_dim {dims.feature} outside 1..{MAX_FEATURE_DIM}"))
    if not 0 <= dims.scaling <= MAX_SCALING_DIM:
        problems.append(("scaling_dim", f"scaling_dim {dims.scaling} outside 0..{MAX_SCALING_DIM}"))
    if not 1 <= dims.num_offsets <= MAX_OFFSETS:
        problems.append(("num_offsets", f"num_offsets {dims.num_offsets} outside 1..{MAX_OFFSETS}"))
    return problems


def mlp_shapes(dims: AttributeDims, hidden_width: int, use_distance: bool):
    """``(name, [(rows, cols) of W1, b1, W2, b2])`` of the generation MLPs (spec 3.4)."""
    inputs = dims.feature + 3 + int(use_distance)
    outputs = {"opacity": dims.num_offsets, "color": 3 * dims.num_offsets,
               "covariance": 7 * dims.num_offsets}
    return [(name, [(hidden_width, inputs), (hidden_width,), (out, hidden_width), (out,)])
            for name, out in outputs.items()]


def _write_gaussian_mlps(mlps: GaussianMLPs | None, dims: AttributeDims) -> bytes:
    if mlps is None:
        return b""
    hidden_width = mlps.opacity.weights[0].shape[0]
    arrays = []
    for name, shapes in mlp_shapes(dims, hidden_width, mlps.use_distance):
        mlp = getattr(mlps, name)
        values = (mlp.weights[0], mlp.biases[0], mlp.weights[1], mlp.biases[1])
        if len(mlp.weights) != 2:
            raise ValueError(f"{name} MLP must have 2 layers, has {len(mlp.weights)}")
        for shape, value in zip(shapes, values):
            if value.shape != shape:
                raise ValueError(f"{name} MLP array of shape {value.shape}, expected {shape}")
            arrays.append(np.asarray(value, dtype="<f2").tobytes())
    return _MLP_HEAD.pack(int(mlps.use_distance), hidden_width) + b"".join(arrays)


def _parse_gaussian_mlps(buf: bytes, dims: AttributeDims,
                         minor_version: int = 0) -> GaussianMLPs | None:
    if not buf:
        return None
    if len(buf) < _MLP_HEAD.size:
        raise FormatError("gaussian_mlps part too short", chunk="HEAD", field="gaussian_mlps")
    flags, hidden_width = _MLP_HEAD.unpack_from(buf)
    if flags & ~1:
        # Flag bits 1-7 belong to later minor versions (spec 2.4).
        error = UnsupportedError if minor_version > VERSION[1] else FormatError
        raise error(f"unknown gaussian_mlps flags {flags:#x}", chunk="HEAD",
                    field="gaussian_mlps.flags")
    if not 1 <= hidden_width <= MAX_HIDDEN_WIDTH:
        raise FormatError(f"hidden_width {hidden_width} outside 1..{MAX_HIDDEN_WIDTH}",
                          chunk="HEAD", field="gaussian_mlps.hidden_width")
    shapes = mlp_shapes(dims, hidden_width, bool(flags & 1))
    expected = _MLP_HEAD.size + 2 * sum(math.prod(s) for _, group in shapes for s in group)
    if len(buf) != expected:
        raise FormatError(f"gaussian_mlps part holds {len(buf)} bytes, its shapes need "
                          f"{expected}", chunk="HEAD", field="gaussian_mlps")
    pos = _MLP_HEAD.size
    mlps = {}
    for name, group in shapes:
        values = []
        for shape in group:
            count = math.prod(shape)
            values.append(np.frombuffer(buf, "<f2", count, pos).astype(np.float32).reshape(shape))
            pos += 2 * count
        if not all(np.isfinite(v).all() for v in values):
            raise FormatError(f"{name} MLP holds non-finite values", chunk="HEAD",
                              field=f"gaussian_mlps.{name}")
        mlps[name] = MLP(weights=(values[0], values[2]), biases=(values[1], values[3]))
    return GaussianMLPs(**mlps, use_distance=bool(flags & 1))


def write_header(header: Header, entropy_parts: tuple[bytes, bytes] = (b"", b"")) -> bytes:
    """The ``HEAD`` payload (spec 3). ``entropy_parts`` are the written hash_grid and
    context_mlp parts (chapter 5, 6), empty for raw attribute coding."""
    frame, dims = header.frame, header.dims
    frame_part = _FRAME.pack(*frame.origin, frame.root_voxel_size, frame.base_depth,
                             frame.num_levels, int(frame.convention),
                             int(header.attribute_coding), dims.feature, dims.scaling,
                             dims.num_offsets, 0)
    toc_part = b"".join(_TOC_ENTRY.pack(e.offset, e.size, e.anchor_count) for e in header.toc)
    parts = [frame_part, toc_part, *entropy_parts,
             _write_gaussian_mlps(header.gaussian_mlps, dims)]
    if header.minor_version >= 1:
        parts.append(_RENDERING.pack(int(header.refine)))
    elif header.refine != Refinement.ADD:
        raise ValueError("refine REPLACE needs the rendering part of minor version 1")
    elif frame.convention == CoordinateConvention.ZUP:
        raise ValueError("convention ZUP needs minor version 1")
    return b"".join(_PART_LENGTH.pack(len(p)) + p for p in parts)


def split_parts(payload: bytes, minor_version: int = 0) -> dict[str, bytes]:
    """Cut the ``HEAD`` payload into the named parts a stream of ``minor_version`` carries
    (spec 3); bytes after them are ignored."""
    parts, pos = {}, 0
    for name in header_parts(minor_version):
        if pos + 4 > len(payload):
            raise FormatError(f"HEAD payload ends before part {name}", chunk="HEAD", field=name)
        (length,) = _PART_LENGTH.unpack_from(payload, pos)
        if pos + 4 + length > len(payload):
            raise LimitError(f"part {name} declares {length} bytes, only "
                             f"{len(payload) - pos - 4} remain", chunk="HEAD", field=name)
        parts[name] = payload[pos + 4: pos + 4 + length]
        pos += 4 + length
    return parts


def _parse_rendering(part: bytes) -> Refinement:
    """Part ``rendering`` (spec 3.5): exactly one byte, ``refine``."""
    if len(part) != _RENDERING.size:
        raise FormatError(f"rendering part holds {len(part)} bytes, expected {_RENDERING.size}",
                          chunk="HEAD", field="rendering")
    (refine,) = _RENDERING.unpack(part)
    if refine not in tuple(Refinement):
        raise UnsupportedError(f"refine {refine} is reserved for later versions (0 = add, "
                               f"1 = replace)", chunk="HEAD", field="rendering.refine")
    return Refinement(refine)


def parse_header(payload: bytes, *, minor_version: int = 0) -> Header:
    """Parse and check the ``HEAD`` payload of a stream of ``minor_version`` (spec 3).

    The checks are made in the order of spec 8.4 (rows P1-R2): the parts are split first,
    then each part's fields are checked in stream order.

    Raises:
        FormatError: a part has the wrong size or a field breaks its rule; the error names it.
        LimitError: a part's length runs past the payload, or a range of chapter 5 or 6.
        UnsupportedError: a value reserved for later versions (``refine`` 2..255; in a stream
            of a newer minor version, ``reserved``, ``convention``, ``attribute_coding`` or
            ``gaussian_mlps`` flags that this version does not define, spec 2.4).
    """
    parts = split_parts(payload, minor_version)
    if len(parts["frame"]) != _FRAME.size:
        raise FormatError(f"frame part holds {len(parts['frame'])} bytes, expected {_FRAME.size}",
                          chunk="HEAD", field="frame")
    (ox, oy, oz, voxel, base_depth, num_levels, convention, coding, feature_dim, scaling_dim,
     num_offsets, reserved) = _FRAME.unpack(parts["frame"])
    dims = AttributeDims(feature=feature_dim, scaling=scaling_dim, num_offsets=num_offsets)
    ranges = dict(frame_problems(SceneFrame((ox, oy, oz), voxel, base_depth, num_levels), dims))
    # A reserved value is a later minor version's extension in a newer stream (spec 2.4).
    reserved_error = UnsupportedError if minor_version > VERSION[1] else FormatError
    # Z-up (2) is defined from minor version 1 on; in a 1.0 stream it is undefined (spec 3.1).
    defined_conventions = tuple(CoordinateConvention)[:2 if minor_version < 1 else 3]
    reserved_values = {
        "convention": (convention not in defined_conventions,
                       f"unknown convention {convention}"
                       + (" (Z-up needs minor_version 1 or more)" if convention == 2 else "")),
        "attribute_coding": (coding not in tuple(AttributeCoding),
                             f"unknown attribute_coding {coding}"),
        "reserved": (reserved != 0, "reserved field is not zero"),
    }
    for field in FRAME_FIELDS:                       # field order (spec 8.4, row F2)
        if field in reserved_values and reserved_values[field][0]:
            raise reserved_error(reserved_values[field][1], chunk="HEAD", field=field)
        if field in ranges:
            raise FormatError(ranges[field], chunk="HEAD", field=field)
    frame = SceneFrame(origin=(ox, oy, oz), root_voxel_size=voxel, base_depth=base_depth,
                       num_levels=num_levels, convention=CoordinateConvention(convention))
    if len(parts["toc"]) != _TOC_ENTRY.size * num_levels:
        raise FormatError(f"toc part holds {len(parts['toc'])} bytes, {num_levels} levels need "
                          f"{_TOC_ENTRY.size * num_levels}", chunk="HEAD", field="toc")
    toc = tuple(TocEntry(*_TOC_ENTRY.unpack_from(parts["toc"], _TOC_ENTRY.size * i))
                for i in range(num_levels))
    coding = AttributeCoding(coding)
    entropy_model = None
    if coding is AttributeCoding.ENTROPY:
        entropy_model = parse_entropy_model(parts["hash_grid"], parts["context_mlp"], dims)
    else:
        for name in ("hash_grid", "context_mlp"):
            if parts[name]:
                raise FormatError(f"part {name} must be empty with raw attribute coding",
                                  chunk="HEAD", field=name)
    gaussian_mlps = _parse_gaussian_mlps(parts["gaussian_mlps"], dims, minor_version)
    refine = _parse_rendering(parts["rendering"]) if "rendering" in parts else Refinement.ADD
    return Header(frame=frame, dims=dims, attribute_coding=coding, toc=toc,
                  gaussian_mlps=gaussian_mlps, entropy_model=entropy_model,
                  part_sizes={name: len(part) for name, part in parts.items()},
                  refine=refine, minor_version=minor_version)


def cut_header(payload: bytes, toc: tuple[TocEntry, ...]) -> bytes:
    """The ``HEAD`` payload of the same stream cut to ``len(toc)`` levels (spec 3.1, 3.3).

    ``num_levels`` in the frame part and the table of contents are replaced; every other
    part, and any bytes after the parts this decoder knows, are kept byte for byte. The
    payload must have passed :func:`parse_header`.
    """
    (frame_length,) = _PART_LENGTH.unpack_from(payload, 0)
    fields = list(_FRAME.unpack_from(payload, 4))
    fields[5] = len(toc)                                   # num_levels
    (toc_length,) = _PART_LENGTH.unpack_from(payload, 4 + frame_length)
    rest = payload[8 + frame_length + toc_length:]
    toc_part = b"".join(_TOC_ENTRY.pack(e.offset, e.size, e.anchor_count) for e in toc)
    return (_PART_LENGTH.pack(_FRAME.size) + _FRAME.pack(*fields)
            + _PART_LENGTH.pack(len(toc_part)) + toc_part + rest)
