"""Container: file header, chunks, CRC, must-understand bit (spec 2)."""

import zlib

import pytest
from hypothesis import given, strategies as st

from progs_codec.errors import FormatError, TruncatedError, UnsupportedError
from progs_codec.format.container import (
    MAGIC,
    ChunkReader,
    is_critical,
    parse_file_header,
    write_chunk,
    write_file_header,
)


def test_file_header_round_trip():
    assert parse_file_header(write_file_header()) == (1, 0)
    assert parse_file_header(write_file_header((1, 7))) == (1, 7)


def test_bad_magic():
    with pytest.raises(FormatError, match="bad magic") as info:
        parse_file_header(b"PLY\n" + bytes(6))
    assert info.value.field == "magic"


def test_unsupported_major_version():
    with pytest.raises(UnsupportedError, match="major version 2"):
        parse_file_header(MAGIC + bytes([2, 0]))


def test_short_header_is_truncated():
    with pytest.raises(TruncatedError):
        parse_file_header(MAGIC[:5])


def test_chunk_layout_and_crc():
    chunk = write_chunk(b"LEVL", b"abc")
    assert chunk[:4] == b"LEVL" and chunk[4:8] == (3).to_bytes(4, "little")
    assert chunk[8:11] == b"abc"
    assert int.from_bytes(chunk[11:], "little") == zlib.crc32(b"LEVLabc")


def test_must_understand_bit():
    assert is_critical(b"HEAD") and is_critical(b"LEVL")
    assert not is_critical(b"meta")


@given(st.lists(st.binary(max_size=40), max_size=5), st.integers(1, 17))
def test_reader_returns_chunks_fed_in_pieces(payloads, piece):
    stream = write_file_header() + b"".join(write_chunk(b"test", p) for p in payloads)
    reader, got = ChunkReader(), []
    for i in range(0, len(stream), piece):
        reader.feed(stream[i: i + piece])
        while (chunk := reader.next_chunk()) is not None:
            got.append(chunk.payload)
    assert got == payloads
    assert reader.pending == 0


def test_every_bit_flip_in_a_chunk_is_caught():
    stream = write_file_header() + write_chunk(b"LEVL", bytes(range(20)))
    for byte in range(10, len(stream)):
        for bit in range(8):
            corrupt = bytearray(stream)
            corrupt[byte] ^= 1 << bit
            reader = ChunkReader()
            reader.feed(bytes(corrupt))
            try:
                chunk = reader.next_chunk()
            except FormatError:  # CRC, or a type byte that is no longer a letter
                continue
            # A flip in the length field makes the chunk incomplete: never silently accepted.
            assert chunk is None, (byte, bit)
