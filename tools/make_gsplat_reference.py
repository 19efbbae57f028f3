"""Render gsplat reference images of the real scenes for the CPU rasterizer's tests.

Run on a machine with CUDA (gsplat compiles its kernels at first use, about a minute):

    python tools/make_gsplat_reference.py            # writes tests/data/gsplat_reference.*

For each (scene, teacher test view) it renders the scene's ``.ply`` with gsplat and with the
CPU rasterizer at the teacher camera (rescaled to ``--size``) and writes

- ``gsplat_reference.npz``: float16 ``{scene}_{view}_image`` ``[H, W, 3]`` and
  ``{scene}_{view}_alpha`` ``[H, W]`` of the gsplat renders (black background);
- ``gsplat_reference.json``: the views, size, versions, device, and the CPU-vs-gsplat PSNR
  of every view (``tests/test_render.py`` re-renders these views on the CPU and checks them
  against the stored images).

``--backend cpu`` renders the "reference" with the CPU rasterizer too: a plumbing check for
machines without CUDA (its PSNRs are meaningless and it refuses to overwrite real data).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import time
from pathlib import Path

import numpy as np

from progs_codec.files import atomic_path
from progs_codec.render import psnr, render
from progs_codec.render.camera import load_nerf_cameras
from progs_codec.render.splats import read_ply

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VIEWS = (("plant", 0), ("plant", 7), ("donut", 3))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--backend", choices=("gsplat", "cpu"), default="gsplat")
    parser.add_argument("--data", type=Path, default=DATA,
                        help="the shared data folder (default ../shared/data; the GPU run "
                             "passes its carried copy)")
    args = parser.parse_args(argv)
    if args.backend == "cpu" and (args.out / "gsplat_reference.json").exists():
        raise SystemExit("refusing to overwrite real reference data with a CPU dry run")

    arrays, records = {}, []
    for scene, view in VIEWS:
        splats = read_ply(args.data / "scenes" / scene / f"{scene}.ply")
        transforms = args.data / "teacher_views" / scene / "transforms_test.json"
        _, cam = load_nerf_cameras(transforms, width=args.size, height=args.size)[view]
        start = time.perf_counter()
        ref = render(splats, cam, backend=args.backend)
        ref_s = time.perf_counter() - start
        start = time.perf_counter()
        cpu = render(splats, cam, backend="cpu")
        cpu_s = time.perf_counter() - start
        arrays[f"{scene}_{view}_image"] = ref.image.astype(np.float16)
        arrays[f"{scene}_{view}_alpha"] = ref.alpha.astype(np.float16)
        records.append({
            "scene": scene, "view": view, "gaussians": len(splats),
            "psnr_image_db": _db(psnr(cpu.image, ref.image)),
            "psnr_alpha_db": _db(psnr(cpu.alpha, ref.alpha)),
            "reference_seconds": round(ref_s, 3), "cpu_seconds": round(cpu_s, 3),
        })
        print(records[-1])

    meta = {"size": args.size, "backend": args.backend, "views": records,
            "platform": platform.platform(), **_versions(args.backend)}
    args.out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with atomic_path(args.out / "gsplat_reference.npz") as tmp:
        tmp.write_bytes(buffer.getvalue())
    with atomic_path(args.out / "gsplat_reference.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")


def _db(value: float) -> float | None:
    """PSNR for JSON: rounded, ``None`` for identical images (infinite PSNR)."""
    return round(value, 2) if np.isfinite(value) else None


def _versions(backend: str) -> dict:
    import gsplat
    import torch

    device = torch.cuda.get_device_name() if backend == "gsplat" else platform.processor()
    return {"gsplat": gsplat.__version__, "torch": torch.__version__, "device": device}


if __name__ == "__main__":
    main()
