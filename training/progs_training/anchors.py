"""Adaptive anchor adjustment on the octree (ProGS III-C, Algorithm 1): grow and prune.

Growth (Algorithm 1, thresholds as Octree-GS's ``anchor_growing``). Every neural Gaussian is
tested at the level ``l`` of its own anchor, against that level's threshold
``tau_l = tau * 2**(beta * (l - 1))`` (``beta`` = Octree-GS's ``update_ratio``, 0.5: finer
levels need a stronger signal, which keeps the fine levels from exploding):

- *significant* (``tau_l <= g < tau_(l+1)``): the voxel of level ``l`` that holds the Gaussian
  is a candidate anchor of level ``l``;
- *very significant* (``g >= tau_(l+1)``): the candidate moves to the finer level ``l + 1``
  (Octree-GS's ``candidate_ds_mask``); at the finest level it stays there.

Candidates are deduplicated per voxel (the strongest keeps its source anchor, whose feature
seeds the new one) and only free voxels are taken. Levels are visited fine to coarse, and a
candidate whose parent voxel is missing queues that parent as a candidate of the coarser
level (which queues its own parent in turn), instead of being dropped: the octree stays
strict and no significant candidate is lost.

Pruning. Anchors that were seen (``visits >= min_visits``) but whose Gaussians stayed nearly
transparent (mean accumulated opacity below ``min_opacity``), or that no training view ever
saw, are removed if they are leaves; visiting levels fine to coarse, a parent whose children
were all removed becomes a leaf and is judged by the same rule. Only leaves go, so the octree
stays strict.

``GrowthConfig(rule="every_level")`` keeps the previous rule for the ablation in
``training/README.md``: every significant Gaussian proposed its voxel at every level, with
thresholds growing towards the *coarse* levels, and an orphan was kept only when very
significant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from progs_codec.build import morton_codes

from .octree_ops import AnchorTree, child_counts, lookup, parent_index

__all__ = ["GrowthConfig", "PruneConfig", "Growth", "grow_anchors", "prune_anchors"]


@dataclass(frozen=True)
class GrowthConfig:
    """Thresholds of anchor growth (Scaffold-GS's and Octree-GS's ``tau`` = 0.0002, in NDC
    units of the screen gradient).

    Attributes:
        grad_threshold: ``tau`` of level 1.
        update_ratio: ``beta``; level ``l``'s threshold is ``tau * 2**(beta * (l - 1))``, and
            ``2**beta`` times it is *very significant* (Octree-GS: 0.5).
        min_visible_fraction: a Gaussian must have been visible in this fraction of the steps.
        max_new: cap on the candidate Gaussians of one adjustment (strongest first).
        rule: ``"own_level"`` (Algorithm 1, above) or ``"every_level"`` (the previous rule).
        very_factor, level_factor: the previous rule's parameters.
    """

    grad_threshold: float = 2e-4
    update_ratio: float = 0.5
    min_visible_fraction: float = 0.2
    max_new: int = 200_000
    rule: str = "own_level"
    very_factor: float = 2.0
    level_factor: float = 1.0


@dataclass(frozen=True)
class PruneConfig:
    min_opacity: float = 0.005
    min_visits_fraction: float = 0.5
    prune_unseen: bool = True


@dataclass(frozen=True, eq=False)
class Growth:
    """New anchors: ``coords [M, 3]``, ``level [M]`` and ``source [M]``, the old anchor whose
    Gaussian proposed each one (its feature seeds the new anchor's)."""

    coords: np.ndarray
    level: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return int(len(self.level))


def _unique_voxels(coords: np.ndarray, score: np.ndarray, source: np.ndarray, depth: int):
    """One row per voxel, keeping the highest-scoring candidate."""
    if not len(coords):
        return coords, score, source
    order = np.argsort(-score, kind="stable")
    coords, score, source = coords[order], score[order], source[order]
    _, first = np.unique(morton_codes(coords, depth), return_index=True)
    return coords[first], score[first], source[first]


def grow_anchors(tree: AnchorTree, gaussian_means: np.ndarray, grad_mean: np.ndarray,
                 visible_fraction: np.ndarray, config: GrowthConfig = GrowthConfig()) -> Growth:
    """Algorithm 1: the anchors to add (module docstring), fine to coarse, with missing
    parents queued.

    Args:
        tree: current anchors.
        gaussian_means: ``[N, K, 3]`` centres of every anchor's neural Gaussians.
        grad_mean: ``[N, K]`` mean screen-gradient norm of each Gaussian while visible.
        visible_fraction: ``[N, K]`` fraction of training steps it was visible in.

    Returns:
        :class:`Growth`; ``tree.extended(growth.coords, growth.level)`` is strict.
    """
    if config.rule == "every_level":
        return _grow_every_level(tree, gaussian_means, grad_mean, visible_fraction, config)
    if config.rule != "own_level":
        raise ValueError(f"unknown growth rule {config.rule!r}")
    frame, num_levels = tree.frame, tree.frame.num_levels
    n, k_off = grad_mean.shape
    own_level = np.repeat(tree.level, k_off).reshape(n, k_off)
    step = 2.0 ** config.update_ratio
    tau = config.grad_threshold * step ** (own_level - 1.0)
    cand = (grad_mean >= tau) & (visible_fraction >= config.min_visible_fraction)
    anchor_of = np.repeat(np.arange(n), k_off).reshape(n, k_off)
    pos, grad, src = gaussian_means[cand], grad_mean[cand], anchor_of[cand]
    level = own_level[cand] + (grad_mean[cand] >= tau[cand] * step)    # very significant
    level = np.minimum(level, num_levels)
    if len(grad) > config.max_new:
        top = np.argsort(-grad, kind="stable")[: config.max_new]
        pos, grad, src, level = pos[top], grad[top], src[top], level[top]
    origin = np.asarray(frame.origin, np.float64)
    queued = np.zeros((0, 3), np.int64)
    queued_source = np.zeros(0, np.int64)
    new_coords, new_level, new_source = [], [], []
    for k in range(num_levels, 0, -1):
        depth = frame.depth(k)
        sel = level == k
        vox = np.floor((pos[sel] - origin) / frame.voxel_size(k)).astype(np.int64)
        inside = ((vox >= 0) & (vox < 1 << depth)).all(1)
        vox, score, source = vox[inside], grad[sel][inside], src[sel][inside]
        # Queued parents rank above every gradient candidate of their voxel.
        vox = np.concatenate([vox, queued])
        score = np.concatenate([score, np.full(len(queued), np.inf)])
        source = np.concatenate([source, queued_source])
        vox, score, source = _unique_voxels(vox, score, source, depth)
        free = lookup(tree, k, vox) < 0
        vox, source = vox[free], source[free]
        queued, queued_source = np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
        if k > 1 and len(vox):
            missing = lookup(tree, k - 1, vox >> 1) < 0
            queued, queued_source = vox[missing] >> 1, source[missing]
        new_coords.append(vox)
        new_level.append(np.full(len(vox), k, np.int64))
        new_source.append(source)
    return Growth(coords=np.concatenate(new_coords).reshape(-1, 3).astype(np.int64),
                  level=np.concatenate(new_level), source=np.concatenate(new_source))


def _grow_every_level(tree: AnchorTree, gaussian_means: np.ndarray, grad_mean: np.ndarray,
                      visible_fraction: np.ndarray, config: GrowthConfig) -> Growth:
    """The previous rule (module docstring), kept for the ablation."""
    frame, num_levels = tree.frame, tree.frame.num_levels
    n, k_off = grad_mean.shape
    cand = (grad_mean > config.grad_threshold) & (visible_fraction >= config.min_visible_fraction)
    anchor_of = np.repeat(np.arange(n), k_off).reshape(n, k_off)
    pos, grad, src = gaussian_means[cand], grad_mean[cand], anchor_of[cand]
    if len(grad) > config.max_new:
        top = np.argsort(-grad, kind="stable")[: config.max_new]
        pos, grad, src = pos[top], grad[top], src[top]
    origin = np.asarray(frame.origin, np.float64)
    forced_coords = np.zeros((0, 3), np.int64)
    forced_source = np.zeros(0, np.int64)
    new_coords, new_level, new_source = [], [], []
    for k in range(num_levels, 0, -1):
        depth = frame.depth(k)
        tau = config.grad_threshold * 2.0 ** ((num_levels - k) * config.level_factor)
        sel = grad > tau
        vox = np.floor((pos[sel] - origin) / frame.voxel_size(k)).astype(np.int64)
        inside = ((vox >= 0) & (vox < 1 << depth)).all(1)
        vox, score, source = vox[inside], grad[sel][inside], src[sel][inside]
        # Forced parents rank above every gradient candidate of their voxel.
        vox = np.concatenate([vox, forced_coords])
        score = np.concatenate([score, np.full(len(forced_coords), np.inf)])
        source = np.concatenate([source, forced_source])
        vox, score, source = _unique_voxels(vox, score, source, depth)
        free = lookup(tree, k, vox) < 0
        vox, score, source = vox[free], score[free], source[free]
        if k > 1:
            has_parent = lookup(tree, k - 1, vox >> 1) >= 0
            accept = has_parent | (score > config.very_factor * tau)
            orphan = accept & ~has_parent
            forced_coords, forced_source = vox[orphan] >> 1, source[orphan]
            vox, source = vox[accept], source[accept]
        new_coords.append(vox)
        new_level.append(np.full(len(vox), k, np.int64))
        new_source.append(source)
    return Growth(coords=np.concatenate(new_coords).reshape(-1, 3).astype(np.int64),
                  level=np.concatenate(new_level), source=np.concatenate(new_source))


def prune_anchors(tree: AnchorTree, opacity_mean: np.ndarray, visit_fraction: np.ndarray,
                  config: PruneConfig = PruneConfig()) -> np.ndarray:
    """The anchors to keep, ``[N] bool``: low-opacity (or never seen) leaves go, fine to
    coarse, so parents emptied of children are judged too. At least one root stays."""
    parents = parent_index(tree)
    children = child_counts(tree, parents)
    seen = visit_fraction >= config.min_visits_fraction
    weak = seen & (opacity_mean < config.min_opacity)
    if config.prune_unseen:
        weak |= visit_fraction == 0
    keep = np.ones(len(tree), bool)
    for k in range(tree.frame.num_levels, 0, -1):
        remove = (tree.level == k) & weak & (children == 0)
        if k == 1 and remove.sum() == (tree.level == 1).sum():
            remove[np.flatnonzero(remove)[np.argmax(opacity_mean[remove])]] = False
        keep &= ~remove
        gone_parents = parents[remove]
        np.subtract.at(children, gone_parents[gone_parents >= 0], 1)
    return keep
