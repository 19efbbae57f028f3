"""Tests for progs_codec.entropy.export (spec 6.6, informative)."""

import numpy as np

from progs_codec.entropy.context_model import predict, predict_reference
from progs_codec.entropy.export import (export_context_model, float_predict,
                                        float_sample_attributes, rate_gap, synthetic_float_mlp)
from progs_codec.entropy.hashgrid import PRESETS, hash_features, random_hash_grid
from progs_codec.entropy.model import EntropyModel
from progs_codec.model import AttributeDims

DIMS = AttributeDims(feature=10, scaling=2, num_offsets=2)
STEPS = (1 << 11, 1 << 6, 1 << 10)


def calibration(n, seed=0):
    rng = np.random.default_rng(seed)
    grid = random_hash_grid(PRESETS["small"], seed=seed)
    coords = rng.integers(0, 1 << 9, (n, 3))
    return grid, np.concatenate([hash_features(grid, coords, 9),
                                 hash_features(grid, coords >> 1, 8)], axis=1)


def test_export_follows_the_float_model():
    rng = np.random.default_rng(0)
    _, inputs = calibration(3000)
    layers = synthetic_float_mlp(inputs[:1000], DIMS, (32, 32), STEPS, rng)
    model = export_context_model(layers, inputs[:1000])
    mean, scale, step = predict(model, inputs[1000:])
    for a, b in zip((mean, scale, step), predict_reference(model, inputs[1000:])):
        assert np.array_equal(a, b)
    f_mean, f_scale, f_step = float_predict(layers, inputs[1000:])
    assert np.abs(mean / 2**16 - f_mean).mean() < 0.003           # a tenth of a feature step
    assert np.abs(scale - np.clip(f_scale, 0, 63)).mean() < 0.4    # rounding: 0.25 on average
    assert np.abs(step - np.clip(f_step, 0, 31)).mean() < 0.4


def test_export_keeps_large_biases():
    rng = np.random.default_rng(2)
    _, inputs = calibration(500)
    layers = synthetic_float_mlp(inputs, DIMS, (16,), STEPS, rng)
    w, b = layers[-1]
    layers[-1] = (w * 1e-6, b)                    # tiny weights, bias -4: needs wide scales
    mean, _, _ = predict(export_context_model(layers, inputs), inputs)
    assert np.abs(mean / 2**16 - float_predict(layers, inputs)[0]).max() < 1e-4


def test_rate_gap_is_small():
    rng = np.random.default_rng(1)
    grid, inputs = calibration(6000, seed=1)
    layers = synthetic_float_mlp(inputs[:1000], DIMS, (32, 32), STEPS, rng)
    model = EntropyModel(grid, export_context_model(layers, inputs[:1000]), STEPS)
    attrs = float_sample_attributes(layers, inputs, STEPS, DIMS, rng)
    gap = rate_gap(layers, model, inputs, DIMS, *attrs)
    assert 0 <= gap.coder_overhead < 0.01             # words and escapes: a few bytes
    assert abs(gap.export_gap) < 0.01


def test_refit_and_error_feedback_shrink_the_gap():
    """The default export beats plain round-to-nearest with one activation scale a layer."""
    rng = np.random.default_rng(4)
    grid, inputs = calibration(8000, seed=4)
    layers = synthetic_float_mlp(inputs[:2000], DIMS, (32, 32), STEPS, rng)
    attrs = float_sample_attributes(layers, inputs[2000:], STEPS, DIMS, rng)
    gaps = []
    for options in ({"refit": False, "per_channel_activations": False,
                     "error_feedback": False, "activation_headroom": 1.0}, {}):
        model = EntropyModel(grid, export_context_model(layers, inputs[:2000], **options),
                             STEPS)
        gaps.append(rate_gap(layers, model, inputs[2000:], DIMS, *attrs).export_gap)
    assert gaps[1] < gaps[0]


def test_export_survives_dead_hidden_channels():
    rng = np.random.default_rng(5)
    _, inputs = calibration(500, seed=5)
    layers = synthetic_float_mlp(inputs, DIMS, (16, 16), STEPS, rng)
    w, b = layers[0]
    layers[0] = (w, np.where(np.arange(len(b)) < 4, -1e3, b).astype(np.float32))  # 4 dead
    model = export_context_model(layers, inputs)
    mean, _, _ = predict(model, inputs)
    assert np.abs(mean / 2**16 - float_predict(layers, inputs)[0]).mean() < 0.003
