"""Canonical decoded output (spec 10): layout, prefix property, the reference command."""

import struct

import numpy as np
import pytest

from progs_codec import decode, encode
from progs_codec.errors import (
    ChecksumError,
    FormatError,
    LimitError,
    TruncatedError,
    UnsupportedError,
)
from progs_codec.format.container import LEVL
from progs_codec.format.level import parse_level_chunk
from progs_codec.model import AttributeDims
from progs_codec.testing import synthetic_model
from progs_codec.tools.canonical import (
    DUMP_MAGIC,
    DumpError,
    Record,
    canonical_dump,
    digest,
    error_class,
    main,
    split_dump,
)

DIMS = AttributeDims(feature=3, scaling=2, num_offsets=2)


@pytest.fixture(scope="module")
def stream() -> bytes:
    return encode(synthetic_model(150, 3, seed=4, dims=DIMS, attribute_coding="raw"))


def _level_payloads(stream: bytes) -> list[bytes]:
    pos, payloads = 10, []
    while pos < len(stream):
        (length,) = struct.unpack_from("<I", stream, pos + 4)
        if stream[pos: pos + 4] == LEVL:
            payloads.append(stream[pos + 8: pos + 8 + length])
        pos += 12 + length
    return payloads


def test_records_follow_spec_layout(stream):
    model = decode(stream)
    records = split_dump(canonical_dump(model))
    expected = ["FRAM", "GMLP"] + [f"{t} {k}" for k in (1, 2, 3) for t in ("STRC", "POSN", "ATTR")]
    assert [r.name for r in records] == expected
    assert len(records[0].payload) == 26
    channels = DIMS.channels
    for k, level in enumerate(model.levels, start=1):
        strc, posn, attr = records[3 * k - 1: 3 * k + 2]
        n = len(level)
        assert struct.unpack_from("<II", strc.payload) == (k, n)
        assert len(strc.payload) == 8 + 17 * n
        assert len(posn.payload) == 12 * n and len(attr.payload) == 4 * n * channels
        start = model.num_anchors(k - 1) if k > 1 else 0
        np.testing.assert_array_equal(np.frombuffer(posn.payload, "<f4").reshape(n, 3),
                                      model.positions(k)[start:])
        parents = np.frombuffer(strc.payload, "<i4", n, 8 + 12 * n)
        np.testing.assert_array_equal(parents, level.parent_index)


def test_raw_attr_record_is_the_raw_group_payloads(stream):
    records = {r.name: r for r in split_dump(canonical_dump(decode(stream)))}
    model = decode(stream)
    for k, payload in enumerate(_level_payloads(stream), start=1):
        chunk = parse_level_chunk(payload, level=k, frame=model.frame,
                                  previous_count=len(model.levels[k - 2]) if k > 1 else 0)
        raw = b"".join(chunk.group_payloads[g] for g in ("feature", "scaling", "offsets"))
        assert records[f"ATTR {k}"].payload == raw


def test_lod_dumps_are_prefixes(stream):
    dumps = [canonical_dump(decode(stream, max_lod=k)) for k in (1, 2, 3)]
    assert dumps[1].startswith(dumps[0]) and dumps[2].startswith(dumps[1])
    assert len({digest(d) for d in dumps}) == 3


def test_header_only_prefix_has_no_level_records(stream):
    first_level = _level_payloads(stream)[0]
    cut = stream.index(first_level) + 5
    records = split_dump(canonical_dump(decode(stream[:cut])))
    assert [r.name for r in records] == ["FRAM", "GMLP"]


def test_no_mlps_gives_empty_gmlp():
    model = synthetic_model(20, 1, seed=0, dims=DIMS, attribute_coding="raw", gaussian_mlps=False)
    assert split_dump(canonical_dump(model))[1] == Record("GMLP", 0, b"")


@pytest.mark.parametrize("damage", [
    lambda d: b"X" + d[1:],                       # magic
    lambda d: d[:-1],                             # record shorter than its length
    lambda d: d[:len(DUMP_MAGIC) + 5],            # inside a record header
    lambda d: DUMP_MAGIC + d[len(DUMP_MAGIC) + 12 + 26:],   # GMLP first
])
def test_split_dump_rejects_malformed(stream, damage):
    with pytest.raises(DumpError):
        split_dump(damage(canonical_dump(decode(stream, max_lod=1))))


