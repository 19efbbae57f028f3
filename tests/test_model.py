"""Tests of progs_codec.model: ProgsModel.drawn and refine (spec 3.5, 9.1)."""

import dataclasses

import numpy as np
import pytest

from progs_codec import ModelError, ProgsModel, Refinement
from progs_codec.testing import synthetic_model


@pytest.fixture(scope="module")
def model() -> ProgsModel:
    return synthetic_model(600, 4, seed=5, attribute_coding="raw")


def _replace(model: ProgsModel) -> ProgsModel:
    return dataclasses.replace(model, refine=Refinement.REPLACE)


def test_add_draws_every_anchor(model):
    assert model.refine is Refinement.ADD
    for lod in range(1, model.lod + 1):
        drawn = model.drawn(lod)
        assert drawn.dtype == bool and drawn.shape == (model.num_anchors(lod),) and drawn.all()


def test_replace_draws_the_leaves_of_the_cut(model):
    rm = _replace(model)
    levels = rm.anchor_levels()
    for lod in range(1, rm.lod + 1):
        drawn = rm.drawn(lod)
        assert drawn.shape == (rm.num_anchors(lod),)
        assert drawn[levels[: len(drawn)] == lod].all()          # level lod: every anchor
        start = 0
        for k, level in enumerate(rm.levels[:lod], start=1):
            mine = drawn[start: start + len(level)]
            if k < lod:                  # a coarser anchor is drawn iff it has no child
                has_child = np.zeros(len(level), bool)
                has_child[rm.levels[k].parent_index] = True
                assert np.array_equal(mine, ~has_child)
            start += len(level)
        # every anchor of level lod has exactly one drawn ancestor-or-self: itself
        assert drawn.sum() == len(rm.levels[lod - 1]) + sum(
            len(level) - len(np.unique(rm.levels[k].parent_index))
            for k, level in enumerate(rm.levels[: lod - 1], start=1))


def test_replace_of_a_full_octree_draws_only_the_last_level():
    from progs_codec.build import levels_from_coords
    from progs_codec.model import AttributeDims, SceneFrame

    dims = AttributeDims(2, 6, 1)
    roots = np.array([[0, 0, 0], [1, 1, 1]])
    kids = np.concatenate([2 * roots, 2 * roots + 1])
    grandkids = np.concatenate([2 * kids, 2 * kids + [1, 0, 0]])
    coords = [roots, kids, grandkids]
    attrs = [{"feature": np.zeros((len(c), 2), np.float32),
              "scaling": np.zeros((len(c), 6), np.float32),
              "offsets": np.zeros((len(c), 1, 3), np.float32)} for c in coords]
    levels = levels_from_coords(coords, 1, attrs)
    m = ProgsModel(SceneFrame((0, 0, 0), 1.0, 1, 3), dims, levels, refine=Refinement.REPLACE)
    for lod in (1, 2, 3):
        assert np.array_equal(np.flatnonzero(m.drawn(lod)),
                              np.arange(m.num_anchors(lod - 1) if lod > 1 else 0,
                                        m.num_anchors(lod)))


def test_refine_is_kept_compared_and_checked(model):
    rm = _replace(model)
    assert rm.truncated(2).refine is Refinement.REPLACE
    assert rm != model and rm == _replace(model)
    assert ProgsModel(model.frame, model.dims, model.levels, refine=1).refine is Refinement.REPLACE
    with pytest.raises(ModelError, match="refine"):
        ProgsModel(model.frame, model.dims, model.levels, refine=2)
    with pytest.raises(ModelError, match="LoD 5"):
        rm.drawn(5)
