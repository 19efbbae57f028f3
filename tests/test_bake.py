"""Tests of progs_codec.render.bake: SH fitting, rotations, baking fidelity, export."""

import dataclasses

import numpy as np
import pytest

from progs_codec.model import MLP, GaussianMLPs, Refinement
from progs_codec.render.bake import bake, export_splats, fibonacci_sphere, fit_sh, rotmat_to_quat
from progs_codec.render.camera import framing_distance, orbit_cameras, quat_to_rotmat, scene_sphere
from progs_codec.render.images import psnr, render
from progs_codec.render.splats import SplatsError, read_splats, sh_basis
from progs_codec.testing import synthetic_model

# Measured on synthetic_model(1500, 3, seed=0), 3 orbit views at 64x64, SH degree 3:
# 42.7-45.3 dB baked vs view-dependent (SH 0: 38.9-42.4); view-independent MLPs: 158 dB.
BAKE_PSNR_DB = 37.0
STATIC_PSNR_DB = 60.0


def scale_view_inputs(model, factor: float):
    """The model with the MLP weights on the direction and distance inputs scaled."""
    f = model.dims.feature

    def scaled(mlp: MLP) -> MLP:
        w = mlp.weights[0].copy()
        w[:, f:] *= factor
        return MLP((w,) + mlp.weights[1:], mlp.biases)

    g = model.gaussian_mlps
    return dataclasses.replace(model, gaussian_mlps=GaussianMLPs(
        scaled(g.opacity), scaled(g.color), scaled(g.covariance), g.use_distance))


def orbit(model, n=3, size=64):
    center, radius = scene_sphere(model.positions())
    return orbit_cameras(center, framing_distance(radius), n, width=size, height=size,
                         elevation_deg=25)


def mean_psnr(model, splats, cams) -> float:
    return float(np.mean([psnr(np.clip(render(model, c, backend="cpu").image, 0, 1),
                               np.clip(render(splats, c, backend="cpu").image, 0, 1))
                          for c in cams]))


def test_fibonacci_sphere_is_unit_and_balanced():
    d = fibonacci_sphere(200)
    assert np.allclose(np.linalg.norm(d, axis=1), 1) and np.abs(d.mean(0)).max() < 0.01


def test_rotmat_to_quat_round_trip():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(500, 4))
    q = np.concatenate([q, np.eye(4), [[0, 1, 1, 0], [0.0, 0, 1, 1]]])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    back = rotmat_to_quat(quat_to_rotmat(q))
    assert np.allclose(quat_to_rotmat(back), quat_to_rotmat(q), atol=1e-9)
    assert np.allclose(np.abs((back * q).sum(1)), 1, atol=1e-9)


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_fit_sh_recovers_exact_coefficients(degree):
    rng = np.random.default_rng(degree)
    dirs = fibonacci_sphere(64)
    true = rng.normal(0, 0.2, (10, (degree + 1) ** 2, 3))
    colors = np.einsum("mb,gbc->gmc", sh_basis(degree, dirs), true) + 0.5
    fitted = fit_sh(dirs, colors, np.ones((10, 64)), degree, ridge=0.0)
    assert np.allclose(fitted, true, atol=1e-5)


def test_fit_sh_ignores_zero_weight_views():
    dirs = fibonacci_sphere(32)
    colors = np.full((1, 32, 3), 0.7)
    colors[0, :10] = 0.0  # garbage where the Gaussian is invisible
    weights = np.ones((1, 32))
    weights[0, :10] = 0.0
    fitted = fit_sh(dirs, colors, weights, 0)
    assert np.allclose(fitted[0, 0] * sh_basis(0, dirs[:1])[0, 0] + 0.5, 0.7, atol=1e-3)


def test_bake_of_view_independent_model_is_exact():
    model = scale_view_inputs(synthetic_model(800, 3, seed=1, attribute_coding="raw"), 0.0)
    splats = bake(model, sh_degree=1, num_views=16)
    assert mean_psnr(model, splats, orbit(model)) > STATIC_PSNR_DB


def test_bake_fidelity_and_sh_gain():
    model = synthetic_model(1500, 3, seed=0, attribute_coding="raw")
    cams = orbit(model)
    assert mean_psnr(model, bake(model, sh_degree=3), cams) > BAKE_PSNR_DB
    # With strongly view-dependent colour, higher SH degrees must help.
    vivid = scale_view_inputs(model, 6.0)
    p0 = mean_psnr(vivid, bake(vivid, sh_degree=0, num_views=32), cams)
    p2 = mean_psnr(vivid, bake(vivid, sh_degree=2, num_views=32), cams)
    assert p2 > p0 + 3.0


def test_bake_lod_and_errors():
    model = synthetic_model(500, 3, seed=2, attribute_coding="raw")
    assert len(bake(model, lod=1, sh_degree=0, num_views=8)) <= 10 * model.num_anchors(1)
    replaced = dataclasses.replace(model, refine=Refinement.REPLACE)
    add, rep = (bake(m, lod=3, sh_degree=0, num_views=8, distance=3.0) for m in (model, replaced))
    assert 0 < len(rep) < len(add)              # REPLACE bakes only the drawn anchors (9.1)
    assert np.isin(rep.means, add.means).all()
    with pytest.raises(SplatsError, match="SH degree"):
        bake(model, sh_degree=4)


@pytest.mark.parametrize("suffix, degree", [(".ply", 3), (".spz", 3), (".splat", 0)])
def test_export_splats_by_suffix(tmp_path, suffix, degree):
    model = synthetic_model(300, 2, seed=3, attribute_coding="raw")
    path = tmp_path / f"scene{suffix}"
    written = export_splats(model, path, num_views=16)
    back = read_splats(path)
    assert len(back) == len(written) > 0 and back.sh_degree == degree
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_export_splat_refuses_sh(tmp_path):
    model = synthetic_model(100, 1, seed=3, attribute_coding="raw")
    with pytest.raises(SplatsError, match="no SH bands above degree 0, SH degree 2"):
        export_splats(model, tmp_path / "x.splat", sh_degree=2)
    assert not list(tmp_path.iterdir())


def test_export_checks_everything_before_baking(tmp_path, monkeypatch):
    """Suffix, SH degree, LoD and folder are checked before the (slow) bake."""
    import sys

    from progs_codec.errors import ModelError

    bake_module = sys.modules["progs_codec.render.bake"]  # the package exports a function "bake"

    model = synthetic_model(100, 2, seed=3, attribute_coding="raw")
    monkeypatch.setattr(bake_module, "bake", lambda *a, **k: pytest.fail("baked first"))
    with pytest.raises(SplatsError, match="unknown 3DGS format '.obj'"):
        export_splats(model, tmp_path / "x.obj")
    with pytest.raises(SplatsError, match="SH degree must be 0..3"):
        export_splats(model, tmp_path / "x.ply", sh_degree=4)
    with pytest.raises(ModelError, match="LoD 3"):
        export_splats(model, tmp_path / "x.ply", lod=3)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_splats(model, tmp_path / "no" / "x.ply")
    with pytest.raises(IsADirectoryError):
        export_splats(model, tmp_path)
    assert not list(tmp_path.iterdir())
