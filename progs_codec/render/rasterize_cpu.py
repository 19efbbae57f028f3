"""A tile-based CPU rasterizer that follows gsplat 1.5.3 (informative, spec 9.3).

It mirrors, in float32 numpy, gsplat's ``rasterization(..., rasterize_mode="classic")``:

1. **Projection** (``ProjectionEWA3DGSFused.cu``): world to camera with the view matrix;
   Gaussians with depth outside ``[near, far]`` are dropped. Covariance ``R S S^T R^T`` is
   projected with the EWA Jacobian of the pinhole camera, whose ``x/z, y/z`` are clamped to
   1.3 times the field of view; ``eps2d`` (0.3 pixel^2) is added to the 2D covariance's
   diagonal. Opacities below 1/255 are dropped; the screen radius is
   ``ceil(min(3.33, sqrt(2 ln(255 opacity))) * sqrt(diag(cov2d)))`` per axis, and Gaussians
   entirely off-screen are dropped.
2. **Binning** (``IntersectTile.cu``): each Gaussian touches the 16x16 tiles of the rectangle
   ``floor((mean - radius) / 16) .. ceil((mean + radius) / 16)``; per tile, Gaussians are
   sorted by camera depth (stable, ties in input order, like gsplat's radix sort).
3. **Compositing** (``RasterizeToPixels3DGSFwd.cu``): for the pixel centre ``p`` and each
   Gaussian front to back, ``sigma = 0.5 (a dx^2 + c dy^2) + b dx dy`` with ``d = mean2d - p``
   and conic ``(a, b, c)``; ``alpha = min(0.999, opacity exp(-sigma))``; Gaussians with
   ``sigma < 0`` or ``alpha < 1/255`` are skipped; the pixel stops *before* a Gaussian that
   would bring its transmittance ``T`` to ``<= 1e-4``. Colour ``= sum c_i alpha_i T_i + T bg``,
   alpha ``= 1 - T``.

:func:`rasterize` vectorizes step 3 over each tile's pixels and blocks of 256 Gaussians (like
a CUDA thread block); :func:`rasterize_reference` is the per-pixel loop it is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import Camera

__all__ = ["Projection", "project", "rasterize", "rasterize_reference", "TILE_SIZE"]

TILE_SIZE = 16
ALPHA_THRESHOLD = np.float32(1.0 / 255.0)
MAX_ALPHA = np.float32(0.999)
T_MIN = np.float32(1e-4)
# Gaussians composited per vectorized step: enough to amortize numpy overhead, few enough
# that finished pixels stop paying for the rest of the tile.
_BLOCK = 256


@dataclass(frozen=True, eq=False)
class Projection:
    """Screen-space Gaussians that survive culling (gsplat's packed projection output).

    Attributes:
        ids: ``[M] int64`` indices of the input Gaussians kept.
        means2d: ``[M, 2] float32`` pixel coordinates of the centres.
        conics: ``[M, 3] float32`` inverse 2D covariance ``(a, b, c)`` = ``[[a, b], [b, c]]``.
        depths: ``[M] float32`` camera-space z.
        radii: ``[M, 2] int32`` screen radius per axis, in pixels.
    """

    ids: np.ndarray
    means2d: np.ndarray
    conics: np.ndarray
    depths: np.ndarray
    radii: np.ndarray


def project(means: np.ndarray, quats: np.ndarray, scales: np.ndarray, opacities: np.ndarray,
            camera: Camera, *, eps2d: float = 0.3, near_plane: float = 0.01,
            far_plane: float = 1e10) -> Projection:
    """Projects Gaussians to the screen as gsplat's fused EWA projection does (step 1).

    Args:
        means: ``[N, 3] float32``; quats: ``[N, 4]`` wxyz (normalized here);
        scales: ``[N, 3]`` linear; opacities: ``[N]`` in ``[0, 1]``.
    """
    f32 = np.float32
    w2c = camera.world_to_camera.astype(f32)
    rot, t = w2c[:3, :3], w2c[:3, 3]
    mean_c = np.asarray(means, f32) @ rot.T + t
    z = mean_c[:, 2]
    opac = np.asarray(opacities, f32)
    keep = (z >= near_plane) & (z <= far_plane) & (opac >= ALPHA_THRESHOLD)
    ids = np.flatnonzero(keep)
    mean_c, z, opac = mean_c[ids], z[ids], opac[ids]

    q = np.asarray(quats, f32)[ids]
    q = q / np.sqrt((q * q).sum(1, keepdims=True))
    w, x, y, zq = q.T
    r_gauss = np.stack([
        np.stack([1 - 2 * (y * y + zq * zq), 2 * (x * y - w * zq), 2 * (x * zq + w * y)], -1),
        np.stack([2 * (x * y + w * zq), 1 - 2 * (x * x + zq * zq), 2 * (y * zq - w * x)], -1),
        np.stack([2 * (x * zq - w * y), 2 * (y * zq + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)
    m = rot @ (r_gauss * np.asarray(scales, f32)[ids][:, None, :])  # camera-space R S
    cov_c = m @ m.transpose(0, 2, 1)

    fx, fy, cx, cy = (f32(v) for v in (camera.fx, camera.fy, camera.cx, camera.cy))
    width, height = camera.width, camera.height
    tan_x, tan_y = f32(0.5) * width / fx, f32(0.5) * height / fy
    rz = f32(1) / z
    tx = z * np.clip(mean_c[:, 0] * rz, -(cx / fx + f32(0.3) * tan_x),
                     (width - cx) / fx + f32(0.3) * tan_x)
    ty = z * np.clip(mean_c[:, 1] * rz, -(cy / fy + f32(0.3) * tan_y),
                     (height - cy) / fy + f32(0.3) * tan_y)
    jac = np.zeros((len(ids), 2, 3), f32)
    jac[:, 0, 0] = fx * rz
    jac[:, 1, 1] = fy * rz
    jac[:, 0, 2] = -fx * tx * rz * rz
    jac[:, 1, 2] = -fy * ty * rz * rz
    cov2d = jac @ cov_c @ jac.transpose(0, 2, 1)
    a = cov2d[:, 0, 0] + f32(eps2d)
    b = cov2d[:, 0, 1]
    c = cov2d[:, 1, 1] + f32(eps2d)
    det = a * c - b * b
    means2d = np.stack([fx * mean_c[:, 0] * rz + cx, fy * mean_c[:, 1] * rz + cy], -1)

    ok = det > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        extend = np.minimum(f32(3.33), np.sqrt(f32(2) * np.log(opac / ALPHA_THRESHOLD)))
        rx = np.ceil(extend * np.sqrt(a))
        ry = np.ceil(extend * np.sqrt(c))
    ok &= (rx > 0) | (ry > 0)
    ok &= ~((means2d[:, 0] + rx <= 0) | (means2d[:, 0] - rx >= width)
            | (means2d[:, 1] + ry <= 0) | (means2d[:, 1] - ry >= height))
    inv_det = f32(1) / det[ok]
    return Projection(
        ids=ids[ok],
        means2d=means2d[ok],
        conics=np.stack([c[ok] * inv_det, -b[ok] * inv_det, a[ok] * inv_det], -1),
        depths=z[ok],
        radii=np.stack([rx[ok], ry[ok]], -1).astype(np.int32),
    )


def _tile_bins(proj: Projection, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Step 2: ``(order, offsets)``; tile ``t`` composites ``order[offsets[t]:offsets[t+1]]``
    (indices into ``proj``), front to back."""
    tiles_x = -(-width // TILE_SIZE)
    tiles_y = -(-height // TILE_SIZE)
    by_depth = np.argsort(proj.depths, kind="stable")
    mean = proj.means2d[by_depth] / np.float32(TILE_SIZE)
    rad = proj.radii[by_depth].astype(np.float32) / np.float32(TILE_SIZE)
    lo = np.clip(np.floor(mean - rad), 0, [tiles_x, tiles_y]).astype(np.int64)
    hi = np.clip(np.ceil(mean + rad), 0, [tiles_x, tiles_y]).astype(np.int64)
    span = hi - lo
    counts = span[:, 0] * span[:, 1]
    gauss = np.repeat(np.arange(len(by_depth)), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    tile_x = lo[gauss, 0] + local % span[gauss, 0]
    tile_y = lo[gauss, 1] + local // span[gauss, 0]
    tile = tile_y * tiles_x + tile_x
    by_tile = np.argsort(tile, kind="stable")  # keeps depth order inside each tile
    offsets = np.searchsorted(tile[by_tile], np.arange(tiles_x * tiles_y + 1))
    return by_depth[gauss[by_tile]], offsets


def rasterize(means: np.ndarray, quats: np.ndarray, scales: np.ndarray, opacities: np.ndarray,
              colors: np.ndarray, camera: Camera, *,
              background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Renders Gaussians on the CPU, matching gsplat's classic rasterization.

    Args:
        means: ``[N, 3]``, quats: ``[N, 4]`` wxyz, scales: ``[N, 3]`` linear,
        opacities: ``[N]`` in ``[0, 1]``, colors: ``[N, C]`` (any channel count), all float32.
        camera: the view.
        background: ``[C]`` colour behind the Gaussians (default zeros).

    Returns:
        ``(image [H, W, C] float32, alpha [H, W] float32)``.
    """
    colors = np.asarray(colors, np.float32)
    proj = project(means, quats, scales, opacities, camera)
    order, offsets = _tile_bins(proj, camera.width, camera.height)
    xy = proj.means2d[order]
    conic = proj.conics[order]
    opac = np.asarray(opacities, np.float32)[proj.ids][order]
    col = colors[proj.ids][order]

    width, height, channels = camera.width, camera.height, colors.shape[1]
    image = np.zeros((height, width, channels), np.float32)
    trans = np.ones((height, width), np.float32)
    tiles_x = -(-width // TILE_SIZE)
    for tile in range(len(offsets) - 1):
        start, end = offsets[tile], offsets[tile + 1]
        if start == end:
            continue
        ty, tx = divmod(tile, tiles_x)
        y0, x0 = ty * TILE_SIZE, tx * TILE_SIZE
        y1, x1 = min(y0 + TILE_SIZE, height), min(x0 + TILE_SIZE, width)
        py, px = np.mgrid[y0:y1, x0:x1].astype(np.float32) + np.float32(0.5)
        tile_rgb, tile_t = _composite_tile(px.ravel(), py.ravel(), xy[start:end],
                                           conic[start:end], opac[start:end], col[start:end])
        image[y0:y1, x0:x1] = tile_rgb.reshape(y1 - y0, x1 - x0, channels)
        trans[y0:y1, x0:x1] = tile_t.reshape(y1 - y0, x1 - x0)
    return _finish(image, trans, background)


def _finish(image: np.ndarray, trans: np.ndarray,
            background: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if background is not None:
        image += trans[..., None] * np.asarray(background, np.float32)
    return image, np.float32(1) - trans


def _composite_tile(px: np.ndarray, py: np.ndarray, xy: np.ndarray, conic: np.ndarray,
                    opac: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 3 for one tile: ``(colour [P, C], transmittance [P])`` of pixels ``(px, py)``."""
    num_pix = len(px)
    out = np.zeros((num_pix, col.shape[1]), np.float32)
    trans = np.ones(num_pix, np.float32)
    active = np.arange(num_pix)
    for start in range(0, len(xy), _BLOCK):
        sl = slice(start, start + _BLOCK)
        # [P, B] layout: the running products below then run along contiguous memory.
        dx = xy[sl, 0] - px[active, None]
        dy = xy[sl, 1] - py[active, None]
        a, b, c = conic[sl, 0], conic[sl, 1], conic[sl, 2]
        sigma = np.float32(0.5) * (a * dx * dx + c * dy * dy) + b * dx * dy
        with np.errstate(over="ignore"):  # sigma < 0 overflows; those are skipped below
            alpha = np.minimum(MAX_ALPHA, opac[sl] * np.exp(-sigma))
        alpha[(sigma < 0) | (alpha < ALPHA_THRESHOLD)] = 0
        # Transmittance after each Gaussian if all were composited; valid up to the first one
        # that would bring it to <= T_MIN, where the pixel stops (that one excluded).
        t_active = trans[active]
        t_after = t_active[:, None] * np.cumprod(np.float32(1) - alpha, axis=1)
        stop = (t_after <= T_MIN) & (alpha > 0)
        has_stop = stop.any(axis=1)
        first_stop = np.where(has_stop, stop.argmax(axis=1), alpha.shape[1])
        included = np.arange(alpha.shape[1]) < first_stop[:, None]
        t_before = np.concatenate([t_active[:, None], t_after[:, :-1]], axis=1)
        out[active] += np.where(included, alpha * t_before, np.float32(0)) @ col[sl]
        # The transmittance after the last included Gaussian (t_before at the stop).
        trans[active] = np.where(has_stop, t_before[np.arange(len(active)),
                                                     np.minimum(first_stop, alpha.shape[1] - 1)],
                                 t_after[:, -1])
        active = active[~has_stop]
        if not len(active):
            break
    return out, trans


def rasterize_reference(means: np.ndarray, quats: np.ndarray, scales: np.ndarray,
                        opacities: np.ndarray, colors: np.ndarray, camera: Camera, *,
                        background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The per-pixel loop of gsplat's forward kernel, for tests (slow: tiny images only).

    Same arguments and result as :func:`rasterize`.
    """
    colors = np.asarray(colors, np.float32)
    proj = project(means, quats, scales, opacities, camera)
    order, offsets = _tile_bins(proj, camera.width, camera.height)
    tiles_x = -(-camera.width // TILE_SIZE)
    image = np.zeros((camera.height, camera.width, colors.shape[1]), np.float32)
    trans = np.ones((camera.height, camera.width), np.float32)
    for i in range(camera.height):
        for j in range(camera.width):
            tile = (i // TILE_SIZE) * tiles_x + j // TILE_SIZE
            px, py = np.float32(j + 0.5), np.float32(i + 0.5)
            t = np.float32(1)
            for g in order[offsets[tile]:offsets[tile + 1]]:
                (a, b, c), (mx, my) = proj.conics[g], proj.means2d[g]
                dx, dy = mx - px, my - py
                sigma = np.float32(0.5) * (a * dx * dx + c * dy * dy) + b * dx * dy
                alpha = min(MAX_ALPHA, np.float32(opacities[proj.ids[g]]) * np.exp(-sigma))
                if sigma < 0 or alpha < ALPHA_THRESHOLD:
                    continue
                next_t = t * (np.float32(1) - alpha)
                if next_t <= T_MIN:
                    break
                image[i, j] += colors[proj.ids[g]] * alpha * t
                t = next_t
            trans[i, j] = t
    return _finish(image, trans, background)
