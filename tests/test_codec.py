"""Whole streams, prefixes and streaming decode (spec 2.3, 4, 8)."""

import io
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import progs_codec
from progs_codec import (
    ChecksumError,
    Decoder,
    FormatError,
    LimitError,
    ModelError,
    ProgsError,
    TruncatedError,
    UnsupportedError,
    decode,
    encode,
)
from progs_codec.format.container import FILE_HEADER_SIZE, ChunkReader, write_chunk
from progs_codec.testing import synthetic_model


def raw_model(num_anchors=400, num_levels=3, seed=0, **kw):
    return synthetic_model(num_anchors, num_levels, seed, attribute_coding="raw", **kw)


@pytest.fixture(scope="module")
def small_stream():
    return encode(raw_model(120, 3, seed=4, gaussian_mlps=False,
                            dims=progs_codec.AttributeDims(4, 2, 1)))


def chunks_of(stream):
    reader = ChunkReader()
    reader.feed(stream)
    out = []
    while (chunk := reader.next_chunk()) is not None:
        out.append(chunk)
    return out


@given(st.integers(1, 1500), st.integers(1, 6), st.integers(0, 2**32 - 1), st.booleans())
@settings(max_examples=25, deadline=None)
def test_round_trip_random_octrees(num_anchors, num_levels, seed, with_mlps):
    model = raw_model(num_anchors, num_levels, seed, gaussian_mlps=with_mlps,
                      dims=progs_codec.AttributeDims(3, 2, 2))
    stream = encode(model)
    decoded = decode(stream)
    assert decoded == model
    assert decoded.complete
    assert encode(decoded) == stream


def test_every_prefix_decodes_its_complete_levels(small_stream):
    ends = [c.offset + c.size for c in chunks_of(small_stream) if c.type == b"LEVL"]
    head_end = chunks_of(small_stream)[0].size + FILE_HEADER_SIZE
    full = decode(small_stream)
    for cut in range(len(small_stream) + 1):
        prefix = small_stream[:cut]
        if cut < head_end:
            with pytest.raises(TruncatedError):
                decode(prefix)
            continue
        model = decode(prefix)
        expected = sum(end <= cut for end in ends)
        assert model.lod == expected, cut
        assert model.levels == full.levels[:expected]
        if cut < len(small_stream):
            with pytest.raises(TruncatedError):
                decode(prefix, strict=True)


def test_max_lod_stops_early_and_ignores_the_rest(small_stream):
    ends = [c.offset + c.size for c in chunks_of(small_stream) if c.type == b"LEVL"]
    corrupt = bytearray(small_stream)
    corrupt[ends[1] + 20] ^= 0xFF  # inside level 3
    model = decode(bytes(corrupt), max_lod=2, strict=True)
    assert model.lod == 2 and not model.complete
    with pytest.raises(ChecksumError):
        decode(bytes(corrupt))
    assert decode(small_stream, max_lod=99).lod == 3


def test_stream_from_path_and_file(tmp_path, small_stream):
    path = tmp_path / "s.progs"
    path.write_bytes(small_stream)
    assert decode(path) == decode(small_stream)
    assert decode(str(path), max_lod=1).lod == 1
    assert decode(io.BytesIO(small_stream)).lod == 3
    with pytest.raises(TypeError):
        decode(12)
    with pytest.raises(ValueError):
        decode(small_stream, max_lod=0)


def test_decoder_reports_levels_as_they_complete(small_stream):
    seen = []
    with Decoder() as decoder:
        for i in range(0, len(small_stream), 7):
            seen += [len(level) for level in decoder.feed(small_stream[i: i + 7])]
            if decoder.model is not None:
                assert decoder.model.lod == len(seen)
    full = decode(small_stream)
    assert seen == [len(level) for level in full.levels]
    assert decoder.close() == full


def test_positions_follow_the_frame():
    model = raw_model(200, 3, 1)
    positions = model.positions(2)
    level2 = model.levels[1]
    expected = (np.asarray(model.frame.origin) + (level2.coords + 0.5) *
                model.frame.root_voxel_size / 2)
    np.testing.assert_allclose(positions[len(model.levels[0]):], expected, rtol=1e-6)
    assert positions.dtype == np.float32
    with pytest.raises(ModelError, match="LoD 4"):
        model.positions(4)


