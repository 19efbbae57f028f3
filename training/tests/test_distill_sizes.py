"""Sizes from the scene and the rate weight (``progs_training.distill.sizes``), on the real
scenes' Gaussians."""

from __future__ import annotations

import pytest

from progs_training.distill import DistillConfig, read_teacher
from progs_training.distill.sizes import anchor_budget, choose_sizes, finest_depth_for, voxel_counts


@pytest.fixture(scope="module", params=["plant", "donut"])
def teacher(request, data_dir):
    return read_teacher(data_dir / "scenes" / request.param / f"{request.param}.ply")


def test_fewer_anchors_for_a_larger_rate_weight(teacher):
    budgets = [anchor_budget(teacher, lam) for lam in (1e-5, 3e-5, 1e-4, 1e-3)]
    assert budgets == sorted(budgets, reverse=True) and budgets[0] > budgets[-1] * 5
    depths = [finest_depth_for(teacher, lam, 5) for lam in (1e-6, 1e-5, 1e-4, 1e-2)]
    assert depths == sorted(depths, reverse=True), depths


@pytest.mark.parametrize("levels", [1, 3, 5])
def test_level_one_is_never_a_single_root(teacher, levels):
    for lam in (1e-6, 3e-5, 1e-3, 1.0):
        depth = finest_depth_for(teacher, lam, levels)
        assert levels <= depth <= 16
        counts = voxel_counts(teacher, range(depth - levels + 1, depth + 1))
        sizes = [counts[d] for d in sorted(counts)]
        assert sizes[0] > 1 and sizes == sorted(sizes), sizes


def test_hash_grid_cells_follow_the_finest_depth(teacher):
    sizes, depth = choose_sizes(teacher, DistillConfig(lam=3e-5))
    assert max(sizes.grid_resolutions) == 2 ** (depth - 1)
    pinned, pinned_depth = choose_sizes(teacher, DistillConfig(lam=3e-5, finest_depth=7))
    assert pinned_depth == 7 and max(pinned.grid_resolutions) == 2 ** 6
