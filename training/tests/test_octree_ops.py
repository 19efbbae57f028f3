"""Octree bookkeeping, growth (Algorithm 1) and pruning keep the octree strict."""

import numpy as np
import pytest

from progs_codec.build import frame_for_points
from progs_training.anchors import GrowthConfig, PruneConfig, grow_anchors, prune_anchors
from progs_training.errors import TrainingError
from progs_training.octree_ops import (AnchorTree, anchor_positions, check_strict, child_counts,
                                       initial_tree, lookup, parent_index, strictness_problem)


@pytest.fixture
def tree():
    points = np.random.default_rng(0).normal(0, 1, (400, 3))
    return initial_tree(points, frame_for_points(points, 2, 4))


def test_initial_tree_is_strict(tree):
    check_strict(tree)
    parents = parent_index(tree)
    assert (parents[tree.level == 1] == -1).all() and (parents[tree.level > 1] >= 0).all()
    assert (tree.coords[tree.level > 1] >> 1 == tree.coords[parents[tree.level > 1]]).all()
    assert child_counts(tree)[tree.level < 4].min() >= 1


def test_lookup_and_positions(tree):
    rows = np.flatnonzero(tree.level == 3)[:5]
    assert np.array_equal(lookup(tree, 3, tree.coords[rows]), rows)
    assert (lookup(tree, 3, np.array([[-1, 0, 0], [1 << 20, 0, 0]])) == -1).all()
    pos = anchor_positions(tree)
    voxel = tree.frame.voxel_size(3)
    assert np.allclose((pos[rows] - tree.frame.origin) / voxel - 0.5, tree.coords[rows])


def test_orphan_is_reported(tree):
    leaf = np.flatnonzero(tree.level == 4)[0]
    parent = parent_index(tree)[leaf]
    broken = tree.subset(np.arange(len(tree)) != parent)
    assert "lack a parent" in strictness_problem(broken)
    with pytest.raises(TrainingError):
        check_strict(broken)


def _growth_inputs(tree, points, grads):
    """One Gaussian per anchor slot: the given points with the given gradients."""
    n, k = len(tree), 1
    means = np.zeros((n, k, 3))
    grad = np.zeros((n, k))
    means[: len(points), 0] = points
    grad[: len(points), 0] = grads
    return means, grad, np.ones((n, k))


def test_previous_rule_spawns_strictly_and_queues_missing_parents(tree):
    frame = tree.frame
    # Far corner of the frame: no anchors there at any level.
    corner = np.asarray(frame.origin) + frame.root_voxel_size * 2 ** frame.base_depth * 0.999
    occupied = anchor_positions(tree)[tree.level == 4][0]
    cfg = GrowthConfig(grad_threshold=1.0, very_factor=10.0, level_factor=1.0,
                       rule="every_level")
    # Significant but not very significant: the orphan at the empty corner is refused.
    means, grad, vis = _growth_inputs(tree, np.array([corner]), [2.0])
    assert len(grow_anchors(tree, means, grad, vis, cfg)) == 0
    # Very significant: the whole missing chain of ancestors is added.
    means, grad, vis = _growth_inputs(tree, np.array([corner, occupied]), [50.0, 50.0])
    growth = grow_anchors(tree, means, grad, vis, cfg)
    grown = tree.extended(growth.coords, growth.level)
    check_strict(grown)
    assert len(growth) >= frame.num_levels - 1
    assert 4 in growth.level.tolist()
    # Nothing lands on an occupied voxel.
    assert strictness_problem(grown) is None


def _one_gaussian(tree, anchor, point, grad):
    means = np.zeros((len(tree), 1, 3))
    grads = np.zeros((len(tree), 1))
    means[anchor, 0], grads[anchor, 0] = point, grad
    return means, grads, np.ones((len(tree), 1))


ALG1 = GrowthConfig(grad_threshold=1.0, update_ratio=1.0)   # tau_l = 2**(l - 1), very: 2 tau_l


def _free_voxel_beside(tree, level):
    """An anchor of ``level`` and a point in a free voxel of that level whose parent exists."""
    frame = tree.frame
    for i in np.flatnonzero(tree.level == level):
        for d in np.eye(3, dtype=np.int64):
            c = tree.coords[i] ^ d                      # the sibling across one axis
            if lookup(tree, level, c)[0] < 0:
                return i, np.asarray(frame.origin) + (c + 0.5) * frame.voxel_size(level)
    raise AssertionError("no free sibling voxel")


