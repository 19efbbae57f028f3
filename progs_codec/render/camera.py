"""Pinhole cameras for rendering decoded scenes (informative, spec 9.2).

A :class:`Camera` is a pinhole camera in OpenCV axes (x right, y down, z forward), the
convention of gsplat and COLMAP: a world point ``p`` maps to camera coordinates
``world_to_camera @ [p, 1]`` and to pixel ``(fx * x / z + cx, fy * y / z + cy)``, where pixel
``(i, j)`` covers ``[j, j+1) x [i, i+1)`` and its centre is ``(j + 0.5, i + 0.5)``.

Example:
    >>> cams = orbit_cameras((0, 0, 0), 2.0, 4, width=64, height=48)
    >>> round(float(np.linalg.norm(cams[0].center)), 6)
    2.0
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ProgsError

__all__ = ["Camera", "CameraError", "orbit_cameras", "load_nerf_cameras", "scene_sphere",
           "framing_distance"]

# Converts OpenGL/Blender camera axes (y up, z backward) to OpenCV axes (y down, z forward).
_GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


class CameraError(ProgsError, ValueError):
    """A camera's parameters are invalid (non-finite, non-positive or singular)."""


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera in OpenCV axes.

    Attributes:
        width, height: image size in pixels (> 0).
        fx, fy: focal lengths in pixels (finite, > 0).
        cx, cy: principal point in pixels (finite).
        world_to_camera: ``[4, 4] float64`` rigid transform, last row ``0 0 0 1``.

    Raises:
        CameraError: on any invalid parameter, naming it.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    world_to_camera: np.ndarray

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise CameraError(f"camera {name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("fx", "fy", "cx", "cy"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise CameraError(f"camera {name} must be finite, got {value!r}")
            if name in ("fx", "fy") and value <= 0:
                raise CameraError(f"camera {name} must be > 0, got {value!r}")
            object.__setattr__(self, name, value)
        m = np.array(self.world_to_camera, dtype=np.float64)
        if m.shape != (4, 4):
            raise CameraError(f"world_to_camera must be [4, 4], got shape {m.shape}")
        if not np.all(np.isfinite(m)):
            raise CameraError("world_to_camera must be finite")
        if not np.allclose(m[3], [0, 0, 0, 1]):
            raise CameraError(f"world_to_camera's last row must be 0 0 0 1, got {m[3]}")
        rot = m[:3, :3]
        if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-5) or np.linalg.det(rot) <= 0:
            raise CameraError("world_to_camera's rotation must be orthonormal with det +1")
        m.setflags(write=False)
        object.__setattr__(self, "world_to_camera", m)

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates, ``[3] float64``."""
        rot, t = self.world_to_camera[:3, :3], self.world_to_camera[:3, 3]
        return -rot.T @ t

    @property
    def K(self) -> np.ndarray:
        """Intrinsic matrix, ``[3, 3] float64``."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def from_nerf(cls, transform_matrix: np.ndarray | Sequence, camera_angle_x: float,
                  width: int, height: int) -> Camera:
        """A camera from NeRF-synthetic conventions.

        Args:
            transform_matrix: ``[4, 4]`` camera-to-world in OpenGL/Blender axes.
            camera_angle_x: horizontal field of view in radians, in ``(0, pi)``.
            width, height: image size; square pixels, principal point at the image centre.
        """
        if not 0.0 < float(camera_angle_x) < math.pi:
            raise CameraError(f"camera_angle_x must be in (0, pi), got {camera_angle_x!r}")
        c2w = np.asarray(transform_matrix, dtype=np.float64)
        if c2w.shape != (4, 4) or not np.all(np.isfinite(c2w)):
            raise CameraError("transform_matrix must be a finite [4, 4] matrix")
        focal = 0.5 * width / math.tan(0.5 * float(camera_angle_x))
        try:
            w2c = np.linalg.inv(c2w @ _GL_TO_CV)
        except np.linalg.LinAlgError as exc:
            raise CameraError("transform_matrix is singular") from exc
        return cls(width, height, focal, focal, 0.5 * width, 0.5 * height, w2c)

    @classmethod
    def from_colmap(cls, model: str, params: Sequence[float], qvec: Sequence[float],
                    tvec: Sequence[float], width: int, height: int) -> Camera:
        """A camera from a COLMAP ``cameras.txt``/``images.txt`` entry.

        Args:
            model: ``"SIMPLE_PINHOLE"`` (params ``f, cx, cy``) or ``"PINHOLE"``
                (``fx, fy, cx, cy``); distortion models are refused.
            qvec: world-to-camera rotation as a quaternion ``(w, x, y, z)``.
            tvec: world-to-camera translation.
        """
        params = [float(p) for p in params]
        if model == "SIMPLE_PINHOLE" and len(params) == 3:
            fx = fy = params[0]
            cx, cy = params[1:]
        elif model == "PINHOLE" and len(params) == 4:
            fx, fy, cx, cy = params
        else:
            raise CameraError(f"unsupported COLMAP camera model {model!r} with {len(params)} "
                              "params (expected SIMPLE_PINHOLE with 3 or PINHOLE with 4)")
        q = np.asarray(qvec, dtype=np.float64)
        norm = np.linalg.norm(q)
        if q.shape != (4,) or not np.isfinite(norm) or norm == 0:
            raise CameraError(f"qvec must be a non-zero finite quaternion, got {qvec!r}")
        w2c = np.eye(4)
        w2c[:3, :3] = quat_to_rotmat(q / norm)
        w2c[:3, 3] = np.asarray(tvec, dtype=np.float64)
        return cls(width, height, fx, fy, cx, cy, w2c)


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Rotation matrices of unit quaternions ``(w, x, y, z)``: ``[..., 4] -> [..., 3, 3]``."""
    w, x, y, z = np.moveaxis(np.asarray(q), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """World-to-camera ``[4, 4] float64`` of a camera at ``eye`` looking at ``target``, upright.

    The image's up direction is the projection of ``up`` (OpenCV: camera y points down).
    """
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    forward = target - eye
    if np.linalg.norm(forward) == 0:
        raise CameraError("camera position coincides with its target")
    forward /= np.linalg.norm(forward)
    down = -(up - up.dot(forward) * forward)
    if np.linalg.norm(down) < 1e-9:
        raise CameraError("viewing direction is parallel to the up vector")
    down /= np.linalg.norm(down)
    right = np.cross(down, forward)
    w2c = np.eye(4)
    w2c[:3, :3] = np.stack([right, down, forward])
    w2c[:3, 3] = -w2c[:3, :3] @ eye
    return w2c


def orbit_cameras(center: Sequence[float], radius: float, n: int, *,
                  elevation_deg: float = 20.0, width: int = 256, height: int = 256,
                  fov_deg: float = 45.0, up: Sequence[float] = (0.0, -1.0, 0.0)) -> list[Camera]:
    """``n`` upright cameras evenly spaced in azimuth on a circle around ``center``.

    Args:
        center: ``[3]`` point every camera looks at.
        radius: distance of every camera from ``center`` (> 0).
        n: number of cameras (>= 1); the first sits at azimuth 0.
        elevation_deg: height of the circle above ``center``, as an angle along ``up``.
        fov_deg: horizontal field of view in degrees.
        up: world up vector; the default ``(0, -1, 0)`` suits OpenCV-axis scenes (y down),
            use ``(0, 1, 0)`` for OpenGL-axis scenes.

    Returns:
        ``n`` cameras in OpenCV axes.
    """
    if n < 1 or not radius > 0 or not 0 < fov_deg < 180:
        raise CameraError(f"orbit needs n >= 1, radius > 0 and 0 < fov < 180 "
                          f"(got n={n}, radius={radius}, fov={fov_deg})")
    center = np.asarray(center, dtype=np.float64)
    up = np.asarray(up, dtype=np.float64)
    up /= np.linalg.norm(up)
    # An orthonormal basis (e1, e2) of the plane perpendicular to up.
    e1 = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 0.0, 1.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    elev = math.radians(elevation_deg)
    focal = 0.5 * width / math.tan(0.5 * math.radians(fov_deg))
    cams = []
    for i in range(n):
        az = 2.0 * math.pi * i / n
        eye = center + radius * (math.cos(elev) * (math.cos(az) * e1 + math.sin(az) * e2)
                                 + math.sin(elev) * up)
        cams.append(Camera(width, height, focal, focal, 0.5 * width, 0.5 * height,
                           look_at(eye, center, up)))
    return cams


def scene_sphere(points: np.ndarray, *, quantile: float = 0.95) -> tuple[np.ndarray, float]:
    """A sphere around most of ``points`` for placing cameras: ``(center [3] float64, radius)``.

    The centre is the per-axis median and the radius the ``quantile`` of the distances to it,
    so that a few floaters far from the scene do not push the cameras away.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or not len(points):
        raise CameraError(f"scene_sphere needs [N >= 1, 3] points, got shape {points.shape}")
    center = np.median(points, axis=0)
    radius = float(np.quantile(np.linalg.norm(points - center, axis=1), quantile))
    return center, max(radius, 1e-6)


def framing_distance(radius: float, fov_deg: float = 45.0, *, fill: float = 0.8) -> float:
    """Distance at which a sphere of ``radius`` spans ``fill`` of a ``fov_deg`` field of view."""
    return radius / (fill * math.sin(0.5 * math.radians(fov_deg)))


def load_nerf_cameras(path: str | Path, *, width: int | None = None,
                      height: int | None = None) -> list[tuple[str, Camera]]:
    """Cameras of a NeRF-synthetic ``transforms_*.json``.

    Args:
        path: the JSON file (``camera_angle_x`` and ``frames[].transform_matrix``).
        width, height: image size; default the file's ``size`` (square), else ``w``/``h``.

    Returns:
        ``(file_path, camera)`` for each frame, in file order.
    """
    meta = json.loads(Path(path).read_text())
    width = width or meta.get("w") or meta.get("size")
    height = height or meta.get("h") or meta.get("size")
    if width is None or height is None:
        raise CameraError(f"{path}: no image size in the file; pass width and height")
    return [(frame["file_path"],
             Camera.from_nerf(frame["transform_matrix"], meta["camera_angle_x"], width, height))
            for frame in meta["frames"]]
