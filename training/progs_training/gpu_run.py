"""The whole GPU run in one process, stage by stage, reporting after every stage.

``training/gpu_run.sh OUT`` installs the carried wheels and calls this module; ``--rehearse``
runs exactly the same stages on the CPU at tiny sizes (a test in the suite does), so a broken
stage shows up in CI, not on a rented GPU. Stages, in order:

1. ``environment``: Python, torch, the device, the packages the run needs, the data.
2. ``gsplat_compile``: the first gsplat call compiles its CUDA kernels (~60 s on an H100).
3. ``rasterizer``: gsplat against the CPU rasterizer on the same Gaussians (the real scenes
   at teacher test views, ``tools/make_gsplat_reference.py``, which also writes the
   reference files ``tests/test_render.py`` checks): target >= 45 dB.
4. ``decode_render``: ``examples/plant.progs`` decoded and rendered per LoD with gsplat and
   with the CPU rasterizer; the trainer's ``render_torch`` gsplat path against its torch
   twin, gradients included.
5. ``images``: plant trained from its teacher views (the images route) at 256x256; the
   iteration count fits the stage's time budget (measured on a short probe run).
6. ``distill``: plant distilled from its ``.ply`` on the GPU (``DistillConfig.device``).
7. ``finetune``: the distilled stream fine-tuned in image space against the teacher views
   (:mod:`.finetune`), re-exported with its ``refine``.
8. ``lego``: lego_200 by the images route (every 8th view held out), if time is left.

Every LoD is measured with the project's protocol (decoded stream, teacher test views at
native 256x256, black background; lego: its held-out views). ``OUT/results.json`` and
``OUT/results.md`` are rewritten after each stage, so a run cut off still reports; a stage
that fails is recorded with its error and the run goes on. Data: ``--data``, else
``$PROGS_DATA``, else the carried ``.carry/data`` (``training/prepare_gpu_carry.py``), else
``../shared/data``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path

__all__ = ["main", "Plan", "PLANS", "data_folder"]

REPO = Path(__file__).resolve().parents[2]
STAGES = ("environment", "gsplat_compile", "rasterizer", "decode_render", "images",
          "distill", "finetune", "lego")


@dataclass(frozen=True)
class Plan:
    """Sizes and time budgets of one kind of run (seconds are wall clock)."""

    device: str
    total_s: float              # the whole run, compile included
    size: int                   # training image size of the images route
    eval_views: int             # teacher test views measured per LoD (20 = the protocol)
    eval_size: int | None       # None: native 256
    levels: int
    target_anchors: int
    images_s: float             # training budget of the images route
    probe_iters: int
    min_iters: int
    max_iters: int
    distill_steps: int
    distill_levels: int
    distill_depth: int | None
    finetune_s: float
    finetune_probe: int
    finetune_size: int | None   # None: native 256
    lego_s: float
    lego_size: int | None
    reference_size: int


PLANS = {
    "gpu": Plan(device="cuda", total_s=510, size=256, eval_views=20, eval_size=None,
                levels=5, target_anchors=8000, images_s=120, probe_iters=30, min_iters=300,
                max_iters=30000, distill_steps=2000, distill_levels=5, distill_depth=None,
                finetune_s=45, finetune_probe=10, finetune_size=None, lego_s=50,
                lego_size=None, reference_size=128),
    "rehearse": Plan(device="cpu", total_s=900, size=16, eval_views=2, eval_size=16,
                     levels=3, target_anchors=150, images_s=0, probe_iters=2, min_iters=4,
                     max_iters=4, distill_steps=4, distill_levels=3, distill_depth=5,
                     finetune_s=0, finetune_probe=1, finetune_size=16, lego_s=0,
                     lego_size=16, reference_size=16),
}


def data_folder(explicit: str | None = None) -> Path:
    """``--data``, ``$PROGS_DATA``, the carried ``.carry/data``, or ``../shared/data``."""
    for candidate in (explicit, os.environ.get("PROGS_DATA"), REPO / ".carry" / "data",
                      REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "teacher_views" / "plant").is_dir():
            return Path(candidate)
    raise SystemExit("no data folder: pass --data, set PROGS_DATA, or run "
                     "training/prepare_gpu_carry.py (looked in .carry/data and ../shared/data)")


def log(message: str) -> None:
    print(f"[gpu_run {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Run:
    """The results so far, written after every stage."""

    def __init__(self, out: Path, plan: Plan, mode: str, data: Path):
        self.out, self.plan, self.mode, self.data = out, plan, mode, data
        self.start = time.time()
        self.results = {"mode": mode, "plan": asdict(plan), "data": str(data),
                        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "stages": {}}

    def left(self) -> float:
        return self.plan.total_s - (time.time() - self.start)

    def stage(self, name: str, fn, *, needs_s: float = 0.0) -> dict | None:
        if self.left() < needs_s:
            self.record(name, {"status": "skipped",
                               "reason": f"{self.left():.0f} s left, needs {needs_s:.0f} s"})
            return None
        log(f"stage {name} ({self.left():.0f} s left)")
        t = time.time()
        try:
            entry = {"status": "ok", **(fn() or {})}
        except Exception as exc:  # a stage's failure is a result; the run goes on
            entry = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                     "traceback": traceback.format_exc()[-3000:]}
            log(f"stage {name} FAILED: {entry['error']}")
        entry["seconds"] = round(time.time() - t, 1)
        self.record(name, entry)
        return entry

    def record(self, name: str, entry: dict) -> None:
        self.results["stages"][name] = entry
        self.results["elapsed_s"] = round(time.time() - self.start, 1)
        _write(self.out / "results.json", json.dumps(_finite(self.results), indent=1,
                                                     default=str))
        _write(self.out / "results.md", markdown(self.results))
        log(f"stage {name}: {entry['status']} ({entry.get('seconds', 0)} s)")


def _finite(value):
    """JSON without ``Infinity``: identical images (infinite PSNR) become ``null``."""
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _lod_table(lods: list[dict]) -> list[str]:
    lines = ["| LoD | anchors | bytes | PSNR (dB) | SSIM |", "|---|---|---|---|---|"]
    lines += [f"| {q['lod']} | {q['anchors']:,} | {q['stream_bytes']:,} | {q['psnr']:.2f} | "
              f"{q['ssim']:.4f} |" for q in lods]
    return lines


def markdown(results: dict) -> str:
    """The results as markdown: one section per stage, LoD tables where there are any."""
    lines = [f"# ProGS GPU run ({results['mode']})", "",
             f"Started {results['started']}, {results.get('elapsed_s', 0)} s so far; data "
             f"{results['data']}.", ""]
    for name in STAGES:
        entry = results["stages"].get(name)
        if entry is None:
            continue
        lines += [f"## {name}: {entry['status']} ({entry.get('seconds', 0)} s)", ""]
        if entry["status"] == "failed":
            lines += ["```", entry["error"], "```", ""]
        elif entry["status"] == "skipped":
            lines += [entry["reason"], ""]
        for key, value in entry.items():
            if key in ("status", "seconds", "error", "traceback", "lods", "before", "log"):
                continue
            lines.append(f"- {key}: {json.dumps(value, default=str)}")
        if "before" in entry:
            lines += ["", "Before fine-tuning:", ""] + _lod_table(entry["before"])
        if "lods" in entry:
            lines += [""] + _lod_table(entry["lods"])
        lines.append("")
    return "\n".join(lines)


# -- stages ------------------------------------------------------------------------------


def stage_environment(run: Run) -> dict:
    import torch

    info = {"python": sys.version.split()[0], "platform": platform.platform(),
            "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    for name in ("numpy", "constriction", "bitarray", "plyfile", "PIL", "gsplat", "tqdm"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "present")
        except ImportError as exc:
            info[name] = f"MISSING ({exc})"
    info["torch_cuda_arch_list"] = os.environ.get("TORCH_CUDA_ARCH_LIST")
    info["max_jobs"] = os.environ.get("MAX_JOBS")
    if run.plan.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the GPU plan needs CUDA, and torch sees none")
    return info


def stage_gsplat_compile(run: Run) -> dict:
    import torch

    if run.plan.device != "cuda":
        return {"note": "CPU rehearsal: gsplat's kernels are not compiled"}
    import gsplat

    t = time.time()
    dev = torch.device("cuda")
    means = torch.tensor([[0.0, 0.0, 2.0]], device=dev)
    gsplat.rasterization(means, torch.tensor([[1.0, 0, 0, 0]], device=dev),
                         torch.full((1, 3), 0.1, device=dev), torch.ones(1, device=dev),
                         torch.ones(1, 3, device=dev), torch.eye(4, device=dev)[None],
                         torch.tensor([[[50.0, 0, 32], [0, 50, 32], [0, 0, 1]]], device=dev),
                         64, 64)
    torch.cuda.synchronize()
    return {"compile_and_first_call_s": round(time.time() - t, 1), "gsplat": gsplat.__version__}


def stage_rasterizer(run: Run) -> dict:
    backend = "gsplat" if run.plan.device == "cuda" else "cpu"
    out = run.out
    for name in ("gsplat_reference.json", "gsplat_reference.npz"):
        (out / name).unlink(missing_ok=True)
    cmd = [sys.executable, str(REPO / "tools" / "make_gsplat_reference.py"), "--out", str(out),
           "--size", str(run.plan.reference_size), "--backend", backend, "--data", str(run.data)]
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    meta = json.loads((out / "gsplat_reference.json").read_text())
    psnrs = [v["psnr_image_db"] for v in meta["views"]]
    worst = min((p for p in psnrs if p is not None), default=float("inf"))
    entry = {"views": [{k: v[k] for k in ("scene", "view", "gaussians", "psnr_image_db",
                                          "psnr_alpha_db", "reference_seconds",
                                          "cpu_seconds")} for v in meta["views"]],
             "worst_psnr_db": worst, "target_db": 45.0,
             "files": ["gsplat_reference.json", "gsplat_reference.npz"]}
    if backend == "gsplat" and worst < 45.0:
        raise RuntimeError(f"gsplat vs CPU rasterizer: worst view {worst} dB < 45 dB "
                           f"({entry['views']})")
    return entry


def _eval_views(run: Run):
    """Plant's teacher test views the LoDs are measured on (loaded once per run)."""
    from .data import load_nerf

    if not hasattr(run, "_plant"):
        run._plant = load_nerf(run.data / "teacher_views" / "plant", size=run.plan.eval_size)
    return run._plant.test[: run.plan.eval_views], run._plant


