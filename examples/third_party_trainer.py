"""A third party's trainer meets the codec: HAC-style arrays -> build_model -> encode -> decode.

Nothing here comes from ``progs_training``. A HAC-style trainer ends with plain arrays:
anchors with features, scalings and offsets, a binarized hash grid held as float latents, a
float context MLP that predicts each attribute's mean, scale and step, and the Scaffold-GS
generation MLPs. ``progs_codec.build`` is the whole interface it needs:

    python examples/third_party_trainer.py [--out scene.progs]

The arrays below are random stand-ins of the right shapes and statistics; a real trainer
passes its own.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import progs_codec
from progs_codec.build import (MLP, PRESETS, GaussianMLPs, HashGrid, LevelArrays, build_model,
                               frame_for_points, octree_from_points, table_sizes, write_atomic)

FEATURE, SCALING, OFFSETS = 32, 6, 5          # anchor feature width, log scales, offsets


def trained_arrays(seed: int = 0) -> dict:
    """What a HAC-style trainer holds at the end of training (random stand-ins here)."""
    rng = np.random.default_rng(seed)
    # Anchor centres came from a point cloud (COLMAP points, a teacher's Gaussians, ...).
    direction = rng.normal(size=(4000, 3))
    points = direction / np.linalg.norm(direction, axis=1, keepdims=True)
    points *= rng.uniform(0.9, 1.0, (len(points), 1))
    # The hash grid's float latents, one [entries, features] block per table in stream
    # order; the stream keeps their signs.
    config = PRESETS["small"]
    latents = [rng.normal(size=(entries, config.features_per_level))
               for _, _, entries in table_sizes(config)]
    # The float context MLP: [2G] grid features / 127 -> per channel mean (value units),
    # scale index (position in the spec 7.3 table of sigmas, 0.11..256 steps, log-spaced) and
    # step index (16 = the base step). Here: means near the attributes' own, sigmas of about
    # 3, 50 and 6 steps for feature, scaling and offsets.
    groups = [FEATURE, SCALING, 3 * OFFSETS]
    channels = sum(groups)
    width, hidden = 2 * config.feature_width, 48
    context = [(rng.normal(0, 0.2, (hidden, width)).astype(np.float32),
                np.zeros(hidden, np.float32)),
               (rng.normal(0, 0.002, (3 * channels, hidden)).astype(np.float32),
                np.concatenate([np.repeat([0.0, -4.0, 0.0], groups),
                                np.repeat([27.0, 50.0, 33.0], groups),
                                np.full(channels, 16.0)]).astype(np.float32))]

    def mlp(outputs: int) -> MLP:
        inputs = FEATURE + 3 + 1               # feature, view direction, distance
        return MLP(weights=(rng.normal(0, 0.2, (32, inputs)).astype(np.float32),
                            rng.normal(0, 0.2, (outputs, 32)).astype(np.float32)),
                   biases=(np.zeros(32, np.float32), np.zeros(outputs, np.float32)))

    mlps = GaussianMLPs(opacity=mlp(OFFSETS), color=mlp(3 * OFFSETS),
                        covariance=mlp(7 * OFFSETS), use_distance=True)
    return {"points": points, "latents": latents, "config": config, "context": context,
            "mlps": mlps, "rng": rng}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the stream here")
    args = parser.parse_args(argv)
    arrays = trained_arrays()
    rng = arrays["rng"]

    # The octree: a cube frame around the points and the occupied voxels of every level.
    frame = frame_for_points(arrays["points"], base_depth=3, num_levels=4)
    levels = []
    for coords in octree_from_points(arrays["points"], frame):
        coords = coords[rng.permutation(len(coords))]      # any order: the door sorts them
        n = len(coords)
        levels.append(LevelArrays(
            coords=coords,
            feature=rng.normal(0, 0.1, (n, FEATURE)).astype(np.float32),
            scaling=rng.normal(-4, 0.05, (n, SCALING)).astype(np.float32),
            offsets=rng.normal(0, 0.1, (n, OFFSETS, 3)).astype(np.float32)))

    grid = HashGrid(arrays["config"],
                    np.concatenate([t.reshape(-1) for t in arrays["latents"]]) >= 0)
    result = build_model(frame=frame, levels=levels, hash_grid=grid,
                         context_layers=arrays["context"],
                         base_steps=(1 / 32, 1 / 1024, 1 / 64),   # value units, per group
                         gaussian_mlps=arrays["mlps"])
    stream = progs_codec.encode(result.model)
    if args.out is not None:
        write_atomic(args.out, stream)

    gap = result.rate_gap
    print(f"{result.model.num_anchors():,} anchors in {result.model.lod} levels: "
          f"{len(stream):,} bytes; float estimate {gap.float_bits / 8:,.0f} B of attributes, "
          f"coded {gap.coded_bits / 8:,.0f} B ({100 * gap.export_gap:+.2f}%)")
    info = progs_codec.inspect(stream)
    for lod in range(1, result.model.lod + 1):
        prefix = stream[: info.levels[lod - 1].cumulative_bytes]
        decoded = progs_codec.decode(prefix)
        print(f"  first {len(prefix):>7,} bytes decode LoD {decoded.lod}: "
              f"{decoded.num_anchors():,} anchors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
