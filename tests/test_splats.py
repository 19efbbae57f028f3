"""Tests of progs_codec.render.splats: PLY/.splat/SPZ I/O, SH evaluation, errors."""

import numpy as np
import pytest
from plyfile import PlyData, PlyElement

from progs_codec.errors import ProgsError
from progs_codec.render.splats import (
    SH_C0,
    Splats,
    SplatsError,
    read_ply,
    read_splat,
    read_splats,
    sh_basis,
    write_ply,
    write_splats,
)


def random_splats(n: int, degree: int, seed: int = 0) -> Splats:
    rng = np.random.default_rng(seed)
    return Splats(means=rng.normal(0, 1, (n, 3)), scales=np.exp(rng.normal(-3, 0.5, (n, 3))),
                  quats=rng.normal(0, 1, (n, 4)), opacities=rng.uniform(0.01, 0.99, n),
                  sh=rng.normal(0, 0.3, (n, (degree + 1) ** 2, 3)))


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_ply_round_trip(tmp_path, degree):
    s = random_splats(50, degree)
    write_ply(tmp_path / "a.ply", s)
    r = read_ply(tmp_path / "a.ply")
    assert r.sh_degree == degree and len(r) == 50
    assert np.array_equal(r.means, s.means) and np.array_equal(r.sh, s.sh)
    assert np.array_equal(r.quats, s.quats)
    assert np.allclose(r.scales, s.scales, rtol=1e-6)
    assert np.allclose(r.opacities, s.opacities, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["a.ply"]  # no temporary left


def test_ply_f_rest_is_channel_major(tmp_path):
    s = random_splats(3, 1)
    write_ply(tmp_path / "a.ply", s)
    v = PlyData.read(str(tmp_path / "a.ply"))["vertex"]
    # graphdeco order: f_rest_0..2 are red bands 1..3, f_rest_3..5 green ...
    assert np.allclose(v["f_rest_0"], s.sh[:, 1, 0]) and np.allclose(v["f_rest_3"], s.sh[:, 1, 1])
    assert np.allclose(v["opacity"], np.log(s.opacities / (1 - s.opacities)), atol=1e-5)


@pytest.mark.parametrize("suffix", [".ply", ".splat", ".spz"])
def test_round_trip_by_suffix(tmp_path, suffix):
    s = random_splats(200, 0)
    s = Splats(s.means, s.scales, s.quats, s.opacities, np.clip(s.sh, -1.7, 1.7))
    path = tmp_path / f"x{suffix}"
    write_splats(path, s)
    r = read_splats(path)
    assert len(r) == 200 and r.sh_degree == 0
    tol = {".ply": 1e-6, ".splat": 1e-6, ".spz": 1e-3}[suffix]
    assert np.abs(r.means - s.means).max() < tol
    # .splat and .spz quantize colour, opacity, rotation, scale to about 8 bits.
    atol = 1e-5 if suffix == ".ply" else 0.02
    assert np.abs(r.opacities - s.opacities).max() < atol
    assert np.abs(r.sh[:, 0] * SH_C0 - s.sh[:, 0] * SH_C0).max() < atol
    qs = s.quats / np.linalg.norm(s.quats, axis=1, keepdims=True)
    qr = r.quats / np.linalg.norm(r.quats, axis=1, keepdims=True)
    assert np.abs(np.abs((qs * qr).sum(1)) - 1).max() < 0.01
    assert np.abs(np.log(r.scales / s.scales)).max() < 0.05


def test_spz_keeps_higher_sh(tmp_path):
    s = random_splats(100, 3)
    write_splats(tmp_path / "x.spz", s)
    r = read_splats(tmp_path / "x.spz")
    assert r.sh_degree == 3 and np.abs(r.sh - s.sh).max() < 0.05


def test_missing_property_is_named(tmp_path):
    props = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1",
             "scale_2", "rot_0", "rot_1", "rot_2"]
    rec = np.zeros(4, dtype=[(p, "<f4") for p in props])
    PlyData([PlyElement.describe(rec, "vertex")]).write(str(tmp_path / "bad.ply"))
    with pytest.raises(SplatsError, match="'rot_3'") as info:
        read_ply(tmp_path / "bad.ply")
    assert isinstance(info.value, ProgsError)


def test_bad_f_rest_count(tmp_path):
    props = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "f_rest_0", "opacity", "scale_0",
             "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    rec = np.zeros(2, dtype=[(p, "<f4") for p in props])
    PlyData([PlyElement.describe(rec, "vertex")]).write(str(tmp_path / "bad.ply"))
    with pytest.raises(SplatsError, match="f_rest"):
        read_ply(tmp_path / "bad.ply")


def test_errors(tmp_path):
    with pytest.raises(SplatsError, match="unknown 3DGS format"):
        write_splats(tmp_path / "x.obj", random_splats(1, 0))
    (tmp_path / "x.splat").write_bytes(b"\0" * 33)
    with pytest.raises(SplatsError, match="32 bytes"):
        read_splat(tmp_path / "x.splat")
    with pytest.raises(SplatsError, match="sh"):
        Splats(np.zeros((2, 3)), np.ones((2, 3)), np.ones((2, 4)), np.ones(2), np.zeros((2, 2, 3)))
    with pytest.raises(SplatsError, match="scales"):
        Splats(np.zeros((2, 3)), np.ones((3, 3)), np.ones((2, 4)), np.ones(2), np.zeros((2, 1, 3)))


def test_sh_basis_is_orthonormal():
    # Monte-Carlo over the sphere: E[Y_i Y_j] = delta_ij / (4 pi).
    rng = np.random.default_rng(1)
    dirs = rng.normal(size=(400_000, 3))
    basis = sh_basis(3, dirs).astype(np.float64)
    gram = basis.T @ basis / len(dirs) * 4 * np.pi
    assert np.abs(gram - np.eye(16)).max() < 0.02


def test_sh_basis_matches_gsplat_torch_reference():
    torch = pytest.importorskip("torch")
    impl = pytest.importorskip("gsplat.cuda._torch_impl")
    dirs = np.random.default_rng(2).normal(size=(64, 3)).astype(np.float32)
    unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    ref = impl._eval_sh_bases_fast(16, torch.from_numpy(unit)).numpy()
    assert np.allclose(sh_basis(3, dirs), ref, atol=1e-6)


def test_real_ply_and_splat_agree(data_dir):
    ply = read_ply(data_dir / "scenes" / "plant" / "plant.ply")
    splat = read_splat(data_dir / "scenes" / "plant" / "plant.splat")
    assert len(ply) == len(splat) == 113_648 and ply.sh_degree == 0
    assert np.array_equal(ply.means, splat.means)
    assert np.abs(ply.opacities - splat.opacities).max() < 1e-5
    assert np.allclose(ply.scales, splat.scales, rtol=1e-4)
    donut = read_splats(data_dir / "scenes" / "donut" / "donut.ply")
    assert len(donut) == 45_624
