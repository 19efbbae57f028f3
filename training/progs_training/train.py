"""The training loop: photometric LoD loss, anchor adjustment, quantization and rate phases.

Schedule (HAC's code, scaled to the iteration budget ``T``; HAC: ``T`` = 30,000): plain
training until ``noise_from T`` (HAC 3,000: 0.1); then attributes see uniform quantization
noise of one predicted step; from ``rate_from T`` (HAC 10,000: 1/3) the rate loss
``lambda * (R_attr + R_hash / (N C))`` (ProGS eq. 18, HAC's ``bit_per_param + bit_hash_grid /
denom``: bits per attribute value plus the hash grid's own bits per value) trains the grid and
context model along with the anchors; from ``qat_from T`` (ours; HAC has no such phase) the
context model runs fake-quantized (int8 weights, 8-bit activations, rounded indices) and
attributes are rounded around the predicted mean, as the codec will. Anchors grow and are
pruned every ``adjust_every`` steps between ``grow_from T`` and ``grow_until T`` (HAC 1,500 to
15,000: 0.05 to 0.5; Algorithm 1, :mod:`.anchors`). Learning rates start at HAC's and decay
exponentially to HAC's final values (:data:`HAC_LEARNING_RATES`).

The parent-child InfoNCE (ProGS eq. 10, dot-product similarity of anchor features,
:func:`.losses.info_nce_loss`) is the coarse-to-fine term of eq. 12: on from the start of
anchor adjustment (``infonce_from``, default ``grow_from``), when the octree starts changing.

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
from .hashgrid_torch import hash_rate_bits
from .losses import info_nce_loss, photometric_loss, psnr, volume_loss
from .machine import pick_device
from .model import AnchorModel, ModelConfig, check_base_depth, default_base_depth
from .octree_ops import check_strict, initial_tree
from .render_torch import rasterize

__all__ = ["TrainConfig", "TrainResult", "Phase", "schedule", "train",
           "HAC_LEARNING_RATES", "PREVIOUS_LEARNING_RATES"]


#: HAC's learning rates per parameter group, ``(name, initial, final)``: exponential decay
#: from the first to the second over the run (HAC's ``get_expon_lr_func``, without its delay).
#: Anchor features and scalings keep a constant rate, as in Scaffold-GS and HAC.
HAC_LEARNING_RATES: tuple[tuple[str, float, float], ...] = (
    ("feature", 0.0075, 0.0075), ("scaling", 0.007, 0.007), ("offsets", 0.01, 0.0001),
    ("opacity_mlp", 0.002, 0.00002), ("covariance_mlp", 0.004, 0.004),
    ("color_mlp", 0.008, 0.00005), ("grid", 0.005, 0.00001), ("context", 0.005, 0.00001))

#: The rates before the change to HAC's (every group decayed to 5% of its start), kept for
#: the ablation in ``training/README.md``.
PREVIOUS_LEARNING_RATES: tuple[tuple[str, float, float], ...] = (
    ("feature", 0.0075, 0.000375), ("scaling", 0.007, 0.00035), ("offsets", 0.01, 0.0005),
    ("opacity_mlp", 0.004, 0.0002), ("covariance_mlp", 0.004, 0.0002),
    ("color_mlp", 0.004, 0.0002), ("grid", 0.005, 0.00025), ("context", 0.002, 0.0001))


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs besides its data. Fractions are of ``iterations``.

    ``hash_rate``: ``R_hash`` in the rate loss (eq. 18). ``rate_from_noise``: the previous
    trainer's rate loss, on from the noise phase (``noise_from``) instead of ``rate_from``.
    ``pull_outliers``: escapes' bits also pull the values (:func:`.context_torch.rate_bits`). ``infonce_similarity``: ``"dot"``
    (eq. 10) or ``"cosine"`` (the previous cosine / 0.1); ``infonce_from``: fraction of the
    run where the InfoNCE term starts (``None``: ``grow_from``, eq. 12).
    """

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
    infonce_similarity: str = "dot"
    infonce_from: float | None = None
    hash_rate: bool = True
    rate_from_noise: bool = False
    pull_outliers: bool = False
    rate_batch: int = 4096
    noise_from: float = 0.1
    rate_from: float = 1 / 3
    qat_from: float = 0.85
    grow_from: float = 0.05
    grow_until: float = 0.5
    adjust_every: int = 0
    growth: GrowthConfig = GrowthConfig()
    prune: PruneConfig = PruneConfig()
    learning_rates: tuple[tuple[str, float, float], ...] = HAC_LEARNING_RATES
    seed: int = 0
    device: str = "auto"

    def steps(self, fraction: float) -> int:
        return int(round(fraction * self.iterations))

    @property
    def adjust_interval(self) -> int:
        return self.adjust_every or max(25, self.iterations // 25)

    @property
    def infonce_start(self) -> float:
        return self.grow_from if self.infonce_from is None else self.infonce_from


@dataclass(eq=False)
class TrainResult:
    model: AnchorModel
    frame: SceneFrame
    log: list[dict]
    seconds: float


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
    params = {"feature": [model.feature], "scaling": [model.scaling],
              "offsets": [model.offsets],
              "opacity_mlp": list(model.opacity_mlp.parameters()),
              "covariance_mlp": list(model.covariance_mlp.parameters()),
              "color_mlp": list(model.color_mlp.parameters()),
              "grid": [model.grid.latent], "context": list(model.context.parameters())}
    rates = {name: (first, last) for name, first, last in config.learning_rates}
    if set(rates) != set(params):
        raise ValueError(f"learning_rates must name exactly {sorted(params)}, got {sorted(rates)}")
    groups = [{"params": params[name], "lr": rates[name][0], "name": name,
               "initial_lr": rates[name][0], "final_lr": rates[name][1]} for name in params]
    return torch.optim.Adam(groups, eps=1e-15)


def _set_lr(optimizer, progress: float) -> None:
    """Exponential (log-linear) decay of each group from its initial to its final rate."""
    for g in optimizer.param_groups:
        g["lr"] = g["initial_lr"] * (g["final_lr"] / g["initial_lr"]) ** min(progress, 1.0)


def build_model(data: SceneData, config: TrainConfig) -> AnchorModel:
    """The initial strict octree of the data's points and a fresh model on it."""
    base_depth = config.base_depth
    if base_depth is None:
        base_depth = default_base_depth(data.points, config.num_levels, config.target_anchors)
    check_base_depth(data.points, base_depth, config.num_levels)
    frame = frame_for_points(data.points, base_depth, config.num_levels,
                             convention=data.convention)
    tree = initial_tree(data.points, frame)
    check_strict(tree)
    return AnchorModel(tree, config.model, device=pick_device(config.device), seed=config.seed,
                       points=data.points)


@dataclass(frozen=True)
class Phase:
    """What the schedule (module docstring) asks of one step.

    Attributes:
        mode: how attributes are seen: ``"none"``, ``"noise"`` (uniform noise of one
            predicted step) or ``"round"`` (rounded around the predicted mean).
        qat: the context model runs fake-quantized.
        calibrate: recalibrate its activation scales this step (every 50 steps of QAT).
        with_rate: the rate loss is on.
        growing: inside the growth window: collect statistics, adjust anchors every
            ``adjust_interval`` steps.
        infonce: the parent-child InfoNCE term is on (from the start of adjustment).
    """

    mode: str
    qat: bool
    calibrate: bool
    with_rate: bool
    growing: bool
    infonce: bool = False


def schedule(config: TrainConfig, step: int) -> Phase:
    """The :class:`Phase` of step ``step`` (1-based) of a run of ``config.iterations``."""
    qat_from = config.steps(config.qat_from)
    qat = step > qat_from
    return Phase(
        mode="round" if qat else "noise" if step > config.steps(config.noise_from) else "none",
        qat=qat,
        calibrate=qat and (step - qat_from) % 50 == 1,
        with_rate=step > config.steps(config.noise_from if config.rate_from_noise
                                      else config.rate_from) and config.lambda_rate > 0,
        growing=config.steps(config.grow_from) < step <= config.steps(config.grow_until),
        infonce=config.infonce_weight > 0 and step > config.steps(config.infonce_start))


def _step_lods(config: TrainConfig, num_levels: int, rng: np.random.Generator) -> list[int]:
    """The LoDs one step renders: the full LoD first, then the coarse ones (all of them, or
    ``coarse_lods`` drawn at random)."""
    lods = [num_levels]
    if num_levels > 1 and config.coarse_lod_weight > 0:
        coarse = np.arange(1, num_levels)
        if 0 < config.coarse_lods < len(coarse):
            coarse = rng.choice(coarse, config.coarse_lods, replace=False)
        lods += [int(k) for k in coarse]
    return lods


class _Run:
    """The state of one training run: model, optimizer, views, statistics and log."""

    def __init__(self, data: SceneData, config: TrainConfig):
        self.start = time.time()
        torch.manual_seed(config.seed)                 # before the model's initial weights
        self.rng = np.random.default_rng(config.seed)
        self.data, self.config = data, config
        self.model = build_model(data, config)
        dev = self.model.device
        self.background = torch.tensor(data.background, dtype=torch.float32, device=dev)
        self.targets = [torch.tensor(v.image, device=dev) for v in data.train]
        self.centers = [torch.tensor(v.camera.center, dtype=torch.float32, device=dev)
                        for v in data.train]
        self.optimizer = _optimizer(self.model, config)
        self.stats = self._fresh_stats()
        self.log: list[dict] = []
        self.lod_psnr: dict[int, float] = {}

    def _fresh_stats(self) -> _Stats:
        return _Stats(len(self.model.tree), self.config.model.dims.num_offsets,
                      self.model.device)

    def step(self, step: int) -> dict:
        """One optimization step, then growth and pruning, then logging; the step's info."""
        phase = schedule(self.config, step)
        self._prepare(step, phase)
        info, loss, main, view = self._optimize(phase)
        if phase.growing:
            self._grow_and_prune(step, main, view, info)
        self._record(step, loss, info)
        return info

    def _prepare(self, step: int, phase: Phase) -> None:
        """Learning rates of this step; switch on and recalibrate the fake-quantized context
        model when the schedule says so."""
        _set_lr(self.optimizer, step / self.config.iterations)
        context = self.model.context
        if phase.qat and not context.quantize:
            context.quantize = True
        if phase.calibrate:
            with torch.no_grad():
                context.calibrate(self.model.context_inputs())

    def _optimize(self, phase: Phase):
        """Render a random view at every LoD of the step, sum the losses, take a step.

        Returns ``(info, loss, main, view)``: ``main`` is ``(rendered, gaussians, anchor_of)``
        of the full LoD, for the growth statistics.
        """
        model, config, dev = self.model, self.config, self.model.device
        subset = None
        if phase.with_rate and len(model.tree) > config.rate_batch:
            subset = torch.randint(len(model.tree), (config.rate_batch,), device=dev)
        attrs, bits = model.quantized_attributes(phase.mode, subset,
                                                 pull_outliers=config.pull_outliers)
        index = int(self.rng.integers(len(self.data.train)))
        view = self.data.train[index]
        lods = _step_lods(config, model.tree.frame.num_levels, self.rng)
        loss = torch.zeros((), device=dev)
        main = None
        info: dict = {}
        for i, lod in enumerate(lods):
            g, anchor_of = model.gaussians(attrs, self.centers[index], lod)
            rendered = rasterize(g.means, g.quats, g.scales, g.opacities, g.colors, view.camera,
                                 background=self.background)
            weight = 1.0 if i == 0 else _coarse_weight(config, lod)
            loss = loss + weight * photometric_loss(rendered.image, self.targets[index],
                                                    ssim_weight=config.ssim_weight)
            if i == 0:
                main = (rendered, g, anchor_of)
                loss = loss + config.volume_weight * volume_loss(g.scales)
            self._track_psnr(lod, psnr(rendered.image.detach(), self.targets[index]))
        if phase.infonce:
            loss = loss + config.infonce_weight * info_nce_loss(
                model.feature, model.parent, batch=config.infonce_batch,
                similarity=config.infonce_similarity)
        if bits is not None and phase.with_rate:
            rate = bits.mean()
            info["bits_per_value"] = float(rate.detach())
            if config.hash_rate:
                # eq. 18 / HAC: the grid's bits spread over every attribute value
                hash_bits = hash_rate_bits(model.grid)
                rate = rate + hash_bits / (len(model.tree) * model.config.dims.channels)
                info["hash_bits"] = float(hash_bits.detach())
            loss = loss + config.lambda_rate * rate
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return info, loss, main, view

    def _track_psnr(self, lod: int, value: float) -> None:
        """Running PSNR per LoD (exponential average, weight 0.1)."""
        old = self.lod_psnr.get(lod)
        self.lod_psnr[lod] = value if old is None else 0.9 * old + 0.1 * value

    def _grow_and_prune(self, step: int, main, view, info: dict) -> None:
        """Collect the full LoD's screen gradients and opacities; every ``adjust_interval``
        steps grow and prune the anchors (:func:`_adjust`) and start new statistics."""
        self.stats.add(main[0], main[1], main[2], view.camera.width, view.camera.height)
        if step % self.config.adjust_interval == 0:
            info["adjust"] = _adjust(self.model, self.stats, self.optimizer, self.config,
                                     grow=True)
            self.stats = self._fresh_stats()

    def _record(self, step: int, loss: torch.Tensor, info: dict) -> None:
        """Complete the step's info, log about 50 steps of the run (and every adjustment),
        stop on a non-finite loss."""
        iters = self.config.iterations
        info.update(step=step, loss=float(loss.detach()), anchors=len(self.model.tree),
                    psnr={k: round(v, 2) for k, v in sorted(self.lod_psnr.items())})
        if "adjust" in info or step % max(1, iters // 50) == 0 or step == iters:
            self.log.append({**info, "seconds": round(time.time() - self.start, 2)})
        if not math.isfinite(info["loss"]):
            raise TrainingError(f"loss became {info['loss']} at step {step}")

    def finish(self) -> TrainResult:
        """Calibrate the context model on the final anchors; the result."""
        self.model.context.calibrate(self.model.context_inputs().detach())
        return TrainResult(model=self.model, frame=self.model.tree.frame, log=self.log,
                           seconds=time.time() - self.start)


def train(data: SceneData, config: TrainConfig = TrainConfig(), *,
          progress: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train a ProGS model on ``data``.

    Args:
        data: views and initial points (:func:`progs_training.data.load_scene`).
        config: the run's settings.
        progress: called as ``progress(step, info)`` after every step (the CLI's tqdm bar).

    Returns:
        :class:`TrainResult` with the model (float; export with :mod:`.export`) and a log.

    Raises:
        TrainingError: no training views, or the loss stopped being finite.
    """
    if not data.train:
        raise TrainingError("no training views")
    run = _Run(data, config)
    for step in range(1, config.iterations + 1):
        info = run.step(step)
        if progress is not None:
            progress(step, info)
    return run.finish()
