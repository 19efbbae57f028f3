"""Baking view-dependent anchor Gaussians into a static 3DGS scene (spec 9.4, informative).

A ProGS model's Gaussians change with the camera: the MLPs see the viewing direction and
distance. Plain 3DGS viewers want one fixed set of Gaussians with spherical-harmonic colour.
:func:`bake` samples the MLPs over ``M`` viewing directions and fits:

- **Which Gaussians**: all ``K`` offsets of every drawn anchor (``model.drawn(lod)``: every
  anchor with ``Refinement.ADD``, the leaves of the cut at ``lod`` with ``REPLACE``) are
  evaluated for every direction (the set a camera keeps changes with the view, so none is
  chosen per view). In view ``m`` a Gaussian is drawn with opacity ``w_m = max(tanh(.), 0)``.
- **Opacity**: the mean of ``w_m`` over the views; Gaussians whose mean is below 1/255 are
  dropped (gsplat culls them anyway).
- **Position**: exact, offsets do not depend on the view.
- **Shape**: the ``w``-weighted mean of the per-view covariances ``R diag(s^2) R^T``,
  decomposed back into scales (square roots of its eigenvalues) and a rotation (its
  eigenvectors, made right-handed).
- **Colour**: SH coefficients of degree ``d`` by ``w``-weighted least squares over the view
  directions, ``sum_m w_m |Y(u_m)^T sh + 0.5 - c_m|^2 + ridge * sum_m w_m |sh_{>0}|^2``
  (views where the Gaussian is invisible do not constrain its colour; the small ridge on the
  bands above degree 0 keeps Gaussians seen from few directions well posed).

The directions ``u_m`` (from the camera to the anchor) are a Fibonacci sphere, and every view
is at the same ``distance`` from its anchor (default: the framing distance of the scene, as
:func:`~progs_codec.render.images.render_orbit` uses). SH is evaluated at the anchor direction
rather than each Gaussian's own, a difference of the offset over the distance.

Example:
    >>> from progs_codec.testing import synthetic_model
    >>> m = synthetic_model(200, 2, seed=0, attribute_coding="raw")
    >>> s = bake(m, sh_degree=1, num_views=16)
    >>> s.sh_degree, s.sh.shape[1]
    (1, 4)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..model import ProgsModel
from .camera import framing_distance, quat_to_rotmat, scene_sphere
from .gaussians import _check_model, evaluate_anchors
from .splats import Splats, SplatsError, check_splats_output, sh_basis, write_splats

__all__ = ["bake", "fit_sh", "fibonacci_sphere", "rotmat_to_quat", "export_splats"]

_MIN_OPACITY = 1.0 / 255.0
_RIDGE = 1e-3
# Anchors evaluated together: M views x this many anchors x K Gaussians stay ~100 MB.
_CHUNK_ANCHORS = 1024


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` near-uniform unit vectors on the sphere (golden-angle spiral), ``[n, 3] float64``."""
    if n < 1:
        raise ValueError(f"need at least one direction, got {n}")
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(1.0 - z * z)
    phi = math.pi * (3.0 - math.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def rotmat_to_quat(rot: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(w, x, y, z)`` of rotation matrices, ``[..., 3, 3] -> [..., 4]``.

    Shepperd's method: uses the largest of ``w, x, y, z`` as pivot, so it is stable everywhere.
    """
    r = np.asarray(rot, dtype=np.float64)
    m00, m11, m22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    cands = np.stack([  # 4 |w|^2, 4 |x|^2, 4 |y|^2, 4 |z|^2
        1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    pivot = np.argmax(cands, axis=-1)
    s = np.sqrt(np.maximum(np.take_along_axis(cands, pivot[..., None], -1)[..., 0], 1e-12))
    d21, s21 = r[..., 2, 1] - r[..., 1, 2], r[..., 2, 1] + r[..., 1, 2]
    d02, s02 = r[..., 0, 2] - r[..., 2, 0], r[..., 0, 2] + r[..., 2, 0]
    d10, s10 = r[..., 1, 0] - r[..., 0, 1], r[..., 1, 0] + r[..., 0, 1]
    q = np.stack([
        np.stack([s * s, d21, d02, d10], -1),
        np.stack([d21, s * s, s10, s02], -1),
        np.stack([d02, s10, s * s, s21], -1),
        np.stack([d10, s02, s21, s * s], -1),
    ], -2)
    q = np.take_along_axis(q, pivot[..., None, None], -2)[..., 0, :] / (2.0 * s[..., None])
    return q * np.where(q[..., :1] < 0, -1.0, 1.0)


def fit_sh(dirs: np.ndarray, colors: np.ndarray, weights: np.ndarray, degree: int, *,
           ridge: float = _RIDGE) -> np.ndarray:
    """Weighted least-squares SH colour coefficients.

    Args:
        dirs: ``[M, 3]`` view directions; colors: ``[G, M, 3]`` observed RGB;
        weights: ``[G, M]`` (>= 0); degree: 0..3.
        ridge: Tikhonov weight on the bands above 0, relative to each Gaussian's total weight.

    Returns:
        ``[G, (degree+1)**2, 3] float32`` coefficients with ``Y(u)^T sh + 0.5 ~ color``.
    """
    basis = sh_basis(degree, dirs).astype(np.float64)  # [M, B]
    nb = basis.shape[1]
    w = np.asarray(weights, np.float64)
    outer = (basis[:, :, None] * basis[:, None, :]).reshape(len(basis), nb * nb)
    lhs = (w @ outer).reshape(-1, nb, nb)
    # The ridge spares the DC term, so degree 0 gives exactly the weighted mean colour.
    penalty = np.diag(np.r_[1e-12, np.full(nb - 1, 1.0)])
    lhs += (ridge * w.sum(1) + 1e-12)[:, None, None] * penalty
    weighted = w[:, :, None] * (np.asarray(colors, np.float64) - 0.5)  # [G, M, 3]
    rhs = (weighted.transpose(0, 2, 1) @ basis).transpose(0, 2, 1)  # [G, B, 3]
    return np.linalg.solve(lhs, rhs).astype(np.float32)


def bake(model: ProgsModel, *, lod: int | None = None, sh_degree: int = 3,
         num_views: int = 64, distance: float | None = None) -> Splats:
    """Static 3DGS approximation of LoD ``lod`` (method in the module docstring, spec 9.4).

    Args:
        model: a model with generation MLPs.
        lod: levels ``1..lod`` (default: all decoded).
        sh_degree: SH degree of the colour fit, 0..3.
        num_views: number of sampled view directions ``M``.
        distance: viewing distance fed to the MLPs (default: the scene's framing distance).

    Returns:
        :class:`Splats` with one Gaussian per (drawn anchor, offset) of mean opacity >= 1/255,
        in anchor-major order; the drawn anchors are ``model.drawn(lod)`` (``model.refine``).
    """
    mlps = _check_model(model)
    if not 0 <= sh_degree <= 3:
        raise SplatsError(f"SH degree must be 0..3, got {sh_degree}")
    drawn = model.drawn(lod)            # REPLACE: the leaves of the cut at ``lod`` (spec 9.1)
    everything = model.positions(lod)
    anchors = everything[drawn]
    feature = model.attributes("feature", lod)[drawn]
    scaling = model.attributes("scaling", lod)[drawn]
    offsets = model.attributes("offsets", lod)[drawn]
    if distance is None:
        distance = framing_distance(scene_sphere(everything)[1]) if len(anchors) else 1.0
    dirs = fibonacci_sphere(num_views)
    view_part = np.concatenate([dirs, np.full((num_views, int(mlps.use_distance)), distance)], 1)
    parts = []
    for start in range(0, len(anchors), _CHUNK_ANCHORS):
        sl = slice(start, start + _CHUNK_ANCHORS)
        parts.append(_bake_chunk(anchors[sl], feature[sl], scaling[sl], offsets[sl],
                                 view_part.astype(np.float32), dirs, mlps, sh_degree))
    if not parts:
        return Splats(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 4)), np.zeros(0),
                      np.zeros((0, (sh_degree + 1) ** 2, 3)))
    return Splats(*(np.concatenate(arrays) for arrays in zip(*parts)))


def _bake_chunk(anchors, feature, scaling, offsets, view_part, dirs, mlps, sh_degree):
    n, k = offsets.shape[:2]
    m = len(view_part)
    # Rows are view-major: row v * n + a is anchor a seen along direction v.
    inputs = np.concatenate([np.tile(feature, (m, 1)), np.repeat(view_part, n, axis=0)], 1)
    dense = evaluate_anchors(np.tile(anchors, (m, 1)), inputs, np.tile(scaling, (m, 1)),
                             np.tile(offsets, (m, 1, 1)), mlps)
    w = np.maximum(dense.opacities, 0).reshape(m, n * k).T.astype(np.float64)  # [G, M]
    total = w.sum(1)
    keep = total / m >= _MIN_OPACITY
    w, total = w[keep], total[keep]

    rot = quat_to_rotmat(dense.quats.reshape(m, n * k, 4)[:, keep].astype(np.float64))
    var = dense.scales.reshape(m, n * k, 3)[:, keep].astype(np.float64) ** 2
    weighted_var = var * (w.T / total)[..., None]  # [M, G, 3]
    cov = np.empty((len(total), 3, 3))
    for i in range(3):  # the weighted mean of R diag(var) R^T, entry by entry
        for j in range(i, 3):
            entry = (rot[..., i, :] * rot[..., j, :] * weighted_var).sum((0, 2))
            cov[:, i, j] = cov[:, j, i] = entry
    eigval, eigvec = np.linalg.eigh(cov)
    eigvec[..., 2] *= np.sign(np.linalg.det(eigvec))[:, None]  # right-handed rotation

    colors = dense.colors.reshape(m, n * k, 3)[:, keep].transpose(1, 0, 2)
    return (dense.means[:n].reshape(n * k, 3)[keep], np.sqrt(np.maximum(eigval, 0)),
            rotmat_to_quat(eigvec).astype(np.float32), (total / m).astype(np.float32),
            fit_sh(dirs, colors, w, sh_degree))


def export_splats(model: ProgsModel, path: str | Path, *, lod: int | None = None,
                  sh_degree: int | None = None, num_views: int = 64) -> Splats:
    """Bakes LoD ``lod`` and writes it as ``.ply``, ``.spz`` or ``.splat`` (by suffix).

    The suffix, the SH degree, the LoD and the destination folder are checked before the
    bake, so a mistake costs no time.

    Args:
        sh_degree: default 3 for ``.ply``/``.spz`` and 0 for ``.splat`` (which holds no SH);
            a degree above 0 with ``.splat`` is an error.

    Returns:
        The baked :class:`Splats` that were written.

    Raises:
        SplatsError: unknown suffix, SH degree outside 0..3 or above 0 for ``.splat``.
        ModelError: the model lacks LoD ``lod`` or generation MLPs.
        OSError: the destination cannot be written (:func:`~progs_codec.files.check_output_file`).
    """
    sh_degree = check_splats_output(path, sh_degree)
    _check_model(model)
    model.num_anchors(lod)  # raises ModelError for a LoD the model does not hold
    splats = bake(model, lod=lod, sh_degree=sh_degree, num_views=num_views)
    write_splats(path, splats)
    return splats
