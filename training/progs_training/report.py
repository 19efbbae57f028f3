"""Summarize ``progs-train`` reports of a folder into ``results.json`` and ``results.md``.

Usage: ``python -m progs_training.report OUT_DIR [--spz-reference BYTES]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["summarize", "markdown", "main"]


def summarize(reports: dict[str, dict], *, spz_reference: dict[str, int] | None = None) -> dict:
    """One entry per scene: machine, times, stream size, per-LoD quality, rate gap."""
    out = {}
    for name, r in sorted(reports.items()):
        entry = {key: r[key] for key in ("machine", "data", "train_seconds", "total_seconds",
                                         "stream_bytes", "image_size", "train_views",
                                         "test_views", "lods", "rate_gap")}
        entry["iterations"] = r["config"]["iterations"]
        entry["lambda"] = r["config"]["lambda_rate"]
        if spz_reference and name in spz_reference:
            entry["spz_bytes"] = spz_reference[name]
            entry["fraction_of_spz"] = r["stream_bytes"] / spz_reference[name]
        out[name] = entry
    return out


def markdown(summary: dict) -> str:
    lines = []
    for name, s in summary.items():
        lines += [f"## {name}", "",
                  f"Machine: {s['machine']}. {s['iterations']} iterations, lambda {s['lambda']}, "
                  f"training {s['train_seconds']} s (total {s['total_seconds']} s), "
                  f"{s['image_size'][0]}x{s['image_size'][1]} views, {s['train_views']} train / "
                  f"{s['test_views']} test.", "",
                  "| LoD | anchors | stream bytes | PSNR (dB) | SSIM |", "|---|---|---|---|---|"]
        lines += [f"| {q['lod']} | {q['anchors']} | {q['stream_bytes']} | {q['psnr']:.2f} | "
                  f"{q['ssim']:.4f} |" for q in s["lods"]]
        gap = s["rate_gap"]
        lines += ["", f"Attribute rate: float model {gap['float_bits'] / 8:.0f} B, integer model "
                      f"coded {gap['coded_bits'] / 8:.0f} B (gap {100 * gap['export_gap']:+.2f}%, "
                      f"coder overhead {100 * gap['coder_overhead']:+.2f}%)."]
        if "spz_bytes" in s:
            lines.append(f"Whole stream {s['stream_bytes']} B = {100 * s['fraction_of_spz']:.1f}% "
                         f"of the scene as SPZ ({s['spz_bytes']} B).")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m progs_training.report")
    p.add_argument("out_dir")
    p.add_argument("--spz-reference", type=int, default=None,
                   help="bytes of the plant scene as SPZ (for the size ratio)")
    args = p.parse_args(argv)
    out = Path(args.out_dir)
    reports = {path.stem: json.loads(path.read_text()) for path in sorted(out.glob("*.json"))
               if path.name != "results.json"}
    spz = {"plant": args.spz_reference} if args.spz_reference else None
    summary = summarize(reports, spz_reference=spz)
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    (out / "results.md").write_text("# ProGS training results\n\n" + markdown(summary))
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
