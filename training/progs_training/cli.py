"""``progs-train``: make a ``.progs`` stream from a scene, plus a JSON report.

Two routes, chosen by what ``--data`` is:

- a trained 3DGS scene (``.ply``, ``.splat``, ``.spz``): **distillation** (default). Anchors
  and networks are fitted to the scene's Gaussians in 3D, no rendering: minutes on a laptop
  CPU.
- posed images (a NeRF-synthetic folder or a COLMAP model): **training by rendering**, the
  paper's route: a GPU job (on a CPU only at toy sizes). ``--route images`` also takes a 3DGS
  scene, rendering it from cameras around it.

Examples::

    # laptop CPU, a few minutes
    progs-train --data ../shared/data/scenes/plant/plant.ply --out plant.progs
    # GPU
    progs-train --data ../shared/data/images/lego_200 --out lego.progs --iters 30000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from progs_codec import ProgsError
from progs_codec.build import CoordinateConvention
from progs_codec.render import attach_up_value

from .data import TEACHER_SUFFIXES, load_nerf, load_scene, load_teacher, nerf_convention
from .distill import DistillConfig, ModelSizes, distill
from .export import build, evaluate_stream, write_progs
from .model import ModelConfig
from .machine import machine_description, pick_device
from .train import TrainConfig, train

__all__ = ["main", "run", "run_distill"]

_DISTILL = DistillConfig()
_SIZES = ModelSizes()
#: ``--up``: the world's up -> the stream's axis convention (spec 3.1, 9.2).
_UP = {"-y": CoordinateConvention.OPENCV, "+y": CoordinateConvention.OPENGL,
       "+z": CoordinateConvention.ZUP}


def _bar(show: bool, total: int, desc: str):
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="it", dynamic_ncols=True)


def run(data_path: str, out: str, config: TrainConfig, *, size: int | None = None,
        init_points: str | None = None, log_path: str | None = None,
        show_progress: bool = True, eval_views: str | None = None,
        test_views: int | None = None, log_every: int | None = None) -> dict:
    """The images route: load, train, export, write, evaluate; returns the JSON report.

    ``eval_views``: a NeRF-layout folder whose test views, at their native size, measure the
    stream (the project's protocol: ``teacher_views/<scene>`` at 256x256), whatever ``size``
    training used; default the data's own held-out views. ``test_views``: measure only the
    first ``n`` of them. ``log_every``: print one flushed line every ``n`` steps (for logs
    of runs without a progress bar; default: every 5% of the run when ``show_progress`` is
    off).
    """
    start = time.time()
    device = pick_device(config.device)
    backend = "gsplat" if device.type == "cuda" else "cpu"
    data = load_scene(data_path, size=size, init_points=init_points, backend=backend)
    bar = _bar(show_progress, config.iterations, "train")
    every = log_every or (0 if show_progress else max(1, config.iterations // 20))

    def progress(step: int, info: dict) -> None:
        if bar is not None:
            bar.update(1)
            if step % 10 == 0 or step == config.iterations:
                bar.set_postfix(loss=f"{info['loss']:.4f}", anchors=info["anchors"],
                                **{f"L{k}": v for k, v in info["psnr"].items()})
        if every and (step % every == 0 or step == config.iterations):
            print(f"step {step}/{config.iterations} loss {info['loss']:.4f} anchors "
                  f"{info['anchors']} psnr {info['psnr']} {time.time() - start:.0f} s",
                  flush=True)

    result = train(data, config, progress=progress)
    if bar is not None:
        bar.close()
    built = build(result.model)
    stream = write_progs(built.model, out)
    if eval_views is not None:
        nerf = load_nerf(eval_views)
        views = nerf.test or nerf.train
    else:
        views = data.test or data.train
    if test_views is not None:
        views = views[:test_views]
    quality = evaluate_stream(stream, views, background=data.background, backend=backend)
    report = {
        "route": "images", "data": str(data_path), "out": str(out),
        "machine": machine_description(device),
        "train_views": len(data.train), "test_views": len(views),
        "train_size": [data.train[0].camera.width, data.train[0].camera.height],
        "image_size": [views[0].camera.width, views[0].camera.height],
        "eval_views": eval_views or "the data's held-out views",
        "config": asdict(replace(config, model=config.model)),
        "grid": asdict(result.model.config.grid),
        "anchors_per_level": result.model.tree.level_counts(),
        "train_seconds": round(result.seconds, 1), "total_seconds": round(time.time() - start, 1),
        "stream_bytes": len(stream),
        "lods": [asdict(q) for q in quality],
        "rate_gap": built.rate_gap.to_dict(),
        "log": result.log,
    }
    _write_report(report, log_path)
    return report


def evaluation_views(teacher: str, eval_views: str | None, *, size: int = 256,
                     count: int = 20, backend: str = "auto"):
    """The views a distilled stream is measured on: the test views of ``eval_views`` (a
    NeRF-layout folder such as ``teacher_views/<scene>``, at its native size), else ``count``
    renders of the teacher itself at ``size`` from cameras around it."""
    if eval_views is not None:
        data = load_nerf(eval_views)
        return data.test or data.train
    return load_teacher(teacher, size=size, num_train=0, num_test=count, backend=backend).test


def run_distill(data_path: str, out: str, config: DistillConfig, *,
                eval_views: str | None = None, log_path: str | None = None,
                show_progress: bool = True, backend: str = "auto") -> dict:
    """The distillation route: teacher file -> stream, evaluated; returns the JSON report."""
    bar = _bar(show_progress, config.steps, "distill")

    def progress(phase: str, step: int, total: int, info: dict) -> None:
        if bar is not None:
            bar.update(step - bar.n)
            bar.set_postfix(phase=info["phase"], est_psnr=f"{info['psnr_estimate']:.1f}",
                            bits=f"{info['bits_per_slot']:.1f}")

    def evaluate(stream: bytes) -> list[dict]:
        views = evaluation_views(data_path, eval_views, backend=backend)
        return [asdict(q) for q in evaluate_stream(stream, views, backend=backend)]

    result = distill(data_path, config, out=out, evaluate=evaluate, progress=progress)
    if bar is not None:
        bar.close()
    report = {"route": "distill", "data": str(data_path), "out": str(out),
              "eval_views": eval_views or "teacher renders, 20 spiral views at 256x256",
              **result.report}
    _write_report(report, log_path)
    return report


def _write_report(report: dict, log_path: str | None) -> None:
    if log_path:
        from progs_codec.build import write_atomic

        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(log_path, json.dumps(report, indent=1, default=str).encode())


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="progs-train", description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True,
                   help="3DGS scene (.ply/.splat/.spz), NeRF folder or COLMAP folder")
    p.add_argument("--out", required=True, help="output .progs file")
    p.add_argument("--route", choices=("auto", "distill", "images"), default="auto",
                   help="auto: distill for 3DGS files, images otherwise (default: auto)")
    p.add_argument("--lambda", dest="lam", type=_positive_float, default=None,
                   help=f"rate weight, bigger gives smaller streams (default: distill "
                        f"{_DISTILL.lam:g}, image MSE per bit per slot; images "
                        f"{TrainConfig.lambda_rate:g})")
    p.add_argument("--levels", type=_positive_int, default=None,
                   help=f"octree levels = LoDs (default: distill {_DISTILL.levels}, images "
                        f"{TrainConfig.num_levels})")
    p.add_argument("--iters", type=_positive_int, default=None,
                   help=f"optimizer steps (default: distill {_DISTILL.steps}, images "
                        f"{TrainConfig.iterations})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--log", default=None, help="JSON report (default: OUT with .json)")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA when available), cpu or cuda; both routes (default: auto)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar; the images route prints a flushed line every 5%%")
    p.add_argument("--eval-views", default=None,
                   help="NeRF-layout folder whose test views (native size) measure the stream, "
                        "e.g. teacher_views/plant (default: distill: 20 renders of the teacher "
                        "at 256x256; images: the data's held-out views)")
    d = p.add_argument_group("distillation (3DGS scene in)")
    d.add_argument("--finest-depth", type=int, default=None,
                   help="octree depth of the finest level (default: from the scene and lambda)")
    d.add_argument("--feature-dim", type=_positive_int, default=_SIZES.feature,
                   help=f"anchor feature width F (default: {_SIZES.feature})")
    d.add_argument("--hidden", type=_positive_int, default=_SIZES.hidden,
                   help=f"hidden width of the generation MLPs (default: {_SIZES.hidden})")
    d.add_argument("--offsets", type=_positive_int, default=_SIZES.offsets,
                   help=f"Gaussians per anchor K (default: {_SIZES.offsets})")
    d.add_argument("--up", choices=tuple(_UP), default=None,
                   help="the scene's up, stored as the stream's axis convention for viewers "
                        "(+z: Z-up, a format 1.1 stream) (default: from the --eval-views "
                        "cameras when given, else -y)")
    i = p.add_argument_group("training by rendering (images in; a GPU job)")
    i.add_argument("--base-depth", type=int, default=None, help="octree depth of level 1")
    i.add_argument("--target-anchors", type=_positive_int, default=TrainConfig.target_anchors,
                   help=f"finest level size that sets the base depth "
                        f"(default: {TrainConfig.target_anchors})")
    i.add_argument("--size", type=_positive_int, default=None,
                   help="longer image side for training (default: the images' size)")
    i.add_argument("--init-points", default=None,
                   help=".ply/.splat whose centres seed the octree")
    i.add_argument("--context-hidden", default="64,64",
                   help="hidden widths of the context MLP (default: 64,64)")
    i.add_argument("--coarse-lods", type=int, default=TrainConfig.coarse_lods,
                   help=f"coarser LoDs rendered per step besides the full one, 0: all "
                        f"(default: {TrainConfig.coarse_lods})")
    return p


def _route(args) -> str:
    if args.route != "auto":
        return args.route
    return "distill" if Path(args.data).suffix.lower() in TEACHER_SUFFIXES else "images"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(attach_up_value(sys.argv[1:] if argv is None else argv))
    if not Path(args.data).exists():
        parser.error(f"--data {args.data}: no such file or folder")
    out_dir = Path(args.out).resolve().parent
    if not out_dir.is_dir():
        parser.error(f"--out {args.out}: folder {out_dir} does not exist")
    route = _route(args)
    if route == "distill" and Path(args.data).suffix.lower() not in TEACHER_SUFFIXES:
        parser.error(f"--route distill needs a 3DGS file ({', '.join(TEACHER_SUFFIXES)}), "
                     f"got {args.data}")
    if args.up is not None and route != "distill":
        parser.error("--up is for the distillation route: the images route takes the scene's "
                     "up from its cameras")
    log_path = args.log or str(Path(args.out).with_suffix(".json"))
    try:
        if route == "distill":
            if args.up is not None:
                convention = _UP[args.up]
            elif args.eval_views is not None:
                convention = nerf_convention(args.eval_views)
            else:
                convention = CoordinateConvention.OPENCV
            sizes = replace(_SIZES, feature=args.feature_dim, hidden=args.hidden,
                            offsets=args.offsets)
            config = replace(_DISTILL, lam=args.lam or _DISTILL.lam,
                             levels=args.levels or _DISTILL.levels,
                             finest_depth=args.finest_depth,
                             sizes=None if sizes == _SIZES else sizes,
                             steps=args.iters or _DISTILL.steps, seed=args.seed,
                             device=args.device, convention=convention)
            report = run_distill(args.data, args.out, config, eval_views=args.eval_views,
                                 log_path=log_path, show_progress=not args.quiet)
        else:
            config = TrainConfig(
                iterations=args.iters or TrainConfig.iterations,
                num_levels=args.levels or TrainConfig.num_levels, base_depth=args.base_depth,
                target_anchors=args.target_anchors,
                lambda_rate=args.lam or TrainConfig.lambda_rate, device=args.device,
                seed=args.seed, coarse_lods=args.coarse_lods,
                model=ModelConfig(context_hidden=tuple(
                    int(w) for w in args.context_hidden.split(",") if w)))
            report = run(args.data, args.out, config, size=args.size,
                         init_points=args.init_points, log_path=log_path,
                         show_progress=not args.quiet, eval_views=args.eval_views)
    except ProgsError as exc:
        print(f"progs-train: error: {exc}", file=sys.stderr)
        return 2
    print(f"decoded stream, cumulative bytes per LoD, measured on {report['eval_views']}:")
    for q in report["lods"]:
        print(f"LoD {q['lod']}: {q['anchors']} LoD anchors, {q['stream_bytes']} bytes, "
              f"PSNR {q['psnr']:.2f} dB, SSIM {q['ssim']:.4f}")
    print(f"wrote {args.out} ({report['stream_bytes']} bytes) and {log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
