"""Initial anchor attributes: offsets on the points each voxel holds, a level code in the
features (so coarse LoDs start covering their geometry)."""

import numpy as np
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
