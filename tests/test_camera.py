"""Tests of progs_codec.render.camera: validation, conventions, orbit and NeRF loading."""

import math

import numpy as np
import pytest

from progs_codec.errors import ProgsError
from progs_codec.render.camera import (
    Camera,
    CameraError,
    load_nerf_cameras,
    look_at,
    orbit_cameras,
    scene_sphere,
)


def project(cam: Camera, p) -> np.ndarray:
    x = cam.world_to_camera @ np.append(np.asarray(p, float), 1.0)
    return np.array([cam.fx * x[0] / x[2] + cam.cx, cam.fy * x[1] / x[2] + cam.cy, x[2]])


@pytest.mark.parametrize("field, value", [
    ("width", 0), ("height", -3), ("width", 2.5), ("fx", 0.0), ("fy", -1.0),
    ("fx", float("nan")), ("cx", float("inf")),
])
def test_invalid_intrinsics_raise_camera_error(field, value):
    kwargs = dict(width=8, height=8, fx=10.0, fy=10.0, cx=4.0, cy=4.0, world_to_camera=np.eye(4))
    kwargs[field] = value
    with pytest.raises(CameraError, match=field) as info:
        Camera(**kwargs)
    assert isinstance(info.value, ProgsError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("matrix", [np.eye(3), np.full((4, 4), np.nan), np.diag([1, 1, -1, 1.0]),
                                    2 * np.eye(4)])
def test_invalid_pose_raises(matrix):
    with pytest.raises(CameraError):
        Camera(8, 8, 10.0, 10.0, 4.0, 4.0, matrix)


def test_pose_is_read_only_copy():
    m = np.eye(4)
    cam = Camera(8, 8, 10.0, 10.0, 4.0, 4.0, m)
    m[0, 3] = 5.0
    assert cam.world_to_camera[0, 3] == 0.0
    with pytest.raises(ValueError):
        cam.world_to_camera[0, 0] = 2.0


def test_from_nerf_matches_opengl_convention():
    # Blender camera at (0, 0, 5) looking down -z with y up: the origin projects to the centre,
    # a point up (+y) projects above the centre (smaller pixel row), +x to the right.
    c2w = np.eye(4)
    c2w[2, 3] = 5.0
    cam = Camera.from_nerf(c2w, 0.8, 64, 48)
    assert np.allclose(cam.center, [0, 0, 5])
    assert math.isclose(cam.fx, 32 / math.tan(0.4))
    assert np.allclose(project(cam, [0, 0, 0]), [32, 24, 5])
    up, right = project(cam, [0, 1, 0]), project(cam, [1, 0, 0])
    assert up[1] < 24 and np.isclose(up[0], 32)
    assert right[0] > 32 and np.isclose(right[1], 24)


def test_from_nerf_rejects_bad_fov():
    with pytest.raises(CameraError, match="camera_angle_x"):
        Camera.from_nerf(np.eye(4), 0.0, 8, 8)


def test_from_colmap():
    cam = Camera.from_colmap("SIMPLE_PINHOLE", [100.0, 50.0, 40.0], [1, 0, 0, 0], [0, 0, 2],
                             100, 80)
    assert np.allclose(cam.center, [0, 0, -2]) and cam.fx == cam.fy == 100.0
    rot = Camera.from_colmap("PINHOLE", [90.0, 95.0, 50.0, 40.0],
                             [math.cos(0.5), 0, math.sin(0.5), 0], [0, 0, 0], 100, 80)
    assert np.isclose(np.linalg.det(rot.world_to_camera[:3, :3]), 1.0)
    with pytest.raises(CameraError, match="OPENCV"):
        Camera.from_colmap("OPENCV", [1, 1, 1, 1, 0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0], 8, 8)


def test_orbit_cameras_look_at_center_upright():
    center = np.array([1.0, 2.0, 3.0])
    cams = orbit_cameras(center, 4.0, 6, elevation_deg=30, width=40, height=30, fov_deg=60,
                         up=(0, 0, 1))
    assert len(cams) == 6
    for cam in cams:
        assert np.isclose(np.linalg.norm(cam.center - center), 4.0)
        assert np.allclose(project(cam, center)[:2], [20, 15])
        above = project(cam, center + [0, 0, 0.1])
        assert above[1] < 15 and np.isclose(above[0], 20, atol=1e-6)
        assert cam.center[2] > center[2]  # positive elevation along up
    with pytest.raises(CameraError):
        orbit_cameras(center, 0.0, 3)


def test_look_at_parallel_up_raises():
    with pytest.raises(CameraError, match="parallel"):
        look_at([0, 0, 0], [0, 1, 0], [0, 1, 0])


def test_scene_sphere_ignores_outliers():
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.uniform(-1, 1, (1000, 3)), [[100.0, 0, 0]]])
    center, radius = scene_sphere(pts)
    assert np.allclose(center, 0, atol=0.1) and 1.0 < radius < 1.8


def test_load_teacher_cameras(data_dir):
    cams = load_nerf_cameras(data_dir / "teacher_views" / "plant" / "transforms_test.json")
    assert len(cams) == 20
    name, cam = cams[0]
    assert name == "./test/r_0" and (cam.width, cam.height) == (256, 256)
    # The teacher orbit looks at its centre from its radius.
    assert np.isclose(np.linalg.norm(cam.center - [0.0232, 0.0114, 0.0240]), 0.85, atol=1e-3)
