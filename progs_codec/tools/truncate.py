"""A stream cut to its first LoDs: a valid, complete ``.progs`` file of levels ``1..k``.

A prefix of a stream already decodes to LoD ``k``, but it is not a complete stream: its
header declares every level and it has no ``ENDS``. :func:`truncate` writes the stream a
server can hand out as one static file per rate: the same file header (version included),
a ``HEAD`` whose ``num_levels`` and table of contents (spec 3.1, 3.3) describe levels
``1..k`` and whose other parts, known or not, are kept byte for byte, the chunks of levels
``1..k`` and every optional chunk copied as they are (CRC included), then ``ENDS``. Its
decoded levels are the original's, bit for bit: no level chunk is re-encoded.

>>> from progs_codec import decode, encode
>>> from progs_codec.testing import synthetic_model
>>> stream = encode(synthetic_model(300, 3, seed=1))
>>> small = truncate(stream, 2)
>>> decode(small).complete, decode(small).levels == decode(stream, max_lod=2).levels
(True, True)
"""

from __future__ import annotations

import numbers

from ..codec import Stream, read_stream
from ..errors import TruncatedError
from ..format.container import ENDS, FILE_HEADER_SIZE, HEAD, LEVL, write_chunk
from ..format.header import TocEntry, cut_header
from ..format.walker import ChunkWalker

__all__ = ["truncate"]


def truncate(stream: Stream, max_lod: int) -> bytes:
    """The complete stream of LoD ``max_lod``: levels ``1..max_lod`` of ``stream``.

    ``stream`` may be a prefix as long as it holds level ``max_lod`` whole. A ``max_lod`` at
    or above the stream's level count returns the whole stream (which must then be whole).
    Every chunk present is checked as :func:`progs_codec.inspect` checks it (container,
    header, chunk order, level sections), so a malformed input is refused, not copied.

    Raises:
        ValueError: ``max_lod`` is not a positive integer.
        TruncatedError: the stream stops before level ``max_lod`` is complete.
        FormatError: (or a subclass) the stream is malformed.
    """
    if isinstance(max_lod, bool) or not isinstance(max_lod, numbers.Integral) or max_lod < 1:
        raise ValueError(f"max_lod must be a positive integer, got {max_lod!r}")
    data = read_stream(stream)
    walker = ChunkWalker()
    walker.feed(data)
    head, kept, levels = None, [], 0
    while (step := walker.next_step()) is not None:
        if step.kind == "head":
            head = step
        elif step.kind == "level":
            levels += 1
            if levels <= max_lod:
                kept.append(step.chunk)
        elif step.kind == "optional":
            kept.append(step.chunk)
    if head is None:
        raise walker.truncated_header_error()
    total = head.header.frame.num_levels
    lod = min(int(max_lod), total)
    if levels < lod or (lod == total and not walker.ended):
        want = f"level {lod}" if lod < total else "its end (ENDS)"
        raise TruncatedError(f"the stream holds {levels} of {total} levels and stops before "
                             f"{want}, inside {walker.describe_pending()}",
                             offset=walker.offset)
    if lod == total:
        return data

    def head_chunk(toc: tuple[TocEntry, ...]) -> bytes:
        return write_chunk(HEAD, cut_header(head.chunk.payload, toc))

    # The table of contents has a fixed size per level, so HEAD's size is known first.
    offset = FILE_HEADER_SIZE + len(head_chunk(head.header.toc[:lod]))
    toc, pieces = [], []
    for chunk in kept:
        if chunk.type == LEVL:
            entry = head.header.toc[len(toc)]
            toc.append(TocEntry(offset, entry.size, entry.anchor_count))
        pieces.append(data[chunk.offset: chunk.offset + chunk.size])
        offset += chunk.size
    return b"".join([data[:FILE_HEADER_SIZE], head_chunk(tuple(toc)), *pieces,
                     write_chunk(ENDS, b"")])
