"""Decode, render and encode times per LoD beside plain-3DGS baselines (the paper's Table II).

Every ProGS time is the median of several runs, timed in the same run as its baseline:

- header decode (the ``HEAD`` chunk alone) | gsply's SPZ read of a top-k file of the same bytes;
- LoD ``k`` decode of its prefix from scratch, and level ``k`` alone on top of levels
  ``1..k-1`` (a client refining) | SPZ read (gsply) and PLY read (plyfile) of the teacher's
  top-``N_k`` Gaussians, ``N_k`` = the Gaussians LoD ``k`` generates for the first test view;
- CPU render of LoD ``k`` (generation included) at the test size and at 1080p | CPU render of
  those top-``N_k`` splats from the same camera;
- encode (the decoded stream, re-encoded; checked byte-identical) | SPZ write of the top-``N_L``
  Gaussians;
- with CUDA, gsplat frames per second per LoD at 1080p beside the same splats; skipped
  without.

Run on its own (``python benchmarks/bench_timings.py STREAM --teacher PLY``) or from
``bench_rd.py``, which stores the result under ``timings`` in ``rd_<scene>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import progs_codec
from progs_codec.render import Camera, Splats, read_splats, render, write_splats
from progs_codec.render.gaussians import generate_gaussians


def median_time(fn, repeats: int = 5, *, min_batch_s: float = 0.05) -> tuple[object, float]:
    """``fn()``'s result and its time per call: the median of ``repeats`` batches.

    One untimed call first (numba's compilation in gsply, caches); then, as ``timeit`` does,
    calls that take less than ``min_batch_s`` are timed in batches of that length, so that a
    preemption on a shared machine (milliseconds) does not swamp a sub-millisecond call.
    """
    start = time.perf_counter()
    out = fn()
    estimate = time.perf_counter() - start
    if estimate < min_batch_s:
        start = time.perf_counter()
        out = fn()
        estimate = time.perf_counter() - start
    number = max(1, min(1000, math.ceil(min_batch_s / max(estimate, 1e-7))))
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        for _ in range(number):
            out = fn()
        times.append((time.perf_counter() - start) / number)
    return out, float(np.median(times))


def _subset(splats: Splats, keep: np.ndarray) -> Splats:
    keep = np.sort(keep)
    return Splats(means=splats.means[keep], scales=splats.scales[keep], quats=splats.quats[keep],
                  opacities=splats.opacities[keep], sh=splats.sh[keep])


def resized(camera: Camera, width: int, height: int) -> Camera:
    """The same pose and horizontal field of view at another image size (square pixels)."""
    f = camera.fx * width / camera.width
    return Camera(width, height, f, f, 0.5 * width, 0.5 * height, camera.world_to_camera)


def _cuda() -> bool:
    try:
        import gsplat  # noqa: F401
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def run(stream: bytes, teacher: Splats, order: np.ndarray, camera: Camera, *, label: str,
        repeats: int = 5, render_repeats: int = 3, hd: tuple[int, int] = (1920, 1080),
        tmp: Path, log=print) -> dict:
    """Timings of ``stream`` per LoD and their baselines; see the module docstring.

    Args:
        teacher: the scene's Gaussians; ``order``: their indices by decreasing importance.
        camera: the view to render (the first test camera).
    """
    info = progs_codec.inspect(stream)
    levels = info.levels
    header_end = levels[0].cumulative_bytes - levels[0].bytes
    cuts = [header_end] + [lv.cumulative_bytes for lv in levels]

    # Header and each level fed to one decoder, as a client receiving the stream does.
    # Stateful, so no batches: many single runs instead (milliseconds each), median per stage.
    stage_times = [[] for _ in cuts]
    for _ in range(max(5 * repeats, 5)):
        decoder = progs_codec.Decoder()
        previous = 0
        for i, cut in enumerate(cuts):
            start = time.perf_counter()
            decoder.feed(stream[previous:cut])
            stage_times[i].append(time.perf_counter() - start)
            previous = cut
    stage = [float(np.median(t)) for t in stage_times]
    model = decoder.close()

    spz_bytes_per_gaussian = None
    files: dict[int, Path] = {}

    def spz_file(k: int) -> Path:
        if k not in files:
            path = tmp / f"timing_top{k}.spz"
            write_splats(path, _subset(teacher, order[:k]))
            files[k] = path
        return files[k]

    full = spz_file(len(teacher))
    spz_bytes_per_gaussian = full.stat().st_size / len(teacher)
    k_header = max(1, min(len(teacher), int(round(header_end / spz_bytes_per_gaussian))))
    _, header_spz_s = median_time(lambda: read_splats(spz_file(k_header)), repeats)
    out = {"stream": label, "repeats": repeats, "render_repeats": render_repeats,
           "camera": {"size": [camera.width, camera.height], "hd": list(hd)},
           "header": {"bytes": header_end, "progs_s": stage[0],
                      "baseline": f"SPZ read, top-{k_header} ({spz_file(k_header).stat().st_size:,}"
                                  " B)", "baseline_s": header_spz_s},
           "rows": []}
    hd_camera = resized(camera, *hd)
    cuda = _cuda()
    for i, lv in enumerate(levels):
        k = lv.lod
        prefix = stream[: lv.cumulative_bytes]
        _, prefix_s = median_time(lambda: progs_codec.decode(prefix, max_lod=k), repeats)
        gaussians, generate_s = median_time(lambda: generate_gaussians(model, camera.center, lod=k),
                                        repeats)
        n_k = max(1, len(gaussians))
        splats_path = spz_file(n_k)
        splats, spz_read_s = median_time(lambda: read_splats(splats_path), repeats)
        ply_path = tmp / f"timing_top{n_k}.ply"
        write_splats(ply_path, splats)
        _, ply_read_s = median_time(lambda: read_splats(ply_path), repeats)
        row = {"lod": k, "anchors": model.num_anchors(k), "gaussians": n_k,
               "bytes": lv.cumulative_bytes, "decode_prefix_s": prefix_s,
               "decode_level_s": stage[i + 1], "generate_s": generate_s,
               "spz_read_s": spz_read_s, "ply_read_s": ply_read_s}
        for name, cam in (("render", camera), ("render_hd", hd_camera)):
            _, row[f"{name}_s"] = median_time(
                lambda: render(model, cam, lod=k, backend="cpu"), render_repeats)
            _, row[f"{name}_splats_s"] = median_time(
                lambda: render(splats, cam, backend="cpu"), render_repeats)
        if cuda:
            render(model, hd_camera, lod=k, backend="gsplat")  # warm-up, kernel compile
            _, t = median_time(lambda: render(model, hd_camera, lod=k, backend="gsplat"), 20)
            _, ts = median_time(lambda: render(splats, hd_camera, backend="gsplat"), 20)
            row["gsplat_hd_fps"], row["gsplat_hd_splats_fps"] = 1.0 / t, 1.0 / ts
        out["rows"].append(row)
        log(f"    LoD {k}: decode {1e3 * prefix_s:.1f} ms (level {1e3 * stage[i + 1]:.1f}), "
            f"SPZ read {1e3 * spz_read_s:.1f} ms of {n_k:,}; render {row['render_s']:.2f} s "
            f"vs {row['render_splats_s']:.2f} s; {hd[0]}x{hd[1]} {row['render_hd_s']:.2f} s vs "
            f"{row['render_hd_splats_s']:.2f} s")
    encoded, encode_s = median_time(lambda: progs_codec.encode(model), repeats)
    n_full = out["rows"][-1]["gaussians"]
    top = read_splats(spz_file(n_full))
    _, spz_write_s = median_time(lambda: write_splats(tmp / "timing_write.spz", top), repeats)
    out["encode"] = {"progs_s": encode_s, "identical": encoded == stream,
                     "baseline": f"SPZ write of {n_full:,} Gaussians", "baseline_s": spz_write_s}
    out["gsplat"] = None if cuda else "skipped: no CUDA device"
    return out


def markdown(t: dict) -> list[str]:
    """The timings as a Markdown table (milliseconds)."""
    hd = "x".join(str(x) for x in t["camera"]["hd"])
    size = "x".join(str(x) for x in t["camera"]["size"])
    h, e = t["header"], t["encode"]
    lines = [f"Timings of `{t['stream']}` on this CPU, one thread, median of {t['repeats']} "
             f"(renders: {t['render_repeats']}), ms; each beside its baseline from the same run "
             f"(the teacher's top-N Gaussians, N = what the LoD generates for view 0):", "",
             "| LoD | LoD anchors | Gaussians | decode prefix | level alone | SPZ read | "
             "PLY read | "
             f"render {size} | splats {size} | render {hd} | splats {hd} |"
             + (" gsplat FPS | splats FPS |" if t["gsplat"] is None else ""),
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
             + ("---:|---:|" if t["gsplat"] is None else "")]
    for r in t["rows"]:
        lines.append(
            f"| {r['lod']} | {r['anchors']:,} | {r['gaussians']:,} | "
            f"{1e3 * r['decode_prefix_s']:.1f} | {1e3 * r['decode_level_s']:.1f} | "
            f"{1e3 * r['spz_read_s']:.1f} | {1e3 * r['ply_read_s']:.1f} | "
            f"{1e3 * r['render_s']:.0f} | {1e3 * r['render_splats_s']:.0f} | "
            f"{1e3 * r['render_hd_s']:.0f} | {1e3 * r['render_hd_splats_s']:.0f} |"
            + (f" {r['gsplat_hd_fps']:.0f} | {r['gsplat_hd_splats_fps']:.0f} |"
               if t["gsplat"] is None else ""))
    lines += ["", f"Header decode {1e3 * h['progs_s']:.1f} ms ({h['bytes']:,} B) vs "
              f"{h['baseline']} {1e3 * h['baseline_s']:.1f} ms; encode (decoded stream "
              f"re-encoded, {'byte-identical' if e['identical'] else 'NOT identical'}) "
              f"{1e3 * e['progs_s']:.0f} ms vs {e['baseline']} {1e3 * e['baseline_s']:.0f} ms"
              + ("" if t["gsplat"] is None else f"; gsplat FPS: {t['gsplat']}") + "."]
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stream", type=Path)
    p.add_argument("--teacher", type=Path, required=True, help="the scene's .ply/.spz")
    p.add_argument("--cameras", type=Path, required=True, help="transforms_test.json")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--render-repeats", type=int, default=3)
    p.add_argument("--hd", default="1920x1080")
    args = p.parse_args()
    from progs_codec.render import load_nerf_cameras

    from bench_rd import importance

    teacher = read_splats(args.teacher)
    order = np.argsort(-importance(teacher), kind="stable")
    camera = load_nerf_cameras(args.cameras)[0][1]
    with tempfile.TemporaryDirectory() as tmp:
        t = run(args.stream.read_bytes(), teacher, order, camera, label=args.stream.stem,
                repeats=args.repeats, render_repeats=args.render_repeats,
                hd=tuple(int(x) for x in args.hd.split("x")), tmp=Path(tmp))
    print(json.dumps(t, indent=1))
    print("\n".join(markdown(t)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
