"""The decoding process at the chunk level: which chunk may come when (spec 2.3, 8.1-8.3).

:class:`ChunkWalker` takes stream bytes as they arrive and hands out one :class:`Step` per
chunk, after checking the rules of chunk order: ``HEAD`` first and once (parsed, spec 3),
the ``LEVL`` chunks in level order, each at the offset, size and anchor count its table of
contents entry gives (sections split, spec 4.1), ``ENDS`` after the last level with an empty
payload and nothing after it, unknown critical chunks refused, optional chunks passed on
after their CRC check. It decodes no structure and no attributes: :class:`progs_codec.Decoder`
decodes the levels it hands out, :func:`progs_codec.inspect` only measures them, and both
see the same stream rules and raise the same errors.

>>> from progs_codec import encode
>>> from progs_codec.testing import synthetic_model
>>> walker = ChunkWalker()
>>> walker.feed(encode(synthetic_model(200, 2, seed=0, attribute_coding="raw")))
>>> [step.kind for step in iter(walker.next_step, None)]
['head', 'level', 'level', 'end']
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import FormatError, LimitError, TruncatedError, UnsupportedError
from .container import ENDS, HEAD, LEVL, Chunk, ChunkReader, is_critical
from .header import Header, parse_header
from .level import LevelChunk, parse_level_chunk

__all__ = ["Step", "ChunkWalker"]


@dataclass(frozen=True)
class Step:
    """One chunk, checked: ``kind`` is ``head`` (``header`` set), ``level`` (``level`` set:
    the parsed sections of level ``level.level``), ``end`` or ``optional``."""

    kind: str
    chunk: Chunk
    header: Header | None = None
    level: LevelChunk | None = None


class ChunkWalker:
    """Bytes in, checked chunks out (spec 2.3, 8.1).

    ``feed(data)`` appends bytes; ``next_step()`` returns the next :class:`Step` or ``None``
    until more bytes arrive. The caller decides when to stop asking (after the level it
    needs, spec 8.2): what follows is then never read nor checked.

    Args:
        max_lod: the LoD the caller will decode, for ``max_anchors`` (default all levels).
        max_anchors: refuse a header whose table of contents declares more anchors up to
            ``max_lod`` (:class:`LimitError`), before anything is allocated; ``None``: no cap.
        max_values: the same for anchors times attribute channels (``A·C``, spec 8.5).
    """

    def __init__(self, *, max_lod: int | None = None, max_anchors: int | None = None,
                 max_values: int | None = None):
        self.max_lod = max_lod
        self.max_anchors = max_anchors
        self.max_values = max_values
        self._reader = ChunkReader()
        self.header: Header | None = None
        self.level_counts: list[int] = []       # anchors of each level handed out
        self.ended = False

    @property
    def offset(self) -> int:
        """File offset of the first byte not yet consumed."""
        return self._reader.offset

    @property
    def pending(self) -> int:
        """Bytes fed but not yet consumed."""
        return self._reader.pending

    @property
    def version(self) -> tuple[int, int] | None:
        return self._reader.version

    def describe_pending(self) -> str:
        """What the unconsumed bytes are, for a truncation message."""
        return self._reader.describe_pending()

    def feed(self, data: bytes) -> None:
        if self.ended and data:
            raise FormatError("data after ENDS", chunk="ENDS", offset=self._reader.offset)
        self._reader.feed(data)

    def next_step(self) -> Step | None:
        """The next checked chunk, or ``None`` until more bytes arrive (or after ``ENDS``).

        Raises:
            FormatError: (or a subclass) for a chunk out of order, a level chunk that
                disagrees with the table of contents or is malformed, bytes after ``ENDS``.
            LimitError: more than ``max_anchors`` anchors declared.
        """
        if self.ended:
            return None
        chunk = self._reader.next_chunk()
        if chunk is None:
            return None
        if self.header is None:
            return self._head(chunk)
        if chunk.type == LEVL:
            return self._level(chunk)
        if chunk.type == ENDS:
            return self._end(chunk)
        if chunk.type == HEAD:
            raise FormatError("second HEAD chunk", chunk="HEAD", offset=chunk.offset)
        if is_critical(chunk.type):
            raise UnsupportedError(f"unknown critical chunk {chunk.name}", chunk=chunk.name,
                                   field="type", offset=chunk.offset)
        return Step("optional", chunk)   # unknown optional chunk: CRC checked (spec 2.2)

    def _head(self, chunk: Chunk) -> Step:
        if chunk.type != HEAD:
            raise FormatError(f"first chunk is {chunk.name}, expected HEAD", chunk=chunk.name,
                              field="type", offset=chunk.offset)
        header = parse_header(chunk.payload, minor_version=self._reader.version[1])
        lod = header.frame.num_levels if self.max_lod is None else \
            min(self.max_lod, header.frame.num_levels)
        declared = sum(entry.anchor_count for entry in header.toc[:lod])     # A (8.5)
        if self.max_anchors is not None and declared > self.max_anchors:
            raise LimitError(f"LoD {lod} declares {declared:,} anchors, more than "
                             f"max_anchors={self.max_anchors:,}; pass a larger max_anchors "
                             f"(--max-anchors) to decode it", chunk="HEAD", field="toc")
        values = declared * header.dims.channels                              # A·C (8.5)
        if self.max_values is not None and values > self.max_values:
            raise LimitError(f"LoD {lod} declares {declared:,} anchors of "
                             f"{header.dims.channels} values, {values:,} in all, more than "
                             f"max_values={self.max_values:,}; pass a larger max_values "
                             f"(--max-values) to decode it", chunk="HEAD", field="toc")
        self.header = header
        return Step("head", chunk, header=header)

    def _level(self, chunk: Chunk) -> Step:
        header, k = self.header, len(self.level_counts) + 1
        name = f"LEVL {k}"
        if k > header.frame.num_levels:
            raise FormatError(f"more LEVL chunks than the {header.frame.num_levels} levels "
                              f"declared", chunk=name, offset=chunk.offset)
        entry = header.toc[k - 1]
        if (entry.offset, entry.size) != (chunk.offset, chunk.size):
            raise FormatError(f"table of contents gives offset {entry.offset} size {entry.size}, "
                              f"chunk lies at {chunk.offset} size {chunk.size}", chunk=name,
                              field="toc")
        parsed = parse_level_chunk(chunk.payload, level=k, frame=header.frame,
                                   previous_count=self.level_counts[-1] if k > 1 else 0)
        if parsed.anchor_count != entry.anchor_count:
            raise FormatError(f"anchor_count {parsed.anchor_count} but the table of contents "
                              f"says {entry.anchor_count}", chunk=name, field="anchor_count")
        self.level_counts.append(parsed.anchor_count)
        return Step("level", chunk, level=parsed)

    def _end(self, chunk: Chunk) -> Step:
        declared = self.header.frame.num_levels
        if len(self.level_counts) != declared:
            raise FormatError(f"ENDS after {len(self.level_counts)} of {declared} levels",
                              chunk="ENDS", offset=chunk.offset)
        if chunk.payload:
            raise FormatError("ENDS payload is not empty", chunk="ENDS", field="length",
                              offset=chunk.offset)
        self.ended = True
        if self._reader.pending:
            raise FormatError(f"{self._reader.pending} bytes after ENDS", chunk="ENDS",
                              offset=self._reader.offset)
        return Step("end", chunk)

    def truncated_header_error(self) -> TruncatedError:
        """The error for a stream that ended before its header was complete (spec 8.3)."""
        return TruncatedError(f"stream ends inside {self.describe_pending()}, before the header "
                              f"is complete", chunk="HEAD", offset=self.offset)