def test_error_classes():
    assert [error_class(e("x")) for e in (FormatError, ChecksumError, TruncatedError,
                                          UnsupportedError, LimitError)] == \
        ["format", "checksum", "truncated", "unsupported", "limit"]


def test_reference_command(stream, tmp_path, capsys):
    source, out = tmp_path / "s.progs", tmp_path / "out.dump"
    source.write_bytes(stream)
    assert main([str(source), "2", str(out)]) == 0
    assert out.read_bytes() == canonical_dump(decode(stream, max_lod=2))
    assert main([str(source), "99", str(out)]) == 0       # capped at num_levels
    assert out.read_bytes() == canonical_dump(decode(stream))
    source.write_bytes(stream[:40] + bytes([stream[40] ^ 1]) + stream[41:])
    assert main([str(source), "3", str(out)]) == 2
    assert "error-class: checksum" in capsys.readouterr().err
    assert main([str(source), "0", str(out)]) == 64
    assert main([str(source)]) == 64
    missing = tmp_path / "no" / "out.dump"           # checked before decoding, named as given
    assert main([str(source), "2", str(missing)]) == 64
    assert f"'{missing}'" in capsys.readouterr().err



def test_entropy_records_hold_contexts_and_symbols():
    from progs_codec.entropy.attributes import level_contexts, quantize_attributes

    model = decode(encode(synthetic_model(120, 2, seed=5, dims=DIMS, gaussian_mlps=False)))
    records = {r.name: r.payload for r in split_dump(canonical_dump(model))}
    n, c = len(model.levels[1]), DIMS.channels
    level = model.levels[1]
    prediction = level_contexts(model.entropy_model, level.coords,
                                model.levels[0].coords[level.parent_index], model.frame.depth(2))
    assert records["CTXT 2"] == (prediction.mean.astype("<i4").tobytes()
                                 + prediction.scale_index.tobytes()
                                 + prediction.step_index.tobytes())
    symbols = quantize_attributes(model.entropy_model, prediction, DIMS, level.feature,
                                  level.scaling, level.offsets)
    assert records["SYMB 2"] == b"".join(symbols[g].astype("<i4").tobytes()
                                         for g in ("feature", "scaling", "offsets"))
    assert len(records["ATTR 2"]) == 4 * n * c


def test_entropy_model_not_from_a_stream_is_refused():
    # synthetic attributes are samples, not mean + k * step: there are no symbols to dump
    model = synthetic_model(60, 1, seed=6, dims=DIMS, gaussian_mlps=False)
    with pytest.raises(ValueError):
        canonical_dump(model)


def test_rndr_record_only_for_streams_with_the_rendering_part(stream):
    """Spec 10.2: RNDR after GMLP exactly when the stream carries part 5 (minor version >= 1),
    so that the dump of every 1.0 stream is unchanged."""
    import dataclasses

    from progs_codec import Refinement
    from progs_codec.tools.canonical import decode_to_dump

    assert "RNDR" not in [r.name for r in split_dump(decode_to_dump(stream, 3))]
    model = dataclasses.replace(decode(stream), refine=Refinement.REPLACE)
    replaced = encode(model)
    records = split_dump(decode_to_dump(replaced, 2))
    assert [r.name for r in records[:4]] == ["FRAM", "GMLP", "RNDR", "STRC 1"]
    assert records[2].payload == b"\x01" and records[2].level == 0
    assert canonical_dump(model) == decode_to_dump(replaced, 3)
    # a 1.1 stream with refine 0 still carries part 5: the record says 0
    assert split_dump(canonical_dump(decode(stream), rendering=True))[2].payload == b"\x00"
    with pytest.raises(DumpError, match="RNDR"):
        split_dump(DUMP_MAGIC + b"".join(r.to_bytes() for r in records[:2] + records[3:4]
                                         + records[2:3]))
