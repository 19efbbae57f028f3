"""Anchor octree bookkeeping during training: one flat set of anchors of every level.

The trainer keeps anchors of all levels in one array (any order); ``coords[i]`` is the voxel of
anchor ``i`` at the depth of its level ``level[i]`` (1-based, spec 3.1). These pure functions
find parents and children and check that the octree stays strict (every anchor of level
``k > 1`` has its parent at level ``k - 1``, no two anchors of a level share a voxel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from progs_codec import SceneFrame
from progs_codec.build import morton_codes, octree_from_points

from .errors import TrainingError

__all__ = ["AnchorTree", "initial_tree", "lookup", "parent_index", "child_counts",
           "strictness_problem", "check_strict", "anchor_positions"]


@dataclass(frozen=True, eq=False)
class AnchorTree:
    """Anchors of every level: ``coords [N, 3] int64`` at their level's depth, ``level [N]
    int64`` (1-based), in the octree of ``frame``."""

    frame: SceneFrame
    coords: np.ndarray
    level: np.ndarray

    def __len__(self) -> int:
        return int(len(self.level))

    def level_counts(self) -> list[int]:
        return [int((self.level == k).sum()) for k in range(1, self.frame.num_levels + 1)]

    def subset(self, keep: np.ndarray) -> AnchorTree:
        return AnchorTree(self.frame, self.coords[keep], self.level[keep])

    def extended(self, coords: np.ndarray, level: np.ndarray) -> AnchorTree:
        """This tree with anchors appended (new ones last)."""
        return AnchorTree(self.frame, np.concatenate([self.coords, coords]).astype(np.int64),
                          np.concatenate([self.level, level]).astype(np.int64))


def initial_tree(points: np.ndarray, frame: SceneFrame) -> AnchorTree:
    """Anchors at every level from ``points``: occupied finest voxels plus their ancestors."""
    levels = octree_from_points(points, frame)
    return AnchorTree(frame, np.concatenate(levels).astype(np.int64),
                      np.concatenate([np.full(len(c), k, np.int64)
                                      for k, c in enumerate(levels, start=1)]))


def anchor_positions(tree: AnchorTree) -> np.ndarray:
    """Voxel centres ``[N, 3] float64`` (spec 3.1)."""
    voxel = tree.frame.root_voxel_size / np.exp2(tree.level - 1)
    return np.asarray(tree.frame.origin) + (tree.coords + 0.5) * voxel[:, None]


def lookup(tree: AnchorTree, level: int, coords: np.ndarray) -> np.ndarray:
    """Index of the anchor of ``level`` at each of ``coords [M, 3]``, or ``-1``."""
    coords = np.asarray(coords, np.int64).reshape(-1, 3)
    depth = tree.frame.depth(level)
    members = np.flatnonzero(tree.level == level)
    out = np.full(len(coords), -1, np.int64)
    if not len(members) or not len(coords):
        return out
    inside = ((coords >= 0) & (coords < 1 << depth)).all(1)
    codes = morton_codes(tree.coords[members], depth)
    order = np.argsort(codes)
    sorted_codes = codes[order]
    query = morton_codes(np.clip(coords, 0, (1 << depth) - 1), depth)
    pos = np.minimum(np.searchsorted(sorted_codes, query), len(sorted_codes) - 1)
    found = inside & (sorted_codes[pos] == query)
    out[found] = members[order[pos[found]]]
    return out


def parent_index(tree: AnchorTree) -> np.ndarray:
    """Index of each anchor's parent ``[N] int64``; ``-1`` for roots and orphans."""
    out = np.full(len(tree), -1, np.int64)
    for k in range(2, tree.frame.num_levels + 1):
        members = np.flatnonzero(tree.level == k)
        out[members] = lookup(tree, k - 1, tree.coords[members] >> 1)
    return out


def child_counts(tree: AnchorTree, parents: np.ndarray | None = None) -> np.ndarray:
    """Number of children of each anchor, ``[N] int64``."""
    parents = parent_index(tree) if parents is None else parents
    return np.bincount(parents[parents >= 0], minlength=len(tree)).astype(np.int64)


def strictness_problem(tree: AnchorTree) -> str | None:
    """What breaks the strict octree, or ``None``."""
    frame = tree.frame
    if len(tree) and ((tree.level < 1) | (tree.level > frame.num_levels)).any():
        return "an anchor has a level outside 1..num_levels"
    for k in range(1, frame.num_levels + 1):
        coords = tree.coords[tree.level == k]
        depth = frame.depth(k)
        if len(coords) and (coords.min() < 0 or coords.max() >= 1 << depth):
            return f"level {k}: coordinates outside [0, {1 << depth})"
        if len(np.unique(morton_codes(coords, depth))) != len(coords):
            return f"level {k}: two anchors share a voxel"
    if not (tree.level == 1).any():
        return "no root anchors"
    orphans = np.flatnonzero((tree.level > 1) & (parent_index(tree) < 0))
    if len(orphans):
        i = orphans[0]
        return (f"{len(orphans)} anchors lack a parent, e.g. level {tree.level[i]} at "
                f"{tree.coords[i].tolist()}")
    return None


def check_strict(tree: AnchorTree) -> None:
    """Raise :class:`TrainingError` if the octree is not strict."""
    problem = strictness_problem(tree)
    if problem:
        raise TrainingError(f"anchor octree is not strict: {problem}")
