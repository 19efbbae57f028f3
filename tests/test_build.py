"""Tests for progs_codec.build, the trainer's door (spec 3.4, 4.2, 6.5, 6.6)."""

import runpy
from pathlib import Path

import numpy as np
import pytest

import progs_codec
from progs_codec import ModelError
from progs_codec.build import (MLP, PRESETS, GaussianMLPs, HashGrid, LevelArrays, build_model,
                               context_inputs, frame_for_points, octree_from_points)
from progs_codec.entropy.attributes import level_contexts
from progs_codec.entropy.context_model import predict
from progs_codec.model import AttributeDims

ROOT = Path(__file__).resolve().parents[1]
DIMS = AttributeDims(feature=4, scaling=2, num_offsets=2)


def _scene(seed=0, levels=3):
    rng = np.random.default_rng(seed)
    points = rng.normal(0, 1, (400, 3))
    frame = frame_for_points(points, base_depth=2, num_levels=levels)
    arrays = []
    for coords in octree_from_points(points, frame):
        n = len(coords)
        arrays.append(LevelArrays(
            coords=coords,
            feature=rng.normal(0, 0.5, (n, DIMS.feature)).astype(np.float32),
            scaling=rng.normal(-4, 0.1, (n, DIMS.scaling)).astype(np.float32),
            offsets=rng.normal(0, 0.2, (n, DIMS.num_offsets, 3)).astype(np.float32)))
    grid = HashGrid(PRESETS["small"], rng.random(PRESETS["small"].num_params) < 0.5)
    width, c = 2 * grid.config.feature_width, DIMS.channels
    groups = list(DIMS.group_channels().values())
    # means near the attributes', sigmas (scale indices) matching their spread in steps
    bias = np.concatenate([np.repeat([0.0, -4.0, 0.0], groups), np.repeat([46, 44, 39], groups),
                           np.full(c, 16.0)])
    layers = [(rng.normal(0, 0.1, (16, width)).astype(np.float32), np.zeros(16, np.float32)),
              (rng.normal(0, 0.01, (3 * c, 16)).astype(np.float32), bias.astype(np.float32))]
    return frame, arrays, grid, layers, rng


def _build(frame, arrays, grid, layers, **options):
    return build_model(frame=frame, levels=arrays, hash_grid=grid, context_layers=layers,
                       base_steps=(1 / 64, 1 / 256, 1 / 64), **options)


def test_builds_a_model_the_encoder_takes():
    frame, arrays, grid, layers, _ = _scene()
    result = _build(frame, arrays, grid, layers)
    model = result.model
    assert model.dims == DIMS and model.lod == 3
    assert model.entropy_model.base_steps == (1024, 256, 1024)
    decoded = progs_codec.decode(progs_codec.encode(model))
    assert decoded.num_anchors() == sum(len(a.coords) for a in arrays)
    gap = result.rate_gap
    assert gap.coded_bits > 0 and abs(gap.export_gap) < 0.05 and gap.coder_overhead < 0.01
    assert set(gap.to_dict()) == {"float_bits", "ideal_bits", "coded_bits", "export_gap",
                                  "coder_overhead"}


def test_anchor_order_does_not_matter():
    frame, arrays, grid, layers, rng = _scene(1)
    shuffled = []
    for a in arrays:
        p = rng.permutation(len(a.coords))
        shuffled.append(LevelArrays(a.coords[p], a.feature[p], a.scaling[p], a.offsets[p]))
    first = _build(frame, arrays, grid, layers, measure_rate=False)
    second = _build(frame, shuffled, grid, layers, measure_rate=False)
    assert first.rate_gap is None
    assert progs_codec.encode(first.model) == progs_codec.encode(second.model)


def test_context_inputs_are_what_the_decoder_sees():
    frame, arrays, grid, layers, _ = _scene(2)
    model = _build(frame, arrays, grid, layers, measure_rate=False).model
    inputs = context_inputs(grid, frame, model.levels)
    start = 0
    for k, level in enumerate(model.levels, start=1):
        parents = None if k == 1 else model.levels[k - 2].coords[level.parent_index]
        want = level_contexts(model.entropy_model, level.coords, parents, frame.depth(k))
        got = predict(model.entropy_model.context_model, inputs[start:start + len(level)])
        assert all(np.array_equal(a, b) for a, b in zip(got, (want.mean, want.scale_index,
                                                               want.step_index)))
        start += len(level)


