"""Tests for progs_codec.entropy.hashgrid (spec 5)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from progs_codec.entropy.hashgrid import (FEATURE_LIMIT, PRESETS, HashGrid, HashGridConfig,
                                          grid_corners, hash_features, hash_features_reference,
                                          parse_hash_grid, random_hash_grid, table_sizes,
                                          write_hash_grid)
from progs_codec.errors import FormatError, ModelError, ProgsError

TINY = HashGridConfig((2, 5, 9), 6, (3, 17), 5, features_per_level=3)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), depth=st.integers(0, 21), n=st.integers(1, 20))
def test_vectorized_features_match_reference(seed, depth, n):
    rng = np.random.default_rng(seed)
    grid = random_hash_grid(TINY, seed=seed)
    coords = rng.integers(0, 1 << depth, (n, 3))
    assert np.array_equal(hash_features(grid, coords, depth),
                          hash_features_reference(grid, coords, depth))


def test_small_preset_matches_reference_and_is_small():
    grid = random_hash_grid(PRESETS["small"], seed=3)
    coords = np.random.default_rng(0).integers(0, 1 << 9, (40, 3))
    assert np.array_equal(hash_features(grid, coords, 9), hash_features_reference(grid, coords, 9))
    assert len(write_hash_grid(grid)) < 50_000
    assert [s for _, _, s in table_sizes(PRESETS["small"])][:3] == [17**3, 25**3, 1 << 14]


def _features_from_corners(grid, coords, depth):
    f, parts, start = grid.config.features_per_level, [], 0
    signs = np.where(grid.params, 1, -1)
    for corners, (_, _, entries) in zip(grid_corners(grid.config, coords, depth),
                                        table_sizes(grid.config)):
        table = signs[start:start + entries * f].reshape(entries, f)
        start += entries * f
        total = (corners.weight[..., None] * table[corners.index]).sum(axis=1)
        parts.append((total * FEATURE_LIMIT + (1 << (corners.shift - 1))) >> corners.shift)
    return np.concatenate(parts, axis=1)


@pytest.mark.parametrize("config", [TINY, PRESETS["small"]], ids=["tiny", "small"])
def test_grid_corners_give_the_decoder_features(config):
    """The public lookup (for trainers) and hash_features agree, per-anchor depths too."""
    rng = np.random.default_rng(5)
    grid = random_hash_grid(config, seed=5)
    depth = rng.integers(0, 14, 300)
    coords = rng.integers(0, 1 << 14, (300, 3)) >> (14 - depth)[:, None]
    got = _features_from_corners(grid, coords, depth)
    for d in np.unique(depth):
        rows = depth == d
        assert np.array_equal(got[rows], hash_features(grid, coords[rows], int(d)))


def test_constant_grid_gives_extreme_features():
    cfg = PRESETS["small"]
    coords = np.random.default_rng(1).integers(0, 1 << 12, (100, 3))
    for value, bit in ((FEATURE_LIMIT, True), (-FEATURE_LIMIT, False)):
        grid = HashGrid(cfg, np.full(cfg.num_params, bit))
        assert (hash_features(grid, coords, 12) == value).all()


def test_dense_level_interpolates_linearly():
    """One dense 1-level grid: a vertex pattern +1 at x = R only gives a ramp in x."""
    cfg = HashGridConfig((4,), 10, (), 1, features_per_level=1)
    x = np.arange(5)[:, None, None] + 0 * np.arange(5)[None, :, None] + 0 * np.arange(5)
    params = (x == 4).transpose(2, 1, 0).ravel()          # index = x + 5 y + 25 z
    grid = HashGrid(cfg, params)
    coords = np.array([[c, 0, 0] for c in range(8)])      # depth 3: u = (2c+1)/4
    got = hash_features(grid, coords, 3)[:, 0]
    # c = 6, 7: u = 3.25, 3.75, so -127 + 254 w = -63.5, 63.5, rounded half up
    assert got.tolist() == [-127] * 6 + [-63, 64]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), p=st.floats(0, 1))
def test_write_parse_round_trip(seed, p):
    grid = random_hash_grid(TINY, seed=seed, p_one=p)
    assert parse_hash_grid(write_hash_grid(grid)) == grid


def test_hac_preset_size():
    assert PRESETS["hac"].feature_width == 48
    assert PRESETS["hac"].problems() == []


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_corrupted_part_raises_only_progs_errors(data):
    part = bytearray(write_hash_grid(random_hash_grid(TINY, seed=1, p_one=0.3)))
    cut = data.draw(st.integers(0, len(part)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(part) - 1), st.integers(1, 255)),
                               max_size=3))
    for i, x in flips:
        part[i] ^= x
    try:
        grid = parse_hash_grid(bytes(part[:cut]) if data.draw(st.booleans()) else bytes(part))
    except ProgsError as e:
        assert isinstance(e, FormatError) and e.chunk == "HEAD" and e.field == "hash_grid"
    else:
        assert grid.params.dtype == bool


def test_invalid_configs():
    with pytest.raises(ModelError):
        HashGrid(HashGridConfig((), 4, (), 4), np.zeros(0, bool))
    with pytest.raises(ModelError):
        HashGrid(TINY, np.zeros(3, bool))
    assert HashGridConfig((8,) * 12, 25, (), 4).problems()


def test_chunked_features_match_reference(monkeypatch):
    """Several row chunks, the last one partial, reuse the work buffers correctly."""
    from progs_codec.entropy import hashgrid
    monkeypatch.setattr(hashgrid, "_CHUNK", 7)
    for cfg, depth in ((PRESETS["small"], 10), (TINY, 17)):
        grid = random_hash_grid(cfg, seed=4)
        coords = np.random.default_rng(5).integers(0, 1 << depth, (30, 3))
        assert np.array_equal(hash_features(grid, coords, depth),
                              hash_features_reference(grid, coords, depth))


def test_words_past_the_part_are_limit_bytes_after_them_format():
    """Spec 5.4, 8.4 G9-G11: a word count past the part is limit, trailing bytes format, and
    the length is checked before num_ones <= P."""
    import struct

    from progs_codec.errors import LimitError

    part = write_hash_grid(random_hash_grid(TINY, seed=1, p_one=0.3))
    counts = 5 + 2 * (len(TINY.resolutions_3d) + len(TINY.resolutions_2d))
    ones, words = struct.unpack_from("<II", part, counts)
    with pytest.raises(LimitError, match="runs past"):
        parse_hash_grid(part[:counts + 4] + struct.pack("<I", words + 1) + part[counts + 8:])
    with pytest.raises(FormatError) as info:
        parse_hash_grid(part[:counts] + struct.pack("<I", TINY.num_params + 1)
                        + part[counts + 4:] + b"\0")
    assert type(info.value) is FormatError
    no_3d = write_hash_grid(random_hash_grid(HashGridConfig((), 1, (3,), 4, 1), seed=2))
    with pytest.raises(LimitError, match="log2_table_3d 0"):   # B3 checked even when L3 = 0
        parse_hash_grid(no_3d[:2] + b"\0" + no_3d[3:])
