"""Level chunk ``LEVL``: payload layout, and a level's encoding and decoding (spec 4).

``parse_level_chunk`` splits a payload into its sections after checking every declared length
against the bytes present; ``decode_level_chunk`` turns the sections into a :class:`Level`
(structure, spec 4.3-4.6, and attributes, spec 4.5 and chapter 7); ``encode_level_chunk`` is
its inverse.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..entropy.attributes import (encode_level_attributes, level_contexts,
                                  predict_and_decode_attributes)
from ..errors import FormatError, LimitError, UnsupportedError
from ..model import ATTRIBUTE_GROUPS, AttributeDims, Level, SceneFrame
from .header import AttributeCoding, Header
from .occupancy import (
    children_masks,
    parse_children_occupancy,
    parse_roots_occupancy,
    virtual_masks,
    write_occupancy,
)
from .structure import (
    MAX_PARENTS,
    child_coords,
    children_length,
    parse_children,
    parse_roots,
    roots_length,
    write_children,
    write_roots,
)

__all__ = ["LevelChunk", "write_level_chunk", "parse_level_chunk", "encode_level_chunk",
           "decode_level_chunk", "STRUCTURE_FIXED", "STRUCTURE_OCCUPANCY"]

_PREFIX = struct.Struct("<BBII")
_LENGTH = struct.Struct("<I")

STRUCTURE_FIXED = 0
STRUCTURE_OCCUPANCY = 1


@dataclass(frozen=True)
class LevelChunk:
    """The sections of a ``LEVL`` payload (spec 4.1)."""

    level: int
    structure_mode: int
    anchor_count: int
    structure: bytes
    group_payloads: dict[str, bytes]


def write_level_chunk(chunk: LevelChunk) -> bytes:
    """The ``LEVL`` payload (spec 4.1)."""
    parts = [_PREFIX.pack(chunk.level, chunk.structure_mode, chunk.anchor_count,
                          len(chunk.structure)), chunk.structure]
    for group in ATTRIBUTE_GROUPS:
        payload = chunk.group_payloads[group]
        parts += [_LENGTH.pack(len(payload)), payload]
    return b"".join(parts)


def parse_level_chunk(payload: bytes, *, level: int, frame: SceneFrame,
                      previous_count: int) -> LevelChunk:
    """Split a ``LEVL`` payload into sections, checking every length first (spec 4.1).

    ``previous_count`` is the number of anchors of level ``level - 1`` (0 for level 1).
    """
    name = f"LEVL {level}"
    if len(payload) < _PREFIX.size:
        raise FormatError(f"payload of {len(payload)} bytes is shorter than its fixed fields",
                          chunk=name)
    stored_level, mode, count, structure_length = _PREFIX.unpack_from(payload)
    if stored_level != level:
        raise FormatError(f"expected level {level}, chunk says {stored_level}", chunk=name,
                          field="level")
    if mode not in (STRUCTURE_FIXED, STRUCTURE_OCCUPANCY):
        raise UnsupportedError(f"unknown structure_mode {mode}", chunk=name,
                               field="structure_mode")
    depth = frame.depth(level)
    if level == 1:
        limit, needed = 1 << (3 * depth), roots_length(count, depth)
        if count < 1:
            raise LimitError("level 1 has no anchors", chunk=name, field="anchor_count")
    else:
        limit, needed = 8 * previous_count, children_length(count)
    if level < frame.num_levels:
        limit = min(limit, MAX_PARENTS)
    if count > limit:
        raise LimitError(f"anchor_count {count} exceeds the limit {limit} of this level",
                         chunk=name, field="anchor_count")
    if mode == STRUCTURE_FIXED and structure_length != needed:
        raise FormatError(f"structure_length {structure_length} but {count} anchors need "
                          f"{needed} bytes", chunk=name, field="structure_length")
    pos = _PREFIX.size
    if pos + structure_length > len(payload):
        raise LimitError(f"structure section of {structure_length} bytes runs past the payload",
                         chunk=name, field="structure_length")
    structure = payload[pos: pos + structure_length]
    pos += structure_length
    group_payloads = {}
    for group in ATTRIBUTE_GROUPS:
        if pos + 4 > len(payload):
            raise FormatError(f"payload ends before the {group} group length", chunk=name,
                              field=group)
        (length,) = _LENGTH.unpack_from(payload, pos)
        if pos + 4 + length > len(payload):
            raise LimitError(f"{group} group declares {length} bytes, only "
                             f"{len(payload) - pos - 4} remain", chunk=name, field=group)
        group_payloads[group] = payload[pos + 4: pos + 4 + length]
        pos += 4 + length
    if pos != len(payload):
        raise FormatError(f"{len(payload) - pos} bytes follow the attribute section",
                          chunk=name, field="payload")
    return LevelChunk(level, mode, count, structure, group_payloads)


def _raw_groups(dims: AttributeDims, feature, scaling, offsets) -> dict[str, bytes]:
    values = {"feature": feature, "scaling": scaling, "offsets": offsets}
    return {g: np.ascontiguousarray(values[g], dtype="<f4").tobytes() for g in ATTRIBUTE_GROUPS}


def _parse_raw_groups(payloads: dict[str, bytes], dims: AttributeDims, count: int,
                      chunk: str) -> dict[str, np.ndarray]:
    arrays = {}
    for group, channels in dims.group_channels().items():
        expected = 4 * count * channels
        if len(payloads[group]) != expected:
            raise FormatError(f"raw {group} group holds {len(payloads[group])} bytes, "
                              f"{count} anchors need {expected}", chunk=chunk, field=group)
        values = np.frombuffer(payloads[group], "<f4").astype(np.float32).reshape(count, channels)
        if not np.isfinite(values).all():
            raise FormatError(f"raw {group} group holds non-finite values", chunk=chunk,
                              field=group)
        arrays[group] = values
    arrays["offsets"] = arrays["offsets"].reshape(count, dims.num_offsets, 3)
    return arrays


def encode_level_chunk(level: Level, k: int, header: Header,
                       previous: Level | None) -> tuple[bytes, Level]:
    """Write level ``k`` (canonical order, validated) as a ``LEVL`` payload (spec 4).

    Returns the payload and the level as a decoder will see it (attributes dequantized).
    """
    depth = header.frame.depth(k)
    if k == 1:
        fixed, occupancy = write_roots(level.coords, depth), \
            write_occupancy(virtual_masks(level.coords, depth))
    else:
        fixed = write_children(level.parent_index, level.octant)
        occupancy = write_occupancy(children_masks(level.parent_index, level.octant,
                                                   len(previous)))
    # The smaller layout wins; ties go to the fixed one (spec 4.6 is informative on this).
    mode, structure = (STRUCTURE_OCCUPANCY, occupancy) if len(occupancy) < len(fixed) \
        else (STRUCTURE_FIXED, fixed)
    if header.attribute_coding is AttributeCoding.RAW:
        groups = _raw_groups(header.dims, level.feature, level.scaling, level.offsets)
        decoded = level
    else:
        prediction = level_contexts(header.entropy_model, level.coords,
                                    None if previous is None else previous.coords[level.parent_index],
                                    depth)
        groups, (feature, scaling, offsets) = encode_level_attributes(
            header.entropy_model, prediction, header.dims, level.feature, level.scaling,
            level.offsets)
        decoded = Level(level.coords, level.parent_index, level.octant, feature, scaling, offsets)
    chunk = LevelChunk(k, mode, len(level), structure, groups)
    return write_level_chunk(chunk), decoded


def decode_level_chunk(chunk: LevelChunk, header: Header, previous: Level | None) -> Level:
    """Structure and attributes of one parsed ``LEVL`` chunk (spec 4.3-4.5, 7)."""
    k, name, count = chunk.level, f"LEVL {chunk.level}", chunk.anchor_count
    depth = header.frame.depth(k)
    occupancy = chunk.structure_mode == STRUCTURE_OCCUPANCY
    if k == 1:
        coords = (parse_roots_occupancy if occupancy else parse_roots)(
            chunk.structure, count, depth, chunk=name)
        parent_index = np.full(count, -1, np.int32)
        octant = np.zeros(count, np.uint8)
        parent_coords = None
    else:
        parent_index, octant = (parse_children_occupancy if occupancy else parse_children)(
            chunk.structure, count, len(previous), chunk=name)
        coords = child_coords(previous.coords, parent_index, octant)
        parent_coords = previous.coords[parent_index]
    if header.attribute_coding is AttributeCoding.RAW:
        arrays = _parse_raw_groups(chunk.group_payloads, header.dims, count, name)
        feature, scaling, offsets = arrays["feature"], arrays["scaling"], arrays["offsets"]
    else:
        feature, scaling, offsets = predict_and_decode_attributes(
            header.entropy_model, header.dims, chunk.group_payloads, coords, parent_coords,
            depth, level=k)
    return Level(coords, parent_index, octant, feature, scaling, offsets)