def test_truncated_model_encodes_alone():
    model = raw_model(300, 4, 2)
    part = decode(encode(model), max_lod=2)
    assert decode(encode(part.truncated(2))).levels == model.levels[:2]
    with pytest.raises(ModelError, match="truncated"):
        encode(part)


@pytest.mark.parametrize("coding", ["raw", "entropy"])
def test_refine_round_trips_and_add_streams_stay_1_0(coding):
    """REPLACE models are 1.1 streams with part 5 (spec 3.5); ADD models give the very bytes
    of version 1.0 (no part 5, minor_version 0)."""
    import dataclasses

    from progs_codec import Refinement

    model = synthetic_model(300, 3, seed=7, attribute_coding=coding)
    add = encode(model)
    rep = encode(dataclasses.replace(model, refine=Refinement.REPLACE))
    assert add[8:10] == bytes([1, 0]) and rep[8:10] == bytes([1, 1])
    assert len(rep) == len(add) + 5                         # u32 length + 1 byte
    decoded = decode(rep)
    assert decoded.refine is Refinement.REPLACE and decode(add).refine is Refinement.ADD
    assert encode(decoded) == rep and encode(decode(add)) == add
    assert decode(rep, max_lod=2).refine is Refinement.REPLACE
    assert encode(decode(rep, max_lod=2).truncated(2))[8:10] == bytes([1, 1])


def test_zup_models_are_1_1_streams():
    """Convention ZUP (spec 3.1) needs minor version 1: the encoder writes the lowest version
    that expresses the stream, part 5 with refine ADD; it decodes, truncates and re-encodes
    as Z-up, and its canonical dump holds the RNDR record (10.2)."""
    import dataclasses

    from progs_codec.model import CoordinateConvention, Refinement
    from progs_codec.tools.canonical import canonical_dump, split_dump

    model = synthetic_model(300, 3, seed=8, attribute_coding="raw")
    zup = dataclasses.replace(model, frame=dataclasses.replace(
        model.frame, convention=CoordinateConvention.ZUP))
    assert model.lowest_minor_version == 0 and zup.lowest_minor_version == 1
    stream = encode(zup)
    assert stream[8:10] == bytes([1, 1]) and len(stream) == len(encode(model)) + 5
    decoded = decode(stream)
    assert decoded.frame.convention is CoordinateConvention.ZUP
    assert decoded.refine is Refinement.ADD and encode(decoded) == stream
    assert encode(decode(stream, max_lod=2).truncated(2))[8:10] == bytes([1, 1])
    names = [r.name for r in split_dump(canonical_dump(decoded))]
    assert names[:3] == ["FRAM", "GMLP", "RNDR"]


# --- bad input: every error names what is wrong -------------------------------------------

def test_every_single_bit_flip_is_an_error(small_stream):
    minor_version = FILE_HEADER_SIZE - 1  # a newer minor version is still a valid stream
    for byte in (b for b in range(len(small_stream)) if b != minor_version):
        for bit in (0, 3, 7):
            corrupt = bytearray(small_stream)
            corrupt[byte] ^= 1 << bit
            try:
                model = decode(bytes(corrupt), strict=True)
            except ProgsError:
                continue
            pytest.fail(f"flip of bit {bit} in byte {byte} decoded to LoD {model.lod}")


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_garbage_raises_only_progs_errors(data):
    with pytest.raises(ProgsError):
        decode(progs_codec.MAGIC + b"\x01\x00" + data, strict=True)


def rebuild(chunks, version=b"\x01\x00"):
    return progs_codec.MAGIC + version + b"".join(write_chunk(t, p) for t, p in chunks)


def test_unknown_optional_chunk_is_skipped_critical_is_not(small_stream):
    chunks = [(c.type, c.payload) for c in chunks_of(small_stream)]
    # Optional chunks go after the last level, so the TOC offsets stay valid.
    with_optional = rebuild(chunks[:-1] + [(b"xtra", b"hello")] + chunks[-1:])
    assert decode(with_optional, strict=True) == decode(small_stream)
    with pytest.raises(UnsupportedError, match="unknown critical chunk XTRA"):
        decode(rebuild(chunks[:-1] + [(b"XTRA", b"hello")] + chunks[-1:]))


