"""The decoded scene: plain dataclasses mirroring the stream (spec 3 and 4).

A :class:`ProgsModel` holds the scene frame, the header parameters and one :class:`Level` per
decoded octree level, each in canonical order (spec 4.2). LoD ``k`` is levels ``1..k``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from .errors import ModelError

if TYPE_CHECKING:  # the entropy layer imports this module; the annotation needs no import
    from .entropy.model import EntropyModel

__all__ = [
    "CoordinateConvention",
    "Refinement",
    "SceneFrame",
    "AttributeDims",
    "MLP",
    "GaussianMLPs",
    "Level",
    "ProgsModel",
    "ATTRIBUTE_GROUPS",
]

#: Attribute groups in stream order (spec 3.1).
ATTRIBUTE_GROUPS = ("feature", "scaling", "offsets")


class CoordinateConvention(IntEnum):
    """Axis convention of the scene's world frame (spec 3.1, informative for renderers): which
    way is up (spec 9.2). ``ZUP`` needs a stream of minor version 1 (format 1.1)."""

    OPENCV = 0  # x right, y down, z forward (COLMAP): up is -y
    OPENGL = 1  # x right, y up, z backward (NeRF-synthetic cameras): up is +y
    ZUP = 2     # x right, y forward, z up (Blender, 3ds Max worlds): up is +z; format 1.1


class Refinement(IntEnum):
    """How LoD ``k`` uses the coarser levels when it is rendered (spec 3.5, 9.1).

    ``ADD``: every anchor of levels ``1..k`` spawns Gaussians (additive LoDs, as 3D Tiles'
    ``refine: ADD``). ``REPLACE``: an anchor spawns none when one of its children is among
    levels ``1..k`` (each LoD replaces what it refines, as ``refine: REPLACE``). The decoded
    anchors are the same either way; only rendering differs.
    """

    ADD = 0
    REPLACE = 1


@dataclass(frozen=True)
class SceneFrame:
    """Where the octree sits in the world (spec 3.1).

    Level ``k`` divides the cube ``[origin, origin + 2**base_depth * root_voxel_size)`` into
    voxels of size ``root_voxel_size / 2**(k-1)``; its integer coordinates lie in
    ``[0, 2**(base_depth + k - 1))`` per axis.
    """

    origin: tuple[float, float, float]
    root_voxel_size: float
    base_depth: int
    num_levels: int
    convention: CoordinateConvention = CoordinateConvention.OPENCV

    def depth(self, level: int) -> int:
        """Octree depth of ``level`` (1-based): bits per coordinate axis."""
        return self.base_depth + level - 1

    def voxel_size(self, level: int) -> float:
        return self.root_voxel_size / 2.0 ** (level - 1)


@dataclass(frozen=True)
class AttributeDims:
    """Per-anchor attribute dimensions (spec 3.1)."""

    feature: int = 50
    scaling: int = 6
    num_offsets: int = 10

    @property
    def channels(self) -> int:
        """Scalar channels per anchor, in coding order: feature, scaling, offsets (x, y, z)."""
        return self.feature + self.scaling + 3 * self.num_offsets

    def group_channels(self) -> dict[str, int]:
        return {"feature": self.feature, "scaling": self.scaling, "offsets": 3 * self.num_offsets}


@dataclass(frozen=True)
class MLP:
    """A two-layer perceptron ``out = W2 @ relu(W1 @ x + b1) + b2`` (spec 3.4).

    ``weights[i]`` is ``[out, in] float32``, ``biases[i]`` is ``[out] float32``.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = x @ self.weights[0].T + self.biases[0]
        for w, b in zip(self.weights[1:], self.biases[1:]):
            h = np.maximum(h, 0.0) @ w.T + b
        return h


@dataclass(frozen=True)
class GaussianMLPs:
    """The Scaffold-GS generation MLPs (spec 3.4): opacity, colour and covariance.

    Every MLP sees ``[feature, view direction (3), distance (1 if use_distance)]`` and outputs
    ``K`` opacities (tanh), ``3K`` colours (sigmoid) and ``7K`` scale/rotation values.
    """

    opacity: MLP
    color: MLP
    covariance: MLP
    use_distance: bool = True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GaussianMLPs) or self.use_distance != other.use_distance:
            return False
        return all(
            len(a.weights) == len(b.weights)
            and all(np.array_equal(x, y) for x, y in zip(a.weights + a.biases, b.weights + b.biases))
            for a, b in ((self.opacity, other.opacity), (self.color, other.color),
                         (self.covariance, other.covariance)))


@dataclass(eq=False)
class Level:
    """One octree level in canonical order (spec 4.2).

    Attributes:
        coords: ``[N, 3] int32`` voxel coordinates at this level's depth.
        parent_index: ``[N] int32`` index into the previous level (``-1`` for level 1).
        octant: ``[N] uint8`` child octant, bit 2 = x, bit 1 = y, bit 0 = z (``0`` for level 1).
        feature: ``[N, F] float32``.
        scaling: ``[N, S] float32`` (log scale; exp gives offset and Gaussian scales).
        offsets: ``[N, K, 3] float32`` (in units of the anchor's offset scale).
    """

    coords: np.ndarray
    parent_index: np.ndarray
    octant: np.ndarray
    feature: np.ndarray
    scaling: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return all(np.array_equal(getattr(self, f), getattr(other, f))
                   for f in ("coords", "parent_index", "octant", "feature", "scaling", "offsets"))

    def attributes(self, group: str) -> np.ndarray:
        return getattr(self, group)


