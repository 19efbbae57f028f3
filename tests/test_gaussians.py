"""Tests of progs_codec.render.gaussians: spec 9.1 equations, filtering, LoDs, torch twin."""

import dataclasses

import numpy as np
import pytest

from progs_codec.errors import ModelError
from progs_codec.model import MLP, AttributeDims, GaussianMLPs, Refinement
from progs_codec.render.gaussians import (
    anchor_inputs,
    evaluate_anchors,
    generate_gaussians,
    generate_gaussians_torch,
    mlp_to_torch,
)
from progs_codec.testing import synthetic_model


def constant_mlp(inputs: int, bias) -> MLP:
    """An MLP whose output is ``bias`` whatever its input."""
    bias = np.asarray(bias, np.float32)
    return MLP(weights=(np.zeros((4, inputs), np.float32), np.zeros((len(bias), 4), np.float32)),
               biases=(np.zeros(4, np.float32), bias))


def test_anchor_inputs_layout():
    x = anchor_inputs(np.array([[1.0, 2.0, 5.0]]), np.array([[7.0, 8.0]]),
                      np.array([1.0, 2.0, 1.0]), use_distance=True)
    assert x.dtype == np.float32 and np.allclose(x, [[7, 8, 0, 0, 1, 4]])
    assert anchor_inputs(np.zeros((2, 3)), np.zeros((2, 5)), np.ones(3),
                         use_distance=False).shape == (2, 8)


def test_equations_with_constant_mlps():
    f = 3
    inputs = f + 4  # feature, direction, distance
    mlps = GaussianMLPs(
        opacity=constant_mlp(inputs, [0.5, -0.2]),
        color=constant_mlp(inputs, [0.0, 1.0, -1.0, 2.0, 0.0, 0.0]),
        covariance=constant_mlp(inputs, [0, 1, -1, 2, 0, 0, 0] + [0, 0, 0, 0, 3, 0, 4]),
    )
    anchors = np.array([[1.0, 2.0, 3.0]], np.float32)
    scaling = np.log(np.array([[0.5, 1.0, 2.0, 0.1, 0.2, 0.3]], np.float32))
    offsets = np.array([[[1.0, 1.0, 1.0], [0.0, -1.0, 2.0]]], np.float32)
    x = anchor_inputs(anchors, np.zeros((1, f)), np.zeros(3), use_distance=True)
    d = evaluate_anchors(anchors, x, scaling, offsets, mlps)
    sig = lambda v: 1 / (1 + np.exp(-np.asarray(v, np.float64)))  # noqa: E731
    assert np.allclose(d.opacities, np.tanh([[0.5, -0.2]]), atol=1e-6)
    assert np.allclose(d.colors[0, 0], sig([0, 1, -1]), atol=1e-6)
    assert np.allclose(d.scales[0, 0], np.array([0.1, 0.2, 0.3]) * sig([0, 1, -1]), atol=1e-6)
    assert np.allclose(d.quats[0, 0], [1, 0, 0, 0]) and np.allclose(d.quats[0, 1], [0, 0.6, 0, 0.8])
    assert np.allclose(d.means[0], [[1.5, 3.0, 5.0], [1.0, 1.0, 7.0]], atol=1e-6)


def test_generate_filters_positive_opacity():
    model = synthetic_model(600, 3, seed=2, attribute_coding="raw")
    center = np.array([0.2, -0.1, -3.0])
    g = generate_gaussians(model, center)
    mlps = model.gaussian_mlps
    x = anchor_inputs(model.positions(), model.attributes("feature"), center,
                      use_distance=mlps.use_distance)
    dense = evaluate_anchors(model.positions(), x, model.attributes("scaling"),
                             model.attributes("offsets"), mlps)
    assert len(g) == int((dense.opacities > 0).sum()) > 0
    assert np.all(g.opacities > 0) and np.all((g.colors > 0) & (g.colors < 1))
    assert np.allclose(np.linalg.norm(g.quats, axis=1), 1, atol=1e-6)
    assert np.array_equal(g.means, dense.means[g.anchor_index, g.offset_index])
    for field in ("means", "scales", "quats", "colors"):
        assert getattr(g, field).dtype == np.float32


def test_lods_and_view_dependence():
    model = synthetic_model(600, 3, seed=3, attribute_coding="raw")
    g1 = generate_gaussians(model, np.array([0, 0, -3.0]), lod=1)
    assert g1.anchor_index.max() < model.num_anchors(1)
    g_other = generate_gaussians(model, np.array([3.0, 0, 0]), lod=1)
    assert len(g1) != len(g_other) or not np.array_equal(g1.colors, g_other.colors)
    with pytest.raises(ModelError, match="LoD 4"):
        generate_gaussians(model, np.zeros(3), lod=4)


