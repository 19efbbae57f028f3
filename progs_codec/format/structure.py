"""Octree structure: canonical order and the fixed structure layout (spec 4.2-4.4).

Fixed-width fields are packed with numpy's ``packbits``/``unpackbits`` (MSB first, as spec 1.2
says) because bitarray has no vectorized fixed-width integer packing: one call packs a
million anchors.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError, ModelError
from ..model import Level

__all__ = [
    "PARENT_INDEX_BITS",
    "OCTANT_BITS",
    "MAX_PARENTS",
    "morton_codes",
    "octants",
    "child_coords",
    "write_roots",
    "parse_roots",
    "write_children",
    "parse_children",
    "roots_length",
    "children_length",
    "check_roots",
    "check_children",
]

PARENT_INDEX_BITS = 20
OCTANT_BITS = 3
MAX_PARENTS = 1 << PARENT_INDEX_BITS


def morton_codes(coords: np.ndarray, depth: int) -> np.ndarray:
    """Morton code of each ``[N, 3]`` coordinate of ``depth`` bits, x bit highest (spec 4.2).

    Returns ``[N] uint64``; depth <= 21 keeps the code within 63 bits.
    """
    coords = np.asarray(coords, dtype=np.uint64)
    codes = np.zeros(coords.shape[0], dtype=np.uint64)
    for bit in range(depth - 1, -1, -1):
        b = np.uint64(bit)
        codes = (codes << np.uint64(3)) | (((coords[:, 0] >> b) & np.uint64(1)) << np.uint64(2)) \
            | (((coords[:, 1] >> b) & np.uint64(1)) << np.uint64(1)) | ((coords[:, 2] >> b) & np.uint64(1))
    return codes


def octants(coords: np.ndarray) -> np.ndarray:
    """Octant of each child coordinate in its parent (spec 4.2), ``[N] uint8``."""
    c = np.asarray(coords)
    return ((c[:, 0] & 1) << 2 | (c[:, 1] & 1) << 1 | (c[:, 2] & 1)).astype(np.uint8)


def child_coords(parent_coords: np.ndarray, parent_index: np.ndarray,
                 octant: np.ndarray) -> np.ndarray:
    """Coordinates of children from their parents' coordinates and octants (spec 4.2)."""
    o = octant.astype(np.int32)
    bits = np.stack([(o >> 2) & 1, (o >> 1) & 1, o & 1], axis=1)
    return (2 * parent_coords[parent_index] + bits).astype(np.int32)


def _pack(fields: list[tuple[np.ndarray, int]]) -> bytes:
    """Pack per-anchor unsigned fields of the given widths MSB first, anchor after anchor."""
    columns = []
    for values, width in fields:
        shifts = np.arange(width - 1, -1, -1, dtype=np.uint32)
        columns.append(((values.astype(np.uint32)[:, None] >> shifts) & 1).astype(np.uint8))
    if not columns or sum(width for _, width in fields) == 0:
        return b""
    return np.packbits(np.concatenate(columns, axis=1), axis=None).tobytes()


def _unpack(buf: bytes, count: int, widths: list[int]) -> list[np.ndarray]:
    total = sum(widths)
    bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), count=count * total)
    bits = bits.reshape(count, total).astype(np.uint32)
    fields, start = [], 0
    for width in widths:
        weights = (np.uint32(1) << np.arange(width - 1, -1, -1, dtype=np.uint32))
        fields.append(bits[:, start: start + width] @ weights if width else
                      np.zeros(count, np.uint32))
        start += width
    return fields


def roots_length(count: int, depth: int) -> int:
    """Bytes of the level-1 structure section (spec 4.3)."""
    return (3 * depth * count + 7) // 8


def children_length(count: int) -> int:
    """Bytes of a level k > 1 structure section (spec 4.4)."""
    return ((PARENT_INDEX_BITS + OCTANT_BITS) * count + 7) // 8


