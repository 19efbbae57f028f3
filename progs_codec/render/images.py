"""Rendering decoded scenes and plain 3DGS (informative, spec 9.3).

One entry point, :func:`render`, takes a :class:`~progs_codec.model.ProgsModel` (its neural
Gaussians are generated for the camera, spec 9.1) or static
:class:`~progs_codec.render.splats.Splats` and rasterizes them with gsplat on CUDA or with the
CPU twin in :mod:`progs_codec.render.rasterize_cpu`, which follows gsplat's arithmetic
(measured: 60+ dB PSNR against gsplat renders of the real scenes). torch and gsplat are
imported only for the gsplat backend.

Example:
    >>> from progs_codec.testing import synthetic_model
    >>> from progs_codec.render.camera import orbit_cameras
    >>> m = synthetic_model(300, 2, seed=0, attribute_coding="raw")
    >>> cam = orbit_cameras((0, 0, 0), 3.0, 1, width=32, height=24)[0]
    >>> render(m, cam, backend="cpu").image.shape
    (24, 32, 3)
"""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ProgsError
from ..files import atomic_path
from ..model import CoordinateConvention, ProgsModel, SceneFrame
from .camera import Camera, framing_distance, orbit_cameras, scene_sphere
from .gaussians import generate_gaussians
from .rasterize_cpu import rasterize
from .splats import Splats

__all__ = ["RenderResult", "RenderError", "render", "render_orbit", "psnr", "ssim", "to_uint8",
           "check_output_dir", "scene_up", "parse_up", "attach_up_value"]

BACKENDS = ("auto", "cpu", "gsplat")


class RenderError(ProgsError, ValueError):
    """A render request cannot be served (unknown backend, gsplat without CUDA, bad option)."""


@dataclass(frozen=True, eq=False)
class RenderResult:
    """A rendered view.

    Attributes:
        image: ``[H, W, 3] float32``, colour composited over the background.
        alpha: ``[H, W] float32`` accumulated opacity ``1 - T``.
    """

    image: np.ndarray
    alpha: np.ndarray


def _gsplat_available() -> bool:
    try:
        import gsplat  # noqa: F401
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _rasterize_gsplat(means, quats, scales, opacities, colors, camera: Camera,
                      background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not len(means):  # nothing to launch kernels for
        return (np.broadcast_to(background, (camera.height, camera.width, 3)).copy(),
                np.zeros((camera.height, camera.width), np.float32))
    import gsplat
    import torch

    dev = torch.device("cuda")

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev)

    with torch.no_grad():
        image, alpha, _ = gsplat.rasterization(
            t(means), t(quats), t(scales), t(opacities), t(colors),
            t(camera.world_to_camera)[None], t(camera.K)[None], camera.width, camera.height,
            backgrounds=t(background)[None])
    return image[0].cpu().numpy(), alpha[0, ..., 0].cpu().numpy()


def render(scene: ProgsModel | Splats, camera: Camera, *, lod: int | None = None,
           background: Sequence[float] = (0.0, 0.0, 0.0), backend: str = "auto") -> RenderResult:
    """Renders a ProGS model (LoD ``lod``) or plain splats from ``camera``.

    Args:
        scene: a :class:`ProgsModel` with generation MLPs, or :class:`Splats`.
        camera: the view (OpenCV axes).
        lod: levels ``1..lod`` of a model (default: all decoded); must be ``None`` for splats.
        background: RGB behind the scene.
        backend: ``"gsplat"`` (CUDA), ``"cpu"``, or ``"auto"`` (gsplat when CUDA is available).

    Raises:
        ModelError: the model has no MLPs or lacks LoD ``lod``.
        RenderError: unknown backend, gsplat requested without CUDA, ``lod`` for splats.
    """
    if backend not in BACKENDS:
        raise RenderError(f"unknown render backend {backend!r}; expected one of {BACKENDS}")
    if backend == "gsplat" and not _gsplat_available():
        raise RenderError("the gsplat backend needs gsplat, torch and a CUDA device")
    bg = np.asarray(background, dtype=np.float32)
    if bg.shape != (3,) or not np.all(np.isfinite(bg)):
        raise RenderError(f"background must be 3 finite numbers, got {background!r}")
    if isinstance(scene, Splats):
        if lod is not None:
            raise RenderError("lod applies to ProGS models, not to plain splats")
        arrays = (scene.means, scene.quats, scene.scales, scene.opacities,
                  scene.colors(camera.center))
    else:
        g = generate_gaussians(scene, camera.center, lod=lod)
        arrays = (g.means, g.quats, g.scales, g.opacities, g.colors)
    if backend == "gsplat" or (backend == "auto" and _gsplat_available()):
        image, alpha = _rasterize_gsplat(*arrays, camera, bg)
    else:
        image, alpha = rasterize(*arrays, camera, background=bg)
    return RenderResult(image=image, alpha=alpha)


