"""Writing files atomically: a reader never sees a half-written stream, image or scene.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> write_atomic(folder / "a.bin", b"abc")
>>> (folder / "a.bin").read_bytes(), [p.name for p in folder.iterdir()]
(b'abc', ['a.bin'])
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "write_atomic"]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` (same folder and suffix), renamed onto ``path``
    when the block ends without an exception and removed otherwise.

    Use it for writers that want a file name (``np.savez``, ``Image.save``)::

        with atomic_path("views/0.png") as tmp:
            image.save(tmp)
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path` (the folder must exist)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
