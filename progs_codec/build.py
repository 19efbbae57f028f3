"""Strict octrees from point clouds: the anchors a trainer starts from.

Points are voxelized at the finest level; every occupied voxel's ancestors are added, so the
result is a strict octree (each anchor of level k+1 has its parent at level k).
"""

from __future__ import annotations

import numpy as np

from .model import CoordinateConvention, SceneFrame

__all__ = ["frame_for_points", "octree_from_points"]


def frame_for_points(points: np.ndarray, base_depth: int, num_levels: int, *,
                     margin: float = 1e-3,
                     convention: CoordinateConvention = CoordinateConvention.OPENCV) -> SceneFrame:
    """The cube frame enclosing ``points [N, 3]`` with a relative ``margin`` (spec 3.1)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"points must be a non-empty [N, 3] array, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points hold non-finite values")
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float((high - low).max()) * (1 + 2 * margin) or 1.0
    centre = (low + high) / 2
    origin = centre - extent / 2
    # float32 origin and voxel size are what the stream stores: use them from the start.
    return SceneFrame(origin=tuple(float(np.float32(v)) for v in origin),
                      root_voxel_size=float(np.float32(extent / 2 ** base_depth)),
                      base_depth=base_depth, num_levels=num_levels, convention=convention)


def octree_from_points(points: np.ndarray, frame: SceneFrame) -> list[np.ndarray]:
    """Unique voxel coordinates per level, ``[N_k, 3] int32`` each, sorted in Morton order.

    The finest level holds the voxels that contain points (points outside the frame are
    clipped to its border); coarser levels hold their ancestors.
    """
    depth = frame.depth(frame.num_levels)
    finest_voxel = frame.voxel_size(frame.num_levels)
    coords = np.floor((np.asarray(points, np.float64) - np.asarray(frame.origin)) / finest_voxel)
    coords = np.unique(np.clip(coords, 0, (1 << depth) - 1).astype(np.int64), axis=0)
    levels = [coords]
    for _ in range(frame.num_levels - 1):
        levels.append(np.unique(levels[-1] >> 1, axis=0))
    from .format.structure import morton_codes

    out = []
    for k, level in enumerate(reversed(levels), start=1):
        order = np.argsort(morton_codes(level, frame.depth(k)), kind="stable")
        out.append(level[order].astype(np.int32))
    return out