@dataclass(eq=False)
class ProgsModel:
    """A ProGS scene: header parameters and levels ``1..len(levels)`` (spec 3, 4).

    ``frame.num_levels`` is how many levels the stream declares; ``len(levels)`` (also ``lod``)
    is how many were decoded. ``entropy_model`` is ``None`` for streams whose attributes are
    stored raw (spec 3.1 ``attribute_coding``, 4.5). ``refine`` says which anchors of a LoD
    spawn Gaussians (:meth:`drawn`, spec 3.5, 9.1). A model is written as the lowest
    version that expresses it (:attr:`lowest_minor_version`): 1.1 with ``Refinement.REPLACE`` or
    ``CoordinateConvention.ZUP``, 1.0 otherwise.
    """

    frame: SceneFrame
    dims: AttributeDims
    levels: list[Level]
    gaussian_mlps: GaussianMLPs | None = None
    entropy_model: EntropyModel | None = None
    refine: Refinement = Refinement.ADD

    def __post_init__(self):
        try:
            self.refine = Refinement(self.refine)
        except ValueError:
            raise ModelError(f"refine must be Refinement.ADD or Refinement.REPLACE, got "
                             f"{self.refine!r}") from None

    @property
    def lowest_minor_version(self) -> int:
        """The lowest minor version whose streams express this model (spec 2.4, 3.1, 3.5): 1
        when it needs the ``rendering`` part (``Refinement.REPLACE``) or the Z-up convention,
        else 0 (a 1.0 stream, byte for byte what 1.0 encoders wrote)."""
        needs_1_1 = (self.refine != Refinement.ADD
                     or self.frame.convention == CoordinateConvention.ZUP)
        return 1 if needs_1_1 else 0

    @property
    def lod(self) -> int:
        """Number of decoded levels: this model renders LoD ``lod``."""
        return len(self.levels)

    @property
    def complete(self) -> bool:
        return self.lod == self.frame.num_levels

    def _check_lod(self, lod: int | None) -> int:
        if lod is None:
            return self.lod
        if not 1 <= lod <= self.lod:
            raise ModelError(f"LoD {lod} is not available: this model holds LoD 1..{self.lod}")
        return lod

    def num_anchors(self, lod: int | None = None) -> int:
        return sum(len(level) for level in self.levels[: self._check_lod(lod)])

    def positions(self, lod: int | None = None) -> np.ndarray:
        """Anchor centres of LoD ``lod`` (levels ``1..lod``), ``[N, 3] float32`` (spec 3.1)."""
        lod = self._check_lod(lod)
        origin = np.asarray(self.frame.origin, dtype=np.float64)
        parts = [origin + (level.coords.astype(np.float64) + 0.5) * self.frame.voxel_size(k)
                 for k, level in enumerate(self.levels[:lod], start=1)]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 3), np.float32)

    def anchor_levels(self, lod: int | None = None) -> np.ndarray:
        """The level (1-based) of each anchor of LoD ``lod``, ``[N] int32``."""
        lod = self._check_lod(lod)
        return np.concatenate([np.full(len(level), k, np.int32)
                               for k, level in enumerate(self.levels[:lod], start=1)])

    def drawn(self, lod: int | None = None) -> np.ndarray:
        """Which anchors of LoD ``lod`` spawn Gaussians, ``[N] bool`` in LoD order (spec 9.1).

        With ``Refinement.ADD`` every anchor of levels ``1..lod``. With ``Refinement.REPLACE``
        every anchor of level ``lod``, and an anchor of a coarser level only when none of its
        children is in the next level: LoD ``lod`` draws the leaves of the octree cut at
        level ``lod``.

        Example:
            >>> from progs_codec.testing import synthetic_model
            >>> m = synthetic_model(300, 3, seed=0, attribute_coding="raw")
            >>> bool(m.drawn(2).all())
            True
            >>> r = replace(m, refine=Refinement.REPLACE)
            >>> int(r.drawn(2).sum()) == m.num_anchors(2) - len(np.unique(m.levels[1].parent_index))
            True
        """
        lod = self._check_lod(lod)
        if self.refine != Refinement.REPLACE:
            return np.ones(self.num_anchors(lod), bool)
        parts = []
        for k, level in enumerate(self.levels[:lod], start=1):
            leaf = np.ones(len(level), bool)
            if k < lod:
                leaf[self.levels[k].parent_index] = False
            parts.append(leaf)
        return np.concatenate(parts)

    def attributes(self, group: str, lod: int | None = None) -> np.ndarray:
        """One attribute group (``feature``, ``scaling``, ``offsets``) of LoD ``lod``."""
        if group not in ATTRIBUTE_GROUPS:
            raise ValueError(f"unknown attribute group {group!r}; expected one of {ATTRIBUTE_GROUPS}")
        lod = self._check_lod(lod)
        return np.concatenate([level.attributes(group) for level in self.levels[:lod]])

    def truncated(self, lod: int) -> ProgsModel:
        """A complete model of LoD ``lod`` alone: levels ``1..lod``, ``frame.num_levels = lod``.

        Shares arrays with this model and keeps its ``refine``, MLPs and entropy model. Use it
        to encode a decoded prefix as a stream of its own.
        """
        lod = self._check_lod(lod)
        return replace(self, frame=replace(self.frame, num_levels=lod),
                       levels=list(self.levels[:lod]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProgsModel):
            return NotImplemented
        return (self.frame == other.frame and self.dims == other.dims
                and self.refine == other.refine and self.levels == other.levels
                and self.gaussian_mlps == other.gaussian_mlps
                and self.entropy_model == other.entropy_model)