def test_algorithm1_tests_each_gaussian_at_its_own_anchors_level(tree):
    anchor, point = _free_voxel_beside(tree, 3)
    # Below level 3's threshold (4): nothing, although level 1's threshold (1) is passed.
    assert len(grow_anchors(tree, *_one_gaussian(tree, anchor, point, 3.0), ALG1)) == 0
    # Significant at level 3 (4 <= g < 8): one anchor in the free voxel of level 3.
    growth = grow_anchors(tree, *_one_gaussian(tree, anchor, point, 5.0), ALG1)
    assert growth.level.tolist() == [3] and growth.source.tolist() == [anchor]
    check_strict(tree.extended(growth.coords, growth.level))


def test_very_significant_candidate_moves_to_the_finer_level(tree):
    anchor, point = _free_voxel_beside(tree, 3)
    growth = grow_anchors(tree, *_one_gaussian(tree, anchor, point, 9.0), ALG1)
    grown = tree.extended(growth.coords, growth.level)
    check_strict(grown)             # its level-3 parent voxel was free: queued, not dropped
    assert sorted(growth.level.tolist()) == [3, 4]
    # At the finest level a very significant Gaussian stays at the finest level.
    leaf, point = _free_voxel_beside(tree, 4)
    growth = grow_anchors(tree, *_one_gaussian(tree, leaf, point, 100.0), ALG1)
    assert growth.level.tolist() == [4]


def test_missing_parents_are_queued_up_to_the_roots(tree):
    frame = tree.frame
    corner = np.asarray(frame.origin) + frame.root_voxel_size * 2 ** frame.base_depth * 0.999
    leaf = np.flatnonzero(tree.level == 4)[0]
    # Significant only (8 <= g < 16 at level 4), at an empty corner: the whole chain comes.
    growth = grow_anchors(tree, *_one_gaussian(tree, leaf, corner, 9.0), ALG1)
    assert sorted(growth.level.tolist()) == [1, 2, 3, 4]
    check_strict(tree.extended(growth.coords, growth.level))
    # An occupied voxel is never taken again.
    occupied = anchor_positions(tree)[leaf]
    assert len(grow_anchors(tree, *_one_gaussian(tree, leaf, occupied, 100.0), ALG1)) == 0


def test_growth_respects_visibility(tree):
    means, grad, vis = _growth_inputs(tree, anchor_positions(tree)[:3] + 1e-3, [9.0] * 3)
    assert len(grow_anchors(tree, means, grad, vis * 0, GrowthConfig(grad_threshold=1.0))) == 0


def test_prune_removes_only_leaves_fine_to_coarse(tree):
    n = len(tree)
    weak = np.zeros(n, bool)
    children = child_counts(tree)
    # Make one level-3 anchor and all of its children transparent: both go.
    p = np.flatnonzero((tree.level == 3) & (children > 0))[0]
    kids = np.flatnonzero(parent_index(tree) == p)
    weak[p] = True
    weak[kids] = True
    # A transparent anchor with a healthy child stays.
    q = np.flatnonzero((tree.level == 2) & (children > 0))[-1]
    weak[q] = True
    opacity = np.where(weak, 0.0, 1.0)
    keep = prune_anchors(tree, opacity, np.ones(n), PruneConfig(min_opacity=0.5))
    assert not keep[p] and not keep[kids].any() and keep[q]
    check_strict(tree.subset(keep))


def test_prune_keeps_a_root():
    points = np.zeros((1, 3))
    tree = initial_tree(points, frame_for_points(points + [[0, 0, 0]], 1, 2))
    keep = prune_anchors(tree, np.zeros(len(tree)), np.ones(len(tree)),
                         PruneConfig(min_opacity=0.5))
    assert keep[tree.level == 1].sum() == 1
    check_strict(tree.subset(keep))


def test_adjustment_sequence_stays_strict(tree):
    rng = np.random.default_rng(1)
    cfg = GrowthConfig(grad_threshold=0.5, very_factor=1.5)
    for _ in range(5):
        n = len(tree)
        means = anchor_positions(tree)[:, None, :] + rng.normal(0, tree.frame.voxel_size(3), (n, 4, 3))
        growth = grow_anchors(tree, means, rng.exponential(0.5, (n, 4)), np.ones((n, 4)), cfg)
        tree = tree.extended(growth.coords, growth.level)
        check_strict(tree)
        keep = prune_anchors(tree, rng.uniform(0, 0.02, len(tree)), np.ones(len(tree)),
                             PruneConfig(min_opacity=0.01))
        tree = tree.subset(keep)
        check_strict(tree)
    assert isinstance(tree, AnchorTree)