def test_replace_draws_only_the_leaves_of_the_lod():
    """REPLACE (spec 3.5, 9.1): LoD k draws level k and the coarser anchors without a child;
    the Gaussians are exactly the ADD ones of those anchors."""
    add = synthetic_model(600, 3, seed=3, attribute_coding="raw")
    rep = dataclasses.replace(add, refine=Refinement.REPLACE)
    center = np.array([0.1, 0.2, -3.0])
    for lod in (1, 2, 3):
        a, r = generate_gaussians(add, center, lod=lod), generate_gaussians(rep, center, lod=lod)
        leaves = np.flatnonzero(rep.drawn(lod))
        assert np.isin(r.anchor_index, leaves).all()
        keep = np.isin(a.anchor_index, leaves)
        if lod > 1:
            assert not keep.all()          # the coarse anchors with children are gone
        for field in ("means", "scales", "quats", "opacities", "colors", "anchor_index",
                      "offset_index"):
            assert np.array_equal(getattr(r, field), getattr(a, field)[keep]), field
    assert np.array_equal(generate_gaussians(rep, center, lod=1).means,
                          generate_gaussians(add, center, lod=1).means)


def test_model_errors():
    with pytest.raises(ModelError, match="no Gaussian-generation MLPs"):
        generate_gaussians(synthetic_model(50, 1, attribute_coding="raw", gaussian_mlps=False),
                           np.zeros(3))
    dims = AttributeDims(feature=8, scaling=4, num_offsets=2)
    model = synthetic_model(50, 1, attribute_coding="raw", dims=dims)
    with pytest.raises(ModelError, match="6 scaling channels"):
        generate_gaussians(model, np.zeros(3))


@pytest.mark.parametrize("use_distance", [True, False])
def test_torch_twin_matches_numpy(use_distance):
    torch = pytest.importorskip("torch")
    model = synthetic_model(800, 3, seed=4, attribute_coding="raw")
    if not use_distance:
        mlps = model.gaussian_mlps
        cut = lambda m: MLP((m.weights[0][:, :-1],) + m.weights[1:], m.biases)  # noqa: E731
        model = dataclasses.replace(model, gaussian_mlps=GaussianMLPs(
            cut(mlps.opacity), cut(mlps.color), cut(mlps.covariance), use_distance=False))
    center = np.array([0.3, -0.2, -2.5], np.float32)
    ref = generate_gaussians(model, center)
    mlps = model.gaussian_mlps
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32))  # noqa: E731
    with torch.no_grad():
        out = generate_gaussians_torch(
            t(model.positions()), t(model.attributes("feature")), t(model.attributes("scaling")),
            t(model.attributes("offsets")), t(center), opacity_mlp=mlp_to_torch(mlps.opacity),
            color_mlp=mlp_to_torch(mlps.color), covariance_mlp=mlp_to_torch(mlps.covariance),
            use_distance=mlps.use_distance)
    _assert_close(ref, out)


def _assert_close(ref, out):
    # Keep only Gaussians both sides kept (an opacity within rounding of 0 may differ).
    key = lambda g: np.asarray(g.anchor_index) * 1000 + np.asarray(g.offset_index)  # noqa: E731
    common, i_ref, i_out = np.intersect1d(key(ref), key(out), return_indices=True)
    assert len(common) >= len(ref) - 2 and len(common) >= len(out) - 2
    for field in ("means", "scales", "quats", "opacities", "colors"):
        a, b = getattr(ref, field)[i_ref], getattr(out, field).numpy()[i_out]
        assert np.abs(a - b).max() < 1e-5, field


def test_torch_twin_takes_the_drawn_mask():
    torch = pytest.importorskip("torch")
    model = dataclasses.replace(synthetic_model(500, 3, seed=6, attribute_coding="raw"),
                                refine=Refinement.REPLACE)
    center = np.array([0.3, -0.2, -2.5], np.float32)
    ref = generate_gaussians(model, center, lod=3)
    mlps = model.gaussian_mlps
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32))  # noqa: E731
    with torch.no_grad():
        out = generate_gaussians_torch(
            t(model.positions()), t(model.attributes("feature")), t(model.attributes("scaling")),
            t(model.attributes("offsets")), t(center), opacity_mlp=mlp_to_torch(mlps.opacity),
            color_mlp=mlp_to_torch(mlps.color), covariance_mlp=mlp_to_torch(mlps.covariance),
            drawn=torch.from_numpy(model.drawn(3)))
    assert np.isin(out.anchor_index.numpy(), np.flatnonzero(model.drawn(3))).all()
    _assert_close(ref, out)
