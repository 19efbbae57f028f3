"""Bounded memory: every declared size is checked before anything is allocated for it.

One test per limit, each with a stream of a few hundred bytes that declares far more than
it holds: the decoder refuses it (``LimitError``, or ``SplatsError`` for the 3DGS readers)
without allocating, which ``tracemalloc`` measures (numpy reports its buffers to it). Within
capability 1 (spec 8.6) a decoder may not refuse: there the largest allocation a few bytes
can ask for is bounded instead (the hash grid; the attributes by ``max_values``).
"""

import gzip
import struct
import tracemalloc

import numpy as np
import pytest

from progs_codec import FormatError, LimitError, decode, encode, inspect, truncate
from progs_codec.codec import DEFAULT_MAX_ANCHORS, DEFAULT_MAX_VALUES
from progs_codec.entropy.hashgrid import MAX_PARAMS
from progs_codec.format.container import FILE_HEADER_SIZE, ChunkReader, write_chunk
from progs_codec.format.header import split_parts
from progs_codec.render.splats import (SplatsError, check_ply_header, check_spz_header,
                                       read_splats)
from progs_codec.testing import synthetic_model

MB = 1 << 20


def peak_of(function, *args, **kwargs):
    """``(exception or result, peak bytes traced)`` of one call."""
    tracemalloc.start()
    try:
        outcome = function(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the test inspects it
        outcome = error
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return outcome, peak


def chunks_of(stream):
    reader = ChunkReader()
    reader.feed(stream)
    return [(c.type, c.payload) for c in iter(reader.next_chunk, None)]


def with_head(stream, head_payload):
    """The stream with its HEAD payload replaced (level offsets are not fixed up: these
    streams are refused at the header)."""
    chunks = chunks_of(stream)
    return stream[:FILE_HEADER_SIZE] + b"".join(
        write_chunk(t, head_payload if t == b"HEAD" else p) for t, p in chunks)


def parts_payload(parts):
    return b"".join(struct.pack("<I", len(p)) + p for p in parts.values())


@pytest.fixture(scope="module")
def entropy_stream():
    return encode(synthetic_model(200, 2, seed=7))


def toc_declaring(stream, level, anchors):
    parts = split_parts(chunks_of(stream)[0][1])
    toc = bytearray(parts["toc"])
    struct.pack_into("<I", toc, 16 * (level - 1) + 12, anchors)
    parts["toc"] = bytes(toc)
    return with_head(stream, parts_payload(parts))


def test_max_anchors(entropy_stream):
    """A (spec 8.5): the anchors the table of contents declares for the requested levels,
    refused right after HEAD, before any level is read; capability 1 (8.6) is the default."""
    stream = toc_declaring(entropy_stream, 2, DEFAULT_MAX_ANCHORS)   # A = 2**21 + level 1
    error, peak = peak_of(decode, stream, max_values=None)
    assert isinstance(error, LimitError) and "max_anchors=2,097,152" in str(error)
    assert peak < 8 * MB
    assert decode(stream, max_lod=1).lod == 1              # only the requested levels count
    with pytest.raises(FormatError, match="anchor_count"):  # lifted: the chunk disagrees
        decode(stream, max_anchors=None, max_values=None)


def test_max_values(entropy_stream):
    """A·C (spec 8.5): 2**27 attribute values by default, 512 MiB of float32."""
    channels = inspect(entropy_stream).dims.channels
    level1 = inspect(entropy_stream).levels[0].anchors
    within = DEFAULT_MAX_VALUES // channels - level1           # A·C just within capability 1
    assert within < DEFAULT_MAX_ANCHORS
    with pytest.raises(FormatError, match="anchor_count"):     # passes the limit, then the
        decode(toc_declaring(entropy_stream, 2, within))       # chunk disagrees with the TOC
    stream = toc_declaring(entropy_stream, 2, within + 1)
    error, peak = peak_of(decode, stream)
    assert isinstance(error, LimitError) and "max_values=134,217,728" in str(error)
    assert peak < 8 * MB
    for tool in (inspect, lambda s: truncate(s, 2)):           # the tools walk with no limit
        assert isinstance(peak_of(tool, stream)[0], FormatError)


def grid_part(features, log2_table, resolutions):
    """A hash_grid part of all-zero parameters (spec 5.4), coded in one or two words."""
    from progs_codec.entropy.coder import encode_bits

    count = features * sum(min(1 << log2_table, (r + 1) ** 3) for r in resolutions)
    ones, words = encode_bits(np.zeros(count, bool))
    return (struct.pack("<5B", features, len(resolutions), log2_table, 0, 1)
            + np.array(resolutions, "<u2").tobytes() + struct.pack("<II", ones, len(words))
            + words.astype("<u4").tobytes())


def test_largest_hash_grid_is_bounded():
    """45 bytes can declare 2**26 grid parameters, which 8.6 obliges a decoder to take: they
    are decoded 2**22 at a time into bools and packed once: under 6 bytes per parameter."""
    import time

    from progs_codec.entropy.hashgrid import parse_hash_grid

    part = grid_part(2, 21, [4095] * 16)
    assert len(part) < 64
    start = time.process_time()
    grid, peak = peak_of(lambda: (g := parse_hash_grid(part), g._packed)[0])
    assert grid.config.num_params == MAX_PARAMS
    assert peak < 6 * MAX_PARAMS and time.process_time() - start < 4.0


def test_spz_count_and_gzip_bomb(tmp_path):
    """An SPZ header's count must fit the data, and the data may not inflate to more."""
    head = struct.pack("<IIIBBBB", 0x5053474E, 2, 10_000_000, 0, 12, 0, 0)
    path = tmp_path / "big.spz"
    path.write_bytes(gzip.compress(head + bytes(100)))
    error, peak = peak_of(read_splats, path)
    assert isinstance(error, SplatsError) and "10,000,000 Gaussians" in str(error)
    assert peak < 8 * MB
    bomb = gzip.compress(struct.pack("<IIIBBBB", 0x5053474E, 2, 1, 0, 12, 0, 0)
                         + bytes(64 * MB))       # 64 MB of zeros: a 65 kB file
    (tmp_path / "bomb.spz").write_bytes(bomb)
    assert len(bomb) < 100_000
    error, peak = peak_of(read_splats, tmp_path / "bomb.spz")
    assert isinstance(error, SplatsError) and "inflates to more" in str(error)
    assert peak < 8 * MB
    with pytest.raises(SplatsError, match="corrupt gzip"):
        check_spz_header(gzip.compress(head)[:-8] + b"garbage!")


@pytest.mark.parametrize("fmt", ["binary_little_endian", "ascii"])
def test_ply_count(tmp_path, fmt):
    """A PLY header declaring a billion vertices over a few bytes is refused unread."""
    props = "".join(f"property float {p}\n" for p in
                    ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0",
                     "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"))
    raw = f"ply\nformat {fmt} 1.0\nelement vertex 1000000000\n{props}end_header\n".encode()
    path = tmp_path / "big.ply"
    path.write_bytes(raw + bytes(560))
    error, peak = peak_of(read_splats, path)
    assert isinstance(error, SplatsError) and "1,000,000,000 vertices" in str(error)
    assert peak < 8 * MB
    assert check_ply_header(raw.replace(b"1000000000", b"10") + bytes(560)) == 10


