"""Octree structure: canonical order, fixed layout, validation (spec 4.2-4.4)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from progs_codec.errors import FormatError, ModelError
from progs_codec.format.structure import (
    child_coords,
    levels_from_coords,
    morton_codes,
    parse_children,
    parse_roots,
    write_children,
    write_roots,
)
from progs_codec.testing import random_octree


def test_morton_order_x_highest():
    coords = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0], [1, 1, 1]])
    assert morton_codes(coords, 1).tolist() == [1, 2, 4, 7]
    assert morton_codes(np.array([[2, 0, 0]]), 2).tolist() == [32]


@given(st.integers(1, 2000), st.integers(0, 2**32 - 1), st.integers(1, 6))
@settings(max_examples=40, deadline=None)
def test_fixed_layout_round_trip(num_anchors, seed, num_levels):
    rng = np.random.default_rng(seed)
    base_depth, levels = random_octree(num_anchors, num_levels, rng)
    coords = parse_roots(write_roots(levels[0][0], base_depth), len(levels[0][0]), base_depth)
    assert np.array_equal(coords, levels[0][0])
    for k in range(1, len(levels)):
        _, parent_index, octant = levels[k]
        buf = write_children(parent_index, octant)
        assert len(buf) == (23 * len(parent_index) + 7) // 8
        p, o = parse_children(buf, len(parent_index), len(levels[k - 1][0]), chunk="LEVL")
        assert np.array_equal(p, parent_index) and np.array_equal(o, octant)
        assert np.array_equal(child_coords(levels[k - 1][0], p, o), levels[k][0])


def test_parent_index_out_of_range():
    buf = write_children(np.array([0, 5]), np.array([0, 0]))
    with pytest.raises(FormatError, match="parent index out of range") as info:
        parse_children(buf, 2, 5, chunk="LEVL 2")
    assert info.value.field == "parent_index" and info.value.chunk == "LEVL 2"


def test_duplicate_child():
    buf = write_children(np.array([1, 1]), np.array([3, 3]))
    with pytest.raises(FormatError, match="duplicate child"):
        parse_children(buf, 2, 4, chunk="LEVL 2")


def test_children_out_of_order():
    buf = write_children(np.array([2, 1]), np.array([0, 0]))
    with pytest.raises(FormatError, match="out of canonical"):
        parse_children(buf, 2, 4, chunk="LEVL 2")


def test_duplicate_root():
    buf = write_roots(np.array([[1, 2, 3], [1, 2, 3]]), 3)
    with pytest.raises(FormatError, match="duplicate root"):
        parse_roots(buf, 2, 3)


def test_structure_length_must_match_count():
    buf = write_children(np.array([0, 1]), np.array([0, 0]))
    with pytest.raises(FormatError, match="structure section"):
        parse_children(buf, 3, 4, chunk="LEVL 2")


def _attrs(n):
    return {"feature": np.zeros((n, 2)), "scaling": np.zeros((n, 1)),
            "offsets": np.zeros((n, 1, 3))}


def test_levels_from_coords_sorts_and_links():
    roots = np.array([[1, 1, 1], [0, 0, 0]])
    children = np.array([[3, 3, 2], [0, 0, 1], [2, 2, 2]])
    levels = levels_from_coords([roots, children], 1, [_attrs(2), _attrs(3)])
    assert levels[0].coords.tolist() == [[0, 0, 0], [1, 1, 1]]
    assert levels[1].parent_index.tolist() == [0, 1, 1]
    assert levels[1].octant.tolist() == [1, 0, 6]
    assert levels[1].coords.tolist() == [[0, 0, 1], [2, 2, 2], [3, 3, 2]]


def test_levels_from_coords_rejects_missing_parent():
    with pytest.raises(ModelError, match="no parent"):
        levels_from_coords([np.array([[0, 0, 0]]), np.array([[3, 3, 3]])], 1,
                           [_attrs(1), _attrs(1)])
