"""Encoding and decoding whole streams, prefixes and streams as they arrive (spec 2.3, 8).

Two tiers, as in python-zstandard: :func:`encode` / :func:`decode` for whole files and
prefixes, :class:`Decoder` (``feed`` / ``close``) for bytes as they arrive. The chunk rules
live in :class:`~progs_codec.format.walker.ChunkWalker`, which :func:`progs_codec.inspect`
shares; the decoder adds the levels' structure and attributes
(:func:`~progs_codec.format.level.decode_level_chunk`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from .errors import ModelError, TruncatedError
from .format.container import ENDS, FILE_HEADER_SIZE, HEAD, LEVL, write_chunk, write_file_header
from .format.header import AttributeCoding, Header, TocEntry, frame_problems, write_header
from .format.level import decode_level_chunk, encode_level_chunk
from .format.walker import ChunkWalker
from .format.structure import validate_model_structure
from .model import Level, ProgsModel

__all__ = ["encode", "decode", "Decoder", "read_stream", "DEFAULT_MAX_ANCHORS",
           "DEFAULT_MAX_VALUES"]

#: Default cap on the anchors a stream may declare: entropy-coded data can describe millions
#: of anchors in a few bytes, so a decoder bounds what it allocates, as image decoders bound
#: pixels. The defaults are capability 1 of spec 8.6, what every conforming decoder decodes:
#: ``2**21`` anchors and ``2**27`` attribute values (512 MiB of float32), so that no stream,
#: however small, makes the decoder hold more than about 0.9 GB (``tests/test_limits.py``).
#: Pass larger limits, or ``None``, to decode more.
DEFAULT_MAX_ANCHORS = 1 << 21
DEFAULT_MAX_VALUES = 1 << 27

Stream = Union[bytes, bytearray, memoryview, str, os.PathLike, BinaryIO]


def _validate_model(model: ProgsModel) -> None:
    for field, message in frame_problems(model.frame, model.dims):
        raise ModelError(f"{field}: {message}")
    if len(model.levels) != model.frame.num_levels:
        raise ModelError(f"frame.num_levels is {model.frame.num_levels} but the model holds "
                         f"{len(model.levels)} levels; to encode a decoded prefix use "
                         f"model.truncated(model.lod)")
    validate_model_structure(model.levels, model.frame.base_depth)
    dims = model.dims
    for k, level in enumerate(model.levels, start=1):
        n = len(level)
        for group, shape in (("feature", (n, dims.feature)), ("scaling", (n, dims.scaling)),
                             ("offsets", (n, dims.num_offsets, 3))):
            values = level.attributes(group)
            if np.shape(values) != shape:
                raise ModelError(f"level {k}: {group} has shape {np.shape(values)}, expected "
                                 f"{shape}")
            if not np.isfinite(values).all():
                raise ModelError(f"level {k}: {group} holds non-finite values")


def encode(model: ProgsModel) -> bytes:
    """Encode a complete model as a ``.progs`` stream (spec 2-7).

    Attributes are entropy coded when ``model.entropy_model`` is set (lossy: they are
    quantized, chapter 7), otherwise stored raw as float32. ``decode(encode(m))`` returns the
    quantized model, and encoding that again gives the same bytes. A model whose ``refine``
    is ``Refinement.REPLACE`` or whose frame's convention is ``CoordinateConvention.ZUP`` is
    written as a version 1.1 stream with a ``rendering`` part (spec 3.1, 3.5); any other
    model as a 1.0 stream.

    Raises:
        ModelError: the model is not a strict octree in canonical order, or shapes or ranges
            are wrong; the message names the level, anchor and field.

    Example:
        >>> from progs_codec.testing import synthetic_model
        >>> stream = encode(synthetic_model(num_anchors=300, num_levels=3, seed=1))
        >>> decode(stream, max_lod=2).lod
        2
    """
    _validate_model(model)
    coding = AttributeCoding.RAW if model.entropy_model is None else AttributeCoding.ENTROPY
    entropy_parts = (b"", b"")
    if coding is AttributeCoding.ENTROPY:
        from .entropy.model import write_entropy_model
        entropy_parts = write_entropy_model(model.entropy_model)

    # 1.0 streams stay byte for byte what they were; only REPLACE (part 5, spec 3.5) and the
    # Z-up convention (spec 3.1) need 1.1: the lowest version that expresses the stream.
    version = (1, model.lowest_minor_version)

    def header_for(toc):
        return Header(frame=model.frame, dims=model.dims, attribute_coding=coding, toc=toc,
                      gaussian_mlps=model.gaussian_mlps, entropy_model=model.entropy_model,
                      part_sizes={}, refine=model.refine, minor_version=version[1])

    header = header_for(())
    payloads, previous = [], None
    for k, level in enumerate(model.levels, start=1):
        payload, previous = encode_level_chunk(level, k, header, previous)
        payloads.append(payload)
    # The TOC has a fixed size, so the header's length is known before the offsets are.
    placeholder = tuple(TocEntry(0, 0, 0) for _ in payloads)
    offset = FILE_HEADER_SIZE + len(write_chunk(HEAD, write_header(header_for(placeholder),
                                                                   entropy_parts)))
    toc = []
    for level, payload in zip(model.levels, payloads):
        toc.append(TocEntry(offset, 12 + len(payload), len(level)))
        offset += 12 + len(payload)
    head = write_chunk(HEAD, write_header(header_for(tuple(toc)), entropy_parts))
    return b"".join([write_file_header(version), head,
                     *(write_chunk(LEVL, p) for p in payloads), write_chunk(ENDS, b"")])


class Decoder:
    """Decodes a stream from bytes as they arrive (spec 8).

    ``feed(data)`` returns the levels completed by ``data`` (a list of :class:`Level`, maybe
    empty); ``model`` is the model of the levels so far (``None`` until the header is in);
    ``close()`` returns that model; with ``strict=True`` it raises :class:`TruncatedError`
    when the stream stopped short of ``max_lod`` levels (or of ``ENDS``).

    Example:
        >>> from progs_codec.testing import synthetic_model
        >>> stream = encode(synthetic_model(num_anchors=200, num_levels=3, seed=2))
        >>> with Decoder() as decoder:
        ...     sizes = [len(decoder.feed(stream[i:i + 1000])) for i in range(0, len(stream), 1000)]
        >>> decoder.model.lod
        3
    """

    def __init__(self, *, max_lod: int | None = None, strict: bool = False,
                 max_anchors: int | None = DEFAULT_MAX_ANCHORS,
                 max_values: int | None = DEFAULT_MAX_VALUES):
        if max_lod is not None and (not isinstance(max_lod, (int, np.integer)) or max_lod < 1):
            raise ValueError(f"max_lod must be a positive integer or None, got {max_lod!r}")
        self.max_lod = max_lod
        self.strict = strict
        self._walker = ChunkWalker(max_lod=max_lod, max_anchors=max_anchors,
                                   max_values=max_values)
        self._levels: list[Level] = []

    @property
    def header(self) -> Header | None:
        return self._walker.header

    @property
    def target_lod(self) -> int | None:
        """The LoD this decoder stops at: ``max_lod`` capped by the stream's level count."""
        if self.header is None:
            return self.max_lod
        total = self.header.frame.num_levels
        return total if self.max_lod is None else min(self.max_lod, total)

    @property
    def done(self) -> bool:
        """True once ``target_lod`` levels are decoded (and, for whole streams, ``ENDS`` read)."""
        return self._walker.ended or (self.header is not None
                                      and len(self._levels) == self.target_lod
                                      and self.target_lod < self.header.frame.num_levels)

    @property
    def model(self) -> ProgsModel | None:
        if self.header is None:
            return None
        h = self.header
        return ProgsModel(frame=h.frame, dims=h.dims, levels=list(self._levels),
                          gaussian_mlps=h.gaussian_mlps, entropy_model=h.entropy_model,
                          refine=h.refine)

    def feed(self, data: bytes) -> list[Level]:
        if self.done and not self._walker.ended:
            return []                       # LoD reached: what follows is never read (8.2)
        self._walker.feed(data)             # after ENDS, any data is an error
        completed = []
        while not self.done:
            step = self._walker.next_step()
            if step is None:
                break
            if step.kind == "level":
                previous = self._levels[-1] if self._levels else None
                level = decode_level_chunk(step.level, self.header, previous)
                self._levels.append(level)
                completed.append(level)
        return completed

    def describe_pending(self) -> str:
        """What the bytes fed but not decoded are (``chunk LEVL (1725 of 3299 bytes present)``),
        for a message about a stream that stopped short."""
        return self._walker.describe_pending()

    def close(self) -> ProgsModel:
        """The decoded model; raises :class:`TruncatedError` if the stream stopped short."""
        if self.header is None:
            raise self._walker.truncated_header_error()
        if self.strict and not self.done:
            raise TruncatedError(f"stream ends after {len(self._levels)} of {self.target_lod} "
                                 f"levels, inside {self._walker.describe_pending()}",
                                 offset=self._walker.offset)
        return self.model

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc_info) -> None:
        return None


