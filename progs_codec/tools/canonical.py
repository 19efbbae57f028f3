"""Canonical decoded output: a byte-exact dump of a decoded LoD and its digest (spec 10).

Any decoder can write the dump, so two decoders agree exactly when their dumps' SHA-256
digests do; conformance (``conformance/``) compares digests. The dump is a sequence of
records ``tag | u64 length | payload``: ``FRAM``, ``GMLP``, ``RNDR`` (only for streams that
carry the ``rendering`` part, version 1.1 and later), then per decoded level ``STRC``,
``POSN``, (entropy coding only) ``CTXT`` and ``SYMB``, and ``ATTR``. The dump of LoD ``k`` is
a prefix of the dump of LoD ``k + 1``. Everything is computed from a decoded
:class:`~progs_codec.model.ProgsModel`: contexts are recomputed from the structure (spec 6)
and symbols recovered exactly from the dequantized values (spec 7.2).

Run as the reference conformance decoder (spec 10.4)::

    python -m progs_codec.tools.canonical INPUT MAX_LOD OUTPUT

>>> from progs_codec import decode, encode
>>> from progs_codec.testing import synthetic_model
>>> stream = encode(synthetic_model(200, 3, seed=1, attribute_coding="raw"))
>>> [r.name for r in split_dump(canonical_dump(decode(stream, max_lod=1)))]
['FRAM', 'GMLP', 'STRC 1', 'POSN 1', 'ATTR 1']
"""

from __future__ import annotations

import hashlib
import struct
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import (
    ChecksumError,
    FormatError,
    LimitError,
    ProgsError,
    TruncatedError,
    UnsupportedError,
)
from ..model import ATTRIBUTE_GROUPS, ProgsModel

__all__ = [
    "DUMP_MAGIC",
    "Record",
    "DumpError",
    "canonical_records",
    "canonical_dump",
    "split_dump",
    "digest",
    "error_class",
    "main",
]

DUMP_MAGIC = b"PGSDUMP1"
_RECORD_HEAD = struct.Struct("<4sQ")
_FRAM = struct.Struct("<3ffBBBBHHH")
_STRC_HEAD = struct.Struct("<II")
_GMLP_HEAD = struct.Struct("<BH")
#: Tags of the records that belong to a level, in dump order (spec 10.2).
LEVEL_TAGS = ("STRC", "POSN", "CTXT", "SYMB", "ATTR")
#: Tags of the records before the levels: always ``FRAM`` and ``GMLP``, then ``RNDR`` when
#: the stream carries the ``rendering`` part (spec 3.5, 10.2).
GLOBAL_TAGS = ("FRAM", "GMLP", "RNDR")


class DumpError(ProgsError, ValueError):
    """A byte string is not a well-formed canonical dump (spec 10.1)."""


@dataclass(frozen=True)
class Record:
    """One dump record (spec 10.1): its tag, the level it belongs to (0: global) and payload."""

    tag: str
    level: int
    payload: bytes

    @property
    def name(self) -> str:
        """``"FRAM"`` for global records, ``"ATTR 2"`` for level records."""
        return self.tag if self.level == 0 else f"{self.tag} {self.level}"

    def to_bytes(self) -> bytes:
        return _RECORD_HEAD.pack(self.tag.encode("ascii"), len(self.payload)) + self.payload


def _frame_record(model: ProgsModel, attribute_coding: int) -> Record:
    f, d = model.frame, model.dims
    payload = _FRAM.pack(*f.origin, f.root_voxel_size, f.base_depth, f.num_levels,
                         int(f.convention), attribute_coding, d.feature, d.scaling,
                         d.num_offsets)
    return Record("FRAM", 0, payload)


