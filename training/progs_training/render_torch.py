"""Differentiable rasterization: gsplat on CUDA, a tile-sparse pure-torch twin elsewhere.

:func:`rasterize_torch` mirrors gsplat 1.5.3's classic rasterization (the same arithmetic as
:mod:`progs_codec.render.rasterize_cpu`, which it is tested against): EWA projection with the
clamped pinhole Jacobian and ``eps2d``, 3-sigma screen radii, 16x16 tile binning, per-pixel
front-to-back compositing over depth-sorted Gaussians with ``alpha = min(0.999, o exp(-s))``,
``alpha < 1/255`` skipped, and the pixel stopping before transmittance would reach ``1e-4``.
Compositing is vectorized over (Gaussian, tile) pairs: transmittance is a segmented cumulative
sum of ``log(1 - alpha)`` along the depth-sorted pairs of each tile (float64, so long tiles do
not lose precision), which torch differentiates as it stands. Fine for the small images of
CPU training and tests; on CUDA, :func:`rasterize` calls ``gsplat.rasterization``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from progs_codec.render import Camera

__all__ = ["Rasterized", "rasterize", "rasterize_torch", "rasterize_gsplat", "TILE_SIZE"]

TILE_SIZE = 16
ALPHA_THRESHOLD = 1.0 / 255.0
MAX_ALPHA = 0.999
T_MIN = 1e-4


@dataclass(eq=False)
class Rasterized:
    """A differentiable render.

    Attributes:
        image: ``[H, W, 3]`` colour over the background; alpha: ``[H, W]`` = ``1 - T``.
        means2d: ``[M, 2]`` screen centres (pixels) of the Gaussians ``ids`` in the graph; its
            ``.grad`` (retained) after ``backward`` drives anchor growth.
        ids: ``[M] int64`` which input Gaussians ``means2d`` rows are.
    """

    image: torch.Tensor
    alpha: torch.Tensor
    means2d: torch.Tensor
    ids: torch.Tensor

    def screen_gradients(self, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, norm)``: each visible Gaussian's screen-gradient norm in NDC units (as
        Scaffold-GS thresholds it), zeros before ``backward``."""
        grad = self.means2d.grad
        if grad is None:
            return self.ids, torch.zeros(len(self.ids), device=self.ids.device)
        scale = torch.tensor([width / 2.0, height / 2.0], device=grad.device)
        return self.ids, torch.linalg.vector_norm(grad.detach()[..., :2] * scale, dim=-1)


def _quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    q = torch.nn.functional.normalize(q, dim=-1)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def _project(means, quats, scales, opacities, camera: Camera, eps2d: float, near: float):
    """EWA projection of every Gaussian; returns the kept ids and their screen quantities."""
    dev, f32 = means.device, torch.float32
    w2c = torch.tensor(np.array(camera.world_to_camera), dtype=f32, device=dev)
    rot, t = w2c[:3, :3], w2c[:3, 3]
    mean_c = means @ rot.T + t
    z = mean_c[:, 2]
    keep = (z >= near) & (opacities >= ALPHA_THRESHOLD)
    m = rot @ (_quat_to_rotmat(quats) * scales[:, None, :])
    cov_c = m @ m.transpose(1, 2)
    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy
    width, height = camera.width, camera.height
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    zs = torch.where(keep.clone(), z, torch.ones_like(z))  # keeps culled rows finite
    rz = 1.0 / zs
    tx = zs * torch.clamp(mean_c[:, 0] * rz, -(cx / fx + 0.3 * tan_x), (width - cx) / fx + 0.3 * tan_x)
    ty = zs * torch.clamp(mean_c[:, 1] * rz, -(cy / fy + 0.3 * tan_y), (height - cy) / fy + 0.3 * tan_y)
    zero = torch.zeros_like(rz)
    jac = torch.stack([torch.stack([fx * rz, zero, -fx * tx * rz * rz], -1),
                       torch.stack([zero, fy * rz, -fy * ty * rz * rz], -1)], -2)
    cov2d = jac @ cov_c @ jac.transpose(1, 2)
    a = cov2d[:, 0, 0] + eps2d
    b = cov2d[:, 0, 1]
    c = cov2d[:, 1, 1] + eps2d
    det = a * c - b * b
    means2d = torch.stack([fx * mean_c[:, 0] * rz + cx, fy * mean_c[:, 1] * rz + cy], -1)
    with torch.no_grad():
        extend = torch.clamp(torch.sqrt(2 * torch.log(opacities.clamp_min(ALPHA_THRESHOLD)
                                                      / ALPHA_THRESHOLD)), max=3.33)
        rx = torch.ceil(extend * torch.sqrt(a.clamp_min(0)))
        ry = torch.ceil(extend * torch.sqrt(c.clamp_min(0)))
        keep &= det > 0
        keep &= (rx > 0) | (ry > 0)
        keep &= ~((means2d[:, 0] + rx <= 0) | (means2d[:, 0] - rx >= width)
                  | (means2d[:, 1] + ry <= 0) | (means2d[:, 1] - ry >= height))
    ids = torch.nonzero(keep).squeeze(1)
    det_k = det[ids]
    conics = torch.stack([c[ids] / det_k, -b[ids] / det_k, a[ids] / det_k], -1)
    return ids, means2d[ids], conics, z[ids].detach(), torch.stack([rx[ids], ry[ids]], -1)


