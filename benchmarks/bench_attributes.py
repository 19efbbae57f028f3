"""Attribute coding speed and rate on a synthetic level (spec 5-7). Prints numbers.

Usage: ``python benchmarks/bench_attributes.py [--anchors 200000] [--repeat 3]``

One core (BLAS threads pinned to 1). The level: anchors at depth 10, children of random
depth-9 parents in canonical order; the model: ``random_entropy_model`` (preset ``small``);
the attributes: drawn from the model's own predictions (``sample_attributes``). The coder
floor is constriction decoding the same number of symbols with one shared table.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import constriction  # noqa: E402
import numpy as np  # noqa: E402

from progs_codec.entropy.attributes import (decode_level_attributes,  # noqa: E402
                                            encode_level_attributes, level_contexts,
                                            sample_attributes)
from progs_codec.entropy.coder import scale_models  # noqa: E402
from progs_codec.entropy.export import (export_context_model,  # noqa: E402
                                        float_sample_attributes, ideal_bits, rate_gap,
                                        synthetic_float_mlp)
from progs_codec.entropy.hashgrid import hash_features  # noqa: E402
from progs_codec.entropy.model import EntropyModel  # noqa: E402
from progs_codec.entropy.tables import load_tables  # noqa: E402
from progs_codec.model import AttributeDims  # noqa: E402
from progs_codec.testing import random_entropy_model  # noqa: E402


def synthetic_level(n: int, rng: np.random.Generator, depth: int = 10):
    """``n`` child anchors at ``depth`` (about 4 per parent), canonical order (spec 4.2)."""
    parents = np.unique(rng.integers(0, 1 << (depth - 1), (n // 3, 3)), axis=0)
    octants = np.arange(8)
    child_bits = np.stack([(octants >> 2) & 1, (octants >> 1) & 1, octants & 1], axis=1)
    keep = rng.random((len(parents), 8)) < n / (8 * len(parents))
    parent_index, octant = np.nonzero(keep)          # sorted by (parent, octant)
    parent_index, octant = parent_index[:n], octant[:n]
    morton = np.zeros(len(parents), np.int64)
    for b in range(depth - 1):
        for a in range(3):
            morton |= ((parents[:, a] >> b) & 1).astype(np.int64) << (3 * b + 2 - a)
    rank = np.argsort(np.argsort(morton))            # parents in Morton order
    order = np.lexsort((octant, rank[parent_index]))
    parent_coords = parents[parent_index[order]].astype(np.int32)
    coords = (2 * parent_coords + child_bits[octant[order]]).astype(np.int32)
    return coords, parent_coords


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchors", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gap-anchors", type=int, default=20_000)
    args = parser.parse_args()

    dims = AttributeDims()
    rng = np.random.default_rng(0)
    model = random_entropy_model(dims)
    coords, parent_coords = synthetic_level(args.anchors, rng)
    n, symbols = len(coords), len(coords) * dims.channels
    print(f"level: {n} anchors at depth 10, {dims.channels} channels = {symbols} symbols; "
          f"hash grid 'small', context MLP "
          f"{[layer.weight.shape[1] for layer in model.context_model.layers]} -> "
          f"{3 * dims.channels}")

    t_ctx, prediction = best_time(lambda: level_contexts(model, coords, parent_coords, 10),
                                  args.repeat)
    attrs = sample_attributes(model, prediction, dims, rng)
    t_enc, (payloads, _) = best_time(
        lambda: encode_level_attributes(model, prediction, dims, *attrs), args.repeat)
    t_dec, _ = best_time(
        lambda: decode_level_attributes(model, prediction, dims, payloads, level=2), args.repeat)

    table = int(np.bincount(prediction.scale_index.ravel(), minlength=64).argmax())
    freqs = load_tables().frequencies[table]
    floor_symbols = rng.choice(len(freqs), symbols, p=freqs / freqs.sum()).astype(np.int32)
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(floor_symbols, scale_models()[table])
    words = coder.get_compressed()
    t_floor, _ = best_time(lambda: constriction.stream.stack.AnsCoder(words).decode(
        scale_models()[table], symbols), args.repeat)

    t_full = t_ctx + t_dec
    print(f"{'':28}{'seconds':>9}{'anchors/s':>12}{'symbols/s':>12}{'x floor':>9}")
    for name, t in (("contexts (grid + MLP)", t_ctx), ("decode attributes", t_dec),
                    ("full decode (both)", t_full), ("encode attributes", t_enc),
                    (f"coder floor (table {table})", t_floor)):
        print(f"{name:28}{t:9.3f}{n / t:12,.0f}{symbols / t:12,.0f}{t / t_floor:9.2f}")

    coded = 8 * sum(len(p) for p in payloads.values())
    ideal = ideal_bits(model, prediction, dims, *attrs)
    print(f"coded {coded / n:.2f} bits/anchor ({coded / symbols:.3f} bits/symbol); "
          f"cross-entropy under the integer model {ideal / n:.2f} bits/anchor; "
          f"coder overhead {100 * (coded / ideal - 1):+.4f}%")

    # float context model -> integers: size gap on attributes drawn from the float model
    m = args.gap_anchors
    grid = model.hash_grid
    width = grid.config.feature_width
    inputs = np.zeros((m, 2 * width), np.int32)
    inputs[:, :width] = hash_features(grid, coords[:m], 10)
    inputs[:, width:] = hash_features(grid, parent_coords[:m], 9)
    calibration = inputs[rng.permutation(m)[:4096]]
    layers = synthetic_float_mlp(calibration, dims, (64, 64), model.base_steps, rng)
    exported = EntropyModel(grid, export_context_model(layers, calibration), model.base_steps)
    float_attrs = float_sample_attributes(layers, inputs, model.base_steps, dims, rng)
    gap = rate_gap(layers, exported, inputs, dims, *float_attrs)
    print(f"export gap ({m} anchors, float model -> int8): float estimate "
          f"{gap.float_bits / m:.2f} bits/anchor, coded {gap.coded_bits / m:.2f}: "
          f"{100 * gap.export_gap:+.3f}% (integer cross-entropy "
          f"{100 * (gap.ideal_bits / gap.float_bits - 1):+.3f}%)")


if __name__ == "__main__":
    main()