def _mlp_record(model: ProgsModel) -> Record:
    mlps = model.gaussian_mlps
    if mlps is None:
        return Record("GMLP", 0, b"")
    parts = [_GMLP_HEAD.pack(int(mlps.use_distance), mlps.opacity.weights[0].shape[0])]
    for mlp in (mlps.opacity, mlps.color, mlps.covariance):
        for array in (mlp.weights[0], mlp.biases[0], mlp.weights[1], mlp.biases[1]):
            parts.append(np.ascontiguousarray(array, "<f4").tobytes())
    return Record("GMLP", 0, b"".join(parts))


def _entropy_records(model: ProgsModel, k: int) -> list[Record]:
    """``CTXT`` and ``SYMB`` of level ``k`` of an entropy-coded model (spec 10.2)."""
    from ..entropy.attributes import group_steps, level_contexts
    from ..entropy.model import FIXED_POINT_BITS

    level, entropy = model.levels[k - 1], model.entropy_model
    parent_coords = None if k == 1 else model.levels[k - 2].coords[level.parent_index]
    prediction = level_contexts(entropy, level.coords, parent_coords, model.frame.depth(k))
    ctxt = b"".join([prediction.mean.astype("<i4").tobytes(),
                     prediction.scale_index.astype("u1").tobytes(),
                     prediction.step_index.astype("u1").tobytes()])
    symbols, start, n = [], 0, len(level)
    for g, (group, width) in enumerate(model.dims.group_channels().items()):
        cols = slice(start, start + width)
        start += width
        # V * 2**-16 is exact in binary32 (7.1), so V and then k are recovered exactly.
        fixed = np.ldexp(level.attributes(group).reshape(n, width).astype(np.float64),
                         FIXED_POINT_BITS).astype(np.int64)
        step = group_steps(entropy.base_steps[g])[prediction.step_index[:, cols]]
        k_times_step = fixed - prediction.mean[:, cols]
        if (k_times_step % step).any():
            raise ValueError(f"level {k} {group}: values are not mean + k * step; "
                             f"dump only decoded models")
        symbols.append((k_times_step // step).astype("<i4").tobytes())
    return [Record("CTXT", k, ctxt), Record("SYMB", k, b"".join(symbols))]


def _level_records(model: ProgsModel, k: int) -> list[Record]:
    level = model.levels[k - 1]
    n, channels = len(level), model.dims.group_channels()
    strc = b"".join([_STRC_HEAD.pack(k, n),
                     np.ascontiguousarray(level.coords, "<u4").tobytes(),
                     np.ascontiguousarray(level.parent_index, "<i4").tobytes(),
                     np.ascontiguousarray(level.octant, "u1").tobytes()])
    # Positions exactly as spec 3.1 defines them: binary64, then rounded once to binary32.
    origin = np.asarray(model.frame.origin, np.float64)
    centres = origin + (level.coords.astype(np.float64) + 0.5) * model.frame.voxel_size(k)
    records = [Record("STRC", k, strc), Record("POSN", k, centres.astype("<f4").tobytes())]
    if model.entropy_model is not None:
        records += _entropy_records(model, k)
    records.append(Record("ATTR", k, b"".join(
        np.ascontiguousarray(level.attributes(g).reshape(n, channels[g]), "<f4").tobytes()
        for g in ATTRIBUTE_GROUPS)))
    return records


def canonical_records(model: ProgsModel, *, rendering: bool | None = None) -> list[Record]:
    """The records of the dump of ``model``'s decoded levels (spec 10.2).

    Args:
        model: a decoded model (as :func:`progs_codec.decode` returns it); every level in
            ``model.levels`` is dumped.
        rendering: whether the stream carried the ``rendering`` part (spec 3.5), which the
            ``RNDR`` record reports; default: what :func:`progs_codec.encode` writes for
            ``model``, i.e. for a 1.1 stream (``Refinement.REPLACE`` or the Z-up convention).

    Raises:
        ValueError: an entropy-coded model whose values are not dequantized symbols (it was
            not decoded from a stream).
    """
    records = [_frame_record(model, int(model.entropy_model is not None)), _mlp_record(model)]
    if model.lowest_minor_version >= 1 if rendering is None else rendering:
        records.append(Record("RNDR", 0, bytes([int(model.refine)])))
    for k in range(1, model.lod + 1):
        records += _level_records(model, k)
    return records


def canonical_dump(model: ProgsModel, *, rendering: bool | None = None) -> bytes:
    """The canonical dump (spec 10): magic, then the records of :func:`canonical_records`."""
    return DUMP_MAGIC + b"".join(r.to_bytes()
                                 for r in canonical_records(model, rendering=rendering))


def split_dump(data: bytes) -> list[Record]:
    """Parse a dump into its records; checks the magic, framing and record order (spec 10.1).

    Raises:
        DumpError: not a well-formed dump (the message says where).
    """
    if data[: len(DUMP_MAGIC)] != DUMP_MAGIC:
        raise DumpError("not a canonical dump: bad magic")
    records, pos, level = [], len(DUMP_MAGIC), 0
    while pos < len(data):
        if pos + _RECORD_HEAD.size > len(data):
            raise DumpError(f"dump ends inside a record header at byte {pos}")
        raw_tag, length = _RECORD_HEAD.unpack_from(data, pos)
        tag = raw_tag.decode("ascii", "replace")
        pos += _RECORD_HEAD.size
        if pos + length > len(data):
            raise DumpError(f"record {tag} declares {length} bytes, {len(data) - pos} remain")
        if tag == "STRC":
            level += 1
        if len(records) < 2:
            allowed = (GLOBAL_TAGS[len(records)],)
        elif level == 0:
            allowed = ("RNDR",) if len(records) == 2 else ()
        else:
            allowed = LEVEL_TAGS
        if tag not in allowed:
            raise DumpError(f"unexpected record {tag!r} at byte {pos - _RECORD_HEAD.size}")
        records.append(Record(tag, 0 if tag in GLOBAL_TAGS else level, data[pos: pos + length]))
        pos += length
    return records


def digest(data: bytes) -> str:
    """SHA-256 of a dump, lower-case hex (spec 10.3)."""
    return hashlib.sha256(data).hexdigest()


def error_class(error: ProgsError) -> str:
    """The spec 8.4 class of a decoding error: ``checksum``, ``truncated``, ..., ``format``."""
    for cls, name in ((ChecksumError, "checksum"), (TruncatedError, "truncated"),
                      (UnsupportedError, "unsupported"), (LimitError, "limit"),
                      (FormatError, "format")):
        if isinstance(error, cls):
            return name
    return "format"


def decode_to_dump(stream: bytes, max_lod: int) -> bytes:
    """Decode LoD ``max_lod`` (capped by the stream's levels) and return its dump."""
    from ..codec import Decoder

    decoder = Decoder(max_lod=max_lod)
    decoder.feed(bytes(stream))
    model = decoder.close()
    return canonical_dump(model, rendering=decoder.header.minor_version >= 1)


def main(argv: Sequence[str] | None = None) -> int:
    """``INPUT MAX_LOD OUTPUT``: the reference decoder of the conformance convention (10.4).

    Exit status 0 with the dump written (atomically); 2 with ``error-class: NAME`` on stderr
    when the stream is invalid; 64 on a usage error (OUTPUT's folder checked first).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or not args[1].isdigit() or int(args[1]) < 1:
        print("usage: python -m progs_codec.tools.canonical INPUT MAX_LOD OUTPUT  (MAX_LOD >= 1)",
              file=sys.stderr)
        return 64
    source, max_lod, target = args[0], int(args[1]), args[2]
    from ..files import check_output_file, write_atomic

    try:
        check_output_file(target)       # before decoding, naming the path as given
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 64
    try:
        with open(source, "rb") as f:
            dump = decode_to_dump(f.read(), max_lod)
    except ProgsError as error:
        print(f"error-class: {error_class(error)}", file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_atomic(target, dump)
    return 0


if __name__ == "__main__":
    sys.exit(main())