def test_unsupported_version(small_stream):
    with pytest.raises(UnsupportedError):
        decode(progs_codec.MAGIC + b"\x02\x00" + small_stream[FILE_HEADER_SIZE:])
    # A newer minor version is readable: it carries part 5 (spec 3.5), a 1.0 HEAD does not.
    import dataclasses

    newer = encode(dataclasses.replace(decode(small_stream), refine=progs_codec.Refinement.REPLACE))
    assert decode(progs_codec.MAGIC + b"\x01\x05" + newer[FILE_HEADER_SIZE:]).lod == 3
    with pytest.raises(FormatError, match="before part rendering"):
        decode(progs_codec.MAGIC + b"\x01\x05" + small_stream[FILE_HEADER_SIZE:])


def test_bad_magic():
    with pytest.raises(FormatError, match="bad magic"):
        decode(b"ply\nformat binary_little_endian 1.0\n")


def test_crc_mismatch_names_chunk(small_stream):
    corrupt = bytearray(small_stream)
    level1 = chunks_of(small_stream)[1]
    corrupt[level1.offset + 9] ^= 1
    with pytest.raises(ChecksumError) as info:
        decode(bytes(corrupt))
    assert info.value.chunk == "LEVL" and info.value.field == "crc"


def test_counts_beyond_the_payload_are_refused_before_allocating(small_stream):
    chunks = [(c.type, c.payload) for c in chunks_of(small_stream)]
    level2 = bytearray(chunks[2][1])
    struct.pack_into("<I", level2, 2, 400_000_000)  # anchor_count
    chunks[2] = (b"LEVL", bytes(level2))
    with pytest.raises(LimitError, match="anchor_count") as info:
        decode(rebuild(chunks))
    assert info.value.chunk == "LEVL 2"


def test_fifty_byte_file_cannot_ask_for_gigabytes():
    payload = struct.pack("<BBII", 1, 0, 2**31, 2**30)
    head_free = rebuild([(b"LEVL", payload)])
    with pytest.raises(FormatError, match="expected HEAD"):
        decode(head_free)


def test_toc_must_match(small_stream):
    chunks = [(c.type, c.payload) for c in chunks_of(small_stream)]
    with pytest.raises(FormatError, match="table of contents") as info:
        decode(rebuild(chunks[:1] + [(b"meta", b"x")] + chunks[1:]))
    assert info.value.field == "toc"


def test_data_after_ends(small_stream):
    with pytest.raises(FormatError, match="after ENDS"):
        decode(small_stream + b"\0")


def test_encoder_names_what_is_wrong():
    model = raw_model(200, 3, 3)
    model.levels[1].parent_index[-1] = len(model.levels[0]) + 3
    with pytest.raises(ModelError, match="level 2: parent index out of range"):
        encode(model)
    model = raw_model(200, 3, 3)
    model.levels[2].octant[1] = model.levels[2].octant[0]
    model.levels[2].parent_index[1] = model.levels[2].parent_index[0]
    with pytest.raises(ModelError, match="level 3: duplicate child"):
        encode(model)
    model = raw_model(200, 3, 3)
    model.levels[0].coords[0] = [99, 0, 0]
    with pytest.raises(ModelError, match="outside the grid"):
        encode(model)
    model = raw_model(200, 3, 3)
    model.levels[1].feature[0, 0] = np.nan
    with pytest.raises(ModelError, match="non-finite"):
        encode(model)
    model = raw_model(200, 3, 3)
    model.levels[1].coords[0, 0] += 2
    with pytest.raises(ModelError, match="parent and octant give"):
        encode(model)


def test_max_anchors_bounds_what_a_stream_may_declare(small_stream):
    total = decode(small_stream).num_anchors()
    assert decode(small_stream, max_anchors=total).lod == 3
    with pytest.raises(LimitError, match="max_anchors") as info:
        decode(small_stream, max_anchors=total - 1)
    assert info.value.field == "toc"
    level1 = len(decode(small_stream).levels[0])
    assert decode(small_stream, max_lod=1, max_anchors=level1).lod == 1
