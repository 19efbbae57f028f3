"""The trainable ProGS model: anchors of every level, generation MLPs, grid and context model.

Anchors sit at voxel centres of their level (positions are not trained, they are what the
stream stores); each has a feature, a 6-channel log scaling (offset scale, Gaussian scale) and
``K`` offsets, as in Scaffold-GS. Neural Gaussians come from
:func:`progs_codec.render.generate_gaussians_torch` (the decoder's math). The binarized hash
grid and the context MLP predict each attribute channel's mean, scale and step from the
anchor's and its parent's integer grid features (spec 5-7).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from progs_codec import AttributeDims
from progs_codec.build import HashGridConfig, frame_for_points, octree_from_points
from progs_codec.render import NeuralGaussians, generate_gaussians_torch

from .errors import TrainingError
from .context_torch import ContextMLP, rate_bits, step_size
from .hashgrid_torch import GridLookup, HashGridTorch, grid_lookup
from .octree_ops import AnchorTree, anchor_positions, lookup, parent_index

__all__ = ["ModelConfig", "AnchorModel", "mlp", "default_base_depth", "check_base_depth",
           "level_sizes", "offsets_from_points",
           "level_code", "grid_for_rate"]


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the model. ``base_steps`` are near HAC's quantization steps per group (feature,
    scaling, offsets) in attribute units; the context model scales them by 0.25..3.7.
    ``grid``: the hash grid; ``None`` has :func:`grid_for_rate` choose it for the octree."""

    dims: AttributeDims = AttributeDims()
    hidden_width: int = 32
    use_distance: bool = True
    grid: HashGridConfig | None = None          # None: chosen by rate (grid_for_rate)
    context_hidden: tuple[int, ...] = (64, 64)
    base_steps: tuple[float, float, float] = (1.0, 1 / 1024, 3 / 16)  # exact in 2**-16 units


