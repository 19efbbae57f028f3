"""Slot targets: every teacher Gaussian is accounted for, merges keep moments, rotations are
canonical, and the levels form a strict octree."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from progs_training.distill.targets import (canonical_rotation, choose_frame, level_targets,
                                            quat_to_rotmat, rotmat_to_quat)
from progs_training.distill.teacher import check_teacher, read_teacher


@pytest.fixture(scope="module")
def donut(data_dir):
    return read_teacher(data_dir / "scenes" / "donut" / "donut.ply")


def _cov(scales, quats):
    r = quat_to_rotmat(quats)
    return np.einsum("...ij,...j,...kj->...ik", r, scales ** 2, r)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2 ** 32 - 1))
def test_canonical_rotation_keeps_the_covariance(seed):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(20, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    s = rng.uniform(0.01, 1, (20, 3))
    s2, q2 = canonical_rotation(s, q)
    assert np.allclose(_cov(s, q), _cov(s2, q2), atol=1e-12)
    assert (q2[:, 0] > 0.5).all()             # within 120 degrees of the identity
    assert np.allclose(rotmat_to_quat(quat_to_rotmat(q2)), q2, atol=1e-9)


def test_levels_account_for_every_gaussian(donut):
    frame = choose_frame(donut, finest_depth=5, num_levels=4)
    previous = None
    for level in range(1, 5):
        t = level_targets(donut, frame, level, 8)
        assert t.members.sum() == len(donut)                 # merged, never dropped
        assert (t.mask.sum(1) >= 1).all() and t.mask.shape[1] == 8
        assert (t.members[t.mask] >= 1).all() and (t.members[~t.mask] == 0).all()
        assert (np.diff(t.mask.astype(int), axis=1) <= 0).all()   # occupied slots first
        m = t.mask
        assert np.allclose(_cov(t.scales[m], t.quats[m]), t.covs[m], rtol=1e-6,
                           atol=1e-14)
        assert ((t.opacities[m] > 0) & (t.opacities[m] <= 1)).all()
        if previous is not None:                              # strict octree, growing
            parents = {tuple(c) for c in previous.coords}
            assert {tuple(c) for c in t.coords >> 1} == parents
            assert len(t) > len(previous)
        previous = t


def test_one_slot_is_the_moment_matched_voxel(donut):
    frame = choose_frame(donut, finest_depth=3, num_levels=1)
    t = level_targets(donut, frame, 1, 1)
    origin = np.asarray(frame.origin)
    voxel = np.clip(np.floor((donut.means - origin) / frame.voxel_size(1)), 0, 7).astype(int)
    weight = donut.opacities * np.prod(donut.scales, 1) ** (2 / 3)
    covs = _cov(donut.scales, donut.quats)
    for i in np.argsort(-t.members[:, 0])[:5]:              # the five fullest voxels
        rows = (voxel == t.coords[i]).all(1)
        w = weight[rows] / weight[rows].sum()
        mean = w @ donut.means[rows]
        d = donut.means[rows] - mean
        cov = np.einsum("n,nij->ij", w, covs[rows] + d[:, :, None] * d[:, None, :])
        assert t.members[i, 0] == rows.sum()
        assert np.allclose(t.means[i, 0], mean, atol=1e-12)
        assert np.allclose(t.covs[i, 0], cov, rtol=1e-9, atol=1e-15)


def test_lone_gaussians_stay_exactly_themselves():
    g = check_teacher(np.array([[0.1, 0.1, 0.1], [0.9, 0.9, 0.9]]),
                      np.array([[0.01, 0.02, 0.03], [0.02, 0.02, 0.02]]),
                      np.array([[1.0, 0, 0, 0], [0.0, 1, 0, 0]]), np.array([0.3, 0.7]),
                      np.zeros((2, 1, 3)))
    f = choose_frame(g, finest_depth=1, num_levels=1)
    one = level_targets(g, f, 1, 2)
    m = one.mask
    assert m.sum() == 2 and np.allclose(np.sort(one.opacities[m]), [0.3, 0.7])
    assert np.allclose(np.sort(one.means[m][:, 0]), [0.1, 0.9])
    assert np.allclose(np.sort(np.prod(one.scales[m], 1)), [0.01 * 0.02 * 0.03, 0.02 ** 3])