def stage_decode_render(run: Run) -> dict:
    import numpy as np
    import torch

    from progs_codec import decode
    from progs_codec.render import generate_gaussians, psnr, render

    from .render_torch import rasterize_gsplat, rasterize_torch

    cuda = run.plan.device == "cuda"
    backend = "gsplat" if cuda else "cpu"
    t = time.time()
    model = decode((REPO / "examples" / "plant.progs").read_bytes())
    decode_s = time.time() - t
    views, _ = _eval_views(run)
    per_lod = []
    for lod in range(1, model.lod + 1):
        worst, times = float("inf"), []
        for v in views[:2]:
            t = time.time()
            fast = render(model, v.camera, lod=lod, backend=backend).image
            times.append(time.time() - t)
            ref = render(model, v.camera, lod=lod, backend="cpu").image
            worst = min(worst, psnr(fast, ref))
        per_lod.append({"lod": lod, "gaussians_vs_cpu_db": round(worst, 2),
                        f"{backend}_render_s": round(float(np.mean(times)), 4)})
    # the trainer's path: render_torch's gsplat call against its torch twin, with gradients
    cam = views[0].camera
    g = generate_gaussians(model, cam.center)
    dev = torch.device("cuda" if cuda else "cpu")
    arrays = [torch.tensor(np.asarray(a, np.float32), device=dev, requires_grad=True)
              for a in (g.means, g.quats, g.scales, g.opacities, g.colors)]
    fast = (rasterize_gsplat if cuda else rasterize_torch)(*arrays, cam)
    fast.image.sum().backward()
    grads_finite = all(bool(torch.isfinite(a.grad).all()) for a in arrays)
    cpu_arrays = [a.detach().cpu() for a in arrays]
    ref = rasterize_torch(*cpu_arrays, cam)
    trainer_db = psnr(fast.image.detach().cpu().numpy(), ref.image.numpy())
    worst_lod = min(e["gaussians_vs_cpu_db"] for e in per_lod)
    if cuda and (worst_lod < 45.0 or trainer_db < 45.0 or not grads_finite):
        raise RuntimeError(f"GPU decode/render path off: per LoD {per_lod}, trainer path "
                           f"{trainer_db:.2f} dB, finite gradients {grads_finite}")
    return {"decode_s": round(decode_s, 3), "per_lod": per_lod,
            "trainer_gsplat_vs_torch_db": round(trainer_db, 2),
            "trainer_gradients_finite": grads_finite, "gaussians": int(len(g.means))}


