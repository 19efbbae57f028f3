"""Rendering, generation and baking speed and fidelity (issue 4).

1. The CPU rasterizer on the real scenes (../shared/data/scenes/{plant,donut}.ply) at the
   teacher test cameras: seconds per view and PSNR against the teacher images (gsplat 1.5.3
   renders stored as 8-bit RGBA PNGs, compared as ``rgb * alpha`` on black).
2. Neural Gaussian generation and rendering of a random ProGS model per LoD.
3. Baking that model into static 3DGS: seconds, Gaussians, and PSNR of the baked render
   against the view-dependent one at orbit cameras, per SH degree; file sizes per format.

    python benchmarks/bench_render.py [--views 5] [--size 256] [--anchors 20000]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from progs_codec.render import psnr, render
from progs_codec.render.bake import bake
from progs_codec.render.camera import (framing_distance, load_nerf_cameras, orbit_cameras,
                                       scene_sphere)
from progs_codec.render.gaussians import generate_gaussians
from progs_codec.render.splats import read_ply, write_splats
from progs_codec.testing import synthetic_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def bench_teacher(views: int, size: int) -> None:
    print(f"\n## CPU rasterizer vs gsplat teacher views ({size}x{size})")
    print(f"{'scene':6} {'gaussians':>9} {'views':>5} {'s/view':>7} {'PSNR dB min/mean':>17} "
          f"{'alpha dB min':>12}")
    for scene in ("plant", "donut"):
        ply = DATA / "scenes" / scene / f"{scene}.ply"
        if not ply.exists():
            print(f"{scene}: data not found at {ply}")
            continue
        splats = read_ply(ply)
        folder = DATA / "teacher_views" / scene
        cams = load_nerf_cameras(folder / "transforms_test.json", width=size, height=size)
        seconds, image_db, alpha_db = [], [], []
        for name, cam in cams[:views]:
            result, dt = timed(render, splats, cam, backend="cpu")
            seconds.append(dt)
            if size == 256:  # the teacher images are 256x256
                rgba = np.asarray(Image.open(folder / f"{name[2:]}.png"), np.float32) / 255
                image_db.append(psnr(np.clip(result.image, 0, 1), rgba[..., :3] * rgba[..., 3:]))
                alpha_db.append(psnr(result.alpha, rgba[..., 3]))
        quality = (f"{min(image_db):7.2f}/{np.mean(image_db):6.2f}  {min(alpha_db):12.2f}"
                   if image_db else f"{'-':>17} {'-':>12}")
        print(f"{scene:6} {len(splats):9d} {len(seconds):5d} {np.mean(seconds):7.2f} {quality}")


def bench_model(num_anchors: int, size: int) -> None:
    model = synthetic_model(num_anchors, 4, seed=0, attribute_coding="raw")
    center, radius = scene_sphere(model.positions())
    cams = orbit_cameras(center, framing_distance(radius), 4, width=size, height=size,
                         elevation_deg=25)
    print(f"\n## Random ProGS model, {model.num_anchors()} anchors, K={model.dims.num_offsets}, "
          f"{size}x{size}")
    print(f"{'LoD':>3} {'anchors':>8} {'gaussians':>9} {'generate s':>10} {'render s':>8}")
    for lod in range(1, model.lod + 1):
        g, gen_s = timed(generate_gaussians, model, cams[0].center, lod=lod)
        _, ren_s = timed(render, model, cams[0], lod=lod, backend="cpu")
        print(f"{lod:3d} {model.num_anchors(lod):8d} {len(g):9d} {gen_s:10.3f} {ren_s:8.2f}")

    print("\n## Baking (64 view directions) vs view-dependent render, 4 orbit views")
    print(f"{'SH':>2} {'bake s':>7} {'gaussians':>9} {'PSNR dB min/mean':>17}")
    truth = [np.clip(render(model, c, backend="cpu").image, 0, 1) for c in cams]
    baked = {}
    for degree in range(4):
        splats, bake_s = timed(bake, model, sh_degree=degree)
        baked[degree] = splats
        db = [psnr(t, np.clip(render(splats, c, backend="cpu").image, 0, 1))
              for t, c in zip(truth, cams)]
        print(f"{degree:2d} {bake_s:7.2f} {len(splats):9d} {min(db):8.2f}/{np.mean(db):6.2f}")

    print("\n## Export sizes (baked, full LoD)")
    with tempfile.TemporaryDirectory() as tmp:
        for suffix, degree in ((".ply", 3), (".ply", 0), (".spz", 3), (".spz", 0), (".splat", 0)):
            path = Path(tmp) / f"scene{suffix}"
            _, write_s = timed(write_splats, path, baked[degree])
            size_b = path.stat().st_size
            print(f"{suffix:6} SH{degree}: {size_b / 1e6:7.2f} MB, "
                  f"{size_b / len(baked[degree]):6.1f} B/Gaussian, {write_s:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--anchors", type=int, default=20000)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"numpy {np.__version__}")
    bench_teacher(args.views, args.size)
    bench_model(args.anchors, args.size)


if __name__ == "__main__":
    main()