def psnr(a: np.ndarray, b: np.ndarray, *, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB between two images of equal shape (inf if equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def _gaussian_blur_same(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable blur of ``[H, W, C]`` with zero padding, output the input's size."""
    r = len(taps) // 2
    h, w = x.shape[:2]
    padded = np.pad(x, ((r, r), (0, 0), (0, 0)))
    rows = sum(t * padded[i:i + h] for i, t in enumerate(taps))
    padded = np.pad(rows, ((0, 0), (r, r), (0, 0)))
    return sum(t * padded[:, i:i + w] for i, t in enumerate(taps))


def ssim(a: np.ndarray, b: np.ndarray, *, window: int = 11, sigma: float = 1.5) -> float:
    """Mean structural similarity of two ``[H, W, C]`` images in ``[0, 1]``.

    As 3D Gaussian Splatting computes it (and ``progs_training.losses.ssim``): a Gaussian
    window of ``window`` taps and standard deviation ``sigma`` per channel, zero padding at
    the borders, ``C1 = 0.01**2``, ``C2 = 0.03**2``, the mean over pixels and channels.

    Example:
        >>> x = np.random.default_rng(0).random((16, 16, 3))
        >>> round(ssim(x, x), 6)
        1.0
    """
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 3:
        raise ValueError(f"ssim needs two [H, W, C] images of one shape, got {x.shape}, {y.shape}")
    t = np.arange(window, dtype=np.float64) - (window - 1) / 2
    taps = np.exp(-t * t / (2 * sigma * sigma))
    taps /= taps.sum()
    mx, my = _gaussian_blur_same(x, taps), _gaussian_blur_same(y, taps)
    sxx = _gaussian_blur_same(x * x, taps) - mx * mx
    syy = _gaussian_blur_same(y * y, taps) - my * my
    sxy = _gaussian_blur_same(x * y, taps) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def to_uint8(image: np.ndarray) -> np.ndarray:
    """``[H, W, C]`` float in ``[0, 1]`` to ``uint8`` (clipped, rounded)."""
    return np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp, format="PNG")


#: Suffixes that make an ``out_dir`` look like an image file the user meant to write.
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")


def check_output_dir(out_dir: str | Path) -> Path:
    """Checks a folder for :func:`render_orbit`'s images before any rendering.

    The folder may not exist yet (it is created), but the path may not name an image file
    (``-o plant.png``) or an existing file, and the first folder on it that exists must be
    writable.

    Raises:
        RenderError: the path has an image suffix and is not an existing folder.
        NotADirectoryError, PermissionError: naming ``out_dir`` as given.

    >>> check_output_dir("plant.png")
    Traceback (most recent call last):
    ...
    progs_codec.render.images.RenderError: plant.png: render writes a folder of images (lod{k}_view{i}.png and contact_sheet.png), not one image; give a folder, e.g. plant/
    """
    path = Path(out_dir)
    if path.suffix.lower() in _IMAGE_SUFFIXES and not path.is_dir():
        raise RenderError(f"{out_dir}: render writes a folder of images (lod{{k}}_view{{i}}.png "
                          f"and contact_sheet.png), not one image; give a folder, e.g. "
                          f"{path.with_suffix('')}/")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file, not a folder",
                                 str(out_dir))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"folder {existing} is not writable", str(out_dir))
    return path


#: The world's up per axis convention (spec 3.1, 9.2).
_UP = {CoordinateConvention.OPENCV: (0.0, -1.0, 0.0),
       CoordinateConvention.OPENGL: (0.0, 1.0, 0.0),
       CoordinateConvention.ZUP: (0.0, 0.0, 1.0)}


def scene_up(frame: SceneFrame) -> tuple[float, float, float]:
    """The world's up direction that the frame's axis convention implies (spec 3.1, 9.2).

    ``-y`` for OpenCV axes (y points down), ``+y`` for OpenGL axes, ``+z`` for Z-up axes
    (format 1.1). A scene whose up is none of these needs ``up=`` in :func:`render_orbit`
    (``--up`` on the command line).
    """
    return _UP[CoordinateConvention(frame.convention)]