def _train_images(run: Run, name: str, data_path: Path, *, size: int | None, budget_s: float,
                  init_points: Path | None, eval_views: Path | None) -> dict:
    from .cli import run as run_images
    from .model import ModelConfig
    from .train import TrainConfig

    plan = run.plan
    base = TrainConfig(iterations=plan.probe_iters, num_levels=plan.levels,
                       target_anchors=plan.target_anchors, device=plan.device,
                       model=ModelConfig(context_hidden=(32, 32)))
    iters = plan.max_iters
    probe = None
    if plan.device == "cuda":
        from .data import load_scene
        from .train import train

        data = load_scene(data_path, size=size, init_points=init_points, backend="gsplat")
        t = time.time()
        train(data, base)
        per_iter = (time.time() - t) / plan.probe_iters
        iters = int(max(plan.min_iters, min(plan.max_iters, budget_s / per_iter)))
        probe = {"probe_iters": plan.probe_iters, "seconds_per_iter": round(per_iter, 4)}
        del data
    config = replace(base, iterations=iters)
    out = run.out / f"{name}.progs"
    report = run_images(str(data_path), str(out), config, size=size,
                        init_points=None if init_points is None else str(init_points),
                        log_path=None, show_progress=False,
                        eval_views=None if eval_views is None else str(eval_views),
                        test_views=plan.eval_views)
    return {"iterations": iters, **(probe or {}), "train_size": report["train_size"],
            "eval_size": report["image_size"], "test_views": report["test_views"],
            "anchors_per_level": report["anchors_per_level"],
            "train_seconds": report["train_seconds"], "stream_bytes": report["stream_bytes"],
            "rate_gap": report["rate_gap"], "stream": out.name, "lods": report["lods"]}


