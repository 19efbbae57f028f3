"""The paper-faithfulness ablation of ``training/README.md``: one small CPU run per row.

Rows are cumulative: each adds one change of issue 12 to the row above it, starting from the
trainer as it was (``previous``) and ending at today's defaults (``free_escapes``)::

    python -m progs_training.ablation --data ../shared/data/teacher_views/plant \\
        --init-points ../shared/data/scenes/plant/plant.splat --out training/results/ablation \\
        --size 48 --iters 300 --test-views 10

Each row trains ``--iters`` steps at ``--size`` pixels, writes its stream and report (the
CLI's JSON) to ``OUT/<row>.json``, and the table of every finished row to ``OUT/table.md``.
Rows already in ``OUT`` are skipped, so two processes can share the rows (``--rows``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from progs_codec.build import PRESETS

from .model import ModelConfig
from .train import PREVIOUS_LEARNING_RATES, TrainConfig

__all__ = ["ROWS", "row_config", "main"]

#: ``(name, what the row adds)``, in order; each row includes every change above it.
ROWS = (
    ("previous", "the trainer before issue 12"),
    ("algorithm1", "+ Algorithm 1 growth (own level, Octree-GS thresholds, queued parents)"),
    ("hash_rate", "+ R_hash in the rate loss (eq. 18)"),
    ("grid_by_rate", "+ hash grid sized by rate instead of the fixed 'small' preset"),
    ("infonce_eq10", "+ InfoNCE with dot products (eq. 10), from the start of adjustment (eq. 12)"),
    ("hac_schedule", "+ HAC's learning rates and phases (noise from 0.1 T)"),
    ("rate_from_t3", "+ the rate loss from T/3 as HAC (it ran from the noise phase)"),
    ("free_escapes", "+ escapes' bits no longer pulling the values"),
)


def row_config(name: str, base: TrainConfig) -> TrainConfig:
    """``base`` (today's defaults plus the run's sizes) with the changes after row ``name``
    undone."""
    names = [n for n, _ in ROWS]
    if name not in names:
        raise ValueError(f"unknown row {name!r}; rows: {names}")
    upto = names.index(name)
    config = base
    if upto < names.index("free_escapes"):
        config = replace(config, pull_outliers=True)
    if upto < names.index("rate_from_t3"):
        config = replace(config, rate_from_noise=True)
    if upto < names.index("algorithm1"):
        config = replace(config, growth=replace(config.growth, rule="every_level"))
    if upto < names.index("hash_rate"):
        config = replace(config, hash_rate=False)
    if upto < names.index("grid_by_rate"):
        config = replace(config, model=replace(config.model, grid=PRESETS["small"]))
    if upto < names.index("infonce_eq10"):
        config = replace(config, infonce_similarity="cosine", infonce_from=0.0)
    if upto < names.index("hac_schedule"):
        config = replace(config, noise_from=0.3, rate_from=0.5, grow_until=0.6,
                         learning_rates=PREVIOUS_LEARNING_RATES)
    return config


def _table(out: Path) -> str:
    from progs_codec import inspect

    lines = ["| row | what it adds | LoD 1 | 2 | 3 | 4 | 5 (dB) | bytes | grid bytes | "
             "anchors | train s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = [(name, what) for name, what in ROWS]
    rows += [(path.stem, f"as {path.stem.split('_lambda')[0]}, lambda "
                         f"{path.stem.split('_lambda')[1]}")
             for path in sorted(out.glob("*_lambda*.json"))]
    for name, what in rows:
        path = out / f"{name}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        grid = inspect((out / f"{name}.progs").read_bytes()).header_bytes["hash_grid"]
        psnrs = " | ".join(f"{q['psnr']:.2f}" for q in r["lods"])
        lines.append(f"| {name} | {what} | {psnrs} | {r['stream_bytes']:,} | {grid:,} | "
                     f"{r['lods'][-1]['anchors']:,} | {r['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from .cli import run

    p = argparse.ArgumentParser(prog="python -m progs_training.ablation",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--init-points", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iters", type=int, default=400)
    p.add_argument("--target-anchors", type=int, default=1000)
    p.add_argument("--test-views", type=int, default=10,
                   help="held-out views measured per row (default 10)")
    p.add_argument("--rows", default=",".join(n for n, _ in ROWS))
    p.add_argument("--lambda", dest="lam", type=float, default=None,
                   help="rate weight of every row (default: the trainer's); the rows are "
                        "then written as ROW_lambda<L>")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = TrainConfig(iterations=args.iters, num_levels=5, target_anchors=args.target_anchors,
                       device="cpu", model=ModelConfig(context_hidden=(32, 32)))
    suffix = ""
    if args.lam is not None:
        base = replace(base, lambda_rate=args.lam)
        suffix = f"_lambda{args.lam:g}"
    for row in args.rows.split(","):
        name = row + suffix
        report_path = out / f"{name}.json"
        if report_path.exists():
            continue
        start = time.time()
        print(f"[ablation] {name} ...", flush=True)
        run(args.data, str(out / f"{name}.progs"), row_config(row, base), size=args.size,
            init_points=args.init_points, log_path=str(report_path), show_progress=False,
            test_views=args.test_views)
        print(f"[ablation] {name} done in {time.time() - start:.0f} s", flush=True)
        (out / "table.md").write_text(_table(out))
    print(_table(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