def parse_up(text: str) -> tuple[float, float, float]:
    """An up direction from the command line: an axis (``+z``, ``-y``, ``z``) or ``X,Y,Z``.

    >>> [[int(v) for v in parse_up(text)] for text in ("+z", "-y", "0,1,1")]
    [[0, 0, 1], [0, -1, 0], [0, 1, 1]]
    """
    axes = {"x": 0, "y": 1, "z": 2}
    key = text.strip().lower()
    sign, axis = (key[0], key[1:]) if key[:1] in "+-" and len(key) == 2 else ("+", key)
    if axis in axes:
        up = [0.0, 0.0, 0.0]
        up[axes[axis]] = -1.0 if sign == "-" else 1.0
        return tuple(up)
    try:
        up = tuple(float(v) for v in text.split(","))
    except ValueError:
        up = ()
    if len(up) != 3 or not all(math.isfinite(v) for v in up) or not any(up):
        raise RenderError(f"up must be an axis (+x, -x, +y, -y, +z, -z) or three numbers "
                          f"X,Y,Z not all zero, got {text!r}")
    return up


def attach_up_value(argv: list[str]) -> list[str]:
    """``--up -y`` as ``--up=-y``, for both command lines (``progs-codec render``,
    ``progs-train``): argparse takes a value that starts with ``-`` (``-y``, ``-0.5,1,0``) for
    an option and reports ``expected one argument``.

    >>> attach_up_value(["render", "--up", "-y", "-o", "x"])
    ['render', '--up=-y', '-o', 'x']
    """
    out = list(argv)
    for i in range(len(out) - 1):
        if out[i] == "--up" and out[i + 1].startswith("-"):
            out[i:i + 2] = [f"--up={out[i + 1]}"]
            break
    return out


def _label_column(lines_per_row: list[list[str]], row_height: int) -> np.ndarray:
    """A white-on-black strip with each row's label lines, ``[rows * row_height, W, 3]``."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    width = 8 + max(int(measure.textlength(line, font=font)) for lines in lines_per_row
                    for line in lines)
    strip = Image.new("L", (width, row_height * len(lines_per_row)))
    draw = ImageDraw.Draw(strip)
    for row, lines in enumerate(lines_per_row):
        draw.multiline_text((4, row * row_height + 2), "\n".join(lines), fill=255, font=font)
    return np.repeat(np.asarray(strip, np.float32)[..., None] / 255.0, 3, axis=2)


def render_orbit(model: ProgsModel, *, lods: Sequence[int] | None = None, n_views: int = 8,
                 size: int = 256, out_dir: str | Path, elevation_deg: float = 20.0,
                 up: Sequence[float] | None = None, fov_deg: float = 45.0,
                 backend: str = "auto") -> list[Path]:
    """Renders an orbit of ``n_views`` views per LoD to PNGs plus a contact sheet.

    Cameras look at the centre of the anchors of the highest decoded LoD
    (:func:`~progs_codec.render.camera.scene_sphere`) from the distance at which that sphere
    fills 80% of the frame (:func:`~progs_codec.render.camera.framing_distance`), on a circle
    ``elevation_deg`` above it around ``up``; the same cameras serve every LoD.

    Args:
        lods: LoDs to render (default ``1..model.lod``).
        n_views: views per LoD; size: image width and height in pixels.
        out_dir: created if missing (checked first: :func:`check_output_dir`); files
            ``lod{k}_view{i:02d}.png`` and ``contact_sheet.png`` (one row per LoD, labelled
            with the LoD and its anchors, one column per view).
        elevation_deg: height of the camera circle, in degrees above the horizon
            (-90..90, exclusive).
        up: the world's up direction; default :func:`scene_up` of the model's frame.

    Returns:
        Paths of the files written, views first (LoD-major), contact sheet last.
    """
    lods = list(range(1, model.lod + 1)) if lods is None else list(lods)
    if not lods or n_views < 1 or size < 1:
        raise RenderError("render_orbit needs at least one LoD, one view and size >= 1")
    if not -90.0 < elevation_deg < 90.0:
        raise RenderError(f"elevation must be between -90 and 90 degrees, got {elevation_deg}")
    for lod in lods:  # before writing anything
        model.num_anchors(lod)  # raises ModelError for a LoD the model does not hold
    out_dir = check_output_dir(out_dir)
    up = scene_up(model.frame) if up is None else up
    center, radius = scene_sphere(model.positions())
    cams = orbit_cameras(center, framing_distance(radius, fov_deg), n_views,
                         elevation_deg=elevation_deg, width=size, height=size, fov_deg=fov_deg,
                         up=up)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, rows = [], []
    for lod in lods:
        row = []
        for i, cam in enumerate(cams):
            image = render(model, cam, lod=lod, backend=backend).image
            path = out_dir / f"lod{lod}_view{i:02d}.png"
            _save_png(path, image)
            paths.append(path)
            row.append(image)
        rows.append(np.concatenate(row, axis=1))
    labels = _label_column([[f"LoD {lod}", f"{model.num_anchors(lod):,} anchors"]
                            for lod in lods], size)
    sheet = out_dir / "contact_sheet.png"
    _save_png(sheet, np.concatenate([labels, np.concatenate(rows, axis=0)], axis=1))
    return paths + [sheet]
