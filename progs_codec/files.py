"""Writing files atomically: a reader never sees a half-written stream, image or scene.

Writers check their destination with :func:`check_output_file` before the work that produces
the data, then write through :func:`atomic_path`: the data goes to a temporary file beside
the destination, renamed onto it at the end. An exception (``KeyboardInterrupt`` included,
and ``SIGTERM`` in ``progs-codec``) removes the temporary file; a process killed outright
(``SIGKILL``) may leave it behind, hidden (``.name.PID-XXXXXXXX.tmp.suffix``), but never a
partial file under the destination's name.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> write_atomic(folder / "a.bin", b"abc")
>>> (folder / "a.bin").read_bytes(), [p.name for p in folder.iterdir()]
(b'abc', ['a.bin'])
"""

from __future__ import annotations

import errno
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "write_atomic", "check_output_file"]


def check_output_file(path: str | os.PathLike) -> Path:
    """Checks that a file can be written at ``path``, before the work that produces it.

    Raises, naming ``path`` as given (not a temporary file):
        FileNotFoundError: its folder does not exist.
        NotADirectoryError: its folder is a file.
        IsADirectoryError: ``path`` is a folder.
        PermissionError: its folder is not writable.

    >>> check_output_file("/nonexistent/folder/x.ply")
    Traceback (most recent call last):
    ...
    FileNotFoundError: [Errno 2] folder /nonexistent/folder does not exist: '/nonexistent/folder/x.ply'
    """
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file name", str(path))
    if not folder.exists():
        raise FileNotFoundError(errno.ENOENT, f"folder {folder} does not exist", str(path))
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{folder} is not a folder", str(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"folder {folder} is not writable", str(path))
    return path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` (same folder and suffix), renamed onto ``path``
    when the block ends without an exception and removed otherwise.

    Use it for writers that want a file name (``np.savez``, ``Image.save``)::

        with atomic_path("views/0.png") as tmp:
            image.save(tmp)

    An :class:`OSError` about the temporary file is raised as one about ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        if error.filename is not None and Path(error.filename) == tmp:
            raise type(error)(error.errno, error.strerror, str(path)) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path` (the folder must exist)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
