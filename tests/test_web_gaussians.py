"""The viewer's neural Gaussians (web/src/gaussians.js, spec 9.1) against the Python reference
(progs_codec.render.gaussians.generate_gaussians and ProgsModel.drawn): the bundled sample
(refine add) and a random replace model, through web/tools/dump_gaussians.mjs. Skips when
node is not installed."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import progs_codec
from progs_codec import Refinement
from progs_codec.render.gaussians import generate_gaussians
from progs_codec.testing import synthetic_model

ROOT = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")
DUMP = ROOT / "web" / "tools" / "dump_gaussians.mjs"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def _js_gaussians(stream: Path, lod: int, center, tmp_path: Path) -> dict:
    out = tmp_path / f"g{lod}.bin"
    subprocess.run([NODE, str(DUMP), str(stream), str(lod), ",".join(f"{v:.9g}" for v in center),
                    str(out)], check=True, timeout=120)
    raw = out.read_bytes()
    count, drawn, lod_anchors = np.frombuffer(raw[:12], np.uint32)
    refine = raw[12]
    floats = np.frombuffer(raw[13:13 + 4 * 14 * int(count)], np.float32)
    mask = np.frombuffer(raw[13 + 4 * 14 * int(count):], np.uint8)
    fields, at = {}, 0
    for name, width in (("means", 3), ("scales", 3), ("quats", 4), ("opacities", 1), ("colors", 3)):
        fields[name] = floats[at:at + width * count].reshape(count, width).squeeze()
        at += width * count
    return dict(fields, count=int(count), drawn=int(drawn), lod_anchors=int(lod_anchors),
                refine=int(refine), mask=mask.astype(bool))


def _compare(model, stream, lod, center, tmp_path):
    js = _js_gaussians(stream, lod, center, tmp_path)
    ref = generate_gaussians(model, np.asarray(center, np.float32), lod=lod)
    assert js["refine"] == int(model.refine)
    np.testing.assert_array_equal(js["mask"], model.drawn(lod))
    assert js["drawn"] == int(model.drawn(lod).sum()) and js["lod_anchors"] == model.num_anchors(lod)
    assert js["count"] == len(ref)
    for name in ("means", "scales", "quats", "opacities", "colors"):
        np.testing.assert_allclose(js[name], getattr(ref, name).squeeze(), rtol=0, atol=2e-5,
                                   err_msg=name)


@pytest.mark.parametrize("lod", [1, 3, 5])
def test_sample_gaussians_match_the_reference(lod, tmp_path):
    stream = ROOT / "examples" / "plant.progs"
    model = progs_codec.decode(stream)
    _compare(model, stream, lod, (0.3, -0.4, 1.7), tmp_path)


def test_replace_draws_the_leaves_of_the_cut(tmp_path):
    model = dataclasses.replace(synthetic_model(400, 3, seed=3, attribute_coding="raw"),
                                refine=Refinement.REPLACE)
    stream = tmp_path / "replace.progs"
    stream.write_bytes(progs_codec.encode(model))
    model = progs_codec.decode(stream)
    assert model.refine == Refinement.REPLACE
    for lod in (1, 2, 3):
        drawn = model.drawn(lod)
        assert lod == 1 or not drawn.all()            # the cut hides refined parents
        _compare(model, stream, lod, (0.5, -1.0, -3.0), tmp_path)