def test_raw_coding_and_float16_mlps():
    frame, arrays, _, _, rng = _scene(3)

    def mlp(n_in, n_out):
        return MLP(weights=(rng.normal(0, 1, (8, n_in)).astype(np.float32),
                            rng.normal(0, 1, (n_out, 8)).astype(np.float32)),
                   biases=(np.full(8, 0.1, np.float32), np.zeros(n_out, np.float32)))

    n_in, k = DIMS.feature + 4, DIMS.num_offsets
    mlps = GaussianMLPs(mlp(n_in, k), mlp(n_in, 3 * k), mlp(n_in, 7 * k))
    result = build_model(frame=frame, levels=arrays, hash_grid=None, context_layers=None,
                         base_steps=None, gaussian_mlps=mlps)
    assert result.rate_gap is None and result.model.entropy_model is None
    stored = result.model.gaussian_mlps.opacity.biases[0]
    assert stored[0] == np.float32(np.float16(0.1)) != np.float32(0.1)
    assert progs_codec.decode(progs_codec.encode(result.model)) == result.model
    replaced = build_model(frame=frame, levels=arrays, hash_grid=None, context_layers=None,
                           base_steps=None, gaussian_mlps=mlps,
                           refine=progs_codec.Refinement.REPLACE).model
    assert replaced.refine is progs_codec.Refinement.REPLACE
    stream = progs_codec.encode(replaced)
    assert stream[8:10] == bytes([1, 1]) and progs_codec.decode(stream) == replaced
    big = GaussianMLPs(mlp(n_in, k), mlp(n_in, 3 * k),
                       MLP(weights=(np.full((8, n_in), 1e6, np.float32),
                                    np.zeros((7 * k, 8), np.float32)),
                           biases=(np.zeros(8, np.float32), np.zeros(7 * k, np.float32))))
    with pytest.raises(ModelError, match="covariance W1 .* float16"):
        build_model(frame=frame, levels=arrays, hash_grid=None, context_layers=None,
                    base_steps=None, gaussian_mlps=big)
    with pytest.raises(ModelError, match="opacity W1 has shape"):
        build_model(frame=frame, levels=arrays, hash_grid=None, context_layers=None,
                    base_steps=None, gaussian_mlps=GaussianMLPs(mlp(3, k), mlp(n_in, 3 * k),
                                                                mlp(n_in, 7 * k)))


def test_errors_say_what_is_wrong():
    frame, arrays, grid, layers, _ = _scene(4)
    orphan = LevelArrays(np.concatenate([arrays[2].coords, [[0, 0, 0]]]).astype(np.int32),
                         *(np.concatenate([a, a[:1]]) for a in
                           (arrays[2].feature, arrays[2].scaling, arrays[2].offsets)))
    cases = [
        ([*arrays[:2], orphan], {}, "no parent|share a voxel"),
        (arrays[:2], {}, "num_levels is 3 but 2 levels"),
        ([arrays[0], LevelArrays(arrays[1].coords, arrays[1].feature[:, :3], arrays[1].scaling,
                                 arrays[1].offsets), arrays[2]], {}, "level 2: feature has shape"),
        ([LevelArrays(arrays[0].coords.astype(float), arrays[0].feature, arrays[0].scaling,
                      arrays[0].offsets), *arrays[1:]], {}, "level 1: coords must be"),
        (arrays, {"base_steps": (0.0, 1.0, 1.0)}, "base step of feature"),
        (arrays, {"base_steps": (1.0, 1.0, 17.0)}, "base step of offsets"),
        (arrays, {"context_layers": [layers[1]]}, "context layer 0"),
    ]
    for levels, options, message in cases:
        kwargs = dict(frame=frame, levels=levels, hash_grid=grid, context_layers=layers,
                      base_steps=(1 / 64, 1 / 64, 1 / 64), measure_rate=False)
        kwargs.update(options)
        with pytest.raises(ModelError, match=message):
            build_model(**kwargs)
    nan = LevelArrays(arrays[0].coords, np.full_like(arrays[0].feature, np.nan),
                      arrays[0].scaling, arrays[0].offsets)
    with pytest.raises(ModelError, match="level 1: feature holds non-finite"):
        _build(frame, [nan, *arrays[1:]], grid, layers)
    with pytest.raises(ValueError, match="together"):
        build_model(frame=frame, levels=arrays, hash_grid=grid, context_layers=None,
                    base_steps=None)


def test_frame_and_octree_from_points():
    points = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [1.0, 2.0, 2.9]])
    frame = frame_for_points(points, base_depth=1, num_levels=3)
    coords = octree_from_points(points, frame)
    assert [len(c) for c in coords] == [2, 2, 2]
    assert all(c.dtype == np.int32 for c in coords)
    with pytest.raises(ValueError, match="non-empty"):
        frame_for_points(np.zeros((0, 3)), 1, 1)


def test_third_party_trainer_example_runs(capsys):
    namespace = runpy.run_path(str(ROOT / "examples" / "third_party_trainer.py"))
    assert namespace["main"]([]) == 0
    out = capsys.readouterr().out
    assert "decode LoD 4" in out and "anchors in 4 levels" in out