def read_stream(stream: Stream) -> bytes:
    """The bytes of ``stream``: bytes-like, a path, or a binary file object."""
    if isinstance(stream, (bytes, bytearray, memoryview)):
        return bytes(stream)
    if isinstance(stream, (str, os.PathLike)):
        return Path(stream).read_bytes()
    if hasattr(stream, "read"):
        data = stream.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("stream file must be opened in binary mode")
        return bytes(data)
    raise TypeError(f"stream must be bytes, a path or a binary file, not {type(stream).__name__}")


def decode(stream: Stream, max_lod: int | None = None, *, strict: bool = False,
           max_anchors: int | None = DEFAULT_MAX_ANCHORS,
           max_values: int | None = DEFAULT_MAX_VALUES) -> ProgsModel:
    """Decode LoD ``max_lod`` (levels ``1..max_lod``; all levels when ``None``) (spec 8).

    ``stream`` is bytes, a path or a binary file. A prefix that ends inside a chunk decodes
    every complete level: the result's ``lod`` says how many, ``complete`` whether all. With
    ``strict=True`` a stream that stops short is an error. A stream whose table of contents
    declares more than ``max_anchors`` anchors, or ``max_values`` anchors times channels, up
    to ``max_lod`` is refused before anything is allocated (spec 8.5; the defaults are the
    capability of spec 8.6, ``None`` lifts a limit).

    Raises:
        TruncatedError: the header is incomplete; or, with ``strict``, the stream stops
            before ``max_lod`` levels (or before ``ENDS`` when all levels are asked for).
        FormatError: the stream is malformed (the error names chunk and field).
        UnsupportedError: unknown major version, critical chunk or structure layout.
        LimitError: more than ``max_anchors`` anchors or ``max_values`` values declared, or a
            count beyond the payload.

    Example:
        >>> from progs_codec.testing import synthetic_model
        >>> stream = encode(synthetic_model(num_anchors=300, num_levels=3, seed=1))
        >>> decode(stream[: len(stream) - 40]).lod   # the last level is cut
        2
    """
    decoder = Decoder(max_lod=max_lod, strict=strict, max_anchors=max_anchors,
                      max_values=max_values)
    decoder.feed(read_stream(stream))
    return decoder.close()
