"""The distortion of a fit, in units of rendered mean squared error.

Each slot's error is a sum of squared attribute errors, each term weighted by how much it
moves the rendered image. The weights were measured on plant (level 5 targets, depth 6,
``K`` = 10, 3 teacher test views at 256x256, CPU rasterizer): Gaussian noise of a known size
on one attribute of every slot, and the rise in image MSE per unit of the squared error:

| term | error measured | MSE rise per unit |
|---|---|---|
| colour | ``sum_rgb (c - c*)^2`` | 0.017 |
| opacity | ``(o - o*)^2`` | 0.025 |
| position | ``|mu - mu*|^2 / r^2``, ``r^2`` = product of the two largest target scales | 0.002 |
| shape | ``|Sigma - Sigma*|_F^2 / |Sigma*|_F^2`` (rotation 0.1 rad ~ 0.007 of it) | 0.005 |

Each slot also carries its weight in the image: opacity times area (``prod(scale)^(2/3)``),
normalised to mean 1 over the occupied slots. Empty slots are pushed below zero opacity (not
drawn, spec 9.1). So the loss is an estimate of the image MSE that the fit adds, and a rate
weight ``lambda`` reads as "MSE per bit per slot".
"""

from __future__ import annotations

import torch

from .model import SlotGaussians

__all__ = ["SlotTargetsTorch", "distortion", "WEIGHTS"]

#: MSE rise per unit squared error: colour, opacity, position, shape (see the table above).
WEIGHTS = {"color": 0.017, "opacity": 0.025, "position": 0.002, "shape": 0.005}
_EMPTY_MARGIN = 0.02      # an empty slot's opacity is pushed below -0.02


class SlotTargetsTorch:
    """Per-slot targets of every level as tensors ``[N, K, ...]`` (level-major order)."""

    def __init__(self, levels, level_weights):
        import numpy as np

        def cat(name):
            return torch.tensor(np.concatenate([getattr(t, name) for t in levels]),
                                dtype=torch.float32)

        self.mask = torch.tensor(np.concatenate([t.mask for t in levels]))
        self.means, self.covs, self.scales = cat("means"), cat("covs"), cat("scales")
        self.opacities, self.sh = cat("opacities"), cat("sh")
        per_level = torch.tensor(np.concatenate(
            [np.full(len(t), w) for t, w in zip(levels, level_weights)]), dtype=torch.float32)
        area = torch.prod(self.scales, -1) ** (2 / 3)
        weight = self.opacities * area
        # normalise per level so that a level's weight is its level weight, whatever its scale
        level = torch.tensor(np.concatenate([np.full(len(t), i) for i, t in enumerate(levels)]))
        for i in range(len(levels)):
            rows = level == i
            m = self.mask[rows]
            if m.any():
                weight[rows] = weight[rows] / weight[rows][m].mean()
        self.weight = weight * per_level[:, None]
        s = torch.sort(self.scales, -1).values
        self.face_r2 = s[..., 1] * s[..., 2] + 1e-20
        self.cov_norm = (self.covs ** 2).sum((-1, -2)).clamp_min(1e-40)
        self.num_slots = float(self.mask.sum())

    def to(self, device: torch.device | str) -> SlotTargetsTorch:
        """Every tensor on ``device`` (placement only)."""
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))
        return self

    def colors(self, directions: torch.Tensor | None, sh_basis) -> torch.Tensor:
        """Target RGB ``[N, K, 3]`` seen along ``directions`` ``[N, 3]`` (DC only if None)."""
        if directions is None or self.sh.shape[2] == 1:
            return (self.sh[:, :, 0] * 0.28209479177387814 + 0.5).clamp_min(0)
        basis = sh_basis(directions)                              # [N, B]
        return (torch.einsum("nb,nkbc->nkc", basis, self.sh) + 0.5).clamp_min(0)


def _covariance(q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``R diag(s^2) R^T`` ``[..., 3, 3]`` from unit quaternions, elementwise (a batched 3x3
    matmul costs several times more on the CPU)."""
    w, x, y, z = q.unbind(-1)
    r = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
                    -1).reshape(*q.shape[:-1], 3, 3)
    rs = r * (s * s)[..., None, :]
    return (rs[..., :, None, :] * r[..., None, :, :]).sum(-1)


def distortion(g: SlotGaussians, target: SlotTargetsTorch, target_colors: torch.Tensor
               ) -> tuple[torch.Tensor, dict[str, float]]:
    """Estimated image MSE of the slots (scalar) and the mean of each term (for logs)."""
    m = target.mask
    cov = _covariance(g.quats, g.scales)
    terms = {
        "color": ((g.colors - target_colors) ** 2).sum(-1),
        "opacity": (g.opacities - target.opacities) ** 2,
        "position": ((g.means - target.means) ** 2).sum(-1) / target.face_r2,
        "shape": ((cov - target.covs) ** 2).sum((-1, -2)) / target.cov_norm,
    }
    per_slot = sum(WEIGHTS[name] * value for name, value in terms.items())
    occupied = (target.weight * per_slot)[m].sum() / target.num_slots
    empty = WEIGHTS["opacity"] * (torch.relu(g.opacities + _EMPTY_MARGIN) ** 2)[~m].sum() \
        / target.num_slots
    with torch.no_grad():
        logs = {name: float(value[m].mean()) for name, value in terms.items()}
    return occupied + empty, logs
