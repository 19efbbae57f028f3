"""``progs-train``: train a ProGS model and write a ``.progs`` stream plus a JSON run log.

Example::

    progs-train --data ../shared/data/teacher_views/plant \\
        --init-points ../shared/data/scenes/plant/plant.splat --size 64 \\
        --out plant.progs --iters 1000 --lambda 0.002 --levels 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from progs_codec import ProgsError

from .data import load_scene
from .export import build, evaluate_stream, write_progs
from .model import ModelConfig
from .train import TrainConfig, pick_device, train

__all__ = ["main", "machine_description", "run"]


def machine_description(device) -> str:
    """``"NVIDIA H100 80GB HBM3"`` or ``"CPU, 2 cores (x86_64)"``."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(0)
    return f"CPU, {os.cpu_count()} cores ({platform.machine()})"


def run(data_path: str, out: str, config: TrainConfig, *, size: int | None = None,
        init_points: str | None = None, log_path: str | None = None,
        show_progress: bool = True) -> dict:
    """Load, train, export, write, evaluate; returns (and writes) the JSON report."""
    start = time.time()
    device = pick_device(config.device)
    data = load_scene(data_path, size=size, init_points=init_points,
                      backend="gsplat" if device.type == "cuda" else "cpu")
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=config.iterations, desc="train", unit="it", dynamic_ncols=True)

    def progress(step: int, info: dict) -> None:
        if bar is not None:
            bar.update(1)
            if step % 10 == 0 or step == config.iterations:
                bar.set_postfix(loss=f"{info['loss']:.4f}", anchors=info["anchors"],
                                **{f"L{k}": v for k, v in info["psnr"].items()})

    result = train(data, config, progress=progress)
    if bar is not None:
        bar.close()
    built = build(result.model)
    stream = write_progs(built.model, out)
    gap = built.rate_gap.to_dict()
    views = data.test or data.train
    quality = evaluate_stream(stream, views, background=data.background,
                              backend="gsplat" if device.type == "cuda" else "cpu")
    report = {
        "data": str(data_path), "out": str(out), "machine": machine_description(device),
        "train_views": len(data.train), "test_views": len(data.test),
        "image_size": [views[0].camera.width, views[0].camera.height],
        "config": asdict(replace(config, model=config.model)),
        "train_seconds": round(result.seconds, 1), "total_seconds": round(time.time() - start, 1),
        "stream_bytes": len(stream),
        "lods": [asdict(q) for q in quality],
        "rate_gap": gap,
        "log": result.log,
    }
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        Path(log_path).write_text(json.dumps(report, indent=1, default=str))
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="progs-train", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="NeRF folder, COLMAP folder or teacher .ply/.splat")
    p.add_argument("--out", required=True, help="output .progs file")
    p.add_argument("--iters", type=int, default=TrainConfig.iterations)
    p.add_argument("--lambda", dest="lambda_rate", type=float, default=TrainConfig.lambda_rate,
                   help="rate weight: bigger gives smaller streams")
    p.add_argument("--levels", type=int, default=TrainConfig.num_levels)
    p.add_argument("--base-depth", type=int, default=None)
    p.add_argument("--target-anchors", type=int, default=TrainConfig.target_anchors,
                   help="finest level size that sets the base depth")
    p.add_argument("--size", type=int, default=None, help="longer image side for training")
    p.add_argument("--init-points", default=None, help=".ply/.splat whose centres seed the octree")
    p.add_argument("--context-hidden", default="64,64",
                   help="hidden widths of the context MLP (its integer weights are in the header)")
    p.add_argument("--coarse-lods", type=int, default=TrainConfig.coarse_lods,
                   help="coarser LoDs rendered per step besides the full one (0: all)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", default=None, help="JSON report (default: OUT with .json)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    config = TrainConfig(iterations=args.iters, num_levels=args.levels,
                         base_depth=args.base_depth, target_anchors=args.target_anchors,
                         lambda_rate=args.lambda_rate, device=args.device, seed=args.seed,
                         coarse_lods=args.coarse_lods,
                         model=ModelConfig(context_hidden=tuple(
                             int(w) for w in args.context_hidden.split(",") if w)))
    log_path = args.log or str(Path(args.out).with_suffix(".json"))
    try:
        report = run(args.data, args.out, config, size=args.size, init_points=args.init_points,
                     log_path=log_path, show_progress=not args.quiet)
    except ProgsError as exc:
        print(f"progs-train: error: {exc}", file=sys.stderr)
        return 2
    for q in report["lods"]:
        print(f"LoD {q['lod']}: {q['anchors']} anchors, {q['stream_bytes']} bytes, "
              f"PSNR {q['psnr']:.2f} dB, SSIM {q['ssim']:.4f}")
    print(f"wrote {args.out} ({report['stream_bytes']} bytes) and {log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
