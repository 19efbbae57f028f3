"""File header, chunks and their order (spec 2, 8)."""

import struct
import zlib
from dataclasses import dataclass, field

from pgs_errors import fail
from pgs_header import parse_head
from pgs_level import decode_level

MAGIC = bytes([0x89, 0x50, 0x47, 0x53, 0x0D, 0x0A, 0x1A, 0x0A])


@dataclass
class Decoded:
    """What a decode produced: the parsed header and the levels decoded, in order."""

    head: object
    levels: list = field(default_factory=list)


def _file_header(data):
    if len(data) < 8:
        if MAGIC.startswith(data):
            fail("stream ends inside the magic", "truncated")
        fail("bad magic")
    if data[:8] != MAGIC:
        fail("bad magic")
    if len(data) < 10:
        fail("stream ends inside the version", "truncated")
    if data[8] != 1:
        fail(f"major version {data[8]} is not 1", "unsupported")


def _chunks(data):
    """Yield ``(type, payload, offset)`` of each complete chunk; stop at an incomplete one."""
    pos = 10
    while pos + 8 <= len(data):
        ctype = data[pos:pos + 4]
        if not all(0x41 <= (b & ~0x20) <= 0x5A for b in ctype):
            fail(f"chunk type {ctype!r} is not four ASCII letters")
        (length,) = struct.unpack_from("<I", data, pos + 4)
        if pos + 12 + length > len(data):
            return
        payload = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack_from("<I", data, pos + 8 + length)
        if zlib.crc32(ctype + payload) != crc:
            fail(f"CRC mismatch in chunk {ctype!r} at {pos}", "checksum")
        yield ctype, payload, pos
        pos += 12 + length


def decode_file(data, max_lod):
    """Decode levels ``1..max_lod`` of ``data`` (a stream or a prefix of one), spec 8."""
    _file_header(data)
    decoded = None
    for ctype, payload, offset in _chunks(data):
        if decoded is None:
            if ctype != b"HEAD":
                fail("the first chunk is not HEAD")
            decoded = Decoded(parse_head(payload, data[9]))
            continue
        head = decoded.head
        wanted = min(max_lod, head.num_levels)
        if ctype == b"HEAD":
            fail("second HEAD chunk")
        elif ctype == b"LEVL":
            k = len(decoded.levels) + 1
            if k > head.num_levels:
                fail("more LEVL chunks than num_levels")
            toc = head.toc[k - 1]
            if toc.offset != offset or toc.size != 12 + len(payload):
                fail(f"LEVL {k} lies at {offset} size {12 + len(payload)}, toc says "
                     f"{toc.offset} size {toc.size}")
            previous = decoded.levels[-1] if decoded.levels else None
            decoded.levels.append(decode_level(payload, k, head, previous))
            if len(decoded.levels) == wanted and wanted < head.num_levels:
                return decoded   # 8.2: nothing after the requested level is read
        elif ctype == b"ENDS":
            if len(decoded.levels) != head.num_levels:
                fail(f"ENDS after {len(decoded.levels)} of {head.num_levels} levels")
            if payload:
                fail("ENDS payload is not empty")
            if offset + 12 != len(data):
                fail("bytes after ENDS")
            return decoded
        elif not ctype[0] & 0x20:
            fail(f"unknown critical chunk {ctype!r}", "unsupported")
        # an unknown optional chunk: its CRC was checked, skip it (2.2)
    if decoded is None:
        fail("stream ends before the HEAD chunk is complete", "truncated")
    return decoded   # a prefix: the complete levels (8.3)
