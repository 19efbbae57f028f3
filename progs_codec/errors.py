"""Error types of progs_codec (spec 8.4).

Every problem found in a stream is a :class:`ProgsError`. Malformed streams raise a
:class:`FormatError` that names the chunk, the field and, where known, the byte offset; its
subclasses are the refined error classes of spec 8.4 (``checksum``, ``truncated``,
``unsupported``, ``limit``).
"""

from __future__ import annotations

__all__ = [
    "ProgsError",
    "FormatError",
    "ChecksumError",
    "TruncatedError",
    "UnsupportedError",
    "LimitError",
    "ModelError",
]


class ProgsError(Exception):
    """Root of every error raised by progs_codec."""


class FormatError(ProgsError):
    """The stream breaks a rule of the format.

    Args:
        message: what is wrong.
        chunk: the chunk it was found in (``"HEAD"``, ``"LEVL 3"``, ...), if any.
        field: the spec's name of the offending field, if any.
        offset: byte offset in the stream, if known.
    """

    def __init__(self, message: str, *, chunk: str | None = None, field: str | None = None,
                 offset: int | None = None):
        self.message = message
        self.chunk = chunk
        self.field = field
        self.offset = offset
        where = []
        if chunk is not None:
            where.append(f"chunk {chunk}")
        if field is not None:
            where.append(f"field {field}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class ChecksumError(FormatError):
    """A chunk's CRC-32 does not match its type and payload."""


class TruncatedError(FormatError):
    """The stream ends before a structure it declares is complete."""


class UnsupportedError(FormatError):
    """The stream is valid but uses a version or critical chunk this decoder does not know."""


class LimitError(FormatError):
    """A declared count or size exceeds what the stream can hold or the format allows."""


class ModelError(ProgsError, ValueError):
    """A model given to the encoder is not a valid ProGS model (strict octree, ranges, shapes)."""
