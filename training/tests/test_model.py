"""Initial anchor attributes: offsets on the points each voxel holds, a level code in the
features (so coarse LoDs start covering their geometry)."""

import numpy as np
import pytest
import torch

from progs_codec.build import frame_for_points
from progs_training.model import AnchorModel, ModelConfig, level_code, offsets_from_points
from progs_training.octree_ops import anchor_positions, initial_tree


def _tree(seed=0):
    rng = np.random.default_rng(seed)
    points = np.concatenate([rng.normal(0, 1, (400, 3)), rng.normal(3, 0.3, (100, 3))])
    return initial_tree(points, frame_for_points(points, 1, 4)), points


def test_offsets_land_on_points_inside_each_voxel():
    tree, points = _tree()
    offsets = offsets_from_points(tree, points, 10, seed=1)
    assert offsets.shape == (len(tree), 10, 3) and offsets.dtype == np.float32
    assert np.abs(offsets).max() <= 0.5
    voxel = tree.frame.root_voxel_size / np.exp2(tree.level - 1)
    means = anchor_positions(tree)[:, None] + offsets * voxel[:, None, None]
    dist = np.linalg.norm(means.reshape(-1, 1, 3) - points[None], axis=2).min(1)
    assert dist.max() < 1e-4 * tree.frame.root_voxel_size          # every offset is a point
    roots = tree.level == 1
    assert offsets[roots].std() > 0.05                                # roots spread out


def test_level_code_and_model_init():
    tree, points = _tree()
    code = level_code(tree.level, 4, 50)
    assert torch.equal(code[tree.level == 1, 0], torch.ones(int((tree.level == 1).sum())))
    assert torch.equal(code[tree.level == 4, 0], -torch.ones(int((tree.level == 4).sum())))
    assert not code[:, 1:].any()
    model = AnchorModel(tree, ModelConfig(), points=points)
    assert model.offsets[tree.level < 4].abs().sum() > 0 and torch.equal(model.feature, code)
    assert not model.offsets[tree.level == 4].any()                   # finest: centre
    assert not AnchorModel(tree, ModelConfig()).offsets.any()


def test_base_depth_stays_valid_when_points_saturate():
    """A visual hull has a fixed number of cells (lego: 14,428): a target above it once ran
    the base depth to 17, with every level the same voxels and encode failing at the end."""
    from progs_training.model import default_base_depth, level_sizes

    ticks = np.arange(24) / 23.0
    lattice = np.stack(np.meshgrid(ticks, ticks, ticks, indexing="ij"), -1).reshape(-1, 3)
    for target in (500, 13_824, 15_000, 10**9):
        base = default_base_depth(lattice, 5, target)
        sizes = level_sizes(lattice, base, 5)
        assert 0 <= base <= 16 and base + 4 <= 21
        assert all(a < b for a, b in zip(sizes, sizes[1:])), (target, base, sizes)


def test_impossible_octree_is_refused_before_training():
    from progs_training.data import SceneData
    from progs_training.errors import TrainingError
    from progs_training.model import check_base_depth, default_base_depth
    from progs_training.train import TrainConfig, train
    from progs_codec.build import CoordinateConvention

    few = np.array([[0.0, 0, 0], [1, 1, 1]])
    with pytest.raises(TrainingError, match="strictly growing"):
        default_base_depth(few, 5, 1000)
    with pytest.raises(TrainingError, match="spec 3.1"):
        check_base_depth(few, 17, 5)
    data = SceneData(train=[object()], test=[], points=few,
                     convention=CoordinateConvention.OPENCV, source="two points")
    with pytest.raises(TrainingError, match="strictly growing"):
        train(data, TrainConfig(iterations=1, num_levels=3, base_depth=4))
