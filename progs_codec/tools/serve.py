"""Serving ``.progs`` files over HTTP with byte ranges, and fetching them at a chosen rate.

Progressive streams are made for this: a client reads the header, finds each level's bytes in
the table of contents (spec 3.3) and asks for them with a ``Range`` request, or reads one
plain ``GET`` into :class:`progs_codec.Decoder` as it arrives. Only the standard library:

- :func:`serve_directory`: a threaded HTTP/1.1 server (keep-alive) for one folder (and, with
  ``files``, single files mapped to URL paths: the viewer's page beside a stream kept
  elsewhere), on the loopback address by default, answering ``GET`` and ``HEAD`` with single byte ranges
  (RFC 9110: ``bytes=a-b``, ``a-`` and ``-n``; ``206`` with ``Content-Range``, ``416`` for a
  range past the end; a multi-range request gets the whole file, which RFC 9110 allows).
  CORS headers let a browser viewer on another port read the ranges.
- :class:`Throttle` and :class:`RangeClient`: a client that holds one connection and never
  receives faster than a chosen rate (plus a simulated round trip per request), so a
  loopback run shows what a real link would.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "a.progs").write_bytes(bytes(range(100)))
>>> with serve_directory(folder) as base_url:
...     with RangeClient(base_url) as client:
...         client.fetch("a.progs", 10, 13), client.size("a.progs")
(b'\\n\\x0b\\x0c', 100)
"""

from __future__ import annotations

import http.client
import os
import re
import threading
import time
import urllib.parse
from contextlib import contextmanager
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["RangeRequestHandler", "serve_directory", "parse_range", "Throttle", "RangeClient",
           "HTTPError", "find_viewer", "ViewerNotBuilt"]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range ``(start, stop)`` a ``Range`` header asks of a ``size``-byte file.

    ``None`` means the whole file (no header, a malformed or multi-range one: RFC 9110 lets a
    server ignore those). Raises :class:`ValueError` for a range that starts past the end
    (status 416).

    >>> parse_range("bytes=0-9", 100), parse_range("bytes=90-", 100), parse_range("bytes=-5", 100)
    ((0, 10), (90, 100), (95, 100))
    >>> parse_range("bytes=95-200", 100), parse_range("bytes=0-1,5-6", 100)
    ((95, 100), None)
    """
    m = _RANGE.match(header.strip()) if header else None
    if m is None or m.group(1) == m.group(2) == "":
        return None
    first, last = m.group(1), m.group(2)
    if first == "":                                   # the last n bytes
        n = int(last)
        if n == 0:
            raise ValueError("an empty suffix range")
        return max(size - n, 0), size
    start = int(first)
    stop = size if last == "" else min(int(last) + 1, size)
    if last != "" and int(last) < start:
        return None                                   # invalid: ignored, as RFC 9110 says
    if start >= size:
        raise ValueError(f"range starts at {start}, the file has {size} bytes")
    return start, stop


class RangeRequestHandler(SimpleHTTPRequestHandler):
    """:class:`~http.server.SimpleHTTPRequestHandler` with single byte ranges and keep-alive.

    Serves the files of ``directory`` (no listings: a folder's ``index.html`` or 404; no paths
    outside it) and those of
    ``files``, a mapping from URL paths (``/scene.progs``) to file paths; ``rate``, in bytes
    per second, throttles what each response sends (``None``: as fast as the socket goes).
    """

    protocol_version = "HTTP/1.1"
    rate: float | None = None
    files: dict[str, str] = {}
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map,
                      ".progs": "application/octet-stream", ".spz": "application/octet-stream",
                      ".splat": "application/octet-stream", ".ply": "application/octet-stream"}

    def log_message(self, format: str, *args) -> None:  # quiet; the client reports
        pass

    def list_directory(self, path):
        self.send_error(HTTPStatus.NOT_FOUND, "no listings")
        return None

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Expose-Headers",
                         "Content-Range, Content-Length, Accept-Ranges")
        super().end_headers()

    def translate_path(self, path: str) -> str:
        route = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        if route in self.files:
            return self.files[route]
        return super().translate_path(path)

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            index = os.path.join(path, "index.html")
            if not (urllib.parse.urlsplit(self.path).path.endswith("/") and os.path.isfile(index)):
                self.send_error(HTTPStatus.NOT_FOUND, "no listings")
                return None
            path = index                              # a folder's page, never a listing
        try:
            f = open(path, "rb")
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "file not found")
            return None
        try:
            size = os.fstat(f.fileno()).st_size
            try:
                span = parse_range(self.headers.get("Range"), size)
            except ValueError:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                f.close()
                return None
            start, stop = span if span is not None else (0, size)
            if span is None:
                self.send_response(HTTPStatus.OK)
            else:
                self.send_response(HTTPStatus.PARTIAL_CONTENT)
                self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
            self.send_header("Content-Type", self.guess_type(path))
            self.send_header("Content-Length", str(stop - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            f.seek(start)
            self._span = stop - start
            return f
        except BaseException:
            f.close()
            raise

    def copyfile(self, source, outputfile) -> None:
        remaining, start = self._span, time.monotonic()
        sent = 0
        while remaining > 0:
            block = source.read(min(remaining, 16384))
            if not block:
                break
            outputfile.write(block)
            remaining -= len(block)
            sent += len(block)
            if self.rate:
                delay = start + sent / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)


@contextmanager
def serve_directory(directory: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 0,
                    rate: float | None = None,
                    files: dict[str, str | os.PathLike] | None = None) -> Iterator[str]:
    """Serves ``directory`` in a background thread; yields its base URL (``http://host:port/``).

    ``port=0`` picks a free port. ``rate`` throttles each response (bytes per second).
    ``files`` maps URL paths (``"/scene.progs"``) to files served under them, wherever they
    are. The server stops when the block ends.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    routes = {("/" + name.lstrip("/")): str(Path(path)) for name, path in (files or {}).items()}
    handler = partial(type("Handler", (RangeRequestHandler,), {"rate": rate, "files": routes}),
                      directory=str(folder))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="progs-serve", daemon=True)
    thread.start()
    try:
        bound_host, bound_port = server.server_address[:2]
        yield f"http://{bound_host}:{bound_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class Throttle:
    """Holds a receiver to ``rate`` bytes per second, counted from its creation.

    ``wait(n)`` is called after receiving ``n`` bytes and sleeps until the link would have
    delivered them; ``pause(seconds)`` adds idle time (a round trip). ``rate=None``: no limit.
    """

    def __init__(self, rate: float | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be > 0 bytes per second or None, got {rate!r}")
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self.start = clock()
        self._due = self.start        # when the link is free again

    def pause(self, seconds: float) -> None:
        self._due = max(self._due, self.clock()) + seconds
        self._sleep_until(self._due)

    def wait(self, n: int) -> None:
        if self.rate is None:
            return
        self._due = max(self._due, self.clock()) + n / self.rate
        self._sleep_until(self._due)

    def _sleep_until(self, due: float) -> None:
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)

    def elapsed(self) -> float:
        return self.clock() - self.start