# Found by fuzzing (fuzz/results.json): a gzip member followed by zero bytes made the bounded
# inflate loop spin forever (zlib keeps an ended stream's tail as it was).
SPZ_HANG = (
    "H4sIAEVwDWsA//NzDw5gZmBg4ABiBh4Ghud//5f+/P/33//Hf/+X//z/79//X2CRx//+f/j7v/Dn/7v//r/++7/s"
    "5/8XYDWZP/9fBUvl/vx/49//F3//1/z8/+vff04GU2EdcQHBw4d3Hj58eO2Gvo6pRZMmVyxd09Q7uWDl+skOqpFB"
    "BgbOeg4hYnZBojY6aj5hwrZyQQa6oRff7my94+Sf8OrDhliNonZdg5JehgfvLj5dUfBvF6suAHXW6RWwAAAAAAAA"
    "AAAAAAQ=")


def test_spz_members_and_trailing_bytes():
    import base64
    import time

    start = time.process_time()
    with pytest.raises(SplatsError, match="corrupt gzip"):   # its tail is no gzip member
        check_spz_header(base64.b64decode(SPZ_HANG))
    assert time.process_time() - start < 1.0
    # A valid first member and a bomb in a second one: the second is counted too.
    head = struct.pack("<IIIBBBB", 0x5053474E, 2, 1, 0, 12, 0, 0)
    two = gzip.compress(head + bytes(19)) + gzip.compress(bytes(64 * MB))
    error, peak = peak_of(check_spz_header, two)
    assert isinstance(error, SplatsError) and "inflates to more" in str(error)
    assert peak < 8 * MB
    assert check_spz_header(gzip.compress(head + bytes(19)) + bytes(8)) == 1


def test_a_late_attribute_fault_is_rechecked_within_the_valid_decode_memory():
    """A fault found at the end of the fast path (here E6, one byte too many after the last
    group's escapes) makes the decoder check the level again in spec 8.4's order. The fast
    path's output arrays must be released first and the re-check's symbol indices kept small,
    so that an invalid stream costs no more than a valid one. Measured with 200,000 anchors
    (17.2M values): 153 MiB before (1.2 GB at ``max_values``), 89 MiB after."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "conformance" / "generate.py"
    spec = importlib.util.spec_from_file_location("conformance_generate", path)
    generate = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = generate           # dataclasses look their module up there
    spec.loader.exec_module(generate)
    model = synthetic_model(50_000, num_levels=2, seed=1)
    stream = encode(model)
    bad = generate._level(2, lambda f, s, g: (f, s, g[:2] + [g[2] + b"\0"]),
                          stream=lambda: stream)()
    _, valid_peak = peak_of(decode, stream)
    error, peak = peak_of(decode, bad)
    assert isinstance(error, FormatError) and error.field == "offsets", error
    assert peak < 1.1 * valid_peak, (peak / MB, valid_peak / MB)
