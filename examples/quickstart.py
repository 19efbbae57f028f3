"""Quickstart: decode the bundled real sample level by level, render it, export it.

Runs on any CPU in under a minute:

    python examples/quickstart.py [--out out/]

The sample, ``examples/plant.progs``, is the ``plant`` scene (a real phone capture by Marcel
Padilla, CC-BY-4.0) distilled into a 5-level ProGS stream by ``progs-train`` on a 2-core CPU
in 5.6 minutes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import progs_codec
from progs_codec.render import export_splats, render_orbit
from progs_codec.tools.inspect import format_info

SAMPLE = Path(__file__).with_name("plant.progs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stream", nargs="?", type=Path, default=SAMPLE)
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--size", type=int, default=160, help="rendered image size")
    args = parser.parse_args()

    stream = args.stream.read_bytes()
    print(format_info(progs_codec.inspect(stream)), "\n")

    # As if the stream arrived over a slow link, 4 kB at a time: each level is usable as soon
    # as its chunk is complete.
    lod, anchors = 0, 0
    with progs_codec.Decoder() as decoder:
        for received in range(4096, len(stream) + 4096, 4096):
            start = time.perf_counter()
            levels = decoder.feed(stream[received - 4096: received])
            elapsed = 1e3 * (time.perf_counter() - start)
            for level in levels:
                lod, anchors = lod + 1, anchors + len(level)
                print(f"after {min(received, len(stream)):>7,} bytes: LoD {lod} ready, "
                      f"{anchors:,} LoD anchors (this piece decoded in {elapsed:.1f} ms)")
    model = decoder.close()

    paths = render_orbit(model, n_views=6, size=args.size, out_dir=args.out / "frames",
                         backend="cpu")
    print(f"\nrendered {len(paths) - 1} views; contact sheet (one row per LoD): {paths[-1]}")
    ply = args.out / "plant.ply"
    splats = export_splats(model, ply)
    print(f"baked LoD {model.lod} to {ply}: {len(splats):,} Gaussians with SH degree "
          f"{splats.sh_degree}, opens in any 3DGS viewer")


if __name__ == "__main__":
    main()
