"""Container: file header and chunks (spec 2).

Pure functions to write and parse the file header and single chunks, plus
:class:`ChunkReader`, a small state machine that takes bytes as they arrive and hands out
complete, CRC-checked chunks.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import ChecksumError, FormatError, TruncatedError, UnsupportedError

__all__ = [
    "MAGIC",
    "VERSION",
    "FILE_HEADER_SIZE",
    "CHUNK_OVERHEAD",
    "HEAD",
    "LEVL",
    "ENDS",
    "Chunk",
    "write_file_header",
    "parse_file_header",
    "write_chunk",
    "is_critical",
    "ChunkReader",
]

MAGIC = b"\x89PGS\r\n\x1a\n"
#: The newest format version this package reads and writes (spec 2.1). Streams are written
#: as 1.0 unless they use a 1.1 feature (a ``rendering`` part, spec 3.5).
VERSION = (1, 1)
FILE_HEADER_SIZE = len(MAGIC) + 2
#: type (4) + length (4) + crc (4)
CHUNK_OVERHEAD = 12

HEAD = b"HEAD"
LEVL = b"LEVL"
ENDS = b"ENDS"

_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Chunk:
    """One chunk (spec 2.2): its type, payload and the offset of its type field in the file."""

    type: bytes
    payload: bytes
    offset: int

    @property
    def size(self) -> int:
        """Total size in the file, overhead included."""
        return CHUNK_OVERHEAD + len(self.payload)

    @property
    def name(self) -> str:
        return self.type.decode("ascii", "replace")


def is_critical(chunk_type: bytes) -> bool:
    """The must-understand bit (spec 2.2): an upper-case first letter marks a critical chunk."""
    return not chunk_type[0] & 0x20


def write_file_header(version: tuple[int, int] = (1, 0)) -> bytes:
    """Magic and version (spec 2.1); 1.0 unless the stream uses a feature of a later minor
    version."""
    return MAGIC + bytes(version)


def parse_file_header(buf: bytes) -> tuple[int, int]:
    """Check the magic and major version (spec 2.1); returns ``(major, minor)``.

    Raises:
        TruncatedError: fewer than ``FILE_HEADER_SIZE`` bytes.
        FormatError: bad magic.
        UnsupportedError: a major version other than 1.
    """
    if len(buf) < len(MAGIC) and MAGIC.startswith(bytes(buf)):
        raise TruncatedError("stream ends inside the file header", field="magic", offset=0)
    if bytes(buf[: len(MAGIC)]) != MAGIC:
        raise FormatError("bad magic: not a .progs stream", field="magic", offset=0)
    if len(buf) < FILE_HEADER_SIZE:
        raise TruncatedError("stream ends inside the file header", field="version",
                             offset=len(MAGIC))
    major, minor = buf[len(MAGIC)], buf[len(MAGIC) + 1]
    if major != VERSION[0]:
        raise UnsupportedError(f"unsupported major version {major}.{minor}; this decoder reads "
                               f"{VERSION[0]}.x", field="major_version", offset=len(MAGIC))
    return major, minor


def _check_type(chunk_type: bytes, offset: int) -> None:
    if len(chunk_type) != 4 or not chunk_type.isascii() or not chunk_type.isalpha():
        raise FormatError(f"chunk type {chunk_type!r} is not four ASCII letters",
                          field="type", offset=offset)


def write_chunk(chunk_type: bytes, payload: bytes) -> bytes:
    """``type | length | payload | crc`` (spec 2.2)."""
    _check_type(chunk_type, 0)
    if len(payload) >= 1 << 32:
        raise ValueError(f"chunk payload of {len(payload)} bytes exceeds the u32 length field")
    crc = zlib.crc32(payload, zlib.crc32(chunk_type))
    return b"".join((chunk_type, _LENGTH.pack(len(payload)), payload, _LENGTH.pack(crc)))


class ChunkReader:
    """Takes stream bytes as they arrive and hands out complete chunks (spec 2).

    ``feed(data)`` appends bytes; ``next_chunk()`` returns the next complete chunk, CRC
    checked, or ``None``. Chunks are parsed only when asked for, so a decoder that stops
    early never reads (or rejects) what follows. ``pending`` counts unconsumed bytes.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._start = 0  # offset in the file of _buffer[0]
        self._header_done = False
        self.version: tuple[int, int] | None = None

    @property
    def offset(self) -> int:
        """File offset of the first byte not yet consumed."""
        return self._start

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append ``data``; checks the file header as soon as it is complete."""
        self._buffer += data
        if not self._header_done:
            if len(self._buffer) < FILE_HEADER_SIZE:
                if not MAGIC.startswith(bytes(self._buffer[: len(MAGIC)])):
                    parse_file_header(self._buffer)  # raises: bad magic
                return
            self.version = parse_file_header(self._buffer)
            self._consume(FILE_HEADER_SIZE)
            self._header_done = True

    def next_chunk(self) -> Chunk | None:
        """The next complete, CRC-checked chunk, or ``None`` until more bytes arrive."""
        if not self._header_done:
            return None
        return self._next_chunk()

    def _consume(self, n: int) -> None:
        del self._buffer[:n]
        self._start += n

    def _next_chunk(self) -> Chunk | None:
        buf = self._buffer
        if len(buf) < 8:
            return None
        chunk_type = bytes(buf[:4])
        _check_type(chunk_type, self._start)
        (length,) = _LENGTH.unpack_from(buf, 4)
        if len(buf) < CHUNK_OVERHEAD + length:
            return None
        payload = bytes(buf[8: 8 + length])
        (crc,) = _LENGTH.unpack_from(buf, 8 + length)
        if zlib.crc32(payload, zlib.crc32(chunk_type)) != crc:
            raise ChecksumError("CRC-32 mismatch", chunk=chunk_type.decode("ascii"),
                                field="crc", offset=self._start + 8 + length)
        chunk = Chunk(chunk_type, payload, self._start)
        self._consume(CHUNK_OVERHEAD + length)
        return chunk

    def describe_pending(self) -> str:
        """What the unconsumed bytes are, for a truncation message."""
        if not self._header_done:
            return "the file header"
        if len(self._buffer) < 8:
            return "a chunk's type and length"
        chunk_type = bytes(self._buffer[:4]).decode("ascii", "replace")
        (length,) = _LENGTH.unpack_from(self._buffer, 4)
        return (f"chunk {chunk_type} ({len(self._buffer)} of {CHUNK_OVERHEAD + length} bytes "
                f"present)")
