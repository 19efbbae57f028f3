"""The browser viewer's default view (web/viewer/view.js) is the first camera of
``progs-codec render``'s orbit, around the up of the frame's convention (spec 3.1, 9.2): -y for
OpenCV axes, +y for OpenGL axes, +z for Z-up axes. Runs view.js in node (no browser)."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from progs_codec.model import CoordinateConvention, SceneFrame
from progs_codec.render.camera import framing_distance, orbit_cameras, scene_sphere
from progs_codec.render.images import scene_up

ROOT = Path(__file__).resolve().parents[1]
VIEW = ROOT / "web" / "viewer" / "view.js"
NODE = shutil.which("node")

pytestmark = [pytest.mark.skipif(NODE is None, reason="node is not installed"),
              pytest.mark.skipif(not VIEW.is_file(), reason="web/ is not in this checkout")]


def _js_view(positions: np.ndarray, convention: int) -> dict:
    script = (f"import {{ defaultView }} from {json.dumps(VIEW.as_uri())};\n"
              f"const p = Float32Array.from({json.dumps(positions.ravel().tolist())});\n"
              f"console.log(JSON.stringify(defaultView(p, {convention})));\n")
    r = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("convention, up", [(0, (0, -1, 0)), (1, (0, 1, 0)), (2, (0, 0, 1))])
def test_viewer_default_view_is_the_orbit_first_camera(convention, up):
    rng = np.random.default_rng(5)
    positions = (rng.normal(0, 1, (300, 3)) * [2.0, 1.0, 0.5] + [1, -2, 3]).astype(np.float32)
    frame = SceneFrame((0.0, 0.0, 0.0), 1.0, 0, 1, CoordinateConvention(convention))
    assert scene_up(frame) == up
    view = _js_view(positions, convention)
    assert view["up"] == list(up)
    center, radius = scene_sphere(positions.astype(np.float64))
    cam = orbit_cameras(center, framing_distance(radius), 1, up=up)[0]
    np.testing.assert_allclose(view["target"], center, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(view["eye"], cam.center, rtol=1e-5, atol=1e-5)
    # 20 degrees above the horizon around up
    direction = (np.array(view["eye"]) - center) / np.linalg.norm(np.array(view["eye"]) - center)
    assert np.degrees(np.arcsin(direction @ np.array(up, float))) == pytest.approx(20.0, abs=1e-6)
