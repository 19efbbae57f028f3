"""Distilling a few thousand Gaussians of a real scene, end to end, on the CPU.

The teacher is a crop of plant (its Gaussians inside a box around the pot's rim). Floors
were measured with this test's settings on the 2-core CPU (see the values in the asserts)
and sit about 2 dB below what was measured.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from progs_codec import Refinement, decode, encode, inspect
from progs_codec.render import Splats, read_splats, write_splats
from progs_training.cli import evaluation_views, main
from progs_training.distill import DistillConfig, distill
from progs_training.export import evaluate_stream


@pytest.fixture(scope="module")
def plant_crop(data_dir, tmp_path_factory):
    s = read_splats(data_dir / "scenes" / "plant" / "plant.ply")
    centre = np.median(s.means, axis=0)
    keep = (np.abs(s.means - centre) < [0.07, 0.07, 0.07]).all(axis=1)
    path = tmp_path_factory.mktemp("crop") / "plant_crop.ply"
    write_splats(path, Splats(s.means[keep], s.scales[keep], s.quats[keep],
                              s.opacities[keep], s.sh[keep]))
    return path, int(keep.sum())


@pytest.fixture(scope="module")
def distilled(plant_crop):
    path, _ = plant_crop
    views = evaluation_views(str(path), None, size=64, count=6, backend="cpu")

    def evaluate(stream):
        return [asdict(q) for q in evaluate_stream(stream, views, backend="cpu")]

    config = DistillConfig(lam=1e-5, levels=3, steps=150)
    return distill(path, config, evaluate=evaluate)


def test_crop_is_a_few_thousand_gaussians(plant_crop):
    assert 2000 <= plant_crop[1] <= 8000


def test_quality_floor_and_rising_with_lod(distilled):
    lods = distilled.report["lods"]
    psnr = [q["psnr"] for q in lods]
    assert len(psnr) == 3
    assert psnr[0] < psnr[1] < psnr[2], psnr
    assert psnr[-1] > 21.0, psnr
    sizes = [q["stream_bytes"] for q in lods]
    assert sizes == sorted(sizes) and len(distilled.stream) - sizes[-1] == 12   # ENDS


def test_stream_round_trips_and_replaces(distilled):
    stream = distilled.stream
    model = decode(stream)
    assert encode(model) == stream
    assert model.refine == Refinement.REPLACE
    assert inspect(stream).levels[-1].cumulative_bytes == len(stream) - 12    # ENDS
    gap = distilled.report["rate_gap"]
    assert abs(gap["export_gap"]) < 0.02, gap


def test_report_has_timings_and_machine(distilled):
    r = distilled.report
    assert {"read_teacher", "targets", "fit", "export"} <= set(r["seconds"])
    assert r["machine"].startswith("CPU") and r["stream_bytes"] == len(distilled.stream)
    assert r["fit_log"][0]["bits_per_slot"] > r["fit_log"][-1]["bits_per_slot"] * 0.5


def test_cli_distills_a_teacher_file(plant_crop, tmp_path, capsys):
    path, _ = plant_crop
    out = tmp_path / "crop.progs"
    code = main(["--data", str(path), "--out", str(out), "--iters", "20", "--levels", "2",
                 "--quiet"])
    assert code == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["route"] == "distill" and len(report["lods"]) == 2
    assert decode(out.read_bytes()).lod == 2
    assert "LoD 2" in capsys.readouterr().out


def test_cli_rejects_bad_arguments_without_traceback(plant_crop, tmp_path, capsys):
    path, _ = plant_crop
    with pytest.raises(SystemExit) as info:
        main(["--data", str(path), "--out", str(tmp_path / "no" / "dir.progs")])
    assert info.value.code == 2 and "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--data", str(path), "--out", str(tmp_path / "x.progs"), "--lambda", "-1"])
    bad = tmp_path / "bad.splat"
    bad.write_bytes(bytes(33))
    assert main(["--data", str(bad), "--out", str(tmp_path / "x.progs"), "--quiet"]) == 2
    assert "32-byte" in capsys.readouterr().err


def test_view_dependent_colour_is_fitted(plant_crop, tmp_path):
    """No SH > 0 scene is in the shared data, so the crop gets one: SH bands 1-3 from a smooth
    function of position (strong band 1, weaker 2-3; a field that varies
    within an anchor as fast as the first try here, 3x faster, was beyond 24 hidden units). The decoded stream must look like the
    view-dependent teacher, not like its view-independent part (DC only)."""
    path, _ = plant_crop
    s = read_splats(path)
    rest = np.zeros((len(s.means), 15, 3), np.float32)
    phase = (s.means - s.means.mean(0)) / np.ptp(s.means, 0).max() * np.pi
    for c in range(3):
        rest[:, 0:3, c] = 0.5 * np.cos(0.3 * phase + c)              # band 1: [N, 3] per channel
        rest[:, 3:8, c] = 0.1 * np.sin(0.6 * phase[:, [0, 1, 2, 0, 1]] + c)
        rest[:, 8:15, c] = 0.03 * np.cos(0.9 * phase[:, [0, 1, 2, 0, 1, 2, 0]] + c)
    sh3 = np.concatenate([s.sh[:, :1], rest], 1)
    teacher, flat = tmp_path / "sh3.ply", tmp_path / "dc.ply"
    write_splats(teacher, Splats(s.means, s.scales, s.quats, s.opacities, sh3))
    write_splats(flat, Splats(s.means, s.scales, s.quats, s.opacities, s.sh[:, :1]))
    views = evaluation_views(str(teacher), None, size=64, count=6, backend="cpu")
    flat_views = evaluation_views(str(flat), None, size=64, count=6, backend="cpu")
    result = distill(teacher, DistillConfig(lam=1e-5, levels=3, steps=600))
    model = decode(result.stream)
    assert np.abs(model.gaussian_mlps.color.weights[0][:, -3:]).max() > 0   # view input used
    full = evaluate_stream(result.stream, views, backend="cpu")[-1].psnr
    dc_only = evaluate_stream(result.stream, flat_views, backend="cpu")[-1].psnr
    # the teacher's own view dependence is worth this much:
    between = [10 * np.log10(1 / np.mean((a.image - b.image) ** 2))
               for a, b in zip(views, flat_views)]
    # measured: 29.7 dB against the teacher, 24.3 against its DC part (150 steps: 23.6, 30.8)
    assert full > dc_only + 3.0, (full, dc_only, np.mean(between))
    assert full > 27.5, full
