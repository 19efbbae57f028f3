"""Tests for progs_codec.entropy.coder (spec 7.4-7.6)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from progs_codec.entropy.coder import (EscapeReader, ReferenceAnsDecoder, bernoulli_frequencies,
                                       categorical_model, decode_bits, decode_symbols, encode_bits,
                                       encode_symbols, open_decoder, reference_encode,
                                       write_escapes)
from progs_codec.entropy.tables import PRECISION
from progs_codec.errors import FormatError, ProgsError


def random_table(rng, n):
    p = rng.random(n) ** rng.integers(1, 12)
    f = 1 + np.floor(p / p.sum() * ((1 << PRECISION) - n)).astype(np.int64)
    f[np.argmax(f)] += (1 << PRECISION) - f.sum()
    return f


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400), tables=st.integers(1, 4))
def test_constriction_matches_reference_word_for_word(seed, n, tables):
    rng = np.random.default_rng(seed)
    freqs = [random_table(rng, int(rng.integers(2, 40))) for _ in range(tables)]
    table_index = rng.integers(0, tables, n).astype(np.uint8)
    symbols = np.array([rng.choice(len(freqs[t]), p=freqs[t] / freqs[t].sum())
                        for t in table_index], dtype=np.int32)
    # constriction pops table 0 first: the reference codes the same grouped order
    order = np.argsort(table_index, kind="stable")
    words = encode_symbols(symbols, freqs, table_index)
    assert np.array_equal(words, reference_encode(symbols[order], freqs, table_index[order]))
    decoder = ReferenceAnsDecoder(words)
    decoded = [decoder.decode(freqs[t]) for t in table_index[order]]
    assert decoded == symbols[order].tolist() and decoder.finished()
    assert np.array_equal(decode_symbols(words, n, freqs, table_index), symbols)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), nwords=st.integers(0, 6), n=st.integers(0, 300))
def test_reference_decoder_matches_constriction_on_garbage(seed, nwords, n):
    """Spec 7.4's decoder (initial read, refill, end check) is constriction's, on any words."""
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 2**32, nwords, dtype=np.uint64).astype(np.uint32)
    words[rng.random(nwords) < 0.3] = 0
    if nwords:
        words[-1] = max(int(words[-1]), 1)
    f = random_table(rng, 5)
    coder = open_decoder(words)
    fast = coder.decode(categorical_model(f), n)
    ref = ReferenceAnsDecoder(words)
    assert fast.tolist() == [ref.decode(f) for _ in range(n)]
    assert coder.is_empty() == ref.finished()


def test_categorical_reproduces_integer_frequencies_exactly():
    """F - 1 with perfect=False gives the model F: checked through the coded words."""
    rng = np.random.default_rng(1)
    for n in (2, 3, 17, 300, 3076):
        f = random_table(rng, n)
        symbols = rng.integers(0, n, 2000).astype(np.int32)
        assert np.array_equal(encode_symbols(symbols, [f]),
                              reference_encode(symbols, [f], np.zeros(2000, int)))


def test_trailing_zero_word_and_leftover_words_are_errors():
    f = np.array([1 << 23, 1 << 23])
    with pytest.raises(FormatError):
        open_decoder(np.array([5, 0], np.uint32))
    words = encode_symbols(np.ones(100, np.int32), [f])
    with pytest.raises(FormatError):
        decode_symbols(np.concatenate([np.array([7], np.uint32), words]), 100, [f])
    with pytest.raises(FormatError):
        decode_symbols(words, 99, [f])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**25 - 4), st.booleans()), max_size=50))
def test_escape_round_trip(escapes):
    mags = np.array([m for m, _ in escapes], np.int64)
    neg = np.array([s for _, s in escapes], bool)
    data = write_escapes(mags, neg)
    reader = EscapeReader(data)
    got_mags, got_neg = reader.read(len(escapes))
    assert reader.bytes_used == len(data)
    assert np.array_equal(got_mags, mags) and np.array_equal(got_neg, neg)


def test_escape_code_bits():
    # magnitude 0 -> "1", sign "0"; magnitude 4 (m=5="101") -> "00101", sign "1"
    assert write_escapes(np.array([0, 4]), np.array([False, True])) == bytes([0b10001011])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=20), st.integers(0, 40))
def test_escape_reader_on_garbage_raises_only_progs_errors(data, count):
    try:
        EscapeReader(data).read(count)
    except ProgsError:
        pass


def test_escape_reader_truncation():
    data = write_escapes(np.array([1000]), np.array([False]))
    with pytest.raises(FormatError):
        EscapeReader(data[:-1]).read(1)
    with pytest.raises(FormatError):
        EscapeReader(bytes(8)).read(1)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3000), p=st.floats(0, 1))
def test_bits_round_trip(seed, n, p):
    bits = np.random.default_rng(seed).random(n) < p
    ones, words = encode_bits(bits)
    assert np.array_equal(decode_bits(words, n, ones), bits)


def test_bernoulli_frequencies_clip():
    assert bernoulli_frequencies(0, 10).tolist() == [(1 << 24) - 1, 1]
    assert bernoulli_frequencies(10, 10).tolist() == [1, (1 << 24) - 1]
    assert bernoulli_frequencies(1, 2).tolist() == [1 << 23, 1 << 23]


def test_decode_bits_checks_count_of_ones():
    bits = np.arange(100) % 3 == 0
    ones, words = encode_bits(bits)
    with pytest.raises(FormatError):
        decode_bits(words, 100, ones + 1)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300), tables=st.integers(1, 5))
def test_pop_grouped_gives_table_runs_and_their_positions(seed, n, tables):
    """The fast path's grouped pop: runs in table order; scattering them is pop_by_table."""
    from progs_codec.entropy.coder import pop_by_table, pop_grouped, push_by_table
    import constriction
    rng = np.random.default_rng(seed)
    freqs = [random_table(rng, int(rng.integers(2, 20))) for _ in range(tables)]
    models = [categorical_model(f) for f in freqs]
    table_index = rng.integers(0, tables, n).astype(np.uint8)
    symbols = np.array([rng.integers(0, len(freqs[t])) for t in table_index], np.int32)
    coder = constriction.stream.stack.AnsCoder()
    push_by_table(coder, symbols, table_index, models)
    words = coder.get_compressed()
    grouped, order, used, counts = pop_grouped(open_decoder(words), table_index, models)
    assert used.tolist() == sorted(set(table_index.tolist()))
    assert np.array_equal(np.repeat(used, counts), table_index[order])
    assert np.array_equal(grouped, symbols[order])
    assert np.array_equal(pop_by_table(open_decoder(words), table_index, models), symbols)
