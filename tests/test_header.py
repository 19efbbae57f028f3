"""Header chunk: parts, frame, TOC, generation MLPs (spec 3)."""

import struct

import numpy as np
import pytest

import dataclasses

from progs_codec.errors import FormatError, LimitError, UnsupportedError
from progs_codec.format.header import AttributeCoding, Header, TocEntry, parse_header, write_header
from progs_codec.model import AttributeDims, CoordinateConvention, Refinement, SceneFrame
from progs_codec.testing import random_gaussian_mlps

DIMS = AttributeDims(8, 6, 3)
FRAME = SceneFrame((0.5, -2.0, 3.25), 0.125, 4, 3, CoordinateConvention.OPENGL)


def header(mlps=True, frame=FRAME):
    return Header(frame=frame, dims=DIMS, attribute_coding=AttributeCoding.RAW,
                  toc=tuple(TocEntry(100 * k, 50 + k, 7 * k) for k in range(frame.num_levels)),
                  gaussian_mlps=random_gaussian_mlps(DIMS, np.random.default_rng(0))
                  if mlps else None, entropy_model=None, part_sizes={})


@pytest.mark.parametrize("mlps", [True, False])
def test_round_trip(mlps):
    parsed = parse_header(write_header(header(mlps)))
    h = header(mlps)
    assert (parsed.frame, parsed.dims, parsed.toc, parsed.gaussian_mlps) == \
        (h.frame, h.dims, h.toc, h.gaussian_mlps)
    assert parsed.part_sizes["frame"] == 28 and parsed.part_sizes["toc"] == 16 * 3


def test_trailing_parts_of_newer_minor_versions_are_ignored():
    payload = write_header(header())
    assert parse_header(payload + struct.pack("<I", 3) + b"new").frame == FRAME


def test_frame_rules_name_the_field():
    with pytest.raises(FormatError, match="num_levels") as info:
        parse_header(write_header(header(frame=SceneFrame((0, 0, 0), 1.0, 16, 7))))
    assert info.value.field == "num_levels"
    with pytest.raises(FormatError, match="root_voxel_size"):
        parse_header(write_header(header(frame=SceneFrame((0, 0, 0), -1.0, 2, 2))))


def test_part_lengths_are_checked():
    payload = bytearray(write_header(header()))
    struct.pack_into("<I", payload, 0, 10**9)
    with pytest.raises(LimitError, match="frame"):
        parse_header(bytes(payload))
    with pytest.raises(FormatError, match="gaussian_mlps"):
        parse_header(write_header(header())[:-2])


@pytest.mark.parametrize("refine", list(Refinement))
def test_rendering_part_round_trip(refine):
    """Part 5 (spec 3.5) is written and read for minor version 1."""
    h = dataclasses.replace(header(), refine=refine, minor_version=1)
    payload = write_header(h)
    assert payload == write_header(dataclasses.replace(header(), minor_version=1, refine=refine))
    parsed = parse_header(payload, minor_version=1)
    assert parsed.refine is refine and parsed.part_sizes["rendering"] == 1
    assert parse_header(payload + struct.pack("<I", 2) + b"7!", minor_version=3).refine is refine


def test_rendering_part_is_read_only_from_minor_version_1():
    one = struct.pack("<I", 1) + b"\x01"
    parsed = parse_header(write_header(header()) + one)            # a 1.0 stream: ignored
    assert parsed.refine is Refinement.ADD and "rendering" not in parsed.part_sizes
    with pytest.raises(FormatError, match="rendering") as info:
        parse_header(write_header(header()), minor_version=1)     # missing
    assert info.value.field == "rendering"
    with pytest.raises(FormatError, match="rendering part holds 2 bytes"):
        parse_header(write_header(header()) + struct.pack("<I", 2) + b"\x01\x00",
                     minor_version=1)
    with pytest.raises(UnsupportedError, match="refine 2"):
        parse_header(write_header(header()) + struct.pack("<I", 1) + b"\x02", minor_version=1)
    with pytest.raises(ValueError, match="minor version 1"):
        write_header(dataclasses.replace(header(), refine=Refinement.REPLACE))


def _frame_patched(payload: bytes, *patches) -> bytes:
    out = bytearray(payload)
    for fmt, offset, value in patches:
        struct.pack_into(fmt, out, 4 + offset, value)
    return bytes(out)


def test_frame_fields_in_field_order_and_reserved_values_by_minor_version():
    """Spec 2.4, 3.1, 8.4 F2: reserved values are format in streams of minor version <= 1 and
    unsupported in newer ones; the frame's fields are checked in field order."""
    payload = write_header(dataclasses.replace(header(), minor_version=1))
    part5 = struct.pack("<I", 1) + b"\0"
    for minor in (0, 1):
        raw = payload if minor else write_header(header())
        with pytest.raises(FormatError, match="reserved") as info:
            parse_header(_frame_patched(raw, ("<H", 26, 1)), minor_version=minor)
        assert type(info.value) is FormatError
    newer = write_header(header()) + part5
    for patch in (("<H", 26, 1), ("<B", 18, 3), ("<B", 19, 7)):
        with pytest.raises(UnsupportedError):
            parse_header(_frame_patched(newer, patch), minor_version=2)
    with pytest.raises(FormatError, match="origin") as info:     # origin comes first
        parse_header(_frame_patched(newer, ("<H", 26, 1), ("<f", 0, float("nan"))),
                     minor_version=2)
    assert type(info.value) is FormatError
    with pytest.raises(FormatError, match="feature_dim"):           # before reserved
        parse_header(_frame_patched(write_header(header()), ("<H", 26, 1), ("<H", 20, 0)))


def test_zup_convention_from_minor_version_1():
    """Spec 2.4, 3.1, 8.4 F2: convention 2 (Z-up) is valid in streams of minor version 1 or
    more and format in a 1.0 stream; 3 is format in a 1.1 stream, unsupported in newer ones.
    An encoder cannot write Z-up into a 1.0 stream."""
    zup = dataclasses.replace(FRAME, convention=CoordinateConvention.ZUP)
    payload = write_header(dataclasses.replace(header(), frame=zup, minor_version=1))
    for minor in (1, 2):
        assert parse_header(payload, minor_version=minor).frame.convention == \
            CoordinateConvention.ZUP
    with pytest.raises(FormatError, match="convention 2") as info:
        parse_header(_frame_patched(write_header(header()), ("<B", 18, 2)))
    assert type(info.value) is FormatError
    with pytest.raises(FormatError, match="convention 3") as info:
        parse_header(_frame_patched(payload, ("<B", 18, 3)), minor_version=1)
    assert type(info.value) is FormatError
    with pytest.raises(UnsupportedError, match="convention 3"):
        parse_header(_frame_patched(payload, ("<B", 18, 3)), minor_version=2)
    with pytest.raises(ValueError, match="ZUP needs minor version 1"):
        write_header(dataclasses.replace(header(), frame=zup))


def test_mlp_flags_by_minor_version():
    raw = bytearray(write_header(header()))
    # the gaussian_mlps part is the last of the five: its flags byte follows its length
    pos, starts = 0, []
    for _ in range(5):
        (n,) = struct.unpack_from("<I", raw, pos)
        starts.append(pos)
        pos += 4 + n
    raw[starts[4] + 4] = 2
    with pytest.raises(FormatError, match="flags") as info:
        parse_header(bytes(raw))
    assert type(info.value) is FormatError
    with pytest.raises(UnsupportedError, match="flags"):
        parse_header(bytes(raw) + struct.pack("<I", 1) + b"\0", minor_version=2)
