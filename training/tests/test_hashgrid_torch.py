"""The torch grid reproduces spec 5.3's integers (progs_codec.entropy.hashgrid) exactly."""

import numpy as np
import pytest
import torch

from progs_codec.entropy.hashgrid import PRESETS, HashGridConfig, hash_features
from progs_training.hashgrid_torch import HashGridTorch, binarize_ste, grid_lookup, to_hash_grid

TINY = HashGridConfig((3, 5, 9), 6, (4, 17), 5, features_per_level=3)   # dense and hashed


@pytest.mark.parametrize("config", [PRESETS["small"], TINY])
@pytest.mark.parametrize("depth", [0, 2, 5, 9, 13])
def test_binarized_features_equal_integer_grid(config, depth):
    grid = HashGridTorch(config, init_scale=1.0, seed=depth, signed_init=True)
    coords = np.random.default_rng(depth).integers(0, 1 << depth, (300, 3))
    features = grid(grid_lookup(config, coords, depth))
    expected = hash_features(to_hash_grid(grid), coords, depth)
    assert np.array_equal(np.rint(features.detach().numpy() * 127).astype(np.int32), expected)


def test_per_anchor_depths_match_per_level_calls():
    grid = HashGridTorch(TINY, init_scale=1.0, signed_init=True)
    rng = np.random.default_rng(0)
    coords = np.concatenate([rng.integers(0, 8, (20, 3)), rng.integers(0, 64, (20, 3))])
    depth = np.repeat([3, 6], 20)
    features = grid(grid_lookup(TINY, coords, depth)).detach().numpy() * 127
    ref = np.concatenate([hash_features(to_hash_grid(grid), coords[:20], 3),
                          hash_features(to_hash_grid(grid), coords[20:], 6)])
    assert np.array_equal(np.rint(features), ref)


def test_straight_through_gradient():
    latent = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
    signs = binarize_ste(latent)
    assert signs.tolist() == [-1, -1, 1, 1, 1]
    signs.sum().backward()
    assert latent.grad.tolist() == [0, 1, 1, 1, 0]


def test_untouched_bits_start_positive():
    assert bool((to_hash_grid(HashGridTorch(TINY)).params).all())


def test_hash_rate_matches_the_coded_grid_and_pulls_to_the_majority():
    """R_hash (eq. 18) is what spec 5.4's one-probability Bernoulli code spends on the grid,
    and its gradient moves each latent towards the more frequent sign."""
    from progs_codec.entropy.hashgrid import write_hash_grid
    from progs_training.hashgrid_torch import hash_rate_bits

    grid = HashGridTorch(PRESETS["small"], init_scale=1.0, seed=3, signed_init=True)
    with torch.no_grad():
        grid.latent.add_(0.6)                  # about 80% of the signs are +1
    bits = hash_rate_bits(grid)
    coded = 8 * len(write_hash_grid(to_hash_grid(grid)))
    assert abs(float(bits) - coded) < 0.01 * coded + 512, (float(bits), coded)
    bits.backward()
    moving = grid.latent.grad[grid.latent.abs() <= 1]
    assert (moving < 0).all()                   # descent raises every latent: towards +1
