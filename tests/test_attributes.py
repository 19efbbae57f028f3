"""Tests for progs_codec.entropy.attributes (spec 7): round trips, reference decoder, bad input."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from progs_codec.entropy import attributes
from progs_codec.entropy.attributes import (VALUE_LIMIT, Prediction, decode_level_attributes,
                                            encode_level_attributes, group_steps,
                                            level_contexts, quantize_attributes,
                                            sample_attributes)
from progs_codec.entropy.coder import EscapeReader, ReferenceAnsDecoder
from progs_codec.entropy.context_model import predict
from progs_codec.entropy.hashgrid import hash_features
from progs_codec.entropy.model import (FIXED_POINT_BITS, EntropyModel, parse_entropy_model,
                                       write_entropy_model)
from progs_codec.entropy.tables import load_tables
from progs_codec.errors import FormatError, ModelError, ProgsError
from progs_codec.model import AttributeDims
from progs_codec.testing import random_entropy_model

DIMS = AttributeDims(feature=5, scaling=2, num_offsets=2)


@functools.cache
def small_model(dims=DIMS, seed=0):
    return random_entropy_model(dims, seed=seed, hidden=(16,))


def random_level(rng, n, depth=6):
    coords = rng.integers(0, 1 << depth, (n, 3)).astype(np.int32)
    return coords, coords >> 1


def heavy_tailed(model, prediction, dims, rng):
    """Model samples, some far out (escapes) and some beyond the value range (clamped)."""
    arrays = [a.copy() for a in sample_attributes(model, prediction, dims, rng)]
    for a in arrays:
        flat = a.reshape(-1)
        pick = rng.random(flat.shape) < 0.02
        flat[pick] *= rng.choice([30.0, -1e3, 1e6], pick.sum()).astype(np.float32)
    return arrays


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300),
       dims=st.sampled_from([DIMS, AttributeDims(1, 0, 1), AttributeDims(3, 6, 1)]))
def test_round_trip_is_exact_and_reencodes_identically(seed, n, dims):
    rng = np.random.default_rng(seed)
    model = small_model(dims)
    coords, parents = random_level(rng, n)
    prediction = level_contexts(model, coords, parents if seed % 2 else None, 6)
    attrs = heavy_tailed(model, prediction, dims, rng)
    payloads, decoded = encode_level_attributes(model, prediction, dims, *attrs)
    got = decode_level_attributes(model, prediction, dims, payloads, level=2)
    for a, b in zip(decoded, got):
        assert a.dtype == b.dtype == np.float32 and a.tobytes() == b.tobytes()
    again, redecoded = encode_level_attributes(model, prediction, dims, *got)
    assert again == payloads
    assert all(a.tobytes() == b.tobytes() for a, b in zip(redecoded, decoded))
    assert all(np.abs(a).max(initial=0) * 2**FIXED_POINT_BITS <= VALUE_LIMIT for a in got)


def test_quantization_error_is_at_most_half_a_step():
    rng = np.random.default_rng(1)
    model = small_model()
    prediction = level_contexts(model, *random_level(rng, 500), 6)
    attrs = sample_attributes(model, prediction, DIMS, rng)
    _, decoded = encode_level_attributes(model, prediction, DIMS, *attrs)
    start = 0
    for g, (a, b) in enumerate(zip(attrs, decoded)):
        a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
        cols = slice(start, start + a.shape[1])
        step = group_steps(model.base_steps[g])[prediction.step_index[:, cols]]
        assert (np.abs(a.astype(np.float64) - b) * 2**16 <= step / 2 + 1e-6).all()
        start += a.shape[1]


def reference_decode_group(payload, mean, scale_index, step_index, base_step):
    """Spec 7.4-7.6 in plain Python, symbol by symbol."""
    tables = load_tables()
    count = int.from_bytes(payload[:4], "little")
    words = np.frombuffer(payload, "<u4", count, 4)
    ans = ReferenceAnsDecoder(words)
    n, c = mean.shape
    index = np.zeros((n, c), np.int64)
    block = attributes.BLOCK_ANCHORS
    for start in range(0, n, block):
        rows = range(start, min(start + block, n))
        for t in range(64):
            for i in rows:
                for j in range(c):
                    if scale_index[i, j] == t:
                        index[i, j] = ans.decode(tables.frequencies[t])
    assert ans.finished()
    escapes = EscapeReader(payload[4 + 4 * count:])
    steps = group_steps(base_step)
    out = np.zeros((n, c), np.float32)
    for i in range(n):
        for j in range(c):
            half = int(tables.half_widths[scale_index[i, j]])
            k = int(index[i, j]) - half
            if k == half + 1:
                (m,), (neg,) = escapes.read(1)
                k = -(int(m) + half + 1) if neg else int(m) + half + 1
            value = int(mean[i, j]) + k * int(steps[step_index[i, j]])
            assert abs(value) <= VALUE_LIMIT
            out[i, j] = np.float32(value) * np.float32(2.0 ** -16)
    assert escapes.bytes_used == len(payload) - 4 - 4 * count
    return out


def test_fast_decoder_matches_plain_reference(monkeypatch):
    monkeypatch.setattr(attributes, "BLOCK_ANCHORS", 16)       # several blocks
    rng = np.random.default_rng(2)
    model = small_model()
    prediction = level_contexts(model, *random_level(rng, 40), 6)
    attrs = heavy_tailed(model, prediction, DIMS, rng)
    payloads, decoded = encode_level_attributes(model, prediction, DIMS, *attrs)
    start = 0
    for g, (group, n) in enumerate(DIMS.group_channels().items()):
        cols = slice(start, start + n)
        ref = reference_decode_group(payloads[group], prediction.mean[:, cols],
                                     prediction.scale_index[:, cols],
                                     prediction.step_index[:, cols], model.base_steps[g])
        assert ref.tobytes() == decoded[g].reshape(len(ref), -1).tobytes()
        start += n


def test_fast_decoder_matches_reference_with_wide_steps(monkeypatch):
    """Base steps up to 2**20: blocks without escapes then need the int64 value path."""
    monkeypatch.setattr(attributes, "BLOCK_ANCHORS", 16)
    rng = np.random.default_rng(12)
    base = small_model()
    for steps in ((1 << 20, 1 << 20, 1 << 19), (1 << 11, 1 << 20, 1)):
        model = EntropyModel(base.hash_grid, base.context_model, steps)
        prediction = level_contexts(model, *random_level(rng, 40), 6)
        attrs = sample_attributes(model, prediction, DIMS, rng)
        payloads, decoded = encode_level_attributes(model, prediction, DIMS, *attrs)
        again = decode_level_attributes(model, prediction, DIMS, payloads, level=2)
        start = 0
        for g, (group, n) in enumerate(DIMS.group_channels().items()):
            cols = slice(start, start + n)
            ref = reference_decode_group(payloads[group], prediction.mean[:, cols],
                                         prediction.scale_index[:, cols],
                                         prediction.step_index[:, cols], steps[g])
            assert ref.tobytes() == decoded[g].reshape(len(ref), -1).tobytes()
            assert ref.tobytes() == again[g].reshape(len(ref), -1).tobytes()
            start += n


def test_symbols_are_clamped_to_the_value_range():
    model = small_model()
    prediction = level_contexts(model, *random_level(np.random.default_rng(3), 50), 6)
    big = [np.full_like(a, 1e30) for a in sample_attributes(model, prediction, DIMS,
                                                            np.random.default_rng(0))]
    _, decoded = encode_level_attributes(model, prediction, DIMS, *big)
    for a in decoded:
        assert (a * 2.0**16 <= VALUE_LIMIT).all() and (a * 2.0**16 > VALUE_LIMIT - 2**21).all()


def test_bad_attributes_are_model_errors():
    model = small_model()
    prediction = level_contexts(model, *random_level(np.random.default_rng(4), 5), 6)
    f, s, o = sample_attributes(model, prediction, DIMS, np.random.default_rng(0))
    with pytest.raises(ModelError):
        encode_level_attributes(model, prediction, DIMS, f[:, :3], s, o)
    f[0, 0] = np.nan
    with pytest.raises(ModelError):
        encode_level_attributes(model, prediction, DIMS, f, s, o)


def test_contexts_use_parent_features_and_zero_for_roots():
    model = small_model()
    rng = np.random.default_rng(5)
    coords, parents = random_level(rng, 64)
    order = np.lexsort(parents.T[::-1])
    coords, parents = coords[order], parents[order]
    width = model.hash_grid.config.feature_width
    inputs = np.concatenate([hash_features(model.hash_grid, coords, 6),
                             hash_features(model.hash_grid, parents, 5)], axis=1)
    got = level_contexts(model, coords, parents, 6)
    for a, b in zip((got.mean, got.scale_index, got.step_index),
                    predict(model.context_model, inputs)):
        assert np.array_equal(a, b)
    inputs[:, width:] = 0
    roots = level_contexts(model, coords, None, 6)
    assert np.array_equal(roots.mean, predict(model.context_model, inputs)[0])


def test_model_predictions_spread_over_the_tables():
    model = random_entropy_model(AttributeDims())
    prediction = level_contexts(model, *random_level(np.random.default_rng(6), 2000, 9), 9)
    assert len(np.unique(prediction.scale_index)) > 20
    assert len(np.unique(prediction.step_index)) > 5


def test_entropy_model_parts_round_trip():
    model = small_model()
    parts = write_entropy_model(model)
    assert parse_entropy_model(*parts, DIMS) == model
    with pytest.raises(FormatError) as e:
        parse_entropy_model(*parts, AttributeDims(4, 2, 2))
    assert e.value.field == "context_mlp"
    with pytest.raises(FormatError) as e:
        parse_entropy_model(parts[0], b"\0" * 12 + parts[1][12:], DIMS)
    assert e.value.field == "context_mlp"
    with pytest.raises(ModelError):
        EntropyModel(model.hash_grid, model.context_model, (0, 1, 1))


@functools.cache
def coded_level():
    rng = np.random.default_rng(7)
    model = small_model()
    prediction = level_contexts(model, *random_level(rng, 60), 6)
    attrs = heavy_tailed(model, prediction, DIMS, rng)
    payloads, _ = encode_level_attributes(model, prediction, DIMS, *attrs)
    return model, prediction, payloads


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_corrupted_payloads_raise_only_located_format_errors(data):
    model, prediction, payloads = coded_level()
    group = data.draw(st.sampled_from(sorted(payloads)))
    raw = bytearray(payloads[group])
    for i, x in data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(1, 255)),
                                   max_size=3)):
        raw[i] ^= x
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    else:
        raw += data.draw(st.binary(max_size=4))
    try:
        decode_level_attributes(model, prediction, DIMS, {**payloads, group: bytes(raw)},
                                level=3)
    except ProgsError as e:
        assert isinstance(e, FormatError) and e.chunk == "LEVL 3" and e.field == group


def test_truncated_and_extended_payloads_are_errors():
    model, prediction, payloads = coded_level()
    for group, payload in payloads.items():
        for bad in (payload[:-1], payload + b"\0", payload[:3], (10**6).to_bytes(4, "little")):
            with pytest.raises(FormatError) as e:
                decode_level_attributes(model, prediction, DIMS, {**payloads, group: bad},
                                        level=3)
            assert e.value.chunk == "LEVL 3" and e.value.field == group


def test_empty_level():
    model = small_model()
    prediction = level_contexts(model, np.zeros((0, 3), np.int32), None, 3)
    empty = [np.zeros((0, 5), np.float32), np.zeros((0, 2), np.float32),
             np.zeros((0, 2, 3), np.float32)]
    payloads, decoded = encode_level_attributes(model, prediction, DIMS, *empty)
    assert all(p == bytes(4) for p in payloads.values())
    got = decode_level_attributes(model, prediction, DIMS, payloads, level=1)
    assert [a.shape for a in got] == [a.shape for a in empty]


def test_quantize_matches_definition():
    model = small_model()
    prediction = Prediction(np.zeros((1, 13), np.int32), np.zeros((1, 13), np.uint8),
                            np.full((1, 13), 16, np.uint8))
    step = int(group_steps(model.base_steps[0])[16])
    f = (np.array([[-1.5, -0.5, 0.5, 1.5, 2.49]]) * step / 2**16).astype(np.float32)
    k = quantize_attributes(model, prediction, DIMS, f, np.zeros((1, 2), np.float32),
                            np.zeros((1, 2, 3), np.float32))["feature"]
    assert k.tolist() == [[-1, 0, 1, 2, 2]]          # floor(x + 1/2): halves go up


def test_block_by_block_decode_equals_whole_level_decode():
    """predict_and_decode_attributes (contexts per block, spec 7.5 order) gives what the two-step path gives."""
    model = small_model()
    rng = np.random.default_rng(11)
    coords, parents = random_level(rng, 2 * attributes.BLOCK_ANCHORS + 100, 9)
    prediction = level_contexts(model, coords, parents, 9)
    payloads, decoded = encode_level_attributes(model, prediction, DIMS,
                                                *sample_attributes(model, prediction, DIMS, rng))
    got = attributes.predict_and_decode_attributes(model, DIMS, payloads, coords, parents, 9,
                                                   level=3)
    assert all(np.array_equal(a, b) for a, b in zip(got, decoded))
    bad = bytearray(payloads["scaling"])
    bad[-1] ^= 0x40
    with pytest.raises(FormatError) as info:
        attributes.predict_and_decode_attributes(model, DIMS, {**payloads, "scaling": bytes(bad)},
                                                 coords, parents, 9, level=3)
    assert (info.value.chunk, info.value.field) == ("LEVL 3", "scaling")


def test_faults_are_reported_in_the_order_of_spec_8_4():
    """Spec 7.6, 8.4 E1-E6: the groups one after the other, the end check before the values.
    The fast path decodes the groups' blocks interleaved; the class it reports is still the
    first fault's in that order."""
    import struct

    from progs_codec.errors import LimitError

    model, prediction, payloads = coded_level()

    def decode(**groups):
        return decode_level_attributes(model, prediction, DIMS, {**payloads, **groups}, level=3)

    (m,) = struct.unpack_from("<I", payloads["feature"])
    words = struct.unpack_from(f"<{m}I", payloads["feature"], 4)
    end_fault = struct.pack(f"<I{m + 1}I", m + 1, 0x12345678, *words) + \
        payloads["feature"][4 + 4 * m:]
    words_over = struct.pack("<I", 10**6) + payloads["scaling"][4:]
    with pytest.raises(LimitError):
        decode(scaling=words_over)
    with pytest.raises(FormatError) as info:
        decode(feature=end_fault, scaling=words_over)     # feature first, end check: format
    assert type(info.value) is FormatError and info.value.field == "feature"
