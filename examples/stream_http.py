"""Progressive delivery over HTTP: each LoD on screen as soon as its bytes arrive.

Serves a ``.progs`` stream from the loopback address with HTTP range support
(:mod:`progs_codec.tools.serve`) and fetches it at a chosen bandwidth, twice:

- **range requests**: the file header and ``HEAD`` first, then, from its table of contents,
  one ``Range`` request per level;
- **one streaming GET** fed into :class:`progs_codec.Decoder` piece by piece as it arrives;

and renders each LoD to a PNG the moment it is decoded. Beside them it fetches the same scene
as one SPZ file (the full LoD baked to static 3DGS, and the source capture when it is at hand)
at the same bandwidth: an SPZ shows nothing until its last byte is in.

    python examples/stream_http.py [STREAM] [--mbit 2] [--rtt-ms 0] [--size 128] [--out out/stream]

Downloads run in a thread, as a viewer's would, so that decoding and rendering overlap the
transfer; times are seconds from the first request.
"""

from __future__ import annotations

import argparse
import queue
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import progs_codec
from progs_codec.render import (export_splats, framing_distance, orbit_cameras, read_splats,
                                render, scene_sphere, write_splats)
from progs_codec.render.images import scene_up, to_uint8
from progs_codec.tools.serve import RangeClient, serve_directory

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "plant.progs"
SOURCE_SCENE = HERE.parent.parent / "shared" / "data" / "scenes" / "plant" / "plant.ply"
FILE_AND_CHUNK_HEADER = 10 + 8   # magic and version, then HEAD's type and length (spec 2)


@dataclass
class Event:
    """One LoD of one delivery: when its last byte arrived, when it was decoded, when its
    image was written (seconds from the first request)."""

    label: str
    bytes: int
    arrived: float
    decoded: float | None = None
    image: float | None = None
    anchors: int | None = None
    path: Path | None = None


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(to_uint8(image)).save(path)


class Viewer:
    """Decodes what a download thread delivers and renders each LoD as it completes."""

    def __init__(self, name: str, out: Path, size: int, clock):
        self.name, self.out, self.size, self.clock = name, out, size, clock
        self.decoder = progs_codec.Decoder()
        self.camera = None
        self.events: list[Event] = []

    def receive(self, data: bytes, received: int, arrived: float) -> None:
        levels = self.decoder.feed(data)
        decoded = self.clock()
        model = self.decoder.model
        for _ in levels:  # one piece may complete several levels: an image for each
            lod = len(self.events) + 1
            event = Event(f"LoD {lod}", received, arrived, decoded,
                          anchors=model.num_anchors(lod))
            if self.camera is None:  # framed on LoD 1, kept for every LoD (and the SPZ)
                self.camera = viewer_camera(model.truncated(1), self.size)
            event.path = self.out / f"{self.name}_lod{lod}.png"
            _save_png(event.path, render(model, self.camera, lod=lod, backend="cpu").image)
            event.image = self.clock()
            self.events.append(event)


def viewer_camera(model, size: int):
    center, radius = scene_sphere(model.positions())
    return orbit_cameras(center, framing_distance(radius), 1, width=size, height=size,
                         up=scene_up(model.frame))[0]


