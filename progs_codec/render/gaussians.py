"""Neural Gaussians: Scaffold-GS generation from decoded anchors (spec 9.1, informative).

Each anchor of LoD ``k`` that is drawn (:meth:`~progs_codec.model.ProgsModel.drawn`: all of
them with ``Refinement.ADD``, the leaves of the octree cut at level ``k`` with
``Refinement.REPLACE``) spawns ``K`` Gaussians whose opacity, colour, scale and rotation come
from the stream's generation MLPs (spec 3.4) evaluated on the anchor's feature and the viewing
direction and distance; their centres come from the anchor's offsets. See spec 9.1 for the
equations. :func:`generate_gaussians` is the numpy version (no torch on the decode path);
:func:`generate_gaussians_torch` is the same computation in torch for training and for gsplat.

Example:
    >>> from progs_codec.testing import synthetic_model
    >>> m = synthetic_model(300, 2, seed=0, attribute_coding="raw")
    >>> g = generate_gaussians(m, np.array([0.0, 0.0, -3.0]))
    >>> g.means.shape[1], bool((g.opacities > 0).all())
    (3, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import ModelError
from ..model import MLP, GaussianMLPs, ProgsModel

__all__ = ["NeuralGaussians", "DenseGaussians", "anchor_inputs", "evaluate_anchors",
           "generate_gaussians", "generate_gaussians_torch", "mlp_to_torch"]

# Like torch.nn.functional.normalize: divide by max(norm, eps), so zero vectors stay finite.
_NORM_EPS = 1e-12


@dataclass(frozen=True, eq=False)
class NeuralGaussians:
    """The Gaussians one camera sees, flattened and filtered to ``opacity > 0``.

    Arrays are numpy (``generate_gaussians``) or torch (``generate_gaussians_torch``).

    Attributes:
        means: ``[M, 3] float32``; scales: ``[M, 3] float32`` linear;
        quats: ``[M, 4] float32`` unit ``(w, x, y, z)``; opacities: ``[M] float32`` in
        ``(0, 1)``; colors: ``[M, 3] float32`` RGB in ``(0, 1)``;
        anchor_index: ``[M] int64`` anchor of each Gaussian (index into LoD order);
        offset_index: ``[M] int64`` which of the anchor's ``K`` offsets it is.
    """

    means: Any
    scales: Any
    quats: Any
    opacities: Any
    colors: Any
    anchor_index: Any
    offset_index: Any

    def __len__(self) -> int:
        return int(self.means.shape[0])


@dataclass(frozen=True, eq=False)
class DenseGaussians:
    """All ``K`` Gaussians of every anchor before filtering (numpy, float32).

    Attributes:
        means ``[N, K, 3]``, scales ``[N, K, 3]``, quats ``[N, K, 4]``,
        opacities ``[N, K]`` in ``(-1, 1)`` (tanh; a Gaussian is drawn only where > 0),
        colors ``[N, K, 3]``.
    """

    means: np.ndarray
    scales: np.ndarray
    quats: np.ndarray
    opacities: np.ndarray
    colors: np.ndarray


def _check_model(model: ProgsModel) -> GaussianMLPs:
    if model.gaussian_mlps is None:
        raise ModelError("this model carries no Gaussian-generation MLPs (spec 3.4): "
                         "it cannot be rendered")
    if model.dims.scaling != 6:
        raise ModelError(f"Scaffold-GS generation needs 6 scaling channels, "
                         f"the model has {model.dims.scaling}")
    return model.gaussian_mlps


def anchor_inputs(anchors: np.ndarray, feature: np.ndarray, camera_center: np.ndarray, *,
                  use_distance: bool) -> np.ndarray:
    """The MLP input ``[feature, dir, dist]`` of each anchor, ``[N, F + 3 + use_distance]``.

    ``dir`` is the unit vector from the camera centre to the anchor, ``dist`` its length.
    """
    v = np.asarray(anchors, np.float32) - np.asarray(camera_center, np.float32)
    dist = np.sqrt((v * v).sum(1, keepdims=True))
    parts = [np.asarray(feature, np.float32), v / np.maximum(dist, _NORM_EPS)]
    if use_distance:
        parts.append(dist)
    return np.concatenate(parts, axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (np.float32(0.5) * (np.float32(1) + np.tanh(np.float32(0.5) * x))).astype(np.float32)


def evaluate_anchors(anchors: np.ndarray, inputs: np.ndarray, scaling: np.ndarray,
                     offsets: np.ndarray, mlps: GaussianMLPs) -> DenseGaussians:
    """Spec 9.1 for anchors whose MLP inputs are already formed (numpy, float32).

    Args:
        anchors: ``[N, 3]`` centres; inputs: ``[N, I]`` from :func:`anchor_inputs`;
        scaling: ``[N, 6]`` log scales; offsets: ``[N, K, 3]``.
    """
    n, k = offsets.shape[:2]
    s = np.exp(np.asarray(scaling, np.float32))
    cov = mlps.covariance(inputs).reshape(n, k, 7)
    quats = cov[..., 3:7]
    quats = quats / np.maximum(np.sqrt((quats * quats).sum(-1, keepdims=True)), _NORM_EPS)
    return DenseGaussians(
        means=np.asarray(anchors, np.float32)[:, None, :] + offsets * s[:, None, :3],
        scales=s[:, None, 3:6] * _sigmoid(cov[..., :3]),
        quats=quats.astype(np.float32),
        opacities=np.tanh(mlps.opacity(inputs)).astype(np.float32),
        colors=_sigmoid(mlps.color(inputs).reshape(n, k, 3)),
    )


def generate_gaussians(model: ProgsModel, camera_center: np.ndarray, *,
                       lod: int | None = None) -> NeuralGaussians:
    """The Gaussians of LoD ``lod`` seen from ``camera_center`` (spec 9.1), numpy.

    Only the anchors that ``model.drawn(lod)`` marks spawn Gaussians (``model.refine``).

    Args:
        model: a model with generation MLPs and 6 scaling channels.
        camera_center: ``[3]`` camera centre in world coordinates.
        lod: levels ``1..lod`` (default: all decoded levels).

    Returns:
        :class:`NeuralGaussians`; ``anchor_index`` indexes the anchors of levels ``1..lod``
        in LoD order (``model.positions(lod)``), drawn or not.

    Raises:
        ModelError: no MLPs, LoD not available, or unsupported dimensions.
    """
    mlps = _check_model(model)
    drawn = np.flatnonzero(model.drawn(lod))
    anchors = model.positions(lod)[drawn]
    inputs = anchor_inputs(anchors, model.attributes("feature", lod)[drawn], camera_center,
                           use_distance=mlps.use_distance)
    dense = evaluate_anchors(anchors, inputs, model.attributes("scaling", lod)[drawn],
                             model.attributes("offsets", lod)[drawn], mlps)
    anchor_index, offset_index = np.nonzero(dense.opacities > 0)
    return NeuralGaussians(
        means=dense.means[anchor_index, offset_index],
        scales=dense.scales[anchor_index, offset_index],
        quats=dense.quats[anchor_index, offset_index],
        opacities=dense.opacities[anchor_index, offset_index],
        colors=dense.colors[anchor_index, offset_index],
        anchor_index=drawn[anchor_index].astype(np.int64),
        offset_index=offset_index.astype(np.int64),
    )


def mlp_to_torch(mlp: MLP, *, device: Any = "cpu") -> Any:
    """The :class:`MLP` as a trainable ``torch.nn.Sequential(Linear, ReLU, Linear, ...)``."""
    import torch

    layers: list[Any] = []
    for i, (w, b) in enumerate(zip(mlp.weights, mlp.biases)):
        if i:
            layers.append(torch.nn.ReLU())
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.asarray(w, np.float32)))
            linear.bias.copy_(torch.from_numpy(np.asarray(b, np.float32)))
        layers.append(linear)
    return torch.nn.Sequential(*layers).to(device)


def generate_gaussians_torch(anchors: Any, feature: Any, scaling: Any, offsets: Any,
                             camera_center: Any, *, opacity_mlp: Callable[[Any], Any],
                             color_mlp: Callable[[Any], Any],
                             covariance_mlp: Callable[[Any], Any],
                             use_distance: bool = True,
                             drawn: Any | None = None) -> NeuralGaussians:
    """Spec 9.1 in torch (differentiable), the twin of :func:`generate_gaussians`.

    Args:
        anchors: ``[N, 3]``; feature: ``[N, F]``; scaling: ``[N, 6]``; offsets: ``[N, K, 3]``;
            camera_center: ``[3]``; all float32 tensors on one device.
        opacity_mlp, color_mlp, covariance_mlp: ``[N, I] -> [N, K | 3K | 7K]`` callables, e.g.
            :func:`mlp_to_torch` of the model's MLPs or the trainer's modules.
        drawn: ``[N] bool`` tensor of the anchors that spawn Gaussians, as
            :meth:`ProgsModel.drawn <progs_codec.model.ProgsModel.drawn>` gives it for the
            model's ``refine`` (the caller knows the LoD's octree); ``None``: every anchor.

    Returns:
        :class:`NeuralGaussians` of torch tensors, filtered to ``opacity > 0``;
        ``anchor_index`` indexes the ``N`` anchors given.
    """
    import torch

    if drawn is not None:
        rows = torch.nonzero(torch.as_tensor(drawn, device=anchors.device), as_tuple=True)[0]
        g = generate_gaussians_torch(anchors[rows], feature[rows], scaling[rows], offsets[rows],
                                     camera_center, opacity_mlp=opacity_mlp,
                                     color_mlp=color_mlp, covariance_mlp=covariance_mlp,
                                     use_distance=use_distance)
        return NeuralGaussians(g.means, g.scales, g.quats, g.opacities, g.colors,
                               rows[g.anchor_index], g.offset_index)
    n, k = offsets.shape[:2]
    v = anchors - camera_center
    dist = torch.linalg.vector_norm(v, dim=1, keepdim=True)
    parts = [feature, v / dist.clamp_min(_NORM_EPS)]
    if use_distance:
        parts.append(dist)
    x = torch.cat(parts, dim=1)
    s = torch.exp(scaling)
    opacity = torch.tanh(opacity_mlp(x))
    keep = opacity > 0
    anchor_index, offset_index = torch.nonzero(keep, as_tuple=True)
    cov = covariance_mlp(x).reshape(n, k, 7)[keep]
    color = torch.sigmoid(color_mlp(x).reshape(n, k, 3)[keep])
    means = (anchors[:, None, :] + offsets * s[:, None, :3])[keep]
    scales = s[anchor_index, 3:6] * torch.sigmoid(cov[:, :3])
    quats = torch.nn.functional.normalize(cov[:, 3:7], dim=-1, eps=_NORM_EPS)
    return NeuralGaussians(means=means, scales=scales, quats=quats, opacities=opacity[keep],
                           colors=color, anchor_index=anchor_index, offset_index=offset_index)