def check_roots(coords: np.ndarray, depth: int) -> str | None:
    """What is wrong with level-1 coordinates in canonical order, or ``None`` (spec 4.3)."""
    if coords.shape[0] == 0:
        return "level 1 has no anchors"
    if coords.min() < 0 or coords.max() >= 1 << depth:
        bad = int(np.flatnonzero(((coords < 0) | (coords >= 1 << depth)).any(axis=1))[0])
        return (f"root {bad} has coordinates {coords[bad].tolist()} outside the grid "
                f"[0, {1 << depth}) of depth {depth}")
    codes = morton_codes(coords, depth)
    steps = np.diff(codes.astype(np.int64))
    if (steps == 0).any():
        bad = int(np.flatnonzero(steps == 0)[0]) + 1
        return f"duplicate root: anchors {bad - 1} and {bad} share voxel {coords[bad].tolist()}"
    if (steps < 0).any():
        bad = int(np.flatnonzero(steps < 0)[0]) + 1
        return f"roots out of canonical (Morton) order at anchor {bad}"
    return None


def check_children(parent_index: np.ndarray, octant: np.ndarray, num_parents: int) -> str | None:
    """What is wrong with a level k > 1 in canonical order, or ``None`` (spec 4.4)."""
    if parent_index.shape[0] == 0:
        return None
    if parent_index.min() < 0 or parent_index.max() >= num_parents:
        bad = int(np.flatnonzero((parent_index < 0) | (parent_index >= num_parents))[0])
        return (f"parent index out of range: anchor {bad} names parent {int(parent_index[bad])}, "
                f"the previous level has {num_parents} anchors")
    if octant.max() > 7:
        bad = int(np.flatnonzero(octant > 7)[0])
        return f"anchor {bad} has octant {int(octant[bad])} > 7"
    keys = parent_index.astype(np.int64) * 8 + octant
    steps = np.diff(keys)
    if (steps == 0).any():
        bad = int(np.flatnonzero(steps == 0)[0]) + 1
        return (f"duplicate child: anchors {bad - 1} and {bad} are both octant "
                f"{int(octant[bad])} of parent {int(parent_index[bad])}")
    if (steps < 0).any():
        bad = int(np.flatnonzero(steps < 0)[0]) + 1
        return f"anchors out of canonical (parent, octant) order at anchor {bad}"
    return None


def write_roots(coords: np.ndarray, depth: int) -> bytes:
    """Level-1 structure, fixed layout (spec 4.3): x, y, z of ``depth`` bits per anchor."""
    return _pack([(coords[:, axis], depth) for axis in range(3)])


def parse_roots(buf: bytes, count: int, depth: int, *, chunk: str = "LEVL 1") -> np.ndarray:
    """Inverse of :func:`write_roots`; checks length, order and uniqueness (spec 4.3).

    Returns ``[N, 3] int32`` coordinates. Raises :class:`FormatError` naming the problem.
    """
    if len(buf) != roots_length(count, depth):
        raise FormatError(f"structure section holds {len(buf)} bytes, {count} roots need "
                          f"{roots_length(count, depth)}", chunk=chunk, field="structure_length")
    coords = np.stack(_unpack(buf, count, [depth] * 3), axis=1).astype(np.int32)
    problem = check_roots(coords, depth)
    if problem:
        raise FormatError(problem, chunk=chunk, field="coords")
    return coords


def write_children(parent_index: np.ndarray, octant: np.ndarray) -> bytes:
    """Level k > 1 structure, fixed layout (spec 4.4): 20-bit parent index, 3-bit octant."""
    return _pack([(parent_index, PARENT_INDEX_BITS), (octant, OCTANT_BITS)])


