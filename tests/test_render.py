"""Tests of progs_codec.render.rasterize_cpu and progs_codec.render.images.

The CPU rasterizer is held against its per-pixel reference loop, against gsplat's pure-torch
projection, and against real gsplat renders of the real scenes (teacher views).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from progs_codec.errors import ModelError
from progs_codec.render.camera import Camera, load_nerf_cameras, orbit_cameras
from progs_codec.render.images import RenderError, psnr, render, render_orbit
from progs_codec.render.rasterize_cpu import project, rasterize, rasterize_reference
from progs_codec.render.splats import Splats, read_ply
from progs_codec.testing import synthetic_model

# Measured on the teacher views (8-bit PNGs of gsplat 1.5.3 renders): 60-62 dB.
TEACHER_PSNR_DB = 50.0
# CPU against float gsplat renders of the same Gaussians (issue 4's target).
GSPLAT_PSNR_DB = 45.0
REFERENCE = Path(__file__).parent / "data" / "gsplat_reference.json"


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def random_scene(n: int, seed: int, opaque: bool = False):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 0.6, (n, 3)).astype(np.float32)
    means[:5, 2] = 4.5  # behind or at the camera plane: culled by the near plane
    scales = np.exp(rng.normal(-2.0, 0.6, (n, 3))).astype(np.float32)
    quats = rng.normal(0, 1, (n, 4)).astype(np.float32)
    opac = rng.uniform(0.6 if opaque else 0.0, 1.0, n).astype(np.float32)
    colors = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    return means, quats, scales, opac, colors


def camera(width=37, height=29) -> Camera:
    w2c = np.eye(4)
    w2c[2, 3] = 4.0  # camera at z = -4 looking along +z
    return Camera(width, height, 30.0, 32.0, width / 2 + 0.3, height / 2 - 0.2, w2c)


@pytest.mark.parametrize("seed, opaque", [(0, False), (1, True), (2, True)])
def test_fast_matches_reference_loop(seed, opaque):
    scene = random_scene(300, seed, opaque)
    cam = camera()
    img, alpha = rasterize(*scene, cam)
    ref_img, ref_alpha = rasterize_reference(*scene, cam)
    assert np.abs(img - ref_img).max() < 1e-5
    assert np.abs(alpha - ref_alpha).max() < 1e-5
    if opaque:  # the early stop at T <= 1e-4 was exercised
        assert (alpha > 0.9998).any()


def test_projection_matches_gsplat_torch_reference():
    torch = pytest.importorskip("torch")
    impl = pytest.importorskip("gsplat.cuda._torch_impl")
    means, quats, scales, opac, _ = random_scene(200, 3)
    cam = camera(64, 48)
    proj = project(means, quats, scales, opac, cam)
    covars, _ = impl._quat_scale_to_covar_preci(torch.from_numpy(quats),
                                                torch.from_numpy(scales), triu=False)
    f32 = torch.float32
    _, means2d, depths, conics, _ = impl._fully_fused_projection(
        torch.from_numpy(means), covars, torch.tensor(cam.world_to_camera, dtype=f32)[None],
        torch.tensor(cam.K, dtype=f32)[None], cam.width, cam.height)
    assert len(proj.ids) > 100
    assert np.allclose(proj.means2d, means2d[0].numpy()[proj.ids], rtol=1e-5, atol=1e-4)
    assert np.allclose(proj.depths, depths[0].numpy()[proj.ids], rtol=1e-6)
    assert np.allclose(proj.conics, conics[0].numpy()[proj.ids], rtol=1e-3, atol=1e-5)


def test_background_and_empty_scene():
    scene = random_scene(100, 4)
    cam = camera()
    img, alpha = rasterize(*scene, cam)
    bg = np.array([0.2, 0.5, 1.0], np.float32)
    img_bg, alpha_bg = rasterize(*scene, cam, background=bg)
    assert np.allclose(img_bg, img + (1 - alpha)[..., None] * bg, atol=1e-6)
    assert np.array_equal(alpha, alpha_bg)
    empty = tuple(x[:0] for x in scene)
    img0, alpha0 = rasterize(*empty, cam, background=bg)
    assert np.allclose(img0, bg) and not alpha0.any()


@pytest.mark.parametrize("scene, view", [("plant", 0), ("plant", 7), ("donut", 3)])
def test_cpu_matches_gsplat_teacher_views(data_dir, scene, view):
    splats = read_ply(data_dir / "scenes" / scene / f"{scene}.ply")
    views = data_dir / "teacher_views" / scene
    name, cam = load_nerf_cameras(views / "transforms_test.json")[view]
    rgba = np.asarray(Image.open(views / f"{name[2:]}.png"), np.float32) / 255.0
    result = render(splats, cam, backend="cpu")
    assert psnr(np.clip(result.image, 0, 1), rgba[..., :3] * rgba[..., 3:]) > TEACHER_PSNR_DB
    assert psnr(result.alpha, rgba[..., 3]) > TEACHER_PSNR_DB


def test_cpu_matches_committed_gsplat_reference(data_dir):
    if not REFERENCE.exists():
        pytest.skip("no gsplat reference: run tools/make_gsplat_reference.py on a CUDA machine")
    meta = json.loads(REFERENCE.read_text())
    if meta["backend"] != "gsplat":
        pytest.skip("the committed reference is a CPU dry run")
    arrays = np.load(REFERENCE.with_suffix(".npz"))
    for record in meta["views"]:
        scene, view = record["scene"], record["view"]
        splats = read_ply(data_dir / "scenes" / scene / f"{scene}.ply")
        transforms = data_dir / "teacher_views" / scene / "transforms_test.json"
        _, cam = load_nerf_cameras(transforms, width=meta["size"], height=meta["size"])[view]
        result = render(splats, cam, backend="cpu")
        ref_image = arrays[f"{scene}_{view}_image"].astype(np.float32)
        ref_alpha = arrays[f"{scene}_{view}_alpha"].astype(np.float32)
        assert psnr(result.image, ref_image) > GSPLAT_PSNR_DB, (scene, view)
        assert psnr(result.alpha, ref_alpha) > GSPLAT_PSNR_DB, (scene, view)


@pytest.mark.skipif(not cuda_available(), reason="gsplat needs CUDA")
def test_cpu_matches_gsplat_on_cuda(data_dir):
    splats = read_ply(data_dir / "scenes" / "donut" / "donut.ply")
    _, cam = load_nerf_cameras(data_dir / "teacher_views" / "donut" / "transforms_test.json")[0]
    cpu = render(splats, cam, backend="cpu")
    gpu = render(splats, cam, backend="gsplat")
    assert psnr(cpu.image, gpu.image) > GSPLAT_PSNR_DB
    assert psnr(cpu.alpha, gpu.alpha) > GSPLAT_PSNR_DB


def test_render_modules_do_not_import_torch():
    code = ("import sys, progs_codec, progs_codec.render.images, progs_codec.render.bake, "
            "progs_codec.render.gaussians, progs_codec.render.rasterize_cpu, "
            "progs_codec.render.splats; "
            "print(sorted(m for m in ('torch', 'gsplat') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "[]"


def test_render_model_lods():
    model = synthetic_model(400, 3, seed=0, attribute_coding="raw")
    cam = orbit_cameras((0, 0, 0), 3.5, 1, width=48, height=40)[0]
    for lod in (1, 3):
        result = render(model, cam, lod=lod, backend="cpu", background=(1, 1, 1))
        assert result.image.shape == (40, 48, 3) and result.alpha.shape == (40, 48)
        assert result.alpha.max() > 0.5 and np.all(result.image <= 1 + 1e-6)
    with pytest.raises(ModelError, match="LoD 4"):
        render(model, cam, lod=4, backend="cpu")
    with pytest.raises(ModelError, match="no Gaussian-generation MLPs"):
        render(synthetic_model(50, 1, attribute_coding="raw", gaussian_mlps=False), cam)


def test_render_errors():
    splats = Splats(np.zeros((1, 3)), np.ones((1, 3)), np.array([[1.0, 0, 0, 0]]), np.ones(1),
                    np.zeros((1, 1, 3)))
    cam = camera()
    with pytest.raises(RenderError, match="backend"):
        render(splats, cam, backend="vulkan")
    with pytest.raises(RenderError, match="lod"):
        render(splats, cam, lod=1)
    with pytest.raises(RenderError, match="background"):
        render(splats, cam, background=(0, 0))
    import torch
    if not torch.cuda.is_available():
        with pytest.raises(RenderError, match="CUDA"):
            render(splats, cam, backend="gsplat")


def test_render_orbit_writes_views_and_contact_sheet(tmp_path):
    model = synthetic_model(300, 2, seed=1, attribute_coding="raw")
    paths = render_orbit(model, n_views=3, size=24, out_dir=tmp_path / "orbit", backend="cpu")
    assert [p.name for p in paths] == [f"lod{k}_view{i:02d}.png" for k in (1, 2)
                                       for i in range(3)] + ["contact_sheet.png"]
    sheet = np.asarray(Image.open(paths[-1]))
    label_width = sheet.shape[1] - 3 * 24  # a column of "LoD k / N anchors" on the left
    assert sheet.shape[0] == 2 * 24 and 20 < label_width < 120
    assert sheet[:24, :label_width].any() and sheet[24:, :label_width].any()  # text in each row
    assert sorted(p.name for p in (tmp_path / "orbit").iterdir()) == sorted(p.name for p in paths)
    with pytest.raises(ModelError, match="LoD 3"):
        render_orbit(model, lods=[1, 3], n_views=1, size=8, out_dir=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("convention, up", [(0, (0, -1, 0)), (1, (0, 1, 0)), (2, (0, 0, 1))])
def test_orbit_up_follows_the_frame(convention, up, tmp_path, monkeypatch):
    """render_orbit circles the up of the frame's axis convention, or the up it is given,
    at the elevation it is given: the image's up is the world's up, seen from above."""
    import dataclasses

    import progs_codec.render.images as images
    from progs_codec.model import CoordinateConvention

    model = synthetic_model(200, 2, seed=3, attribute_coding="raw")
    model.frame = dataclasses.replace(model.frame, convention=CoordinateConvention(convention))
    seen = []
    monkeypatch.setattr(images, "render", lambda m, cam, **kw: (seen.append(cam), images.RenderResult(
        np.zeros((cam.height, cam.width, 3), np.float32),
        np.zeros((cam.height, cam.width), np.float32)))[1])
    for given, elevation in ((None, 20.0), ((0.0, 0.0, 2.0), -35.0)):
        seen.clear()
        render_orbit(model, lods=[1], n_views=4, size=8, out_dir=tmp_path / "o",
                     up=given, elevation_deg=elevation)
        world_up = np.array(up if given is None else given, float)
        world_up /= np.linalg.norm(world_up)
        center = images.scene_sphere(model.positions())[0]
        for cam in seen:
            image_up = -cam.world_to_camera[1, :3]           # OpenCV: camera y points down
            assert image_up @ world_up > 0.5
            to_camera = cam.center - center
            height = np.degrees(np.arcsin(to_camera @ world_up / np.linalg.norm(to_camera)))
            assert np.isclose(height, elevation)


def test_render_orbit_checks_its_folder_first(tmp_path):
    model = synthetic_model(100, 1, seed=1, attribute_coding="raw")
    with pytest.raises(RenderError, match="not one image"):
        render_orbit(model, n_views=1, size=8, out_dir=tmp_path / "plant.png")
    with pytest.raises(RenderError, match="elevation"):
        render_orbit(model, n_views=1, size=8, out_dir=tmp_path / "x", elevation_deg=90)
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        render_orbit(model, n_views=1, size=8, out_dir=tmp_path / "f" / "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_psnr():
    a = np.zeros((4, 4))
    assert psnr(a, a) == float("inf")
    assert np.isclose(psnr(a, a + 0.1), 20.0)


def test_ssim_matches_the_training_twin():
    torch = pytest.importorskip("torch")
    from progs_codec.render.images import ssim
    from progs_training.losses import ssim as ssim_torch

    rng = np.random.default_rng(3)
    a = rng.random((40, 56, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ssim(a, b) == pytest.approx(float(ssim_torch(torch.from_numpy(a),
                                                        torch.from_numpy(b))), abs=1e-6)
    assert ssim(a, b) < 0.99
    with pytest.raises(ValueError):
        ssim(a, b[:, :-1])