def _pump(produce, viewer: Viewer) -> None:
    """Runs ``produce(put)`` in a thread; the caller's thread decodes and renders."""
    pieces: queue.Queue = queue.Queue()
    failure = []

    def run():
        try:
            produce(lambda data, received: pieces.put((data, received, viewer.clock())))
        except BaseException as error:  # handed to the viewer's thread
            failure.append(error)
        finally:
            pieces.put(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while (item := pieces.get()) is not None:
        viewer.receive(*item)
    thread.join()
    if failure:
        raise failure[0]


def by_ranges(client: RangeClient, name: str, viewer: Viewer) -> None:
    """Header first, then one range request per level, from the table of contents."""

    def produce(put):
        start = client.fetch(name, 0, FILE_AND_CHUNK_HEADER)
        head_end = FILE_AND_CHUNK_HEADER + int.from_bytes(start[-4:], "little") + 4
        head = start + client.fetch(name, FILE_AND_CHUNK_HEADER, head_end)
        toc_reader = progs_codec.Decoder()
        toc_reader.feed(head)
        put(head, head_end)
        end = head_end
        for entry in toc_reader.header.toc:  # from where the last range ended: optional
            stop = entry.offset + entry.size  # chunks between levels come along
            put(client.fetch(name, end, stop), stop)
            end = stop

    _pump(produce, viewer)


def by_one_get(client: RangeClient, name: str, viewer: Viewer) -> None:
    """One plain GET; every piece goes to the decoder as it arrives."""

    def produce(put):
        received = 0
        for piece in client.stream(name):
            received += len(piece)
            put(piece, received)

    _pump(produce, viewer)


def spz_first_image(client: RangeClient, name: str, camera, out: Path, clock) -> Event:
    """One GET of an SPZ file: nothing to show until the whole file is in."""
    data = client.fetch(name)
    arrived = clock()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.spz"
        path.write_bytes(data)
        splats = read_splats(path)
    decoded = clock()
    png = out / f"{Path(name).stem}.png"
    _save_png(png, render(splats, camera, backend="cpu").image)
    return Event(name, len(data), arrived, decoded, clock(), anchors=len(splats), path=png)


def run(stream_path: Path, *, mbit: float, rtt_ms: float, size: int, out: Path,
        source_scene: Path | None = SOURCE_SCENE, modes=("ranges", "get", "spz")) -> dict:
    """Serves ``stream_path`` (and its SPZ twins) on loopback and fetches it each way.

    Returns ``{"ranges": [Event], "get": [Event], "spz": [Event], "requests": {...}}``.
    """
    out.mkdir(parents=True, exist_ok=True)
    rate = mbit * 1e6 / 8
    results: dict = {"requests": {}}
    with tempfile.TemporaryDirectory(prefix="progs-serve-") as tmp:
        folder = Path(tmp)
        stream = stream_path.read_bytes()
        (folder / "scene.progs").write_bytes(stream)
        spz_files = {}
        if "spz" in modes:  # made before the clock starts: the server's files
            model = progs_codec.decode(stream)
            export_splats(model, folder / "baked.spz")
            read_splats(folder / "baked.spz")  # the reader loaded, as a viewer's would be
            spz_files["baked.spz"] = f"the decoded LoD {model.lod}, baked (SH 3)"
            if source_scene is not None and source_scene.exists():
                write_splats(folder / "source.spz", read_splats(source_scene))
                spz_files["source.spz"] = f"the source capture, {source_scene.name}"
        with serve_directory(folder) as base_url:
            for mode, fetch in (("ranges", by_ranges), ("get", by_one_get)):
                if mode not in modes:
                    continue
                with RangeClient(base_url, rate=rate, rtt=rtt_ms / 1e3, piece=1024) as client:
                    viewer = Viewer(mode, out, size, client.throttle.elapsed)
                    fetch(client, "scene.progs", viewer)
                    results[mode] = viewer.events
                    results["requests"][mode] = client.requests
                    camera = viewer.camera
            if "spz" in modes:
                if "ranges" not in modes and "get" not in modes:
                    camera = viewer_camera(model.truncated(1), size)
                results["spz"] = []
                for name, what in spz_files.items():
                    with RangeClient(base_url, rate=rate, rtt=rtt_ms / 1e3) as client:
                        event = spz_first_image(client, name, camera, out,
                                                client.throttle.elapsed)
                        event.label = f"SPZ of {what}"
                        results["spz"].append(event)
                        results["requests"][name] = client.requests
    return results


def format_timeline(results: dict, *, mbit: float, rtt_ms: float, total: int) -> str:
    lines = [f"{mbit:g} Mbit/s, round trip {rtt_ms:g} ms, stream {total:,} bytes "
             f"(seconds from the first request)",
             f"  {'':<44} {'bytes':>9} {'arrived':>8} {'decoded':>8} {'image':>8}"]
    names = {"ranges": "range requests (header, then one per level)",
             "get": "one streaming GET into Decoder.feed"}
    for mode in ("ranges", "get"):
        if mode not in results:
            continue
        n = results["requests"][mode]
        lines.append(f"  {names[mode]}, {n} request{'s' * (n != 1)}:")
        for e in results[mode]:
            label = f"    {e.label} ({e.anchors:,} LoD anchors)"
            lines.append(f"  {label:<44} {e.bytes:>9,} {e.arrived:>8.2f} {e.decoded:>8.2f} "
                         f"{e.image:>8.2f}")
    for e in results.get("spz", []):
        lines.append(f"  {e.label} ({e.anchors:,} Gaussians):")
        lines.append(f"  {'    first image':<44} {e.bytes:>9,} {e.arrived:>8.2f} "
                     f"{e.decoded:>8.2f} {e.image:>8.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stream", nargs="?", type=Path, default=SAMPLE)
    parser.add_argument("--mbit", type=float, default=2.0, help="bandwidth in Mbit/s")
    parser.add_argument("--rtt-ms", type=float, default=0.0,
                        help="simulated round trip per request, ms (default 0)")
    parser.add_argument("--size", type=int, default=128, help="image size in pixels")
    parser.add_argument("--out", type=Path, default=Path("out/stream"))
    parser.add_argument("--no-source", action="store_true",
                        help="skip the SPZ of the source capture")
    args = parser.parse_args(argv)
    if not args.mbit > 0 or args.rtt_ms < 0 or args.size < 1:
        parser.error("--mbit must be > 0, --rtt-ms >= 0 and --size >= 1")
    results = run(args.stream, mbit=args.mbit, rtt_ms=args.rtt_ms, size=args.size,
                  out=args.out, source_scene=None if args.no_source else SOURCE_SCENE)
    print(format_timeline(results, mbit=args.mbit, rtt_ms=args.rtt_ms,
                          total=args.stream.stat().st_size))
    print(f"images in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
