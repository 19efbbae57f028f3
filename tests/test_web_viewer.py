"""The streaming viewer (web/viewer, built with esbuild) in a real browser: Debian's chromium,
headless with software WebGL (SwiftShader), driven by playwright-core (web/node_modules)
through web/tools/drive_browser.mjs. No browser is ever downloaded.

One browser session runs every page job of this module (module fixture), over a loopback
server (progs_codec.tools.serve, the streaming example's server) that serves the built page
and the streams with byte ranges:

- the bundled sample, stepping LoD by LoD: a canvas PNG per LoD against the Python CPU
  renderer at the same camera (PSNR floors below);
- the sample at a throttled bandwidth: time to LoD 1 and to the full LoD, and LoD 1 on screen
  within 300 ms of its last byte;
- a corrupt stream and a cut stream: an error in the page, the last complete LoD still drawn;
- decoding the sample in the page against progs_codec.decode in a fresh interpreter.

Skips, with the reason, when node, chromium or web/node_modules (``npm ci`` in web/) is
missing. `.ci/run` installs all three.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import progs_codec
from progs_codec.tools.serve import serve_directory

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
SAMPLE = ROOT / "examples" / "plant.progs"
NODE = shutil.which("node")
CHROMIUM = os.environ.get("PROGS_CHROMIUM") or shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
PLAYWRIGHT = WEB / "node_modules" / "playwright-core"
ESBUILD = WEB / "node_modules" / "esbuild"

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                       "(Debian: apt-get install -y chromium)"),
    pytest.mark.skipif(not (PLAYWRIGHT.is_dir() and ESBUILD.is_dir()),
                       reason="web/node_modules lacks playwright-core or esbuild: run `npm ci` in web/"),
]

SIZE = 256
MBIT = 2.0
#: PSNR floor (dB) of Spark's render in SwiftShader against progs_codec's CPU renderer
#: (spec 9.3) of the same Gaussians (spec 9.1) at the same camera, per LoD, 256 x 256.
#: Measured on the bundled sample (Chromium 156, Spark 2.2.0, SwiftShader, deterministic run to
#: run): LoD 1..5 55.57 / 52.10 / 51.88 / 52.07 / 52.55 dB; the floor leaves ~4 dB for other
#: samples (Spark stores colours and log-scales as float16, rotations in 32 bits).
PSNR_FLOOR = {k: 48.0 for k in range(1, 17)}
#: The brief's targets.
LOD1_AFTER_BYTES_MS = 300.0
DECODE_RATIO = 2.0


def _reference_camera(model):
    from progs_codec.render.camera import framing_distance, orbit_cameras, scene_sphere
    from progs_codec.render.images import scene_up

    center, radius = scene_sphere(model.positions())
    up = scene_up(model.frame)
    cam = orbit_cameras(center, framing_distance(radius), 1, width=SIZE, height=SIZE, up=up)[0]
    return cam, center, up


def _python_decode_times(path: Path, runs: int = 10) -> dict:
    """progs_codec.decode of the stream in a fresh interpreter: the first call, then the
    median of ``runs`` more (bytes in memory, modules loaded, as the page measures)."""
    code = (
        "import json, sys, time\n"
        "import progs_codec\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "times = []\n"
        f"for _ in range({runs + 1}):\n"
        "    t = time.perf_counter(); progs_codec.decode(data); times.append(time.perf_counter() - t)\n"
        "warm = sorted(times[1:])\n"
        "print(json.dumps({'coldMs': 1e3 * times[0], 'warmMs': 1e3 * warm[len(warm) // 2]}))\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         timeout=300, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def browser_run(tmp_path_factory):
    """Builds the page, serves it with the streams, runs every browser job once."""
    tmp = tmp_path_factory.mktemp("viewer")
    dist = tmp / "dist"
    build = subprocess.run([NODE, str(WEB / "tools" / "build_viewer.mjs"), "--outdir", str(dist)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr

    data = SAMPLE.read_bytes()
    info = progs_codec.inspect(data)
    levels = info.levels
    # corrupt: one byte inside LEVL 3's payload (its CRC fails): LoD 1 and 2 are shown
    lv3 = levels[2]
    corrupt = bytearray(data)
    corrupt[lv3.cumulative_bytes - 40] ^= 0x5A
    (tmp / "corrupt.progs").write_bytes(bytes(corrupt))
    # cut: the file stops in the middle of LEVL 4
    cut_at = (levels[2].cumulative_bytes + levels[3].cumulative_bytes) // 2
    (tmp / "cut.progs").write_bytes(data[:cut_at])

    model = progs_codec.decode(data)
    cam, center, up = _reference_camera(model)
    cam_param = ",".join(f"{v:.9g}" for v in (*cam.center, *center, *up, 45.0))
    files = {"/stream/plant.progs": SAMPLE, "/stream/corrupt.progs": tmp / "corrupt.progs",
             "/stream/cut.progs": tmp / "cut.progs"}
    files.update({f"/src/{p.name}": p for p in (WEB / "src").glob("*.js")})
    out = tmp / "out"
    out.mkdir()
    jobs = [
        {"name": "lods", "kind": "lods",
         "query": f"src=stream/plant.progs&step=1&overlay=0&size={SIZE}x{SIZE}&cam={cam_param}"},
        {"name": "throttled", "kind": "stream", "query": f"src=stream/plant.progs&mbit={MBIT:g}"},
        {"name": "corrupt", "kind": "stream", "query": "src=stream/corrupt.progs", "settleMs": 1500,
         "canvas": True},
        {"name": "cut", "kind": "stream", "query": "src=stream/cut.progs", "settleMs": 1500,
         "canvas": True},
        {"name": "missing", "kind": "stream", "query": "src=stream/nothing-here.progs"},
        {"name": "decode", "kind": "decode", "stream": "/stream/plant.progs", "runs": 10},
    ]
    started = time.perf_counter()
    with serve_directory(dist, files=files) as base:
        spec = {"chromium": CHROMIUM, "base": base, "jobs": jobs}
        (tmp / "jobs.json").write_text(json.dumps(spec))
        r = subprocess.run([NODE, str(WEB / "tools" / "drive_browser.mjs"), str(tmp / "jobs.json"),
                            str(out)], capture_output=True, text=True, timeout=400, cwd=WEB)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    results = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"\nbrowser jobs: {time.perf_counter() - started:.1f} s "
          + ", ".join(f"{k} {v.get('wallMs', 0) / 1e3:.1f} s" for k, v in results.items() if k != "log"))
    for name, res in results.items():
        if name != "log":
            assert "failed" not in res, f"{name}: {res['failed']}"
    return {"results": results, "model": model, "camera": cam, "out": out, "info": info,
            "cut_at": cut_at}


def test_page_streams_the_sample_over_loopback(browser_run):
    res = browser_run["results"]["lods"]
    info = browser_run["info"]
    assert res["status"] == "done", res
    assert res["error"] is None and res["errorText"] is None
    assert res["ranges"] is True                          # HTTP Range requests were answered
    assert res["total"] == res["received"] == info.total_bytes
    assert [lv["lod"] for lv in res["lods"]] == [lv.lod for lv in info.levels]
    for lv, ref in zip(res["lods"], info.levels):
        assert lv["lodAnchors"] == ref.lod_anchors
        assert lv["shownAt"] is not None and lv["splats"] > 0
    assert not [line for line in browser_run["results"]["log"] if "pageerror" in line], \
        browser_run["results"]["log"]


def test_each_lod_matches_the_python_cpu_renderer(browser_run):
    from PIL import Image

    from progs_codec.render import render
    from progs_codec.render.images import psnr

    res = browser_run["results"]["lods"]
    model, cam = browser_run["model"], browser_run["camera"]
    assert len(res["shots"]) == model.lod
    report = []
    for k, path in enumerate(res["shots"], start=1):
        page = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
        assert page.shape == (SIZE, SIZE, 3)
        ref = np.clip(render(model, cam, lod=k, backend="cpu").image, 0.0, 1.0)
        ref = np.round(ref * 255.0) / 255.0                # both as 8-bit images
        value = psnr(page, ref)
        report.append((k, value))
        Image.fromarray((ref * 255).astype(np.uint8)).save(Path(path).with_suffix(".ref.png"))
    print("\nPSNR Spark (Chromium, SwiftShader) vs the CPU renderer, per LoD: "
          + ", ".join(f"LoD {k} {v:.2f} dB" for k, v in report))
    for k, value in report:
        assert value >= PSNR_FLOOR[k], f"LoD {k}: {value:.2f} dB < floor {PSNR_FLOOR[k]} dB"


def test_time_to_lod1_and_full_at_a_throttled_bandwidth(browser_run):
    res = browser_run["results"]["throttled"]
    assert res["status"] == "done", res
    lods = res["lods"]
    first, last = lods[0], lods[-1]
    after = [lv["shownAt"] - lv["arrivedAt"] for lv in lods]
    t0 = res["requestAt"]
    print(f"\nat {MBIT:g} Mbit/s ({res['total']:,} bytes), ms from the first request: LoD 1 on "
          f"screen at {first['shownAt'] - t0:.0f} (its {first['byteEnd']:,} bytes in at "
          f"{first['arrivedAt'] - t0:.0f}), full LoD "
          f"{last['lod']} at {last['shownAt'] - t0:.0f} (the page's own load: {t0:.0f} ms); "
          f"last byte to screen per LoD: " + ", ".join(f"{v:.0f}" for v in after) + " ms; "
          f"MLPs (spec 9.1) per LoD: " + ", ".join(
              "?" if lv.get("genMs") is None else f"{lv['genMs']:.0f}" for lv in lods) + " ms")
    assert all(lv["shownAt"] is not None for lv in lods)
    # the bytes arrive no faster than the throttle allows
    assert first["arrivedAt"] - t0 >= 0.8 * 1e3 * first["byteEnd"] * 8 / (MBIT * 1e6)
    assert after[0] <= LOD1_AFTER_BYTES_MS, f"LoD 1 on screen {after[0]:.0f} ms after its bytes"


@pytest.mark.parametrize("name, error_class", [("corrupt", "checksum"), ("cut", "truncated")])
def test_a_corrupt_or_cut_stream_shows_an_error(browser_run, name, error_class):
    from PIL import Image

    res = browser_run["results"][name]
    assert res["status"] == "error", res
    assert res["error"]["errorClass"] == error_class
    assert res["errorText"] and error_class in res["errorText"]
    # the levels before the damage were decoded and drawn: not a blank canvas
    complete = 2 if name == "corrupt" else 3
    assert [lv["lod"] for lv in res["lods"]] == list(range(1, complete + 1))
    assert res["lods"][-1]["shownAt"] is not None
    canvas = np.asarray(Image.open(browser_run["out"] / f"{name}-canvas.png").convert("RGB"))
    assert canvas.max() > 64 and (canvas.sum(-1) > 30).mean() > 0.01


def test_a_missing_stream_shows_an_error(browser_run):
    res = browser_run["results"]["missing"]
    assert res["status"] == "error"
    assert "404" in res["errorText"]


def test_chromium_decodes_the_sample_within_twice_python(browser_run):
    page = browser_run["results"]["decode"]
    assert page["lod"] == 5 and page["bytes"] == SAMPLE.stat().st_size
    py = _python_decode_times(SAMPLE)
    print(f"\ndecode {SAMPLE.name}: Chromium cold {page['coldMs']:.1f} ms, warm {page['warmMs']:.1f} ms; "
          f"Python cold {py['coldMs']:.1f} ms, warm {py['warmMs']:.1f} ms; "
          f"ratio warm {page['warmMs'] / py['warmMs']:.2f}x, cold {page['coldMs'] / py['coldMs']:.2f}x")
    assert page["warmMs"] <= DECODE_RATIO * py["warmMs"]
