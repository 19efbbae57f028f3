"""Plain 3D Gaussian Splatting scenes and their common file formats (informative, spec 9.5).

:class:`Splats` holds static Gaussians with *activated* values (linear scales, opacities in
``[0, 1]``) and spherical-harmonic colour coefficients. Formats, chosen by suffix:

- ``.ply``: the graphdeco-inria layout, ``x y z nx ny nz f_dc_0..2 f_rest_* opacity
  scale_0..2 rot_0..3`` with pre-activation values (logit opacity, log scale, wxyz quaternion);
  ``f_rest`` is channel-major (all red coefficients, then green, then blue).
- ``.splat``: antimatter15's 32 bytes per Gaussian, position f32x3, linear scale f32x3, RGBA
  u8x4, rotation u8x4 ``(q * 128 + 128)`` wxyz; SH degree 0 only (higher bands are dropped).
- ``.spz``: Niantic's compressed format, written and read through ``gsply``.

Writers write a temporary file in the destination folder and rename it, so a failed write
never leaves a half-written file behind.

Example:
    >>> s = Splats(np.zeros((1, 3)), np.full((1, 3), 0.1), np.array([[1.0, 0, 0, 0]]),
    ...            np.array([0.5]), np.zeros((1, 1, 3)))
    >>> s.sh_degree, len(s)
    (0, 1)
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ProgsError
from ..files import atomic_path, check_output_file

__all__ = ["Splats", "SplatsError", "SH_C0", "sh_basis", "read_splats", "write_splats",
           "read_ply", "write_ply", "read_splat", "write_splat", "read_spz", "write_spz",
           "check_splats_output", "check_ply_header", "check_spz_header"]

#: The degree-0 spherical-harmonic basis value, ``1 / (2 sqrt(pi))``.
SH_C0 = 0.28209479177387814

_REQUIRED_PLY = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                 "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
# Opacities are clipped this far from 0 and 1 before taking the logit, so it stays finite.
_OPACITY_EPS = 1e-6


class SplatsError(ProgsError, ValueError):
    """A 3DGS file or array set is malformed (missing property, bad shape, unknown suffix)."""


@dataclass(frozen=True, eq=False)
class Splats:
    """Static 3D Gaussians.

    Attributes:
        means: ``[N, 3] float32`` centres.
        scales: ``[N, 3] float32`` standard deviations along the local axes (linear, > 0).
        quats: ``[N, 4] float32`` rotations ``(w, x, y, z)``, not necessarily normalized.
        opacities: ``[N] float32`` in ``[0, 1]``.
        sh: ``[N, B, 3] float32`` SH coefficients, ``B = (degree + 1)**2``; ``sh[:, 0]`` is
            the DC term (graphdeco ``f_dc``), colour = ``sum_b basis_b(dir) sh_b + 0.5``.
    """

    means: np.ndarray
    scales: np.ndarray
    quats: np.ndarray
    opacities: np.ndarray
    sh: np.ndarray

    def __post_init__(self) -> None:
        n = np.shape(self.means)[0] if np.ndim(self.means) == 2 else -1
        shapes = {"means": (n, 3), "scales": (n, 3), "quats": (n, 4), "opacities": (n,)}
        for name, shape in shapes.items():
            value = np.ascontiguousarray(getattr(self, name), dtype=np.float32)
            if value.shape != shape:
                raise SplatsError(f"Splats.{name} must have shape {shape}, got {value.shape}")
            object.__setattr__(self, name, value)
        sh = np.ascontiguousarray(self.sh, dtype=np.float32)
        if sh.ndim != 3 or sh.shape[0] != n or sh.shape[2] != 3 or sh.shape[1] not in (1, 4, 9, 16):
            raise SplatsError(f"Splats.sh must have shape [{n}, (d+1)**2 for d <= 3, 3], "
                              f"got {sh.shape}")
        object.__setattr__(self, "sh", sh)

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        return int(round(np.sqrt(self.sh.shape[1]))) - 1

    def colors(self, camera_center: np.ndarray) -> np.ndarray:
        """RGB seen from ``camera_center`` as gsplat computes it, ``[N, 3] float32``.

        ``max(0, sum_b basis_b(dir) sh_b + 0.5)`` with ``dir`` the unit vector from the camera
        centre to the Gaussian (gsplat ``rasterization(..., sh_degree=d)``).
        """
        dirs = self.means - np.asarray(camera_center, dtype=np.float32)
        basis = sh_basis(self.sh_degree, dirs)
        return np.maximum(np.einsum("nb,nbc->nc", basis, self.sh) + 0.5, 0.0).astype(np.float32)


def sh_basis(degree: int, dirs: np.ndarray) -> np.ndarray:
    """Real SH basis of degree ``0..3`` at ``dirs`` (normalized here), ``[N, (d+1)**2] float32``.

    Same constants, signs and order as gsplat's ``_eval_sh_bases_fast`` (Sloan, JCGT 2013).
    """
    if not 0 <= degree <= 3:
        raise SplatsError(f"SH degree must be 0..3, got {degree}")
    dirs = np.asarray(dirs, dtype=np.float32)
    norm = np.linalg.norm(dirs, axis=-1, keepdims=True)
    x, y, z = np.moveaxis(dirs / np.where(norm > 0, norm, 1), -1, 0)
    out = np.empty(dirs.shape[:-1] + ((degree + 1) ** 2,), dtype=np.float32)
    out[..., 0] = SH_C0
    if degree >= 1:
        a = -0.48860251190292
        out[..., 1], out[..., 2], out[..., 3] = a * y, -a * z, a * x
    if degree >= 2:
        z2 = z * z
        b = -1.092548430592079 * z
        c1, s1 = x * x - y * y, 2 * x * y
        out[..., 4] = 0.5462742152960395 * s1
        out[..., 5] = b * y
        out[..., 6] = 0.9461746957575601 * z2 - 0.3153915652525201
        out[..., 7] = b * x
        out[..., 8] = 0.5462742152960395 * c1
    if degree >= 3:
        tc = -2.285228997322329 * z2 + 0.4570457994644658
        tb = 1.445305721320277 * z
        c2, s2 = x * c1 - y * s1, x * s1 + y * c1
        out[..., 9] = -0.5900435899266435 * s2
        out[..., 10] = tb * s1
        out[..., 11] = tc * y
        out[..., 12] = z * (1.865881662950577 * z2 - 1.119528997770346)
        out[..., 13] = tc * x
        out[..., 14] = tb * c1
        out[..., 15] = -0.5900435899266435 * c2
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: cannot overflow for very negative logits.
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float32)))).astype(np.float32)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), _OPACITY_EPS, 1.0 - _OPACITY_EPS)
    return np.log(p / (1.0 - p)).astype(np.float32)


# -- graphdeco PLY -------------------------------------------------------------------------


#: Bytes per value of each PLY scalar type.
_PLY_SIZES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2,
              "int16": 2, "uint16": 2, "int": 4, "uint": 4, "int32": 4, "uint32": 4,
              "float": 4, "float32": 4, "double": 8, "float64": 8}
_PLY_FORMATS = ("ascii", "binary_little_endian", "binary_big_endian")


def check_ply_header(raw: bytes, path: str | Path = "<bytes>", *,
                     file_size: int | None = None) -> int:
    r"""Checks a PLY header against the bytes that follow it; returns the vertex count.

    The declared element counts are not trusted: each element needs at least its records'
    bytes (binary: the scalar sizes, a list's count field; ASCII: a digit and a separator
    per value), and the file must hold them all, before any reader allocates for them.
    ``raw`` is the file, or its first bytes (the header) with ``file_size`` the whole size.

    Raises:
        SplatsError: no ``ply`` magic, an unknown format or type, no ``vertex`` element, or
            counts the file cannot hold.

    >>> check_ply_header(b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n"
    ...                  b"end_header\n1\n2\n")
    2
    """
    def fail(message: str):
        return SplatsError(f"{path}: {message}")

    end = raw.find(b"end_header", 0, 1 << 20)
    newline = raw.find(b"\n", end) if end >= 0 else -1
    if not raw.startswith(b"ply") or newline < 0:
        raise fail("not a PLY file (no 'ply' magic or no 'end_header' line)")
    try:
        lines = raw[:end].decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise fail("the PLY header is not ASCII") from None
    fmt, elements = None, []    # [name, count, least bytes of a binary record, values]
    for line in lines[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) == 3 and words[1] in _PLY_FORMATS:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append([words[1], int(words[2]), 0, 0])
        elif words[0] == "property" and elements and len(words) == 3 \
                and words[1] in _PLY_SIZES:
            elements[-1][2] += _PLY_SIZES[words[1]]
            elements[-1][3] += 1
        elif words[0] == "property" and elements and len(words) == 5 and words[1] == "list" \
                and words[2] in _PLY_SIZES and words[3] in _PLY_SIZES:
            elements[-1][2] += _PLY_SIZES[words[2]]      # the count field, at least
            elements[-1][3] += 1
        else:
            raise fail(f"unreadable PLY header line {line.strip()[:60]!r}")
    if fmt is None:
        raise fail("the PLY header names no known format")
    counts = {element[0]: element[1] for element in elements}
    if "vertex" not in counts:
        raise fail("no 'vertex' element")
    body = (len(raw) if file_size is None else file_size) - newline - 1
    needed = sum(count * (2 * values if fmt == "ascii" else record)
                 for _, count, record, values in elements)
    if needed > body:
        raise fail(f"the header declares {counts['vertex']:,} vertices (and other elements) "
                   f"needing at least {needed:,} bytes, the file holds {body:,} after it")
    return counts["vertex"]


def read_ply(path: str | Path) -> Splats:
    """Reads a graphdeco-inria 3DGS ``.ply`` (binary or ASCII) into activated :class:`Splats`.

    Raises:
        SplatsError: a header whose counts the file cannot hold (:func:`check_ply_header`),
            no ``vertex`` element, a missing property (named), an ``f_rest`` count that is
            not ``3 * ((d+1)**2 - 1)`` for ``d <= 3``, or anything plyfile cannot parse.
    """
    with open(path, "rb") as f:
        check_ply_header(f.read(1 << 20), path, file_size=os.fstat(f.fileno()).st_size)
    from plyfile import PlyData, PlyParseError

    try:
        ply = PlyData.read(str(path))
    except (PlyParseError, ValueError, TypeError, IndexError, KeyError, EOFError) as exc:
        raise SplatsError(f"{path}: unreadable PLY: {exc}") from exc
    if "vertex" not in ply:
        raise SplatsError(f"{path}: no 'vertex' element")
    v = ply["vertex"].data
    names = set(v.dtype.names or ())
    for prop in _REQUIRED_PLY:
        if prop not in names:
            raise SplatsError(f"{path}: missing required PLY property {prop!r}")
    rest = sorted((n for n in names if n.startswith("f_rest_") and n[7:].isdigit()),
                  key=lambda n: int(n[7:]))
    if len(rest) % 3 or len(rest) // 3 + 1 not in (1, 4, 9, 16) \
            or rest != [f"f_rest_{i}" for i in range(len(rest))]:
        raise SplatsError(f"{path}: {len(rest)} f_rest properties do not form SH degree 1..3")
    if any(v.dtype[p].shape or v.dtype[p].kind == "O" for p in _REQUIRED_PLY + tuple(rest)):
        raise SplatsError(f"{path}: the 3DGS properties must be scalars, not lists")

    def cols(*props: str) -> np.ndarray:
        return np.stack([np.asarray(v[p], dtype=np.float32) for p in props], axis=-1)

    n = len(v)
    dc = cols("f_dc_0", "f_dc_1", "f_dc_2")[:, None, :]
    # f_rest is channel-major: [3, B-1] per Gaussian.
    higher = cols(*rest).reshape(n, 3, -1).transpose(0, 2, 1) if rest else np.zeros((n, 0, 3))
    with np.errstate(over="ignore", invalid="ignore"):  # a file's inf and nan stay as they are
        return Splats(
            means=cols("x", "y", "z"),
            scales=np.exp(cols("scale_0", "scale_1", "scale_2")),
            quats=cols("rot_0", "rot_1", "rot_2", "rot_3"),
            opacities=_sigmoid(np.asarray(v["opacity"], dtype=np.float32)),
            sh=np.concatenate([dc, higher.astype(np.float32)], axis=1),
        )


def write_ply(path: str | Path, splats: Splats) -> None:
    """Writes ``splats`` as a binary little-endian graphdeco-inria ``.ply``."""
    from plyfile import PlyData, PlyElement

    path = Path(path)
    n, b = len(splats), splats.sh.shape[1]
    props = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
             + [f"f_rest_{i}" for i in range(3 * (b - 1))]
             + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    values = np.concatenate([
        splats.means, np.zeros((n, 3), np.float32), splats.sh[:, 0],
        splats.sh[:, 1:].transpose(0, 2, 1).reshape(n, -1),
        _logit(splats.opacities)[:, None],
        np.log(np.maximum(splats.scales, np.finfo(np.float32).tiny)), splats.quats,
    ], axis=1).astype(np.float32)
    record = np.empty(n, dtype=[(p, "<f4") for p in props])
    for i, p in enumerate(props):
        record[p] = values[:, i]
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(record, "vertex")]).write(str(tmp))


# -- antimatter15 .splat -------------------------------------------------------------------

_SPLAT_DTYPE = np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4),
                         ("rot", "u1", 4)])


def read_splat(path: str | Path) -> Splats:
    """Reads an antimatter15 ``.splat`` file (SH degree 0)."""
    raw = Path(path).read_bytes()
    if len(raw) % _SPLAT_DTYPE.itemsize:
        raise SplatsError(f"{path}: size {len(raw)} is not a multiple of 32 bytes")
    rec = np.frombuffer(raw, dtype=_SPLAT_DTYPE)
    rgba = rec["rgba"].astype(np.float32) / 255.0
    return Splats(
        means=rec["pos"], scales=rec["scale"],
        quats=(rec["rot"].astype(np.float32) - 128.0) / 128.0,
        opacities=rgba[:, 3],
        sh=((rgba[:, :3] - 0.5) / SH_C0)[:, None, :],
    )


def write_splat(path: str | Path, splats: Splats) -> None:
    """Writes an antimatter15 ``.splat`` file; SH bands above degree 0 are dropped."""
    path = Path(path)
    rec = np.empty(len(splats), dtype=_SPLAT_DTYPE)
    rec["pos"] = splats.means
    rec["scale"] = splats.scales
    rgb = splats.sh[:, 0] * SH_C0 + 0.5
    rec["rgba"] = np.clip(np.rint(np.concatenate([rgb, splats.opacities[:, None]], 1) * 255),
                          0, 255)
    norm = np.linalg.norm(splats.quats, axis=1, keepdims=True)
    q = splats.quats / np.where(norm > 0, norm, 1)
    rec["rot"] = np.clip(np.rint(q * 128 + 128), 0, 255)
    with atomic_path(path) as tmp:
        tmp.write_bytes(rec.tobytes())


# -- Niantic SPZ (through gsply) ------------------------------------------------------------


_SPZ_MAGIC = 0x5053474E          # "NGSP"
_SPZ_HEADER = struct.Struct("<IIIBBBB")
#: Bytes an SPZ may decompress to beyond its Gaussians' sections (extensions, flag 0x2).
_SPZ_EXTENSION_BYTES = 1 << 20
#: Most bytes of Gaussians an SPZ may declare per byte of file (deflate reaches ~1032:1).
_SPZ_MAX_RATIO = 1 << 15


def check_spz_header(raw: bytes, path: str | Path = "<bytes>") -> int:
    """Checks an SPZ file's declared Gaussian count against its data; returns the count.

    For the gzip container (versions 1-3) the header is read from the first decompressed
    bytes, and the whole stream is inflated in bounded pieces, without keeping it: it must
    hold the declared Gaussians' sections and at most 1 MiB more (a gzip bomb is refused
    before it is inflated in memory). A file may declare at most 32,768 bytes of sections
    per byte of file.

    Raises:
        SplatsError: not an SPZ file, an unknown version or SH degree, a corrupt gzip
            stream, or a count the data cannot hold.
    """
    def fail(message: str):
        return SplatsError(f"{path}: {message}")

    if raw[:2] != b"\x1f\x8b":
        if len(raw) >= 4 and int.from_bytes(raw[:4], "little") == _SPZ_MAGIC:
            return -1  # the NGSP v4 container: gsply checks its stream sizes
        raise fail("not an SPZ file (no gzip or NGSP magic)")
    inflate = zlib.decompressobj(wbits=31)
    try:
        head = inflate.decompress(raw, _SPZ_HEADER.size)
        if len(head) < _SPZ_HEADER.size:
            raise fail("the SPZ stream ends inside its header")
        magic, version, n, degree, fractional_bits, _, _ = _SPZ_HEADER.unpack(head)
        if magic != _SPZ_MAGIC or version not in (1, 2, 3) or degree > 3:
            raise fail(f"not an SPZ 1-3 header (magic {magic:#x}, version {version}, "
                       f"SH degree {degree})")
        per_gaussian = 9 + 1 + 3 + 3 + (4 if version >= 3 else 3) + 3 * ((degree + 1) ** 2 - 1)
        expected = n * per_gaussian
        if expected > _SPZ_MAX_RATIO * len(raw):
            raise fail(f"{n:,} Gaussians declared in a file of {len(raw):,} bytes")
        inflated, bound = len(head), _SPZ_HEADER.size + expected + _SPZ_EXTENSION_BYTES
        data = inflate.unconsumed_tail
        while inflated <= bound:                 # gzip members one after another, as gsply
            if inflate.eof:                      # reads them; trailing zeros are padding
                data = inflate.unused_data
                if not data.strip(b"\0"):
                    break
                inflate = zlib.decompressobj(wbits=31)
            elif not data:
                break
            inflated += len(inflate.decompress(data, 1 << 20))
            data = inflate.unconsumed_tail
    except zlib.error as exc:
        raise fail(f"corrupt gzip stream: {exc}") from None
    if inflated > bound:
        raise fail(f"inflates to more than the {n:,} Gaussians it declares need "
                   f"({expected:,} bytes and 1 MiB of extensions)")
    if inflated < _SPZ_HEADER.size + expected:
        raise fail(f"declares {n:,} Gaussians ({expected:,} bytes), holds "
                   f"{inflated - _SPZ_HEADER.size:,}")
    return n


def read_spz(path: str | Path) -> Splats:
    """Reads a Niantic ``.spz`` file (via ``gsply``), after :func:`check_spz_header`.

    Raises:
        SplatsError: the file is not a readable SPZ (any error of ``gsply`` included).
    """
    check_spz_header(Path(path).read_bytes(), path)
    import gsply

    try:
        data = gsply.read_spz(str(path))
    except (ValueError, EOFError, zlib.error, struct.error, IndexError) as exc:
        raise SplatsError(f"{path}: {exc}") from exc
    n = len(data.means)
    higher = (np.zeros((n, 0, 3), np.float32) if data.shN is None
              else np.asarray(data.shN, np.float32).reshape(n, -1, 3))
    with np.errstate(over="ignore", invalid="ignore"):  # a file's inf and nan stay as they are
        return Splats(means=data.means, scales=np.exp(data.scales), quats=data.quats,
                      opacities=_sigmoid(np.asarray(data.opacities, np.float32)),
                      sh=np.concatenate([np.asarray(data.sh0, np.float32)[:, None], higher], 1))


def write_spz(path: str | Path, splats: Splats) -> None:
    """Writes a Niantic ``.spz`` file (version 3, via ``gsply``)."""
    import gsply

    path = Path(path)
    norm = np.linalg.norm(splats.quats, axis=1, keepdims=True)
    data = gsply.GSData(
        means=splats.means, scales=np.log(np.maximum(splats.scales, np.finfo(np.float32).tiny)),
        quats=(splats.quats / np.where(norm > 0, norm, 1)).astype(np.float32),
        opacities=_logit(splats.opacities), sh0=np.ascontiguousarray(splats.sh[:, 0]),
        shN=np.ascontiguousarray(splats.sh[:, 1:]))
    with atomic_path(path) as tmp:
        gsply.write_spz(tmp, data)


# -- by suffix -------------------------------------------------------------------------------

_READERS = {".ply": read_ply, ".splat": read_splat, ".spz": read_spz}
_WRITERS = {".ply": write_ply, ".splat": write_splat, ".spz": write_spz}


def _by_suffix(table: dict, path: str | Path):
    suffix = Path(path).suffix.lower()
    if suffix not in table:
        raise SplatsError(f"{path}: unknown 3DGS format {suffix!r}; expected one of "
                          f"{', '.join(sorted(table))}")
    return table[suffix]


def read_splats(path: str | Path) -> Splats:
    """Reads ``.ply``, ``.splat`` or ``.spz``, chosen by suffix."""
    return _by_suffix(_READERS, path)(path)


def write_splats(path: str | Path, splats: Splats) -> None:
    """Writes ``.ply``, ``.splat`` or ``.spz``, chosen by suffix."""
    _by_suffix(_WRITERS, path)(path, splats)


def check_splats_output(path: str | Path, sh_degree: int | None = None) -> int:
    """Checks a 3DGS destination before the work that fills it; returns the SH degree to use.

    ``sh_degree=None`` picks 3 for ``.ply``/``.spz`` and 0 for ``.splat`` (which holds no SH
    bands above 0).

    Raises:
        SplatsError: unknown suffix; a degree outside 0..3, or above 0 for ``.splat``.
        OSError: the file cannot be written there (:func:`~progs_codec.files.check_output_file`).

    >>> check_splats_output("scene.splat"), check_splats_output("scene.ply")
    (0, 3)
    >>> check_splats_output("scene.obj")
    Traceback (most recent call last):
    ...
    progs_codec.render.splats.SplatsError: scene.obj: unknown 3DGS format '.obj'; expected one of .ply, .splat, .spz
    """
    if Path(path).is_dir():
        check_output_file(path)  # raises IsADirectoryError, naming it
    _by_suffix(_WRITERS, path)
    suffix = Path(path).suffix.lower()
    if sh_degree is None:
        sh_degree = 0 if suffix == ".splat" else 3
    elif isinstance(sh_degree, bool) or not 0 <= sh_degree <= 3:
        raise SplatsError(f"SH degree must be 0..3, got {sh_degree!r}")
    elif suffix == ".splat" and sh_degree > 0:
        raise SplatsError(f"{path}: .splat files hold no SH bands above degree 0, "
                          f"SH degree {sh_degree} was asked for")
    check_output_file(path)
    return sh_degree
