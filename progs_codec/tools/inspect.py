"""Bit allocation of a stream per chunk, level and attribute group (``progs-codec inspect``).

Reads the container and the level sections' lengths without decoding attributes, so it is
fast on any size. Works on prefixes: it reports the complete levels present.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..codec import Stream, read_stream
from ..format.container import CHUNK_OVERHEAD, FILE_HEADER_SIZE, LEVL
from ..format.header import AttributeCoding
from ..format.level import STRUCTURE_FIXED, STRUCTURE_OCCUPANCY
from ..format.walker import ChunkWalker
from ..model import ATTRIBUTE_GROUPS, AttributeDims, Refinement, SceneFrame

__all__ = ["LevelInfo", "PendingChunk", "StreamInfo", "inspect", "format_info"]

STRUCTURE_MODES = {STRUCTURE_FIXED: "fixed", STRUCTURE_OCCUPANCY: "occupancy"}

#: Header parts reported on their own; everything else in the header counts as ``other``.
REPORTED_HEADER_PARTS = ("hash_grid", "context_mlp", "gaussian_mlps")


@dataclass(frozen=True)
class LevelInfo:
    """Sizes of one level chunk; ``cumulative_bytes`` is the prefix that holds LoD ``lod``.

    ``anchors`` counts the anchors of this level alone ("level anchors"), ``lod_anchors``
    those of levels ``1..lod``, what a decoder of LoD ``lod`` holds ("LoD anchors").
    """

    lod: int
    anchors: int
    bytes: int
    structure_mode: str
    structure_bytes: int
    attribute_bytes: dict[str, int]
    cumulative_bytes: int
    lod_anchors: int


@dataclass(frozen=True)
class PendingChunk:
    """Where a prefix stops: inside chunk ``chunk`` (``"LEVL 3"``, ``"HEAD"``, or ``None``
    when even its type and length are cut), of which ``present_bytes`` of ``chunk_bytes``
    (``None`` if unknown) are in the stream, starting at ``offset``."""

    chunk: str | None
    offset: int
    present_bytes: int
    chunk_bytes: int | None

    def describe(self) -> str:
        if self.chunk is None:
            return (f"a chunk's type and length ({self.present_bytes} of 8 bytes present, "
                    f"offset {self.offset})")
        return (f"chunk {self.chunk} ({self.present_bytes:,} of {self.chunk_bytes:,} bytes "
                f"present, offset {self.offset})")


@dataclass(frozen=True)
class StreamInfo:
    """What :func:`inspect` reports."""

    version: tuple[int, int]
    total_bytes: int
    frame: SceneFrame
    dims: AttributeDims
    attribute_coding: AttributeCoding
    header_bytes: dict[str, int]
    levels: list[LevelInfo]
    optional_chunks: list[tuple[str, int]]
    complete: bool
    pending: PendingChunk | None = None
    refine: Refinement = Refinement.ADD

    def to_dict(self) -> dict:
        """The stable JSON contract of ``inspect --json``."""
        return {
            "version": f"{self.version[0]}.{self.version[1]}",
            "total_bytes": self.total_bytes,
            "complete": self.complete,
            "frame": {"origin": list(self.frame.origin),
                      "root_voxel_size": self.frame.root_voxel_size,
                      "base_depth": self.frame.base_depth, "num_levels": self.frame.num_levels,
                      "convention": self.frame.convention.name.lower()},
            "dims": {"feature": self.dims.feature, "scaling": self.dims.scaling,
                     "num_offsets": self.dims.num_offsets},
            "attribute_coding": self.attribute_coding.name.lower(),
            "refine": self.refine.name.lower(),
            "header_bytes": dict(self.header_bytes),
            "levels": [{"lod": lv.lod, "anchors": lv.anchors, "lod_anchors": lv.lod_anchors,
                        "bytes": lv.bytes,
                        "structure_mode": lv.structure_mode,
                        "structure_bytes": lv.structure_bytes,
                        "attribute_bytes": dict(lv.attribute_bytes),
                        "cumulative_bytes": lv.cumulative_bytes} for lv in self.levels],
            "optional_chunks": [{"type": t, "bytes": n} for t, n in self.optional_chunks],
            "pending": None if self.pending is None else {
                "chunk": self.pending.chunk, "offset": self.pending.offset,
                "present_bytes": self.pending.present_bytes,
                "chunk_bytes": self.pending.chunk_bytes},
        }


def inspect(stream: Stream) -> StreamInfo:
    """Sizes of every part of a stream or prefix (spec 2-4), without decoding attributes.

    Walks the chunks with the decoder's own :class:`~progs_codec.format.walker.ChunkWalker`,
    so it raises the same errors as :func:`progs_codec.decode` for a malformed container,
    header or chunk order, and reports the complete levels of a prefix.

    Raises:
        TruncatedError: the stream ends inside the header.
        FormatError: (or a subclass) the container, header or a level's sections break the
            format.
    """
    data = read_stream(stream)
    walker = ChunkWalker()
    walker.feed(data)
    parts, levels, optional = {}, [], []
    while (step := walker.next_step()) is not None:
        if step.kind == "head":
            parts = {name: step.header.part_sizes[name] for name in REPORTED_HEADER_PARTS}
            parts["other"] = FILE_HEADER_SIZE + step.chunk.size - sum(parts.values())
        elif step.kind == "level":
            parsed = step.level
            lod_anchors = parsed.anchor_count + (levels[-1].lod_anchors if levels else 0)
            levels.append(LevelInfo(
                lod=parsed.level, anchors=parsed.anchor_count, bytes=step.chunk.size,
                structure_mode=STRUCTURE_MODES[parsed.structure_mode],
                structure_bytes=len(parsed.structure),
                attribute_bytes={g: len(parsed.group_payloads[g]) for g in ATTRIBUTE_GROUPS},
                cumulative_bytes=step.chunk.offset + step.chunk.size, lod_anchors=lod_anchors))
        elif step.kind == "optional":
            optional.append((step.chunk.name, step.chunk.size))
    header = walker.header
    if header is None:
        raise walker.truncated_header_error()
    return StreamInfo(version=walker.version, total_bytes=len(data), frame=header.frame,
                      dims=header.dims, attribute_coding=header.attribute_coding,
                      header_bytes=parts, levels=levels, optional_chunks=optional,
                      complete=walker.ended, refine=header.refine,
                      pending=_pending(data, walker.offset, len(levels)) if walker.pending else None)


def _pending(data: bytes, offset: int, levels_done: int) -> PendingChunk:
    """The chunk a prefix stops in (every chunk before ``offset`` was complete and checked)."""
    present = len(data) - offset
    if present < 8:
        return PendingChunk(None, offset, present, None)
    chunk_type = bytes(data[offset: offset + 4])
    name = chunk_type.decode("ascii", "replace")
    if chunk_type == LEVL:
        name = f"LEVL {levels_done + 1}"
    (length,) = struct.unpack_from("<I", data, offset + 4)
    return PendingChunk(name, offset, present, CHUNK_OVERHEAD + length)


def _size(n: int) -> str:
    if n < 10_000:
        return f"{n} B"
    if n < 10_000_000:
        return f"{n / 1e3:.1f} kB"
    return f"{n / 1e6:.2f} MB"


def format_info(info: StreamInfo) -> str:
    """Human-readable report, aligned, with units (like ``jxlinfo``)."""
    f, d = info.frame, info.dims
    header_total = sum(info.header_bytes.values())
    lines = [
        f"progs stream, version {info.version[0]}.{info.version[1]}, {_size(info.total_bytes)}"
        + ("" if info.complete else f"  (prefix: {len(info.levels)} of {f.num_levels} levels)"),
        *([f"  stops inside {info.pending.describe()}"] if info.pending else []),
        f"  frame        origin ({f.origin[0]:.4g}, {f.origin[1]:.4g}, {f.origin[2]:.4g}), "
        f"root voxel {f.root_voxel_size:.4g}, base depth {f.base_depth}, "
        f"{f.num_levels} levels, {f.convention.name} axes, refine {info.refine.name.lower()}",
        f"  attributes   feature {d.feature}, scaling {d.scaling}, offsets {d.num_offsets}x3, "
        f"{info.attribute_coding.name.lower()} coding",
        f"  header       {_size(header_total)}: "
        + ", ".join(f"{name} {_size(n)}" for name, n in info.header_bytes.items()),
        "",
    ]
    columns = ["LoD", "level anchors", "LoD anchors", "bytes", "bits/anchor", "layout",
               "structure"] + list(ATTRIBUTE_GROUPS) + ["cumulative"]
    rows = []
    for lv in info.levels:
        rows.append([str(lv.lod), f"{lv.anchors:,}", f"{lv.lod_anchors:,}", _size(lv.bytes),
                     f"{8 * lv.bytes / max(lv.anchors, 1):.1f}", lv.structure_mode,
                     _size(lv.structure_bytes)]
                    + [_size(lv.attribute_bytes[g]) for g in ATTRIBUTE_GROUPS]
                    + [_size(lv.cumulative_bytes)])
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
              for i, c in enumerate(columns)]
    lines.append("  " + "  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    lines += ["  " + "  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows]
    for name, size in info.optional_chunks:
        lines.append(f"  optional chunk {name}: {_size(size)}")
    return "\n".join(lines)
