"""Loaders: NeRF folders, COLMAP through pycolmap, teacher scenes, and their errors."""

import json

import numpy as np
import pytest

from progs_codec.errors import ProgsError
from progs_codec.render.splats import Splats, write_ply
from progs_training.data import DataError, load_colmap, load_scene, load_teacher, resize_image


def test_nerf_folder_holds_out_every_eighth_view(data_dir):
    scene = load_scene(data_dir / "images" / "lego_200", size=16)
    assert len(scene.train) + len(scene.test) == 100 and len(scene.test) == 13
    view = scene.train[0]
    assert view.image.shape == (16, 16, 3) and view.image.dtype == np.float32
    assert 0 <= view.image.min() and view.image.max() <= 1
    assert view.camera.width == 16 and scene.points.shape[1] == 3 and len(scene.points) > 100


def test_teacher_views_use_their_test_split(plant_tiny):
    assert len(plant_tiny.train) == 100 and len(plant_tiny.test) == 20
    assert plant_tiny.train[0].image.shape == (32, 32, 3)


def test_colmap_model(data_dir):
    scene = load_colmap(data_dir / "colmap" / "maupertuis", size=48, test_every=4)
    assert len(scene.train) == 3 and len(scene.test) == 1
    assert scene.points.shape == (1039, 3)
    cam = scene.train[0].camera
    assert (cam.width, cam.height) == (48, 27)
    # Most 3D points project inside the image of the first view.
    pc = scene.points @ cam.world_to_camera[:3, :3].T + cam.world_to_camera[:3, 3]
    u = cam.fx * pc[:, 0] / pc[:, 2] + cam.cx
    assert (pc[:, 2] > 0).mean() > 0.9 and ((u > 0) & (u < cam.width)).mean() > 0.5


def test_teacher_scene_renders_its_own_views(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    splats = Splats(means=rng.normal(0, 0.3, (n, 3)).astype(np.float32),
                    scales=np.full((n, 3), 0.05, np.float32),
                    quats=np.tile(np.float32([1, 0, 0, 0]), (n, 1)),
                    opacities=np.full(n, 0.8, np.float32),
                    sh=rng.uniform(-1, 1, (n, 1, 3)).astype(np.float32))
    path = tmp_path / "teacher.ply"
    write_ply(path, splats)
    scene = load_teacher(path, size=16, num_train=6, num_test=2, backend="cpu")
    assert len(scene.train) == 6 and len(scene.test) == 2
    assert all(v.alpha.max() > 0.5 for v in scene.train)     # the scene is in view
    assert len(scene.points) == n


@pytest.mark.parametrize("content, message", [
    ("not json", "not a NeRF transforms file"),
    (json.dumps({"frames": []}), "not a NeRF transforms file"),
    (json.dumps({"camera_angle_x": 0.7, "frames": [{"file_path": "./missing"}]}), "lacks"),
    (json.dumps({"camera_angle_x": 0.7, "frames": [{"file_path": "./missing",
                                                    "transform_matrix": np.eye(4).tolist()}]}),
     "does not exist"),
])
def test_bad_transforms_json(tmp_path, content, message):
    (tmp_path / "transforms_train.json").write_text(content)
    with pytest.raises(DataError, match=message):
        load_scene(tmp_path)


def test_missing_and_unknown_inputs(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_scene(tmp_path / "nope")
    with pytest.raises(DataError, match="neither a NeRF folder"):
        load_scene(tmp_path)
    (tmp_path / "scene.obj").write_text("")
    with pytest.raises(ProgsError, match="teacher scene must be"):
        load_scene(tmp_path / "scene.obj")


def test_resize_is_area_average():
    image = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    assert np.allclose(resize_image(image, 2, 2)[..., 0], [[2.5, 4.5], [10.5, 12.5]])