def _tile_pairs(means2d, radii, depths, width: int, height: int, tile: int):
    """(Gaussian, tile) pairs sorted by tile then depth, as gsplat bins them (no grad)."""
    dev = means2d.device
    tiles_x, tiles_y = -(-width // tile), -(-height // tile)
    by_depth = torch.argsort(depths, stable=True)
    mean = means2d.detach()[by_depth] / tile
    rad = radii[by_depth] / tile
    upper = torch.tensor([tiles_x, tiles_y], device=dev)
    lo = torch.clamp(torch.floor(mean - rad), min=0).to(torch.int64)
    lo = torch.minimum(lo, upper)
    hi = torch.minimum(torch.clamp(torch.ceil(mean + rad), min=0).to(torch.int64), upper)
    span = hi - lo
    counts = span[:, 0] * span[:, 1]
    gauss = torch.repeat_interleave(torch.arange(len(by_depth), device=dev), counts)
    starts = torch.cumsum(counts, 0) - counts
    local = torch.arange(int(counts.sum()), device=dev) - torch.repeat_interleave(starts, counts)
    tile_x = lo[gauss, 0] + local % span[gauss, 0]
    tile_y = lo[gauss, 1] + local // span[gauss, 0]
    tile_id = tile_y * tiles_x + tile_x
    by_tile = torch.argsort(tile_id, stable=True)  # keeps depth order inside a tile
    return by_depth[gauss[by_tile]], tile_id[by_tile], tiles_x, tiles_y


def _segmented_exclusive_cumsum(values: torch.Tensor, segment: torch.Tensor) -> torch.Tensor:
    """Per row group ``segment`` (sorted), the sum of the earlier rows of the same group."""
    inclusive = torch.cumsum(values, 0)
    first = torch.ones_like(segment, dtype=torch.bool)
    first[1:] = segment[1:] != segment[:-1]
    start_index = torch.cummax(torch.where(first, torch.arange(len(segment), device=segment.device),
                                           torch.zeros_like(segment)), 0).values
    before_start = inclusive[start_index] - values[start_index]
    return inclusive - values - before_start


def rasterize_torch(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor,
                    opacities: torch.Tensor, colors: torch.Tensor, camera: Camera, *,
                    background: torch.Tensor | None = None, eps2d: float = 0.3,
                    near_plane: float = 0.01, tile_size: int = TILE_SIZE) -> Rasterized:
    """Renders Gaussians differentiably in pure torch, matching gsplat's classic mode.

    Args:
        means ``[N, 3]``, quats ``[N, 4]`` wxyz, scales ``[N, 3]`` linear,
        opacities ``[N]`` in ``[0, 1]``, colors ``[N, 3]``: float32 tensors on one device.
        camera: the view (OpenCV axes); background: ``[3]`` (default black).

    Returns:
        :class:`Rasterized` with ``image [H, W, 3]`` and ``alpha [H, W]``.
    """
    if not len(means):
        return _empty_render(means, camera, background)
    dev = means.device
    width, height = camera.width, camera.height
    ids, means2d, conics, depths, radii = _project(means, quats, scales, opacities, camera,
                                                   eps2d, near_plane)
    if means2d.requires_grad:
        means2d.retain_grad()
    order, tile_id, tiles_x, tiles_y = _tile_pairs(means2d, radii, depths, width, height,
                                                   tile_size)
    # Pixel centres of every tile, [tiles, S, 2]; pixels beyond the image are dropped at the end.
    local = torch.stack(torch.meshgrid(torch.arange(tile_size, device=dev),
                                       torch.arange(tile_size, device=dev), indexing="xy"),
                        -1).reshape(-1, 2).to(torch.float32)
    tile_xy = torch.stack([torch.arange(tiles_x * tiles_y, device=dev) % tiles_x,
                           torch.arange(tiles_x * tiles_y, device=dev) // tiles_x], -1)
    pixels = tile_xy[:, None, :].to(torch.float32) * tile_size + local[None] + 0.5
    d = means2d[order][:, None, :] - pixels[tile_id]               # [P, S, 2]
    a, b, c = conics[order].unbind(-1)
    sigma = 0.5 * (a[:, None] * d[..., 0] ** 2 + c[:, None] * d[..., 1] ** 2) \
        + b[:, None] * d[..., 0] * d[..., 1]
    alpha = torch.clamp(opacities[ids][order][:, None] * torch.exp(-sigma), max=MAX_ALPHA)
    alpha = torch.where((sigma < 0) | (alpha < ALPHA_THRESHOLD), torch.zeros_like(alpha), alpha)
    log_t = torch.log1p(-alpha).double()
    t_before = torch.exp(_segmented_exclusive_cumsum(log_t, tile_id)).float()
    with torch.no_grad():
        stop = ((t_before * (1 - alpha) <= T_MIN) & (alpha > 0)).to(torch.int64)
        stopped = (_segmented_exclusive_cumsum(stop, tile_id) + stop) > 0
    weight = torch.where(stopped, torch.zeros_like(alpha), alpha * t_before)
    num_tiles = tiles_x * tiles_y
    size = tile_size * tile_size
    rgb = torch.zeros(num_tiles, size, 3, device=dev, dtype=colors.dtype).index_add(
        0, tile_id, weight[..., None] * colors[ids][order][:, None, :])
    log_trans = torch.zeros(num_tiles, size, device=dev, dtype=torch.float64).index_add(
        0, tile_id, torch.where(stopped, torch.zeros_like(log_t), log_t))
    trans = torch.exp(log_trans).float()
    if background is not None:
        rgb = rgb + trans[..., None] * background
    # [tiles_y, tiles_x, tile, tile, C] -> [H, W, C]
    def to_image(x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(tiles_y, tiles_x, tile_size, tile_size, -1).permute(0, 2, 1, 3, 4)
        return x.reshape(tiles_y * tile_size, tiles_x * tile_size, -1)[:height, :width]

    return Rasterized(image=to_image(rgb), alpha=1 - to_image(trans[..., None])[..., 0],
                      means2d=means2d, ids=ids)


def _empty_render(means: torch.Tensor, camera: Camera,
                  background: torch.Tensor | None) -> Rasterized:
    """No Gaussians (an LoD whose anchors draw none): the background, alpha 0, no ids. The
    image stays attached to ``means`` so a loss over it back-propagates (to nothing)."""
    dev, h, w = means.device, camera.height, camera.width
    bg = torch.zeros(3, device=dev) if background is None else background.to(dev)
    image = bg.expand(h, w, 3) + means.sum() * 0.0
    means2d = torch.zeros(0, 2, device=dev)
    return Rasterized(image=image, alpha=torch.zeros(h, w, device=dev), means2d=means2d,
                      ids=torch.zeros(0, dtype=torch.int64, device=dev))


def rasterize_gsplat(means, quats, scales, opacities, colors, camera: Camera, *,
                     background: torch.Tensor | None = None) -> Rasterized:
    """The same render through ``gsplat.rasterization`` (CUDA only)."""
    if not len(means):      # gsplat has nothing to launch, and its radii reshape to (0, -1)
        return _empty_render(means, camera, background)
    import gsplat

    dev = means.device
    viewmat = torch.tensor(np.array(camera.world_to_camera), dtype=torch.float32, device=dev)[None]
    K = torch.as_tensor(camera.K, dtype=torch.float32, device=dev)[None]
    image, alpha, meta = gsplat.rasterization(
        means, quats, scales, opacities, colors, viewmat, K, camera.width, camera.height,
        backgrounds=None if background is None else background[None], packed=False)
    means2d = meta["means2d"]
    if means2d.requires_grad:
        means2d.retain_grad()
    visible = (meta["radii"][0] > 0).reshape(len(means), -1).all(-1)
    return _GsplatRasterized(image=image[0], alpha=alpha[0, ..., 0], means2d=means2d,
                             ids=torch.nonzero(visible).squeeze(1))


class _GsplatRasterized(Rasterized):
    """gsplat's ``means2d`` is ``[1, N, 2]`` over every input: pick the visible rows."""

    def screen_gradients(self, width: int, height: int):
        grad = self.means2d.grad
        if grad is None:
            return self.ids, torch.zeros(len(self.ids), device=self.ids.device)
        scale = torch.tensor([width / 2.0, height / 2.0], device=grad.device)
        return self.ids, torch.linalg.vector_norm(grad[0, self.ids] * scale, dim=-1)


def rasterize(means, quats, scales, opacities, colors, camera: Camera, *,
              background: torch.Tensor | None = None, backend: str = "auto") -> Any:
    """gsplat when the tensors live on CUDA (``backend="auto"``), else :func:`rasterize_torch`."""
    use_gsplat = backend == "gsplat" or (backend == "auto" and means.is_cuda)
    fn = rasterize_gsplat if use_gsplat else rasterize_torch
    return fn(means, quats, scales, opacities, colors, camera, background=background)
