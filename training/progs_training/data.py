"""Training data: posed views and initial points from NeRF folders, COLMAP models or a teacher.

Three sources, one result (:class:`SceneData`):

- a NeRF-synthetic folder (``transforms_train.json`` [+ ``transforms_test.json``]); RGBA images
  are composited on the background; initial points are carved from the alpha masks (a visual
  hull), or taken from ``init_points`` (a ``.ply``/``.splat`` whose centres seed the octree);
- a COLMAP model (``sparse/0``, ``sparse`` or the folder itself, read with pycolmap) with its
  ``images/`` folder; initial points are the model's 3D points;
- a teacher: an existing 3DGS scene (``.ply``, ``.splat``, ``.spz``). Cameras are placed on a
  golden-angle spiral around it and its own renders are the ground truth; its centres are the
  initial points. This is how any splat a user already has becomes a progressive stream.

Images are ``[H, W, 3] float32`` in ``[0, 1]``, already composited on the background.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from progs_codec.build import CoordinateConvention
from progs_codec.render import Camera, CameraError, load_nerf_cameras, look_at, scene_sphere

from .errors import DataError

__all__ = ["View", "SceneData", "load_scene", "load_nerf", "load_colmap", "load_teacher",
           "spiral_cameras", "visual_hull_points", "resize_image", "nerf_convention"]

TEACHER_SUFFIXES = (".ply", ".splat", ".spz")


@dataclass(frozen=True, eq=False)
class View:
    """One posed image: ``image [H, W, 3] float32`` composited, ``alpha [H, W]`` or ``None``."""

    name: str
    camera: Camera
    image: np.ndarray
    alpha: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class SceneData:
    """Train and test views plus the points the octree starts from (``[N, 3] float64``)."""

    train: list[View]
    test: list[View]
    points: np.ndarray
    convention: CoordinateConvention
    source: str
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``[H, W, C]`` float image resized by area averaging (down) or bilinearly (up)."""
    import torch

    if image.shape[:2] == (height, width):
        return np.asarray(image, np.float32)
    t = torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None]
    down = width <= image.shape[1] and height <= image.shape[0]
    out = torch.nn.functional.interpolate(t, size=(height, width),
                                          mode="area" if down else "bilinear",
                                          **({} if down else {"align_corners": False}))
    return out[0].permute(1, 2, 0).numpy()


