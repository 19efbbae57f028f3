"""Structure, occupancy layout: child-occupancy masks through the rANS coder (spec 4.6).

Instead of 23 bits per anchor, each parent's 8-bit child-occupancy mask is coded under one
static frequency table per level, built from the mask histogram sent in the chunk. On the
real scenes that costs about 3 bits per anchor (``benchmarks/bench_structure.py``).
"""

from __future__ import annotations

import struct

import numpy as np

from ..entropy.coder import categorical_model, check_finished, open_decoder
from ..entropy.tables import PRECISION
from ..errors import FormatError, LimitError
from .structure import child_coords, morton_codes

__all__ = [
    "mask_frequencies",
    "children_masks",
    "virtual_masks",
    "write_occupancy",
    "parse_children_occupancy",
    "parse_roots_occupancy",
]

NUM_MASKS = 256
_PRESENCE_BYTES = NUM_MASKS // 8
_MAX_VARINT_BYTES = 5
_WORD_COUNT = struct.Struct("<I")


def mask_frequencies(counts: np.ndarray) -> np.ndarray:
    """The coding table of a mask histogram (spec 4.6), ``[256] int64`` summing to ``2**24``.

    ``f[i] = 1 + floor(h[i] * R / H)`` with ``R = 2**24 - 256`` and ``H = sum(h)``; what the
    floors leave of ``R`` goes to the most frequent mask (the smallest such value; mask 0
    when ``H = 0``).
    """
    counts = np.asarray(counts, np.int64)
    total = int(counts.sum())
    spare = (1 << PRECISION) - NUM_MASKS
    scaled = np.array([(int(h) * spare) // total if total else 0 for h in counts], np.int64)
    freq = 1 + scaled
    freq[int(np.argmax(counts))] += spare - int(scaled.sum())
    return freq


def children_masks(parent_index: np.ndarray, octant: np.ndarray, num_parents: int) -> np.ndarray:
    """Each parent's child-occupancy mask, bit ``o`` for octant ``o``, ``[num_parents] uint8``."""
    bits = np.left_shift(1, octant.astype(np.int64))
    return np.bincount(parent_index, weights=bits, minlength=num_parents).astype(np.uint8)


def _children_of(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(parent_index, octant)`` of the set bits, parent-major, octant ascending (spec 4.2)."""
    parent_index, octant = np.nonzero((masks[:, None] >> np.arange(8)) & 1)
    return parent_index.astype(np.int32), octant.astype(np.uint8)


def virtual_masks(root_coords: np.ndarray, base_depth: int) -> np.ndarray:
    """Masks of the roots' virtual ancestors, depth 0 to ``base_depth - 1``, breadth first.

    Each depth's nodes are in Morton order (spec 4.6), as the decoder visits them.
    """
    codes = morton_codes(root_coords, base_depth).astype(np.int64)
    per_depth = []
    for depth in range(base_depth - 1, -1, -1):
        parents = codes >> 3
        nodes = np.unique(parents)
        masks = np.zeros(len(nodes), np.int64)
        np.bitwise_or.at(masks, np.searchsorted(nodes, parents), 1 << (codes & 7))
        per_depth.append(masks.astype(np.uint8))
        codes = nodes
    return np.concatenate(per_depth[::-1]) if per_depth else np.zeros(0, np.uint8)


def write_occupancy(masks: np.ndarray) -> bytes:
    """Structure section of the occupancy layout (spec 4.6) coding ``masks`` in order."""
    counts = np.bincount(masks, minlength=NUM_MASKS)
    presence = np.packbits(counts > 0).tobytes()
    varints = bytearray()
    for count in counts[counts > 0]:
        count = int(count)
        while count >= 0x80:
            varints.append(count & 0x7F | 0x80)
            count >>= 7
        varints.append(count)
    words = np.zeros(0, np.uint32)
    if len(masks):
        import constriction

        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(masks.astype(np.int32), categorical_model(mask_frequencies(counts)))
        words = coder.get_compressed()
    return (presence + bytes(varints) + _WORD_COUNT.pack(len(words))
            + words.astype("<u4").tobytes())


class _MaskReader:
    """Parses the histogram of spec 4.6 and decodes masks in order, checking every count."""

    def __init__(self, section: bytes, chunk: str):
        self.chunk = chunk
        if len(section) < _PRESENCE_BYTES:
            self._fail("structure section shorter than its presence bitmap")
        present = np.unpackbits(np.frombuffer(section, np.uint8, _PRESENCE_BYTES)).astype(bool)
        pos, counts = _PRESENCE_BYTES, np.zeros(NUM_MASKS, np.int64)
        for value in np.flatnonzero(present):
            count, shift = 0, 0
            for i in range(_MAX_VARINT_BYTES + 1):
                if i == _MAX_VARINT_BYTES or pos >= len(section):
                    self._fail("mask count runs past the section or beyond 5 bytes")
                byte = section[pos]
                pos += 1
                count |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            if count == 0 or count >= 1 << 32:
                self._fail(f"count of mask {value} is {count}; present masks count 1..2**32-1")
            counts[value] = count
        if pos + 4 > len(section):
            self._fail("structure section ends before num_words")
        (num_words,) = _WORD_COUNT.unpack_from(section, pos)
        if pos + 4 + 4 * num_words > len(section):    # words past the section (8.4, O4)
            raise LimitError(f"num_words {num_words} runs past the structure section of "
                             f"{len(section)} bytes", chunk=chunk, field="structure")
        if pos + 4 + 4 * num_words < len(section):    # bytes after the words (8.4, O5)
            self._fail(f"{len(section) - pos - 4 - 4 * num_words} bytes follow the words of "
                       f"the structure section")
        self.counts = counts
        self.total = int(counts.sum())
        self.read = 0
        self.decoded = np.zeros(NUM_MASKS, np.int64)
        self.model = categorical_model(mask_frequencies(counts))
        try:
            self.coder = open_decoder(np.frombuffer(section, "<u4", num_words, pos + 4))
        except FormatError as e:
            self._fail(e.message)

    def _fail(self, message: str):
        raise FormatError(message, chunk=self.chunk, field="structure")

    def masks(self, count: int) -> np.ndarray:
        if self.read + count > self.total:
            self._fail(f"the histogram declares {self.total} masks, the octree needs more")
        masks = np.asarray(self.coder.decode(self.model, count) if count else [], np.uint8)
        self.read += count
        self.decoded += np.bincount(masks, minlength=NUM_MASKS)
        return masks

    def finish(self) -> None:
        if self.read != self.total or not np.array_equal(self.decoded, self.counts):
            self._fail("decoded masks do not match the declared histogram")
        try:
            check_finished(self.coder)
        except FormatError as e:
            self._fail(e.message)


def parse_children_occupancy(section: bytes, count: int, num_parents: int, *,
                             chunk: str) -> tuple[np.ndarray, np.ndarray]:
    """Level ``k > 1`` in the occupancy layout (spec 4.6): ``(parent_index, octant)``."""
    reader = _MaskReader(section, chunk)
    if reader.total != num_parents:
        reader._fail(f"the histogram declares {reader.total} masks, the previous level has "
                     f"{num_parents} anchors")
    masks = reader.masks(num_parents)
    reader.finish()
    if int(np.unpackbits(masks).sum()) != count:
        raise FormatError(f"masks give {int(np.unpackbits(masks).sum())} children, "
                          f"anchor_count is {count}", chunk=chunk, field="anchor_count")
    return _children_of(masks)


def parse_roots_occupancy(section: bytes, count: int, base_depth: int, *,
                          chunk: str = "LEVL 1") -> np.ndarray:
    """Level 1 in the occupancy layout (spec 4.6): root coordinates ``[N, 3] int32``.

    Masks of the virtual ancestors are decoded depth by depth from the single node at depth
    0; no depth may hold more nodes than ``count`` roots allow.
    """
    reader = _MaskReader(section, chunk)
    coords = np.zeros((1, 3), np.int32)
    for depth in range(base_depth):
        masks = reader.masks(len(coords))
        if not masks.all():
            reader._fail(f"a virtual node at depth {depth} has no children")
        children = int(np.unpackbits(masks).sum())
        if children > count:
            raise FormatError(f"depth {depth + 1} of the virtual octree holds {children} nodes, "
                              f"more than the {count} roots", chunk=chunk, field="anchor_count")
        parent_index, octant = _children_of(masks)
        coords = child_coords(coords, parent_index, octant)
    reader.finish()
    if len(coords) != count:
        raise FormatError(f"masks give {len(coords)} roots, anchor_count is {count}",
                          chunk=chunk, field="anchor_count")
    return coords.astype(np.int32)
