"""Training losses: photometric (L1 + SSIM), volume, parent-child InfoNCE, metrics."""

from __future__ import annotations

import math

import torch

__all__ = ["ssim", "photometric_loss", "volume_loss", "info_nce_loss", "psnr"]


def _gaussian_window(size: int, sigma: float, device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None].repeat(3, 1, 1, 1)


def ssim(a: torch.Tensor, b: torch.Tensor, *, window: int = 11) -> torch.Tensor:
    """Mean SSIM of two ``[H, W, 3]`` images in ``[0, 1]`` (Gaussian window 11, sigma 1.5,
    as 3DGS computes it)."""
    w = _gaussian_window(window, 1.5, a.device)
    x, y = a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None]
    pad = window // 2

    def blur(t):
        return torch.nn.functional.conv2d(t, w, padding=pad, groups=3)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean()


def photometric_loss(render: torch.Tensor, target: torch.Tensor, *,
                     ssim_weight: float = 0.2) -> torch.Tensor:
    """3DGS's ``(1 - w) L1 + w (1 - SSIM)``."""
    l1 = (render - target).abs().mean()
    return (1 - ssim_weight) * l1 + ssim_weight * (1 - ssim(render, target))


def volume_loss(scales: torch.Tensor) -> torch.Tensor:
    """Scaffold-GS's volume regularizer: mean product of the Gaussians' scales."""
    if not len(scales):
        return scales.sum()
    return scales.prod(dim=1).mean()


def info_nce_loss(feature: torch.Tensor, parent: torch.Tensor, *, batch: int = 256,
                  similarity: str = "dot", temperature: float | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """InfoNCE between sampled children and their parents (ProGS eq. 10, mutual information
    between an octree node and its parent).

    ``batch`` anchors with a parent are sampled; for child ``i`` the positive is its own
    parent ``p(i)``, the negatives the other sampled children's parents (pairs sharing a
    parent are not counted as negatives):
    ``-mean_i log(exp(s(f_i, f_p(i))) / sum_j exp(s(f_i, f_p(j))))``. ``similarity="dot"``
    is eq. 10's dot product ``s(a, b) = a . b`` (``temperature`` default 1);
    ``"cosine"`` is the previous normalized product over a temperature (default 0.1).
    """
    children = torch.nonzero(parent >= 0).squeeze(1)
    if len(children) < 2:
        return feature.sum() * 0
    pick = torch.randperm(len(children), generator=generator, device="cpu")[:batch]
    children = children[pick.to(children.device)]
    parents = parent[children]
    z_child, z_parent = feature[children], feature[parents]
    if similarity == "cosine":
        z_child = torch.nn.functional.normalize(z_child, dim=1)
        z_parent = torch.nn.functional.normalize(z_parent, dim=1)
        temperature = 0.1 if temperature is None else temperature
    elif similarity == "dot":
        temperature = 1.0 if temperature is None else temperature
    else:
        raise ValueError(f"unknown similarity {similarity!r}")
    logits = z_child @ z_parent.T / temperature
    same = parents[:, None] == parents[None, :]
    eye = torch.eye(len(children), dtype=torch.bool, device=feature.device)
    logits = logits.masked_fill(same & ~eye, -math.inf)
    target = torch.arange(len(children), device=feature.device)
    return torch.nn.functional.cross_entropy(logits, target)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)
