"""The training loop: photometric LoD loss, anchor adjustment, quantization and rate phases.

Schedule (HAC's order, scaled to the iteration budget ``T``; short budgets start noise later): plain training until ``noise_from T``;
then attributes see uniform quantization noise of one predicted step; from ``rate_from T`` the
entropy loss ``lambda * bits per attribute`` trains the grid and context model along with the
anchors; from ``qat_from T`` the context model runs fake-quantized (int8 weights, 8-bit
activations, rounded indices) and attributes are rounded around the predicted mean, as the
codec will. Anchors grow and are pruned every ``adjust_every`` steps between ``grow_from T``
and ``grow_until T`` (Algorithm 1, :mod:`.anchors`).

Each step renders the full LoD (weight 1) and every coarser LoD ``1..L-1`` (weight
``coarse_lod_weights[k - 1]`` for LoD ``k`` where given, else ``coarse_lod_weight``;
``coarse_lods = n > 0`` draws only ``n`` of them per step), so every
prefix of the stream is trained to look right. Coarse LoDs have few Gaussians, so rendering all
of them costs little; with one coarse LoD drawn per step, LoD 1 (8 anchors on the plant) got a
tenth of the full LoD's weight and rendered nearly black.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from progs_codec import SceneFrame
from progs_codec.build import frame_for_points

from .anchors import GrowthConfig, PruneConfig, grow_anchors, prune_anchors
from .data import SceneData
from .errors import TrainingError
from .losses import info_nce_loss, photometric_loss, psnr, volume_loss
from .model import AnchorModel, ModelConfig, default_base_depth
from .octree_ops import check_strict, initial_tree
from .render_torch import rasterize

__all__ = ["TrainConfig", "TrainResult", "train", "pick_device"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs besides its data. Fractions are of ``iterations``."""

    iterations: int = 3000
    num_levels: int = 5
    base_depth: int | None = None
    target_anchors: int = 4000
    lambda_rate: float = 0.002
    model: ModelConfig = field(default_factory=ModelConfig)
    coarse_lod_weight: float = 0.5
    coarse_lod_weights: tuple[float, ...] = (1.0, 0.7)
    coarse_lods: int = 0
    ssim_weight: float = 0.2
    volume_weight: float = 0.01
    infonce_weight: float = 0.01
    infonce_batch: int = 256
    rate_batch: int = 4096
    noise_from: float = 0.3
    rate_from: float = 0.5
    qat_from: float = 0.85
    grow_from: float = 0.05
    grow_until: float = 0.6
    adjust_every: int = 0
    growth: GrowthConfig = GrowthConfig()
    prune: PruneConfig = PruneConfig()
    lr_feature: float = 0.0075
    lr_scaling: float = 0.007
    lr_offsets: float = 0.01
    lr_mlps: float = 0.004
    lr_grid: float = 0.005
    lr_context: float = 0.002
    lr_final_factor: float = 0.05
    seed: int = 0
    device: str = "auto"

    def steps(self, fraction: float) -> int:
        return int(round(fraction * self.iterations))

    @property
    def adjust_interval(self) -> int:
        return self.adjust_every or max(25, self.iterations // 25)


@dataclass(eq=False)
class TrainResult:
    model: AnchorModel
    frame: SceneFrame
    log: list[dict]
    seconds: float


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class _Stats:
    """Per-Gaussian gradient and per-anchor opacity accumulators between adjustments."""

    def __init__(self, n: int, k: int, device):
        self.grad_sum = torch.zeros(n, k, device=device)
        self.grad_count = torch.zeros(n, k, device=device)
        self.opacity_sum = torch.zeros(n, device=device)
        self.visits = torch.zeros(n, device=device)
        self.steps = 0

    def add(self, rendered, g, anchor_of, width, height) -> None:
        ids, norm = rendered.screen_gradients(width, height)
        anchor, offset = anchor_of[ids], g.offset_index[ids]
        self.grad_sum.index_put_((anchor, offset), norm, accumulate=True)
        self.grad_count.index_put_((anchor, offset), torch.ones_like(norm), accumulate=True)
        seen = torch.zeros_like(self.visits, dtype=torch.bool)
        seen[anchor] = True
        opacity = torch.zeros_like(self.opacity_sum).index_add_(0, anchor_of,
                                                               g.opacities.detach())
        self.opacity_sum[seen] += opacity[seen]
        self.visits[seen] += 1
        self.steps += 1


def _replace_anchor_params(optimizer: torch.optim.Optimizer, model: AnchorModel,
                           old: list[torch.nn.Parameter], keep: torch.Tensor,
                           fresh: list[torch.Tensor]) -> None:
    """Swap the anchor parameters in ``optimizer``, keeping Adam state of kept anchors."""
    for group in optimizer.param_groups:
        for i, p in enumerate(group["params"]):
            for j, (o, new) in enumerate(zip(old, model.anchor_parameters())):
                if p is o:
                    state = optimizer.state.pop(o, None)
                    if state:
                        for key in ("exp_avg", "exp_avg_sq"):
                            state[key] = torch.cat([state[key][keep],
                                                    torch.zeros_like(fresh[j])])
                        optimizer.state[new] = state
                    group["params"][i] = new


def _adjust(model: AnchorModel, stats: _Stats, optimizer, config: TrainConfig,
            grow: bool) -> dict:
    """Grow (Algorithm 1) then prune; returns counts for the log."""
    tree = model.tree
    steps = max(stats.steps, 1)
    grad_mean = (stats.grad_sum / stats.grad_count.clamp_min(1)).cpu().numpy()
    visible = (stats.grad_count / steps).cpu().numpy()
    added = 0
    old = model.anchor_parameters()
    feature, scaling, offsets = (p.detach() for p in old)
    keep_all = torch.ones(len(tree), dtype=torch.bool, device=feature.device)
    if grow:
        growth = grow_anchors(tree, model.gaussian_means(), grad_mean, visible, config.growth)
        if len(growth):
            added = len(growth)
            source = torch.tensor(growth.source, device=feature.device)
            voxel = tree.frame.root_voxel_size / np.exp2(growth.level - 1)
            new_scaling = torch.tensor(np.log(voxel), dtype=torch.float32,
                                       device=feature.device)[:, None].repeat(1, 6)
            fresh = [feature[source], new_scaling,
                     torch.zeros(added, *offsets.shape[1:], device=feature.device)]
            tree = tree.extended(growth.coords, growth.level)
            model.set_anchors(tree, torch.cat([feature, fresh[0]]),
                              torch.cat([scaling, fresh[1]]), torch.cat([offsets, fresh[2]]))
            _replace_anchor_params(optimizer, model, old, keep_all, fresh)
            check_strict(tree)
    # Pruning judges the anchors that were there during the whole window.
    n_old = len(stats.visits)
    opacity_mean = np.zeros(len(tree))
    visit_fraction = np.ones(len(tree))
    opacity_mean[:n_old] = (stats.opacity_sum / stats.visits.clamp_min(1)).cpu().numpy()
    opacity_mean[n_old:] = np.inf
    visit_fraction[:n_old] = (stats.visits / steps).cpu().numpy()
    keep = prune_anchors(tree, opacity_mean, visit_fraction, config.prune)
    removed = int((~keep).sum())
    if removed:
        old = model.anchor_parameters()
        keep_t = torch.tensor(keep, device=model.device)
        tree = tree.subset(keep)
        model.set_anchors(tree, *(p.detach()[keep_t] for p in old))
        _replace_anchor_params(optimizer, model, old, keep_t,
                               [p.detach()[:0] for p in old])
        check_strict(tree)
    return {"added": added, "pruned": removed, "anchors": len(tree),
            "per_level": tree.level_counts()}


def _coarse_weight(config: TrainConfig, lod: int) -> float:
    weights = config.coarse_lod_weights
    return weights[lod - 1] if lod <= len(weights) else config.coarse_lod_weight


def _optimizer(model: AnchorModel, config: TrainConfig) -> torch.optim.Optimizer:
    nets = model.network_parameters()
    groups = [{"params": [model.feature], "lr": config.lr_feature, "name": "feature"},
              {"params": [model.scaling], "lr": config.lr_scaling, "name": "scaling"},
              {"params": [model.offsets], "lr": config.lr_offsets, "name": "offsets"},
              {"params": nets["mlps"], "lr": config.lr_mlps, "name": "mlps"},
              {"params": nets["grid"], "lr": config.lr_grid, "name": "grid"},
              {"params": nets["context"], "lr": config.lr_context, "name": "context"}]
    for g in groups:
        g["initial_lr"] = g["lr"]
    return torch.optim.Adam(groups, eps=1e-15)


def _set_lr(optimizer, progress: float, final_factor: float) -> None:
    """Exponential decay from each group's initial rate to ``final_factor`` times it."""
    for g in optimizer.param_groups:
        g["lr"] = g["initial_lr"] * final_factor ** progress


def build_model(data: SceneData, config: TrainConfig) -> AnchorModel:
    """The initial strict octree of the data's points and a fresh model on it."""
    base_depth = config.base_depth
    if base_depth is None:
        base_depth = default_base_depth(data.points, config.num_levels, config.target_anchors)
    frame = frame_for_points(data.points, base_depth, config.num_levels,
                             convention=data.convention)
    tree = initial_tree(data.points, frame)
    check_strict(tree)
    return AnchorModel(tree, config.model, device=pick_device(config.device), seed=config.seed,
                       points=data.points)


def train(data: SceneData, config: TrainConfig = TrainConfig(), *,
          progress: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train a ProGS model on ``data``.

    Args:
        data: views and initial points (:func:`progs_training.data.load_scene`).
        config: the run's settings.
        progress: called as ``progress(step, info)`` after every step (the CLI's tqdm bar).

    Returns:
        :class:`TrainResult` with the model (float; export with :mod:`.export`) and a log.
    """
    if not data.train:
        raise TrainingError("no training views")
    start = time.time()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = build_model(data, config)
    dev = model.device
    frame = model.tree.frame
    num_levels = frame.num_levels
    background = torch.tensor(data.background, dtype=torch.float32, device=dev)
    targets = [torch.tensor(v.image, device=dev) for v in data.train]
    centers = [torch.tensor(v.camera.center, dtype=torch.float32, device=dev) for v in data.train]
    optimizer = _optimizer(model, config)
    stats = _Stats(len(model.tree), config.model.dims.num_offsets, dev)
    log: list[dict] = []
    lod_psnr: dict[int, float] = {}
    iters = config.iterations
    for step in range(1, iters + 1):
        _set_lr(optimizer, step / iters, config.lr_final_factor)
        qat = step > config.steps(config.qat_from)
        if qat and not model.context.quantize:
            model.context.quantize = True
        if qat and (step - config.steps(config.qat_from)) % 50 == 1:
            with torch.no_grad():
                model.context.calibrate(model.context_inputs())
        mode = "round" if qat else "noise" if step > config.steps(config.noise_from) else "none"
        with_rate = step > config.steps(config.rate_from) and config.lambda_rate > 0
        subset = None
        if with_rate and len(model.tree) > config.rate_batch:
            subset = torch.randint(len(model.tree), (config.rate_batch,), device=dev)
        attrs, bits = model.quantized_attributes(mode, subset)

        index = int(rng.integers(len(data.train)))
        view = data.train[index]
        lods = [num_levels]
        if num_levels > 1 and config.coarse_lod_weight > 0:
            coarse = np.arange(1, num_levels)
            if 0 < config.coarse_lods < len(coarse):
                coarse = rng.choice(coarse, config.coarse_lods, replace=False)
            lods += [int(k) for k in coarse]
        loss = torch.zeros((), device=dev)
        main = None
        info: dict = {}
        for i, lod in enumerate(lods):
            g, anchor_of = model.gaussians(attrs, centers[index], lod)
            rendered = rasterize(g.means, g.quats, g.scales, g.opacities, g.colors, view.camera,
                                 background=background)
            weight = 1.0 if i == 0 else _coarse_weight(config, lod)
            loss = loss + weight * photometric_loss(rendered.image, targets[index],
                                                    ssim_weight=config.ssim_weight)
            if i == 0:
                main = (rendered, g, anchor_of)
                loss = loss + config.volume_weight * volume_loss(g.scales)
            value = psnr(rendered.image.detach(), targets[index])
            lod_psnr[lod] = value if lod not in lod_psnr else 0.9 * lod_psnr[lod] + 0.1 * value
        if config.infonce_weight > 0:
            loss = loss + config.infonce_weight * info_nce_loss(
                model.feature, model.parent, batch=config.infonce_batch)
        if bits is not None:
            rate = bits.mean()
            loss = loss + config.lambda_rate * rate
            info["bits_per_value"] = float(rate.detach())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        growing = config.steps(config.grow_from) < step <= config.steps(config.grow_until)
        if growing:
            stats.add(main[0], main[1], main[2], view.camera.width, view.camera.height)
            if step % config.adjust_interval == 0:
                info["adjust"] = _adjust(model, stats, optimizer, config, grow=True)
                stats = _Stats(len(model.tree), config.model.dims.num_offsets, dev)
        info.update(step=step, loss=float(loss.detach()), anchors=len(model.tree),
                    psnr={k: round(v, 2) for k, v in sorted(lod_psnr.items())})
        if "adjust" in info or step % max(1, iters // 50) == 0 or step == iters:
            log.append({**info, "seconds": round(time.time() - start, 2)})
        if not math.isfinite(info["loss"]):
            raise TrainingError(f"loss became {info['loss']} at step {step}")
        if progress is not None:
            progress(step, info)
    model.context.calibrate(model.context_inputs().detach())
    return TrainResult(model=model, frame=frame, log=log, seconds=time.time() - start)
