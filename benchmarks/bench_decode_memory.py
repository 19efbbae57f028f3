"""Peak memory of a full decode against the decoded model's size (issue 3 target: <= ~2x).

    python benchmarks/bench_decode_memory.py [--anchors 200000]

Encodes a synthetic 5-level model, then decodes it under tracemalloc (numpy reports its
allocations there) and prints the stream size, the model's array bytes and the peak.
"""

from __future__ import annotations

import argparse
import tracemalloc

import progs_codec
from progs_codec.testing import synthetic_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchors", type=int, default=200_000)
    args = parser.parse_args()
    stream = progs_codec.encode(synthetic_model(args.anchors, 5, seed=0))
    tracemalloc.start()
    model = progs_codec.decode(stream)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = sum(getattr(level, name).nbytes for level in model.levels
               for name in ("coords", "parent_index", "octant", "feature", "scaling", "offsets"))
    print(f"{model.num_anchors():,} anchors: stream {len(stream) / 1e6:.2f} MB, decoded model "
          f"{size / 1e6:.1f} MB, peak during decode {peak / 1e6:.1f} MB ({peak / size:.2f}x)")


if __name__ == "__main__":
    main()
