"""Structure, occupancy layout (spec 4.6)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from progs_codec.errors import FormatError, ProgsError
from progs_codec.format.occupancy import (
    children_masks,
    mask_frequencies,
    parse_children_occupancy,
    parse_roots_occupancy,
    virtual_masks,
    write_occupancy,
)
from progs_codec.testing import random_octree


def test_frequencies_sum_and_floor():
    counts = np.zeros(256, np.int64)
    counts[[1, 7, 255]] = [10, 3, 10]
    freq = mask_frequencies(counts)
    assert freq.sum() == 2**24 and freq.min() == 1
    assert freq[1] > freq[255] >= freq[7] > freq[0]  # ties go to the smallest value
    empty = mask_frequencies(np.zeros(256))
    assert empty.sum() == 2**24 and empty[1:].max() == 1


@given(st.integers(1, 3000), st.integers(0, 2**32 - 1), st.integers(1, 5))
@settings(max_examples=40, deadline=None)
def test_round_trip(num_anchors, seed, num_levels):
    base_depth, levels = random_octree(num_anchors, num_levels, np.random.default_rng(seed))
    roots = levels[0][0]
    section = write_occupancy(virtual_masks(roots, base_depth))
    assert np.array_equal(parse_roots_occupancy(section, len(roots), base_depth), roots)
    for k in range(1, len(levels)):
        _, parent_index, octant = levels[k]
        masks = children_masks(parent_index, octant, len(levels[k - 1][0]))
        p, o = parse_children_occupancy(write_occupancy(masks), len(parent_index),
                                        len(levels[k - 1][0]), chunk="LEVL")
        assert np.array_equal(p, parent_index) and np.array_equal(o, octant)


def test_base_depth_zero_has_one_root_and_no_masks():
    roots = np.zeros((1, 3), np.int32)
    section = write_occupancy(virtual_masks(roots, 0))
    assert np.array_equal(parse_roots_occupancy(section, 1, 0), roots)


@pytest.fixture(scope="module")
def level():
    _, levels = random_octree(2000, 3, np.random.default_rng(3))
    (parents, _, _), (_, parent_index, octant) = levels[1], levels[2]
    masks = children_masks(parent_index, octant, len(parents))
    return write_occupancy(masks), len(parent_index), len(parents)


def test_count_mismatches_are_errors(level):
    section, count, num_parents = level
    with pytest.raises(FormatError, match="anchor_count"):
        parse_children_occupancy(section, count + 1, num_parents, chunk="LEVL 3")
    with pytest.raises(FormatError, match="histogram declares"):
        parse_children_occupancy(section, count, num_parents + 1, chunk="LEVL 3")


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_corruption_raises_only_progs_errors(level, data):
    section, count, num_parents = level
    corrupt = bytearray(section)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(corrupt) - 1))
        corrupt[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(corrupt)))
    try:
        p, o = parse_children_occupancy(bytes(corrupt[:cut] if cut < len(corrupt) else corrupt),
                                        count, num_parents, chunk="LEVL 3")
    except ProgsError:
        return
    assert len(p) == count  # whatever decoded is a consistent structure


def test_real_scene_costs_a_few_bits_per_anchor(data_dir):
    from plyfile import PlyData

    from progs_codec.build import frame_for_points, octree_from_points
    from progs_codec.format.structure import levels_from_coords

    vertex = PlyData.read(str(data_dir / "scenes" / "donut" / "donut.ply"))["vertex"]
    points = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1)
    frame = frame_for_points(points, 5, 5)
    coords = octree_from_points(points, frame)
    empty = [{"feature": np.zeros((len(c), 1)), "scaling": np.zeros((len(c), 0)),
              "offsets": np.zeros((len(c), 1, 3))} for c in coords]
    levels = levels_from_coords(coords, 5, empty)
    bits = 0
    for previous, level in zip(levels, levels[1:]):
        masks = children_masks(level.parent_index, level.octant, len(previous))
        bits += 8 * len(write_occupancy(masks))
    per_anchor = bits / sum(len(level) for level in levels[1:])
    assert per_anchor < 4.0  # measured 3.2 (the fixed layout: 23)


def _counts_end(section: bytes) -> int:
    pos = 32
    for _ in range(int(np.unpackbits(np.frombuffer(section[:32], np.uint8)).sum())):
        while section[pos] & 0x80:
            pos += 1
        pos += 1
    return pos


def test_section_length_classes(level):
    """Spec 4.6, 8.4 O4-O5: words past the section are limit, bytes after them format."""
    import struct

    from progs_codec.errors import LimitError

    section, count, num_parents = level
    pos = _counts_end(section)
    (words,) = struct.unpack_from("<I", section, pos)
    with pytest.raises(LimitError):
        parse_children_occupancy(section[:pos] + struct.pack("<I", words + 1)
                                 + section[pos + 4:], count, num_parents, chunk="LEVL 3")
    with pytest.raises(FormatError, match="follow the words") as info:
        parse_children_occupancy(section + bytes(4), count, num_parents, chunk="LEVL 3")
    assert type(info.value) is FormatError


def test_overlong_counts_are_valid(level):
    """Spec 4.6: a count may take more bytes than it needs, up to 5."""
    section, count, num_parents = level
    pos, first = 32, bytearray()
    while section[pos] & 0x80:
        first.append(section[pos])
        pos += 1
    first.append(section[pos])
    overlong = bytes(first[:-1]) + bytes([first[-1] | 0x80]) + b"\x80" * (4 - len(first)) + b"\0"
    assert len(overlong) == 5
    again = section[:32] + overlong + section[pos + 1:]
    want = parse_children_occupancy(section, count, num_parents, chunk="LEVL 3")
    got = parse_children_occupancy(again, count, num_parents, chunk="LEVL 3")
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    with pytest.raises(FormatError, match="beyond 5 bytes"):
        parse_children_occupancy(section[:32] + overlong[:4] + b"\x80\x00" + section[pos + 1:],
                                 count, num_parents, chunk="LEVL 3")