def parse_children(buf: bytes, count: int, num_parents: int, *,
                   chunk: str) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`write_children`; checks range, order and uniqueness (spec 4.4).

    Returns ``(parent_index [N] int32, octant [N] uint8)``.
    """
    if len(buf) != children_length(count):
        raise FormatError(f"structure section holds {len(buf)} bytes, {count} anchors need "
                          f"{children_length(count)}", chunk=chunk, field="structure_length")
    parent_index, octant = _unpack(buf, count, [PARENT_INDEX_BITS, OCTANT_BITS])
    parent_index, octant = parent_index.astype(np.int32), octant.astype(np.uint8)
    problem = check_children(parent_index, octant, num_parents)
    if problem:
        field = "parent_index" if "parent" in problem.split(":")[0] else "octant"
        raise FormatError(problem, chunk=chunk, field=field)
    return parent_index, octant


def validate_model_structure(levels, base_depth: int) -> None:
    """Raise :class:`ModelError` saying exactly how ``levels`` break the strict octree."""
    for k, level in enumerate(levels, start=1):
        n = len(level)
        for name, array, shape in (("coords", level.coords, (n, 3)),
                                   ("parent_index", level.parent_index, (n,)),
                                   ("octant", level.octant, (n,))):
            if np.shape(array) != shape:
                raise ModelError(f"level {k}: {name} has shape {np.shape(array)}, expected {shape}")
        if k == 1:
            problem = check_roots(np.asarray(level.coords), base_depth)
        else:
            previous = levels[k - 2]
            if len(previous) > MAX_PARENTS:
                problem = (f"level {k - 1} has {len(previous)} anchors; a level with children "
                           f"holds at most 2**20 = {MAX_PARENTS}")
            else:
                problem = check_children(np.asarray(level.parent_index), np.asarray(level.octant),
                                         len(previous))
            if problem is None:
                expected = child_coords(previous.coords, level.parent_index, level.octant)
                if not np.array_equal(expected, level.coords):
                    bad = int(np.flatnonzero((expected != level.coords).any(axis=1))[0])
                    problem = (f"anchor {bad} has coords {level.coords[bad].tolist()} but its "
                               f"parent and octant give {expected[bad].tolist()}")
        if problem:
            raise ModelError(f"level {k}: {problem}")


def levels_from_coords(coords_by_level: list[np.ndarray], base_depth: int,
                       attributes_by_level: list[dict[str, np.ndarray]]) -> list[Level]:
    """Canonical :class:`~progs_codec.model.Level` list from unordered voxel coordinates.

    Args:
        coords_by_level: per level ``[N_k, 3]`` integer coordinates at depth
            ``base_depth + k - 1``, in any order.
        attributes_by_level: per level a dict with ``feature [N_k, F]``, ``scaling [N_k, S]``,
            ``offsets [N_k, K, 3]``, rows matching ``coords_by_level``.

    Returns the levels sorted into canonical order (spec 4.2) with parent indices and octants.
    Raises :class:`ModelError` when an anchor's parent is missing (the octree is not strict)
    or two anchors share a voxel.
    """
    levels: list[Level] = []
    previous_codes = None
    for k, (coords, attrs) in enumerate(zip(coords_by_level, attributes_by_level), start=1):
        coords = np.asarray(coords, dtype=np.int64)
        depth = base_depth + k - 1
        if coords.ndim != 2 or coords.shape[1] != 3:
            raise ModelError(f"level {k}: coords must be [N, 3], got shape {coords.shape}")
        if coords.size and (coords.min() < 0 or coords.max() >= 1 << depth):
            raise ModelError(f"level {k}: coordinates outside [0, {1 << depth}) of depth {depth}")
        codes = morton_codes(coords, depth)
        order = np.argsort(codes, kind="stable")
        codes, coords = codes[order], coords[order]
        if (np.diff(codes.astype(np.int64)) == 0).any():
            raise ModelError(f"level {k}: two anchors share a voxel")
        if k == 1:
            parent_index = np.full(len(coords), -1, np.int32)
            octant = np.zeros(len(coords), np.uint8)
        else:
            parent_codes = codes >> np.uint64(3)
            parent_index = np.searchsorted(previous_codes, parent_codes)
            found = parent_index < len(previous_codes)
            found[found] = previous_codes[parent_index[found]] == parent_codes[found]
            if not found.all():
                bad = int(np.flatnonzero(~found)[0])
                raise ModelError(f"level {k}: anchor at {coords[bad].tolist()} has no parent at "
                                 f"level {k - 1} (the octree must be strict)")
            parent_index = parent_index.astype(np.int32)
            octant = octants(coords)
        previous_codes = codes
        levels.append(Level(coords=coords.astype(np.int32), parent_index=parent_index,
                            octant=octant,
                            **{g: np.asarray(attrs[g], np.float32)[order]
                               for g in ("feature", "scaling", "offsets")}))
    return levels