def stage_images(run: Run) -> dict:
    plant = run.data / "teacher_views" / "plant"
    return _train_images(run, "plant_images", plant, size=run.plan.size,
                         budget_s=run.plan.images_s,
                         init_points=run.data / "scenes" / "plant" / "plant.ply",
                         eval_views=plant if run.plan.eval_size is None else None)


def stage_distill(run: Run) -> dict:
    from dataclasses import asdict as _asdict

    from .distill import DistillConfig, distill
    from .export import evaluate_stream

    plan = run.plan
    views, _ = _eval_views(run)
    backend = "gsplat" if plan.device == "cuda" else "cpu"
    config = DistillConfig(levels=plan.distill_levels, steps=plan.distill_steps,
                           finest_depth=plan.distill_depth, device=plan.device)
    out = run.out / "plant_distill.progs"

    def evaluate(stream: bytes) -> list[dict]:
        return [_asdict(q) for q in evaluate_stream(stream, views, backend=backend)]

    result = distill(run.data / "scenes" / "plant" / "plant.ply", config, out=out,
                     evaluate=evaluate)
    r = result.report
    return {"device": r.get("device"), "steps": plan.distill_steps,
            "frame": r["frame"], "anchors_per_level": r["anchors_per_level"],
            "phase_seconds": r["seconds"], "stream_bytes": r["stream_bytes"],
            "stream": out.name, "lods": r["lods"]}


def _distilled_lods(run: Run) -> list[dict] | None:
    """The distill stage's measurement of the stream the fine-tune starts from (same views,
    same backend), so that it is not decoded and rendered twice."""
    entry = run.results["stages"].get("distill") or {}
    return entry.get("lods") if entry.get("status") == "ok" else None