def _read_rgba(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGBA"), np.float32) / 255.0
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from exc


def _composite(rgba: np.ndarray, background: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    alpha = rgba[..., 3]
    image = rgba[..., :3] * alpha[..., None] + np.asarray(background, np.float32) * (1 - alpha[..., None])
    return image.astype(np.float32), alpha.astype(np.float32)


def _scaled(camera: Camera, width: int, height: int) -> Camera:
    sx, sy = width / camera.width, height / camera.height
    return Camera(width, height, camera.fx * sx, camera.fy * sy, camera.cx * sx, camera.cy * sy,
                  camera.world_to_camera)


def _size_for(width: int, height: int, size: int | None) -> tuple[int, int]:
    """``size`` is the longer side; ``None`` keeps the original size."""
    if size is None:
        return width, height
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


#: The world's up of each axis convention (spec 3.1, 9.2).
_UP = {CoordinateConvention.OPENCV: (0.0, -1.0, 0.0),
       CoordinateConvention.OPENGL: (0.0, 1.0, 0.0),
       CoordinateConvention.ZUP: (0.0, 0.0, 1.0)}


def _convention(cameras: Sequence[Camera]) -> CoordinateConvention:
    """The convention whose up (-y, +y or +z) is closest to the cameras' mean up (camera -y,
    OpenCV axes); OpenCV on a tie. A world whose up is -z (no convention says so) gets the
    closest of the three."""
    up = np.mean([-c.world_to_camera[1, :3] for c in cameras], axis=0)
    conventions = list(_UP)
    return conventions[int(np.argmax([np.dot(up, _UP[c]) for c in conventions]))]


def nerf_convention(folder: str | Path) -> CoordinateConvention:
    """The axis convention of a NeRF-layout folder's cameras (``transforms_train.json``, else
    ``transforms_test.json``), without reading its images: see :func:`_convention`."""
    folder = Path(folder)
    for name in ("transforms_train.json", "transforms_test.json"):
        if (folder / name).exists():
            try:
                cameras = load_nerf_cameras(folder / name, width=1, height=1)
            except (OSError, ValueError, KeyError, TypeError, CameraError) as exc:
                raise DataError(f"{folder / name}: not a NeRF transforms file ({exc!r})") from exc
            if not cameras:
                raise DataError(f"{folder / name}: no frames")
            return _convention([c for _, c in cameras])
    raise DataError(f"{folder}: no transforms_train.json or transforms_test.json")


def _nerf_views(json_path: Path, size: int | None, background: Sequence[float]) -> list[View]:
    try:
        meta = json.loads(json_path.read_text())
        angle = float(meta["camera_angle_x"])
        frames = meta["frames"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{json_path}: not a NeRF transforms file ({exc!r}); expected "
                        f"'camera_angle_x' and 'frames'") from exc
    views = []
    for i, frame in enumerate(frames):
        try:
            rel, matrix = frame["file_path"], frame["transform_matrix"]
        except (KeyError, TypeError) as exc:
            raise DataError(f"{json_path}: frame {i} lacks file_path or transform_matrix") from exc
        path = json_path.parent / rel
        if not path.suffix:
            path = path.with_suffix(".png")
        if not path.exists():
            raise DataError(f"{json_path}: frame {i} names {path}, which does not exist")
        rgba = _read_rgba(path)
        width, height = _size_for(rgba.shape[1], rgba.shape[0], size)
        image, alpha = _composite(resize_image(rgba, width, height), background)
        try:
            camera = Camera.from_nerf(matrix, angle, width, height)
        except CameraError as exc:
            raise DataError(f"{json_path}: frame {i}: {exc}") from exc
        views.append(View(name=str(rel), camera=camera, image=image, alpha=alpha))
    if not views:
        raise DataError(f"{json_path}: no frames")
    return views


def _split_every(views: list[View], test_every: int) -> tuple[list[View], list[View]]:
    if test_every <= 1:
        return views, []
    test = [v for i, v in enumerate(views) if i % test_every == 0]
    train = [v for i, v in enumerate(views) if i % test_every != 0]
    return train, test


def load_nerf(folder: str | Path, *, size: int | None = None, test_every: int = 8,
              background: Sequence[float] = (0.0, 0.0, 0.0),
              init_points: str | Path | None = None) -> SceneData:
    """A NeRF-synthetic folder: ``transforms_train.json`` and, if present, ``transforms_test.json``.

    Without a test file every ``test_every``-th training view is held out.
    """
    folder = Path(folder)
    train_json = folder / "transforms_train.json"
    if not train_json.exists():
        raise DataError(f"{folder}: no transforms_train.json")
    train = _nerf_views(train_json, size, background)
    test_json = folder / "transforms_test.json"
    if test_json.exists():
        test = _nerf_views(test_json, size, background)
    else:
        train, test = _split_every(train, test_every)
    if init_points is not None:
        points = _teacher_points(init_points)
    else:
        points = visual_hull_points(train)
    return SceneData(train=train, test=test, points=points,
                     convention=_convention([v.camera for v in train]), source=str(folder),
                     background=tuple(float(b) for b in background))


def visual_hull_points(views: Sequence[View], *, resolution: int = 64,
                       min_alpha: float = 0.5) -> np.ndarray:
    """Centres of the cells of a ``resolution^3`` grid that every view's mask sees as solid.

    The grid covers the cube the cameras look into (centred on the point nearest to all
    optical axes). A cell is kept if no view that sees it has alpha below ``min_alpha``
    there. Returns ``[N, 3] float64``; raises :class:`DataError` when the views have no alpha
    or carve everything away.
    """
    if any(v.alpha is None for v in views):
        raise DataError("visual hull needs alpha masks; pass initial points instead")
    centers = np.array([v.camera.center for v in views])
    axes = np.array([v.camera.world_to_camera[2, :3] for v in views])
    # Least-squares point nearest to every optical axis.
    proj = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]
    target = np.linalg.lstsq(proj.sum(0), (proj @ centers[:, :, None]).sum(0), rcond=None)[0][:, 0]
    distance = float(np.median(np.linalg.norm(centers - target, axis=1)))
    half_fov = min(math.atan(0.5 * v.camera.width / v.camera.fx) for v in views)
    half = distance * math.sin(half_fov)
    ticks = (np.arange(resolution) + 0.5) / resolution * 2 - 1
    grid = np.stack(np.meshgrid(ticks, ticks, ticks, indexing="ij"), -1).reshape(-1, 3)
    points = target + half * grid
    solid = np.ones(len(points), bool)
    for v in views:
        w2c = v.camera.world_to_camera
        pc = points @ w2c[:3, :3].T + w2c[:3, 3]
        z = np.maximum(pc[:, 2], 1e-9)
        u = np.floor(v.camera.fx * pc[:, 0] / z + v.camera.cx).astype(np.int64)
        r = np.floor(v.camera.fy * pc[:, 1] / z + v.camera.cy).astype(np.int64)
        inside = (pc[:, 2] > 0) & (u >= 0) & (u < v.camera.width) & (r >= 0) & (r < v.camera.height)
        low = np.zeros(len(points), bool)
        low[inside] = v.alpha[r[inside], u[inside]] < min_alpha
        solid &= ~low
    if not solid.any():
        raise DataError("the alpha masks carve away every point: no initial geometry")
    return points[solid]


def _colmap_folder(folder: Path) -> Path:
    for candidate in (folder / "sparse" / "0", folder / "sparse", folder):
        if (candidate / "cameras.bin").exists() or (candidate / "cameras.txt").exists():
            return candidate
    raise DataError(f"{folder}: no COLMAP model (cameras.bin/.txt in sparse/0, sparse or the "
                    f"folder itself)")


def load_colmap(folder: str | Path, *, size: int | None = None, test_every: int = 8,
                images: str | Path | None = None) -> SceneData:
    """A COLMAP model read with pycolmap, images from ``images`` (default ``folder/images``)."""
    import pycolmap

    folder = Path(folder)
    model_dir = _colmap_folder(folder)
    image_dir = Path(images) if images is not None else folder / "images"
    try:
        rec = pycolmap.Reconstruction(str(model_dir))
    except Exception as exc:  # pycolmap raises plain RuntimeErrors
        raise DataError(f"{model_dir}: pycolmap cannot read the model ({exc})") from exc
    views = []
    for image_id in sorted(rec.images):
        im = rec.images[image_id]
        cam = rec.cameras[im.camera_id]
        path = image_dir / im.name
        if not path.exists():
            raise DataError(f"{model_dir}: image {im.name} not found in {image_dir}")
        rgba = _read_rgba(path)
        if (rgba.shape[1], rgba.shape[0]) != (cam.width, cam.height):
            raise DataError(f"{path}: {rgba.shape[1]}x{rgba.shape[0]} pixels, the model says "
                            f"{cam.width}x{cam.height}")
        width, height = _size_for(cam.width, cam.height, size)
        w2c = np.eye(4)
        w2c[:3] = np.asarray(im.cam_from_world().matrix(), np.float64)
        try:
            full = Camera.from_colmap(cam.model.name, list(cam.params), [1, 0, 0, 0], [0, 0, 0],
                                      cam.width, cam.height)
        except CameraError as exc:
            raise DataError(f"{model_dir}: camera {im.camera_id}: {exc}") from exc
        camera = _scaled(replace(full, world_to_camera=w2c), width, height)
        views.append(View(name=im.name, camera=camera,
                          image=resize_image(rgba[..., :3], width, height)))
    if not views:
        raise DataError(f"{model_dir}: the model has no images")
    points = np.array([p.xyz for p in rec.points3D.values()], np.float64).reshape(-1, 3)
    if not len(points):
        raise DataError(f"{model_dir}: the model has no 3D points")
    train, test = _split_every(views, test_every)
    return SceneData(train=train, test=test, points=points,
                     convention=CoordinateConvention.OPENCV, source=str(folder))


def spiral_cameras(center: Sequence[float], distance: float, n: int, *, size: int,
                   fov: float = 0.8, elevation_deg: tuple[float, float] = (-15.0, 65.0),
                   up: Sequence[float] = (0.0, -1.0, 0.0), phase: float = 0.0) -> list[Camera]:
    """``n`` upright cameras on a golden-angle spiral (elevation range in degrees), square."""
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    e1 = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 0.0, 1.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    focal = 0.5 * size / math.tan(0.5 * fov)
    lo, hi = (math.radians(e) for e in elevation_deg)
    cams = []
    for i in range(n):
        elev = lo + (hi - lo) * (i + 0.5) / n
        az = phase + i * math.pi * (3 - math.sqrt(5))
        eye = np.asarray(center) + distance * (math.cos(elev) * (math.cos(az) * e1 + math.sin(az) * e2)
                                               + math.sin(elev) * up)
        cams.append(Camera(size, size, focal, focal, size / 2, size / 2,
                           look_at(eye, np.asarray(center, np.float64), up)))
    return cams


def _read_teacher(path: str | Path):
    from progs_codec.render import read_splats

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: teacher scene not found")
    try:
        return read_splats(path)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read the teacher scene ({exc})") from exc


def _teacher_points(path: str | Path, *, min_opacity: float = 0.1) -> np.ndarray:
    splats = _read_teacher(path)
    keep = np.asarray(splats.opacities) >= min_opacity
    return np.asarray(splats.means, np.float64)[keep if keep.any() else slice(None)]


def load_teacher(path: str | Path, *, size: int = 64, num_train: int = 100, num_test: int = 20,
                 backend: str = "auto") -> SceneData:
    """Views of an existing 3DGS scene rendered by itself (cameras on a golden-angle spiral).

    The cameras look at the centre of the scene's sphere from ``1.25 / sin(fov/2)`` radii, test
    cameras sit between the training ones (another spiral phase).
    """
    from progs_codec.render import render

    splats = _read_teacher(path)
    center, radius = scene_sphere(np.asarray(splats.means))
    fov = 0.8
    distance = 1.25 * radius / math.sin(fov / 2)

    def views(n: int, phase: float, prefix: str) -> list[View]:
        out = []
        for i, cam in enumerate(spiral_cameras(center, distance, n, size=size, fov=fov,
                                               phase=phase)):
            result = render(splats, cam, backend=backend)
            out.append(View(name=f"{prefix}_{i}", camera=cam, image=result.image,
                            alpha=result.alpha))
        return out

    train, test = views(num_train, 0.0, "train"), views(num_test, 1.0, "test")
    return SceneData(train=train, test=test, points=_teacher_points(path),
                     convention=CoordinateConvention.OPENCV, source=str(path))


def load_scene(path: str | Path, *, size: int | None = None, test_every: int = 8,
               init_points: str | Path | None = None, teacher_views: int = 100,
               backend: str = "auto") -> SceneData:
    """Any supported input (module docstring), chosen by what ``path`` holds.

    Raises:
        DataError: the path does not exist or holds nothing this loader knows.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() not in TEACHER_SUFFIXES:
            raise DataError(f"{path}: a teacher scene must be one of {TEACHER_SUFFIXES}")
        return load_teacher(path, size=size or 64, num_train=teacher_views,
                            num_test=max(1, teacher_views // 5), backend=backend)
    if (path / "transforms_train.json").exists():
        return load_nerf(path, size=size, test_every=test_every, init_points=init_points)
    try:
        _colmap_folder(path)
    except DataError:
        raise DataError(f"{path}: neither a NeRF folder (transforms_train.json) nor a COLMAP "
                        f"model (sparse/0/cameras.bin)") from None
    return load_colmap(path, size=size, test_every=test_every)
