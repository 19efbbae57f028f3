"""Structure, occupancy layout (spec 4.6): masks through the rANS decoder of 7.4."""

import struct

import numpy as np

from pgs_errors import fail
from pgs_rans import Rans


def _table(count):
    total, spare = sum(count), (1 << 24) - 256
    floors = [c * spare // total if total else 0 for c in count]
    freqs = [1 + f for f in floors]
    freqs[count.index(max(count))] += spare - sum(floors)
    starts = [0] * 256
    for v in range(1, 256):
        starts[v] = starts[v - 1] + freqs[v - 1]
    return freqs, starts


class MaskDecoder:
    def __init__(self, section):
        if len(section) < 32:
            fail("occupancy section shorter than its presence bitmap")
        self.count = [0] * 256
        pos = 32
        for v in range(256):
            if not section[v // 8] >> (7 - v % 8) & 1:
                continue
            value, shift, used = 0, 0, 0
            while True:
                if used == 5 or pos >= len(section):
                    fail("mask count varint runs past the section or beyond 5 bytes")
                byte = section[pos]
                pos, used = pos + 1, used + 1
                value |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            if not 1 <= value < 1 << 32:
                fail("present mask count outside 1..2**32-1")
            self.count[v] = value
        if pos + 4 > len(section):
            fail("occupancy section ends before num_words")
        (m,) = struct.unpack_from("<I", section, pos)
        if pos + 4 + 4 * m > len(section):
            fail("num_words runs past the occupancy section", "limit")
        if pos + 4 + 4 * m != len(section):
            fail("bytes after the occupancy words")
        self.total = sum(self.count)
        self.freqs, self.starts = _table(self.count)
        self.rans = Rans(struct.unpack_from(f"<{m}I", section, pos + 4))
        self.seen = [0] * 256

    def masks(self, n):
        if sum(self.seen) + n > self.total:
            fail("the octree needs more masks than the histogram declares")
        out = [self.rans.decode(self.freqs, self.starts) for _ in range(n)]
        for v in out:
            self.seen[v] += 1
        return np.array(out, np.int64)

    def finish(self):
        if self.seen != self.count:
            fail("decoded masks differ from the declared histogram")
        self.rans.end_check()


def _set_bits(masks):
    parent, octant = np.nonzero((masks[:, None] >> np.arange(8)) & 1)
    return parent.astype(np.int64), octant.astype(np.int64)


def _child_coords(coords, parent, octant):
    return 2 * coords[parent] + np.stack([(octant >> 2) & 1, (octant >> 1) & 1, octant & 1], 1)


def roots(section, n, depth):
    dec = MaskDecoder(section)
    coords = np.zeros((1, 3), np.int64)
    for _ in range(depth):
        masks = dec.masks(len(coords))
        if (masks == 0).any():
            fail("a virtual node has mask 0")
        parent, octant = _set_bits(masks)
        if len(parent) > n:
            fail("a virtual depth holds more nodes than there are roots")
        coords = _child_coords(coords, parent, octant)
    dec.finish()
    if len(coords) != n:
        fail("occupancy masks give another number of roots than anchor_count")
    return coords, np.full(n, -1, np.int64), np.zeros(n, np.int64)


def children(section, n, previous):
    dec = MaskDecoder(section)
    if dec.total != len(previous.coords):
        fail("mask histogram total differs from the previous level's anchor count")
    masks = dec.masks(len(previous.coords))
    dec.finish()
    parent, octant = _set_bits(masks)
    if len(parent) != n:
        fail("occupancy masks give another number of anchors than anchor_count")
    return _child_coords(previous.coords, parent, octant), parent, octant
