"""The teacher: an existing 3DGS scene read and checked before any work is done.

A teacher is a trained 3DGS file (graphdeco-inria ``.ply`` with SH degree 0-3, antimatter15
``.splat`` or Niantic ``.spz``). Its Gaussians are the targets of the distillation; every way
a file can be unusable gets a :class:`TeacherError` naming the file and what is wrong, before
anything large is allocated.

Quaternions are normalized, as every 3DGS renderer does (the graphdeco PLY stores them
unnormalized); a zero or non-finite quaternion is an error.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from progs_codec.render import SplatsError, read_splats

from ..errors import DataError

__all__ = ["Teacher", "TeacherError", "read_teacher", "check_teacher", "count_gaussians", "MAX_GAUSSIANS"]

#: Largest teacher the distillation takes (about 1.5 GB of targets and workspace at 10M).
MAX_GAUSSIANS = 10_000_000
_SUFFIXES = (".ply", ".splat", ".spz")


class TeacherError(DataError):
    """A teacher file cannot be distilled: the message names the file and the problem."""


@dataclass(frozen=True, eq=False)
class Teacher:
    """Activated teacher Gaussians, float64.

    Attributes:
        means: ``[N, 3]`` centres.
        scales: ``[N, 3]`` standard deviations (> 0).
        quats: ``[N, 4]`` unit rotations ``(w, x, y, z)``.
        opacities: ``[N]`` in ``(0, 1]``.
        sh: ``[N, B, 3]`` SH coefficients, ``B = (sh_degree + 1)**2``; colour
            ``= sum_b Y_b(dir) sh_b + 0.5`` (spec 9.5).
        path: where it was read from.
    """

    means: np.ndarray
    scales: np.ndarray
    quats: np.ndarray
    opacities: np.ndarray
    sh: np.ndarray
    path: str = ""

    def __len__(self) -> int:
        return len(self.means)

    @property
    def sh_degree(self) -> int:
        return int(round(np.sqrt(self.sh.shape[1]))) - 1


def count_gaussians(path: str | Path) -> int:
    """The Gaussian count a file declares, read from its header only.

    Raises:
        TeacherError: unknown suffix, unreadable header.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".splat":
            size = path.stat().st_size
            if size % 32:
                raise TeacherError(f"{path}: {size} bytes is not a whole number of 32-byte "
                                   f".splat records")
            return size // 32
        if suffix == ".ply":
            return _ply_vertex_count(path)
        if suffix == ".spz":
            with gzip.open(path, "rb") as f:
                head = f.read(16)
            if len(head) < 16 or head[:4] != b"NGSP":
                raise TeacherError(f"{path}: not an SPZ file (no NGSP header)")
            return struct.unpack_from("<I", head, 8)[0]
    except OSError as exc:
        raise TeacherError(f"{path}: cannot read: {exc}") from None
    raise TeacherError(f"{path}: unknown 3DGS format {path.suffix!r}; expected one of "
                       f"{', '.join(_SUFFIXES)}")


def _ply_vertex_count(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(65536)
    if not head.startswith(b"ply"):
        raise TeacherError(f"{path}: not a PLY file")
    end = head.find(b"end_header")
    if end < 0:
        raise TeacherError(f"{path}: PLY header has no end_header in its first 64 kB")
    for line in head[:end].split(b"\n"):
        words = line.split()
        if len(words) == 3 and words[0] == b"element" and words[1] == b"vertex":
            try:
                return int(words[2])
            except ValueError:
                raise TeacherError(f"{path}: bad vertex count {words[2]!r}") from None
    raise TeacherError(f"{path}: PLY has no 'vertex' element: not a 3DGS scene")


def read_teacher(path: str | Path, *, max_gaussians: int = MAX_GAUSSIANS) -> Teacher:
    """Reads and checks a teacher file.

    Raises:
        TeacherError: missing file, unknown format, not a 3DGS file, empty, more than
            ``max_gaussians``, non-finite values, scales <= 0, zero quaternions, opacities
            outside ``[0, 1]``, SH degree above 3.
    """
    path = Path(path)
    if not path.is_file():
        raise TeacherError(f"{path}: no such file")
    declared = count_gaussians(path)
    if declared == 0:
        raise TeacherError(f"{path}: the scene holds no Gaussians")
    if declared > max_gaussians:
        raise TeacherError(f"{path}: {declared:,} Gaussians, more than the limit of "
                           f"{max_gaussians:,} (max_gaussians)")
    try:
        splats = read_splats(path)
    except SplatsError as exc:
        raise TeacherError(str(exc)) from None
    if splats.sh.shape[1] > 16:
        raise TeacherError(f"{path}: SH degree above 3 is not supported")
    return check_teacher(splats.means, splats.scales, splats.quats, splats.opacities,
                         splats.sh, path=str(path))


def check_teacher(means, scales, quats, opacities, sh, *, path: str = "<arrays>") -> Teacher:
    """Validates activated arrays and returns a float64 :class:`Teacher` (unit quaternions).

    Raises:
        TeacherError: as :func:`read_teacher`, naming the first offending Gaussian.
    """
    arrays = {"means": np.asarray(means, np.float64), "scales": np.asarray(scales, np.float64),
              "quats": np.asarray(quats, np.float64),
              "opacities": np.asarray(opacities, np.float64), "sh": np.asarray(sh, np.float64)}
    n = len(arrays["means"])
    if n == 0:
        raise TeacherError(f"{path}: the scene holds no Gaussians")
    for name, value in arrays.items():
        bad = ~np.isfinite(value.reshape(n, -1)).all(axis=1)
        if bad.any():
            raise TeacherError(f"{path}: {int(bad.sum())} Gaussians have non-finite {name} "
                               f"(first: #{int(np.argmax(bad))})")
    bad = (arrays["scales"] <= 0).any(axis=1)
    if bad.any():
        raise TeacherError(f"{path}: {int(bad.sum())} Gaussians have a scale <= 0 "
                           f"(first: #{int(np.argmax(bad))})")
    norm = np.linalg.norm(arrays["quats"], axis=1)
    bad = norm < 1e-8
    if bad.any():
        raise TeacherError(f"{path}: {int(bad.sum())} Gaussians have a zero quaternion "
                           f"(first: #{int(np.argmax(bad))})")
    o = arrays["opacities"]
    bad = (o < 0) | (o > 1)
    if bad.any():
        raise TeacherError(f"{path}: {int(bad.sum())} opacities outside [0, 1] "
                           f"(first: #{int(np.argmax(bad))})")
    if arrays["sh"].ndim != 3 or arrays["sh"].shape[1] not in (1, 4, 9, 16):
        raise TeacherError(f"{path}: SH coefficients of shape {arrays['sh'].shape[1:]} "
                           f"do not form degree 0..3")
    return Teacher(means=arrays["means"], scales=arrays["scales"],
                   quats=arrays["quats"] / norm[:, None], opacities=o, sh=arrays["sh"],
                   path=path)
