"""benchmarks/bench_rd.py: the Bjontegaard metric on known cases, and a quick run end to end on
a toy scene (its own teacher views) with a synthetic stream."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from progs_codec import Refinement, encode, inspect
from progs_codec.render.camera import orbit_cameras
from progs_codec.render.images import render, to_uint8
from progs_codec.render.splats import Splats, write_ply
from progs_codec.testing import synthetic_model

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
RERUN = "rerun: nice -n 10 python benchmarks/bench_rd.py --update-readme"


@pytest.fixture(scope="module")
def bd():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bdrate
    finally:
        sys.path.remove(str(BENCHMARKS))
    return bdrate


# -- the Bjontegaard metric ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_constant_rate_ratio_is_its_bd_rate(bd, method):
    quality = [30.0, 33.0, 35.5, 37.0, 39.0]
    rate = [100.0, 210.0, 380.0, 620.0, 1000.0]
    assert bd.bd_rate(rate, quality, [0.8 * r for r in rate], quality,
                      method=method) == pytest.approx(-20.0, abs=1e-9)
    assert bd.bd_rate(rate, quality, [1.5 * r for r in rate], quality,
                      method=method) == pytest.approx(50.0, abs=1e-9)


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_lines_in_log_rate_with_other_points_and_partial_overlap(bd, method):
    # log10 R = a + 0.1 Q for both, a differs by -0.1: exactly 10**-0.1 - 1 whatever the
    # sample points, both fits reproduce lines.
    qa = np.array([20.0, 24.0, 28.0, 32.0, 36.0])
    qt = np.array([22.0, 25.0, 29.0, 33.0, 38.0, 40.0])
    ra, rt = 10 ** (1 + 0.1 * qa), 10 ** (0.9 + 0.1 * qt)
    expected = (10 ** -0.1 - 1) * 100
    assert bd.bd_rate(ra, qa, rt, qt, method=method) == pytest.approx(expected, abs=1e-9)
    # The points' order does not matter.
    assert bd.bd_rate(ra[::-1], qa[::-1], rt, qt, method=method) == pytest.approx(expected)


def test_cubic_fit_is_exact_on_cubics(bd):
    p = np.poly1d([0.0002, -0.018, 0.59, -5.7])      # 0.0002 (Q-30)^3 + 0.05 Q + ..., rising
    q = np.linspace(20, 40, 6)
    qt = np.linspace(18, 44, 7)
    ra, rt = 10 ** p(q), 10 ** (p(qt) + 0.02 * (qt - 25))
    # Over the overlap [20, 40] the test curve sits 0.02 (Q - 25) higher: mean 0.1.
    assert bd.bd_rate(ra, q, rt, qt, method="cubic") == pytest.approx(
        (10 ** 0.1 - 1) * 100, abs=1e-6)


def test_antisymmetric_and_bd_psnr(bd):
    qa, ra = [30, 32, 35, 37], [100, 160, 300, 450]
    qt, rt = [29, 33, 34.5, 38], [70, 150, 200, 400]
    x = bd.bd_rate(ra, qa, rt, qt)
    y = bd.bd_rate(rt, qt, ra, qa)
    assert (1 + x / 100) * (1 + y / 100) == pytest.approx(1.0)
    assert x < 0 < bd.bd_psnr(ra, qa, rt, qt)
    # Equal rates at a quality shift of exactly 1 dB everywhere: BD-PSNR is 1 dB.
    assert bd.bd_psnr(ra, qa, ra, [v + 1 for v in qa]) == pytest.approx(1.0)


def test_dominated_points_are_dropped_and_errors_are_clear(bd):
    rate, quality = [10, 20, 30, 40], [12.0, 15.0, 14.0, 16.0]   # the third adds bytes, loses dB
    r, q, dropped = bd.efficient_points(rate, quality)
    assert dropped == [2] and r.tolist() == [10, 20, 40] and q.tolist() == [12, 15, 16]
    with pytest.raises(bd.BDError, match="no quality range"):
        bd.bd_rate([1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [5, 6, 7, 8])
    with pytest.raises(bd.BDError, match="at least 4"):
        bd.bd_rate([1, 2, 3], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4], method="cubic")
    with pytest.raises(bd.BDError, match="> 0"):
        bd.bd_rate([0, 2], [1, 2], [1, 2], [1, 2])
    at = bd.interpolate_at_rate([10, 100, 1000], [10.0, 20.0, 30.0], [10, 31.6227766, 5])
    assert at[0] == pytest.approx(10) and at[1] == pytest.approx(15) and math.isnan(at[2])


# -- bench_rd.py --quick, end to end -------------------------------------------------------


def _toy_data(root: Path, size: int = 32, views: int = 2) -> None:
    """A toy teacher (random Gaussians in the synthetic model's cube) and its own test views."""
    rng = np.random.default_rng(0)
    n = 300
    teacher = Splats(means=rng.uniform(-0.8, 0.8, (n, 3)),
                     scales=np.exp(rng.normal(-3.0, 0.4, (n, 3))),
                     quats=rng.normal(0, 1, (n, 4)), opacities=rng.uniform(0.2, 0.95, n),
                     sh=rng.normal(0, 0.5, (n, 1, 3)))
    (root / "scenes" / "toy").mkdir(parents=True)
    write_ply(root / "scenes" / "toy" / "toy.ply", teacher)
    folder = root / "teacher_views" / "toy"
    (folder / "test").mkdir(parents=True)
    gl_to_cv = np.diag([1.0, -1.0, -1.0, 1.0])
    frames = []
    for i, cam in enumerate(orbit_cameras((0, 0, 0), 3.0, views, width=size, height=size,
                                          fov_deg=math.degrees(0.8))):
        image = np.clip(render(teacher, cam, backend="cpu").image, 0, 1)
        rgba = np.concatenate([to_uint8(image), np.full((size, size, 1), 255, np.uint8)], 2)
        from PIL import Image

        Image.fromarray(rgba).save(folder / "test" / f"r_{i}.png")
        c2w = np.linalg.inv(cam.world_to_camera) @ gl_to_cv
        frames.append({"file_path": f"./test/r_{i}", "transform_matrix": c2w.tolist()})
    (folder / "transforms_test.json").write_text(json.dumps(
        {"camera_angle_x": 0.8, "size": size, "frames": frames}))


def _finite_numbers(obj, where="result"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _finite_numbers(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _finite_numbers(v, f"{where}[{i}]")
    elif isinstance(obj, float):
        yield where, obj


def test_quick_run_on_a_toy_scene(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("scipy")
    pytest.importorskip("gsply")
    data, out = tmp_path / "data", tmp_path / "out"
    _toy_data(data)
    model = synthetic_model(300, 3, seed=0)
    stream, replace = tmp_path / "rate1.progs", tmp_path / "rate1r.progs"
    stream.write_bytes(encode(model))
    replace.write_bytes(encode(dataclasses.replace(model, refine=Refinement.REPLACE)))
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_rd.py"), "--quick", "--data", str(data),
         "--streams", f"toy={stream}", f"toy={replace}", "--only-given",
         "--topk", "20", "60", "150", "--hd", "48x27", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    res = json.loads((out / "rd_toy.json").read_text())

    assert {"scene", "command", "timestamp", "machine", "versions", "protocol", "streams",
            "rows", "summary", "timings", "elapsed_s"} <= set(res)
    assert res["scene"] == "toy" and "--quick" in res["command"]
    assert res["machine"]["cores"] >= 1 and res["machine"]["cpu"]
    assert res["versions"]["numpy"] == np.__version__
    assert res["protocol"]["views"] == 2 and res["protocol"]["size"] == 32
    systems = {}
    for row in res["rows"]:
        assert {"system", "rate_point", "lod", "bytes", "psnr", "ssim", "decode_s",
                "render_s"} <= set(row)
        assert all(isinstance(row[k], float) for k in ("psnr", "ssim", "decode_s", "render_s"))
        assert isinstance(row["bytes"], int) and row["bytes"] > 0
        systems.setdefault(row["system"], []).append(row)
    assert sorted(systems) == ["ply", "progs", "spz", "spz-ladder", "spz-topk"]
    progs = systems["progs"]
    assert [(r["rate_point"], r["lod"]) for r in progs] == [
        ("rate1", 1), ("rate1", 2), ("rate1", 3), ("rate1r", 1), ("rate1r", 2), ("rate1r", 3)]
    levels = res["streams"][0]["inspect"]["levels"]
    assert [r["bytes"] for r in progs[:3]] == [lv["cumulative_bytes"] for lv in levels]
    assert [s["inspect"]["refine"] for s in res["streams"]] == ["add", "replace"]
    # ADD draws every anchor of the LoD; REPLACE only those not refined below (the finest
    # LoD draws the leaves), and it renders through the same API.
    assert all(r["drawn_anchors"] == r["anchors"] for r in progs[:3])
    assert all(r["drawn_anchors"] < r["anchors"] for r in progs[4:])
    assert progs[3]["psnr"] != progs[0]["psnr"] or progs[4]["psnr"] != progs[1]["psnr"]
    assert [r["gaussians"] for r in systems["spz-topk"]] == [19, 20, 60, 75, 150, 300]
    ladder = systems["spz-ladder"]                 # 3 levels, x4: 19, 75, 300 Gaussians
    assert [r["lod"] for r in ladder] == [1, 2, 3]
    assert all(b > a for a, b in zip([r["bytes"] for r in ladder],
                                     [r["bytes"] for r in ladder][1:]))
    assert ladder[-1]["bytes"] > systems["spz"][0]["bytes"]   # paid for every file
    for where, value in _finite_numbers(res["rows"]):
        assert math.isfinite(value), where
    assert systems["ply"][0]["psnr"] > 40       # the teacher against its own 8-bit views
    summary = res["summary"]["rate_points"]["rate1"]
    assert [lv["lod"] for lv in summary["lods"]] == [1, 2, 3]
    assert set(summary) >= {"bd_rate_pchip", "bd_rate_cubic", "bd_psnr_pchip", "lods", "notes"}
    timings = res["timings"]
    assert [r["lod"] for r in timings["rows"]] == [1, 2, 3] and timings["encode"]["identical"]
    for where, value in _finite_numbers(timings):
        assert math.isfinite(value) and value >= 0, where
    assert (out / "rd_toy.png").stat().st_size > 0 and (out / "bits_toy_rate1.png").exists()
    tables = (out / "rd_tables.md").read_text()
    assert "| rate1 | 1 |" in tables and "| rate1r (replace) | 1 |" in tables

    # --replot measures nothing and redraws the same tables from the JSON.
    (out / "rd_tables.md").unlink()
    (out / "rd_toy.png").unlink()
    again = subprocess.run([sys.executable, str(BENCHMARKS / "bench_rd.py"), "--replot",
                            "--out", str(out), "--figures", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / "rd_tables.md").read_text() == tables and (out / "rd_toy.png").exists()


# -- the README's figures and tables are of the bundled sample --------------------------------


def test_readme_rate_distortion_is_of_the_bundled_sample():
    """Replacing examples/plant.progs without rerunning the benchmark leaves the README's
    table, figures and results describing another stream: this test says so."""
    info = inspect(ROOT / "examples" / "plant.progs")
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- bench_rd:begin", 1)[1].split("<!-- bench_rd:end -->", 1)[0]
    rows = re.findall(r"^\| sample(?: \(replace\))? \| (\d+) \| ([\d,]+) \| ([\d.]+) \|",
                      block, flags=re.M)
    assert [(int(lod), int(anchors.replace(",", "")), float(kb)) for lod, anchors, kb in rows] == [
        (lv.lod, lv.lod_anchors, round(lv.cumulative_bytes / 1e3, 1)) for lv in info.levels], RERUN
    result = json.loads((BENCHMARKS / "results" / "rd_plant.json").read_text())
    sample = next(s for s in result["streams"] if s["label"] == "sample")
    assert sample["inspect"]["total_bytes"] == info.total_bytes, RERUN
    for name in ("rd_plant.png", "bits_plant_sample.png"):
        assert f"(docs/{name})" in block and (ROOT / "docs" / name).is_file(), RERUN
