"""Tests for progs_codec.entropy.context_model (spec 6)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from progs_codec.entropy.context_model import (ACTIVATION_MAX, MAX_WIDTH, ContextLayer,
                                               ContextModel, accumulate, parse_context_model,
                                               predict, predict_reference, random_context_model,
                                               write_context_model)
from progs_codec.errors import FormatError, ModelError, ProgsError


def extreme_operands(rng, n, width):
    """Inputs and weights at the spec 6.3 bound: |x| = |w| = 127, mostly one sign."""
    x = np.full((n, width), 127, np.int64) * rng.choice([-1, 1], (n, 1))
    x[rng.random((n, width)) < 0.02] *= -1
    w = np.full((8, width), 127, np.int64) * rng.choice([-1, 1], (8, 1))
    w[rng.random((8, width)) < 0.02] *= -1
    return x, w


def test_gemm_methods_agree_at_the_accumulator_bound():
    rng = np.random.default_rng(0)
    x, w = extreme_operands(rng, 512, MAX_WIDTH)
    exact = x @ w.T
    assert np.abs(exact).max() >= 0.95 * 127 * 127 * MAX_WIDTH    # really at the bound
    assert np.abs(exact).max() < 1 << 24
    for method in ("float32", "float64", "int64"):
        assert np.array_equal(accumulate(x, w.astype(np.int8), method=method), exact)
    # random operands, random widths
    for width in (1, 7, 96, 1000, 1024):
        x = rng.integers(-127, 128, (300, width))
        w = rng.integers(-127, 128, (50, width))
        got = [accumulate(x, w.astype(np.int8), method=m) for m in ("float32", "float64", "int64")]
        assert all(np.array_equal(g, x @ w.T) for g in got)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), depth=st.integers(1, 4))
def test_predict_matches_int64_reference(seed, depth):
    rng = np.random.default_rng(seed)
    widths = [int(rng.integers(1, 80))] + [int(rng.integers(1, 60)) for _ in range(depth - 1)]
    model = random_context_model(widths + [3 * int(rng.integers(1, 30))], rng)
    x = rng.integers(-127, 128, (int(rng.integers(0, 200)), widths[0]))
    for a, b in zip(predict(model, x), predict_reference(model, x)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_predict_at_the_bound_with_extreme_requantization():
    """Widest layer, largest |bias|, multiplier and shift: float paths still exact."""
    rng = np.random.default_rng(2)
    x, _ = extreme_operands(rng, 256, MAX_WIDTH)
    w = np.where(rng.random((MAX_WIDTH, MAX_WIDTH)) < 0.5, 127, -127).astype(np.int8)
    hidden = ContextLayer(w, rng.choice([-(2**31 - 1), 2**31 - 1], MAX_WIDTH).astype(np.int32),
                          np.full(MAX_WIDTH, 65535, np.uint16),
                          rng.integers(20, 41, MAX_WIDTH).astype(np.uint8))
    last = ContextLayer(rng.choice([-127, 127], (30, MAX_WIDTH)).astype(np.int8),
                        np.zeros(30, np.int32), np.full(30, 65535, np.uint16),
                        np.array([0, 1, 40] * 10, np.uint8))
    model = ContextModel((hidden, last), 10)
    for a, b in zip(predict(model, x), predict_reference(model, x)):
        assert np.array_equal(a, b)


def test_outputs_are_clipped_to_table_ranges():
    rng = np.random.default_rng(3)
    model = random_context_model([16, 32, 3 * 20], rng)
    mean, scale, step = predict(model, rng.integers(-127, 128, (1000, 16)))
    assert scale.max() <= 63 and step.max() <= 31 and np.abs(mean).max() < 1 << 24


def test_rounding_is_half_up():
    layer = ContextLayer(np.array([[1]], np.int8), np.array([0], np.int32),
                         np.array([1], np.uint16), np.array([1], np.uint8))
    model = ContextModel((layer,
                          ContextLayer(np.ones((3, 1), np.int8), np.zeros(3, np.int32),
                                       np.ones(3, np.uint16), np.zeros(3, np.uint8))), 1)
    x = np.arange(-4, 5)[:, None]
    # hidden = clip(floor((x + 1) / 2), 0, 127): -4..4 -> 0,0,0,0,0,1,1,2,2
    mean, _, _ = predict(model, x)
    assert mean[:, 0].tolist() == [0, 0, 0, 0, 0, 1, 1, 2, 2]
    assert ACTIVATION_MAX == 127


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_write_parse_round_trip(seed):
    rng = np.random.default_rng(seed)
    model = random_context_model([int(rng.integers(1, 40)), int(rng.integers(1, 40)), 3 * 7], rng)
    assert parse_context_model(write_context_model(model), 7) == model


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_corrupted_bytes_raise_only_format_errors(data):
    model = random_context_model([6, 5, 3 * 2], np.random.default_rng(0))
    raw = bytearray(write_context_model(model))
    for i, x in data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1),
                                             st.integers(1, 255)), max_size=3)):
        raw[i] ^= x
    raw = raw[:data.draw(st.integers(0, len(raw) + 1))]
    try:
        parse_context_model(bytes(raw), 2)
    except ProgsError as e:
        assert isinstance(e, FormatError) and e.chunk == "HEAD" and e.field == "context_mlp"


def test_invalid_models_are_model_errors():
    rng = np.random.default_rng(0)
    good = random_context_model([4, 6], rng)
    with pytest.raises(ModelError):
        ContextModel(good.layers, 3)
    bad = ContextLayer(np.full((6, 4), -128, np.int8), good.layers[0].bias,
                       good.layers[0].multiplier, good.layers[0].shift)
    with pytest.raises(ModelError):
        ContextModel((bad,), 2)


def test_predict_in_several_row_chunks(monkeypatch):
    """Chunks of 16 rows, the last one partial: the reused buffers give the reference."""
    from progs_codec.entropy import context_model
    monkeypatch.setattr(context_model, "_ROWS", 16)
    rng = np.random.default_rng(9)
    for widths in ([20, 3 * 7], [20, 33, 17, 3 * 11]):
        model = random_context_model(widths, rng)
        x = rng.integers(-127, 128, (71, widths[0]))
        for a, b in zip(predict(model, x), predict_reference(model, x)):
            assert a.dtype == b.dtype and np.array_equal(a, b)


def test_checks_follow_the_order_of_spec_8_4():
    """X5-X10: input_width = 2 G (format) is checked with the widths, before the arrays; a
    wrong hidden width is limit before the length is compared."""
    import struct

    from progs_codec.errors import LimitError

    model = random_context_model([6, 5, 3 * 2], np.random.default_rng(0))
    raw = write_context_model(model)
    assert parse_context_model(raw, 2, input_width=6) == model
    # one more input per row, the added weights -128: the length fits, two faults
    n, width = raw[0], struct.unpack_from("<H", raw, 1)[0]
    outs = struct.unpack_from(f"<{n}H", raw, 3)
    start = 3 + 2 * n
    rows = b"".join(raw[start + r * width: start + (r + 1) * width] + b"\x80"
                    for r in range(outs[0]))
    wider = raw[:1] + struct.pack("<H", width + 1) + raw[3:start] + rows + \
        raw[start + outs[0] * width:]
    with pytest.raises(LimitError, match="-128"):
        parse_context_model(wider, 2)                          # no grid width given
    with pytest.raises(FormatError, match="2 G") as info:
        parse_context_model(wider, 2, input_width=6)
    assert type(info.value) is FormatError
    with pytest.raises(LimitError, match="hidden"):
        parse_context_model(raw[:3] + struct.pack("<H", 0) + raw[5:] + b"\0", 2)