def grid_for_rate(num_anchors: int, finest_depth: int) -> HashGridConfig:
    """A hash grid sized for ``num_anchors`` anchors whose finest voxels are at
    ``finest_depth``: its bits (``R_hash``, coded at up to 1 bit per parameter) must stay small
    against the attributes' (86 values per anchor at 1-3 bits each), and more entries than the
    anchors can reach buy no context.

    Eight 3D levels over the four octaves below the finest voxel grid (capped at 512, HAC's
    finest), tables of ``2**ceil(log2(2 N))`` entries (at least 1,024, at most HAC's 2**19);
    three 2D planes at the finest quarter, half and full resolution with a quarter of the
    entries; 2 features per level. HAC's preset (12 + 4 levels, 2**19 / 2**17 entries, 10.2 M
    parameters, up to 1.27 MB) is made for scenes of about 10**5 - 10**6 anchors; at the
    plant's 2,400 anchors (attributes about 50 kB) it would be many times the rest of the
    stream. ``training/README.md`` has the measured comparison with our fixed preset.
    """
    top = int(min(max(2 ** finest_depth, 16), 512))
    low = max(4, top // 16)
    res3d = tuple(sorted({int(round(low * (top / low) ** (i / 7))) for i in range(8)}))
    log2_3d = int(np.clip(np.ceil(np.log2(max(2 * num_anchors, 2))), 10, 19))
    res2d = tuple(sorted({max(top // 4, 2), max(top // 2, 2), top}))
    return HashGridConfig(res3d, log2_3d, res2d, max(log2_3d - 2, 8), 2)


def mlp(n_in: int, hidden: int, n_out: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, n_out))


class AnchorModel(torch.nn.Module):
    """Anchors of ``tree`` with their attributes and every network (see module docstring)."""

    def __init__(self, tree: AnchorTree, config: ModelConfig = ModelConfig(), *,
                 device: str | torch.device = "cpu", seed: int = 0,
                 points: np.ndarray | None = None):
        super().__init__()
        torch.manual_seed(seed)
        if config.grid is None:
            config = replace(config, grid=grid_for_rate(len(tree), tree.frame.depth(
                tree.frame.num_levels)))
        self.config = config
        dims = config.dims
        n_in = dims.feature + 3 + int(config.use_distance)
        k = dims.num_offsets
        self.opacity_mlp = mlp(n_in, config.hidden_width, k)
        self.color_mlp = mlp(n_in, config.hidden_width, 3 * k)
        self.covariance_mlp = mlp(n_in, config.hidden_width, 7 * k)
        self.grid = HashGridTorch(config.grid, seed=seed)
        steps = np.repeat(config.base_steps, [dims.feature, dims.scaling, 3 * k])
        self.register_buffer("base_step", torch.tensor(steps, dtype=torch.float32))
        self.context = ContextMLP(2 * config.grid.feature_width, dims.channels,
                                  config.context_hidden)
        voxel = tree.frame.root_voxel_size / np.exp2(tree.level - 1)
        log_voxel = torch.tensor(np.log(voxel), dtype=torch.float32)[:, None].repeat(1, 6)
        with torch.no_grad():  # predicted log scalings start at the anchors' mean log voxel
            rows = slice(dims.feature, dims.feature + dims.scaling)
            self.context.layers[-1].bias[rows] = float(log_voxel.mean())
        self.to(device)
        self.device = torch.device(device)
        offsets = torch.zeros(len(tree), k, 3)
        if points is not None and len(points):
            # Finest level excluded: its voxels are small enough for offsets at the centre,
            # and random initial offsets there cost ~40% more stream for no visible gain.
            offsets = torch.tensor(offsets_from_points(
                tree, points, k, seed=seed, levels=range(1, tree.frame.num_levels)))
        self.set_anchors(tree, level_code(tree.level, tree.frame.num_levels, dims.feature),
                         log_voxel, offsets)

    def set_anchors(self, tree: AnchorTree, feature: torch.Tensor, scaling: torch.Tensor,
                    offsets: torch.Tensor) -> None:
        """Replace the anchors (after growth or pruning); the caller rebuilds optimizer state."""
        dev = self.device
        self.tree = tree
        self.feature = torch.nn.Parameter(feature.detach().to(dev).contiguous())
        self.scaling = torch.nn.Parameter(scaling.detach().to(dev).contiguous())
        self.offsets = torch.nn.Parameter(offsets.detach().to(dev).contiguous())
        self.positions = torch.tensor(anchor_positions(tree), dtype=torch.float32, device=dev)
        self.level = torch.tensor(tree.level, device=dev)
        self.parent = torch.tensor(parent_index(tree), device=dev)
        depth = tree.frame.base_depth + tree.level - 1
        self._own_lookup: GridLookup = grid_lookup(self.config.grid, tree.coords, depth, dev)
        roots = tree.level == 1
        parent_coords = np.where(roots[:, None], 0, tree.coords >> 1)
        self._parent_lookup = grid_lookup(self.config.grid, parent_coords,
                                          np.maximum(depth - 1, 0), dev)
        self._is_root = torch.tensor(roots, device=dev)

    def anchor_parameters(self) -> list[torch.nn.Parameter]:
        return [self.feature, self.scaling, self.offsets]

    def network_parameters(self) -> dict[str, list[torch.nn.Parameter]]:
        return {"mlps": [*self.opacity_mlp.parameters(), *self.color_mlp.parameters(),
                         *self.covariance_mlp.parameters()],
                "grid": [self.grid.latent],
                "context": list(self.context.parameters())}

    def attributes(self) -> torch.Tensor:
        """All channels ``[N, C]`` in spec 3.1 order (feature, scaling, offsets)."""
        return torch.cat([self.feature, self.scaling, self.offsets.flatten(1)], 1)

    def context_inputs(self) -> torch.Tensor:
        """Integer grid features of every anchor and its parent, ``[N, 2W]`` in [-127, 127]
        (roots: parent half zero, spec 6.1)."""
        own = self.grid(self._own_lookup)
        parent = self.grid(self._parent_lookup) * (~self._is_root)[:, None]
        return torch.cat([own, parent], 1) * 127.0

    def predict(self, inputs: torch.Tensor):
        """``(mean, scale_idx, step)`` per channel, step in attribute units."""
        mean, scale_idx, step_idx = self.context(inputs)
        return mean, scale_idx, step_size(self.base_step, step_idx)

    def quantized_attributes(self, mode: str, subset: torch.Tensor | None = None, *,
                             pull_outliers: bool = True):
        """Attributes as rendering should see them, and their bits on ``subset``.

        ``mode``: ``"none"`` (raw, no rate), ``"noise"`` (uniform noise of one step around the
        value, HAC) or ``"round"`` (rounded around the predicted mean with a straight-through
        gradient, as the codec will). Returns ``(attrs [N, C], bits [n, C] or None)``.
        """
        x = self.attributes()
        if mode == "none":
            return x, None
        mean, scale_idx, step = self.predict(self.context_inputs())
        if mode == "noise":
            xq = x + (torch.rand_like(x) - 0.5) * step
        elif mode == "round":
            k = (x - mean) / step
            xq = mean + (k + (torch.floor(k + 0.5) - k).detach()) * step
        else:
            raise ValueError(f"unknown quantization mode {mode!r}")
        rows = slice(None) if subset is None else subset
        bits = rate_bits(xq[rows], mean[rows], scale_idx[rows], step[rows],
                         pull_outliers=pull_outliers)
        return xq, bits

    def split(self, attrs: torch.Tensor):
        dims = self.config.dims
        f, s = dims.feature, dims.scaling
        return attrs[:, :f], attrs[:, f:f + s], attrs[:, f + s:].reshape(-1, dims.num_offsets, 3)

    def gaussians(self, attrs: torch.Tensor, camera_center: torch.Tensor, lod: int
                  ) -> tuple[NeuralGaussians, torch.Tensor]:
        """Neural Gaussians of LoD ``lod`` and the anchor index (into all anchors) of each."""
        members = torch.nonzero(self.level <= lod).squeeze(1)
        feature, scaling, offsets = self.split(attrs[members])
        g = generate_gaussians_torch(self.positions[members], feature, scaling, offsets,
                                     camera_center, opacity_mlp=self.opacity_mlp,
                                     color_mlp=self.color_mlp,
                                     covariance_mlp=self.covariance_mlp,
                                     use_distance=self.config.use_distance)
        return g, members[g.anchor_index]

    def gaussian_means(self) -> np.ndarray:
        """``[N, K, 3]`` centres of every anchor's Gaussians (numpy, for growth)."""
        with torch.no_grad():
            s = torch.exp(self.scaling[:, :3])
            return (self.positions[:, None] + self.offsets * s[:, None]).cpu().numpy()

    def num_levels(self) -> int:
        return self.tree.frame.num_levels


#: Spec 3.1's bounds on the frame: ``base_depth <= 16`` and ``base_depth + L - 1 <= 21``.
MAX_BASE_DEPTH, MAX_FINEST_DEPTH = 16, 21


def level_sizes(points: np.ndarray, base_depth: int, num_levels: int) -> list[int]:
    """Anchors per level of the initial octree of ``points`` at ``base_depth`` (in the cube
    frame the trainer will use)."""
    frame = frame_for_points(points, base_depth, num_levels)
    return [len(level) for level in octree_from_points(points, frame)]


def check_base_depth(points: np.ndarray, base_depth: int, num_levels: int) -> list[int]:
    """The level sizes at ``base_depth``; raises :class:`TrainingError` (before any training)
    if the frame breaks spec 3.1's bounds or a level holds no more anchors than the one
    above it (the octree must grow strictly, or its LoDs repeat each other)."""
    finest = base_depth + num_levels - 1
    if not 0 <= base_depth <= MAX_BASE_DEPTH or finest > MAX_FINEST_DEPTH:
        raise TrainingError(
            f"base depth {base_depth} with {num_levels} levels is outside spec 3.1's bounds "
            f"(base depth 0..{MAX_BASE_DEPTH}, finest depth <= {MAX_FINEST_DEPTH})")
    sizes = level_sizes(points, base_depth, num_levels)
    flat = [k for k in range(1, num_levels) if sizes[k] <= sizes[k - 1]]
    if flat:
        k = flat[0]
        raise TrainingError(
            f"base depth {base_depth}: level {k + 1} holds {sizes[k]} anchors, no more than "
            f"level {k} ({sizes[k - 1]}); the initial points ({len(points)}) cannot fill "
            f"{num_levels} strictly growing levels at this depth (level sizes {sizes}): "
            f"choose fewer levels, a smaller base depth or denser initial points")
    return sizes


def default_base_depth(points: np.ndarray, num_levels: int, target_anchors: int) -> int:
    """The base depth whose finest level holds about ``target_anchors`` initial anchors, in a
    valid, strictly growing octree.

    The finest depth grows until its level holds ``target_anchors`` occupied voxels or stops
    growing (the points are all apart: a visual hull of 14,428 cells never reaches 15,000,
    and the old rule then ran to depth 21, base depth 17, every level the same voxels); then
    it shrinks until every level holds more anchors than the one above it.

    Raises:
        TrainingError: no base depth gives ``num_levels`` strictly growing levels.
    """
    points = np.asarray(points, np.float64)
    lowest = num_levels - 1
    highest = min(MAX_BASE_DEPTH + num_levels - 1, MAX_FINEST_DEPTH)
    if lowest > highest:
        raise TrainingError(f"{num_levels} levels do not fit spec 3.1's finest depth "
                            f"{MAX_FINEST_DEPTH}")
    counts: dict[int, int] = {}
    finest = lowest
    for depth in range(lowest, highest + 1):
        counts[depth] = level_sizes(points, depth - num_levels + 1, num_levels)[-1]
        finest = depth
        if counts[depth] >= target_anchors:
            break
        if depth > lowest and counts[depth] <= counts[depth - 1]:
            finest = depth - 1          # saturated: one more depth added nothing
            break
    for depth in range(finest, lowest - 1, -1):
        try:
            check_base_depth(points, depth - num_levels + 1, num_levels)
            return depth - num_levels + 1
        except TrainingError:
            continue
    check_base_depth(points, 0, num_levels)     # raises with the reason
    return 0


def offsets_from_points(tree: AnchorTree, points: np.ndarray, k: int, *, seed: int = 0,
                        levels=None) -> np.ndarray:
    """Initial offsets ``[N, K, 3] float32``: ``K`` of the points inside each anchor's voxel,
    in units of the voxel size (the initial offset scale), so every anchor's Gaussians start on
    the geometry its subtree covers (a root's spread over its whole voxel, not piled at its
    centre). Only anchors of ``levels`` (default all) get them; the others and anchors without
    points keep zero offsets."""
    points = np.asarray(points, np.float64)
    frame = tree.frame
    out = np.zeros((len(tree), k, 3), np.float32)
    rng = np.random.default_rng(seed)
    centres = anchor_positions(tree)
    for level in range(1, frame.num_levels + 1) if levels is None else levels:
        members = np.flatnonzero(tree.level == level)
        if not len(members):
            continue
        voxel = frame.root_voxel_size / 2.0 ** (level - 1)
        cells = np.floor((points - np.asarray(frame.origin)) / voxel).astype(np.int64)
        found = lookup(tree, level, cells)
        inside = found >= 0
        owner, pts = found[inside], points[inside]
        if not len(owner):
            continue
        order = np.argsort(owner, kind="stable")
        owner, pts = owner[order], pts[order]
        anchors, start, count = np.unique(owner, return_index=True, return_counts=True)
        pick = start[:, None] + (rng.random((len(anchors), k)) * count[:, None]).astype(np.int64)
        rel = (pts[pick] - centres[anchors][:, None]) / voxel
        out[anchors] = np.clip(rel, -0.5, 0.5)
    return out


def level_code(level: np.ndarray, num_levels: int, width: int) -> torch.Tensor:
    """Initial features ``[N, width]``: zero but for channel 0, which is ``+1`` for roots down to
    ``-1`` for the finest level, so the shared generation MLPs can tell coarse anchors (few,
    large, must cover their subtree alone) from fine ones from the first step."""
    feature = torch.zeros(len(level), width)
    if num_levels > 1:
        feature[:, 0] = torch.tensor(1.0 - 2.0 * (np.asarray(level) - 1) / (num_levels - 1))
    return feature
