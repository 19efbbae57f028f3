"""render_torch against progs_codec's gsplat-matching CPU rasterizer."""

import numpy as np
import pytest
import torch

from progs_codec.render.camera import orbit_cameras
from progs_codec.render.rasterize_cpu import rasterize
from progs_training.render_torch import rasterize_torch


def _gaussians(n, seed, scale=-3.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.5, (n, 3)).astype(np.float32),
            rng.normal(0, 1, (n, 4)).astype(np.float32),
            np.exp(rng.normal(scale, 0.5, (n, 3))).astype(np.float32),
            rng.uniform(0.0, 1, n).astype(np.float32),
            rng.uniform(0, 1, (n, 3)).astype(np.float32))


@pytest.mark.parametrize("n, seed, width, height, scale", [
    (2000, 0, 40, 30, -3.0), (300, 1, 33, 17, -2.0), (5000, 2, 24, 24, -2.5)])
def test_matches_cpu_rasterizer(n, seed, width, height, scale):
    arrays = _gaussians(n, seed, scale)
    cam = orbit_cameras((0, 0, 0), 3.0, 3, width=width, height=height)[seed % 3]
    bg = np.array([0.1, 0.2, 0.3], np.float32)
    image, alpha = rasterize(*arrays, cam, background=bg)
    out = rasterize_torch(*(torch.from_numpy(a) for a in arrays), cam,
                          background=torch.from_numpy(bg))
    # float32 both, summation order differs: 1e-4 is far below one 8-bit level.
    np.testing.assert_allclose(out.image.numpy(), image, atol=1e-4)
    np.testing.assert_allclose(out.alpha.numpy(), alpha, atol=1e-4)


def test_gradients_are_finite_and_reach_every_input():
    arrays = [torch.from_numpy(a).requires_grad_() for a in _gaussians(500, 3)]
    cam = orbit_cameras((0, 0, 0), 3.0, 1, width=32, height=32)[0]
    out = rasterize_torch(*arrays, cam)
    (out.image.sum() + out.alpha.sum()).backward()
    for a in arrays:
        assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    ids, norm = out.screen_gradients(32, 32)
    assert len(ids) == len(norm) and (norm >= 0).all() and norm.sum() > 0


def test_empty_view_renders_background():
    arrays = [torch.from_numpy(a) for a in _gaussians(10, 4)]
    arrays[0] = arrays[0] + 100.0                       # far off to one side
    cam = orbit_cameras((0, 0, 0), 3.0, 1, width=16, height=8)[0]
    out = rasterize_torch(*arrays, cam, background=torch.tensor([0.5, 0.5, 0.5]))
    assert torch.allclose(out.image, torch.full((8, 16, 3), 0.5)) and (out.alpha == 0).all()


@pytest.mark.parametrize("backend", ["torch", "gsplat"])
def test_no_gaussians_renders_background(backend):
    """An LoD whose anchors draw no Gaussian: gsplat's path must not reach the kernels (its
    radii reshape to ``(0, -1)`` failed), the torch path gives the same background."""
    from progs_training.render_torch import rasterize_gsplat

    cam = orbit_cameras((0, 0, 0), 3.0, 1, width=16, height=8)[0]
    means = torch.zeros(0, 3, requires_grad=True)
    empty = (means, torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, 3))
    fn = rasterize_gsplat if backend == "gsplat" else rasterize_torch
    out = fn(*empty, cam, background=torch.tensor([0.5, 0.25, 0.0]))
    assert out.image.shape == (8, 16, 3) and (out.alpha == 0).all()
    assert torch.allclose(out.image[3, 4], torch.tensor([0.5, 0.25, 0.0]))
    out.image.sum().backward()
    ids, norm = out.screen_gradients(16, 8)
    assert len(ids) == 0 and len(norm) == 0