class HTTPError(OSError):
    """The server answered a request with an unexpected status."""


class RangeClient:
    """One keep-alive HTTP connection that fetches byte ranges, throttled.

    Args:
        base_url: ``http://host:port/``.
        rate: bytes per second (``None``: unthrottled).
        rtt: seconds of simulated round trip before each response's first byte.
        piece: bytes read from the socket at a time.
        timeout: socket timeout in seconds.

    ``requests`` counts the requests made; ``received`` the body bytes.
    """

    def __init__(self, base_url: str, *, rate: float | None = None, rtt: float = 0.0,
                 piece: int = 4096, timeout: float = 30.0):
        url = urllib.parse.urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"expected an http://host:port/ URL, got {base_url!r}")
        self.path = url.path if url.path.endswith("/") else url.path + "/"
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
        self.throttle = Throttle(rate)
        self.rtt, self.piece = rtt, piece
        self.requests = 0
        self.received = 0

    def __enter__(self) -> RangeClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    def _request(self, method: str, name: str, headers: dict) -> http.client.HTTPResponse:
        self.requests += 1
        self.connection.request(method, self.path + urllib.parse.quote(name), headers=headers)
        self.throttle.pause(self.rtt)
        return self.connection.getresponse()

    def size(self, name: str) -> int:
        """The file's size, from a ``HEAD`` request."""
        response = self._request("HEAD", name, {})
        response.read()
        if response.status != 200:
            raise HTTPError(f"HEAD {name}: status {response.status}")
        return int(response.headers["Content-Length"])

    def stream(self, name: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """The bytes ``start..stop`` of ``name`` (``stop=None``: to the end) in pieces, as the
        throttled link delivers them; one request (a plain ``GET`` for the whole file)."""
        headers = {}
        if start or stop is not None:
            headers["Range"] = f"bytes={start}-" + ("" if stop is None else str(stop - 1))
        response = self._request("GET", name, headers)
        if response.status not in ((206,) if headers else (200,)):
            response.read()
            raise HTTPError(f"GET {name} {headers.get('Range', '')}: status {response.status}")
        while True:
            piece = response.read(self.piece)
            if not piece:
                break
            self.received += len(piece)
            self.throttle.wait(len(piece))
            yield piece

    def fetch(self, name: str, start: int = 0, stop: int | None = None) -> bytes:
        """The bytes ``start..stop`` of ``name`` in one throttled request."""
        return b"".join(self.stream(name, start, stop))


class ViewerNotBuilt(FileNotFoundError):
    """The streaming viewer's page (``web/dist``) has not been built."""


#: What builds the page, for the messages.
VIEWER_BUILD = "cd web && npm ci && npm run build"


def find_viewer(page: str | os.PathLike | None = None) -> Path:
    """The folder of the built streaming viewer (``index.html``, ``viewer.js``,
    ``viewer-worker.js``): ``page`` when given, else ``web/dist`` of this checkout.

    Raises:
        ViewerNotBuilt: the folder lacks the page (it is built with ``npm run build`` in
            ``web/``, which needs node).
    """
    folder = Path(page) if page is not None else Path(__file__).resolve().parents[2] / "web" / "dist"
    missing = [name for name in ("index.html", "viewer.js", "viewer-worker.js")
               if not (folder / name).is_file()]
    if missing:
        raise ViewerNotBuilt(f"the viewer page is not built in {folder} (no {', '.join(missing)}): "
                             f"run `{VIEWER_BUILD}` (needs node 18+)")
    return folder