def stage_finetune(run: Run) -> dict:
    from dataclasses import asdict as _asdict

    from progs_codec import decode

    from .data import load_nerf
    from .export import evaluate_stream, write_progs
    from .finetune import FinetuneConfig, finetune

    plan = run.plan
    source = run.out / "plant_distill.progs"
    if not source.exists():
        raise RuntimeError("no distilled stream to fine-tune (the distill stage failed)")
    stream = source.read_bytes()
    progs = decode(stream)
    train_views = load_nerf(run.data / "teacher_views" / "plant", size=plan.finetune_size).train
    views, _ = _eval_views(run)
    backend = "gsplat" if plan.device == "cuda" else "cpu"
    steps = plan.finetune_probe * 2
    probe = None
    if plan.device == "cuda":
        t = time.time()
        finetune(progs, train_views, FinetuneConfig(steps=plan.finetune_probe, device="cuda"))
        per_step = (time.time() - t) / plan.finetune_probe
        steps = int(max(20, min(5000, plan.finetune_s / per_step)))
        probe = {"seconds_per_step": round(per_step, 4)}
    result = finetune(progs, train_views, FinetuneConfig(steps=steps, device=plan.device))
    out = run.out / "plant_finetune.progs"
    tuned = write_progs(result.built.model, out)
    return {"steps": steps, **(probe or {}), "refine": progs.refine.name,
            "finetune_seconds": round(result.seconds, 1), "stream": out.name,
            "stream_bytes": len(tuned), "bytes_before": len(stream),
            "rate_gap": result.built.rate_gap.to_dict() if result.built.rate_gap else None,
            "before": _distilled_lods(run) or [_asdict(q) for q in
                                               evaluate_stream(stream, views, backend=backend)],
            "lods": [_asdict(q) for q in evaluate_stream(tuned, views, backend=backend)]}


def stage_lego(run: Run) -> dict:
    entry = _train_images(run, "lego_images", run.data / "images" / "lego_200",
                          size=run.plan.lego_size, budget_s=run.plan.lego_s, init_points=None,
                          eval_views=None)
    (run.out / "lego_images.progs").unlink(missing_ok=True)   # $OUT returns 8 files at most
    entry["stream"] = None
    return entry


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m progs_training.gpu_run",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="results folder ($OUT on the GPU machine)")
    p.add_argument("--rehearse", action="store_true",
                   help="the same stages on the CPU at tiny sizes (the suite's test)")
    p.add_argument("--data", default=None, help="data folder (see the module docstring)")
    p.add_argument("--stages", default=",".join(STAGES),
                   help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument("--total-s", type=float, default=None,
                   help="wall-clock budget of this process (default 510 s on the GPU: 9 "
                        "minutes less the wheel install)")
    args = p.parse_args(argv)
    mode = "rehearse" if args.rehearse else "gpu"
    plan = PLANS[mode]
    if args.total_s:
        plan = replace(plan, total_s=args.total_s)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if plan.device == "cuda":
        _cuda_build_environment()
    import torch

    torch.set_num_threads(max(1, min(16, os.cpu_count() or 1)) if plan.device == "cuda" else 1)
    run = Run(out, plan, mode, data_folder(args.data))
    wanted = set(args.stages.split(","))
    unknown = wanted - set(STAGES)
    if unknown:
        p.error(f"unknown stages {sorted(unknown)}")
    needs = {"images": plan.images_s + 40 if mode == "gpu" else 0,
             "distill": 60 if mode == "gpu" else 0,
             "finetune": plan.finetune_s + 30 if mode == "gpu" else 0,
             "lego": plan.lego_s + 30 if mode == "gpu" else 0}
    functions = {"environment": stage_environment, "gsplat_compile": stage_gsplat_compile,
                 "rasterizer": stage_rasterizer, "decode_render": stage_decode_render,
                 "images": stage_images, "distill": stage_distill,
                 "finetune": stage_finetune, "lego": stage_lego}
    for name in STAGES:
        if name in wanted:
            entry = run.stage(name, lambda fn=functions[name]: fn(run),
                              needs_s=needs.get(name, 0))
            if name == "environment" and entry and entry["status"] == "failed":
                break
    failed = [n for n, e in run.results["stages"].items() if e["status"] == "failed"]
    log(f"done in {time.time() - run.start:.0f} s; failed stages: {failed or 'none'}")
    return 1 if failed else 0


def _cuda_build_environment() -> None:
    """gsplat compiles at first use: as many jobs as cores, for this card's architecture."""
    os.environ.setdefault("MAX_JOBS", str(min(16, os.cpu_count() or 1)))
    if "TORCH_CUDA_ARCH_LIST" not in os.environ:
        try:
            import torch

            major, minor = torch.cuda.get_device_capability(0)
            os.environ["TORCH_CUDA_ARCH_LIST"] = f"{major}.{minor}"
        except Exception:  # no device: the environment stage reports it
            pass


if __name__ == "__main__":
    sys.exit(main())
