"""The GPU script, rehearsed: ``training/gpu_run.sh OUT --rehearse`` runs every stage of the
GPU run on the CPU at tiny sizes, so a broken stage fails here and not on a rented GPU."""

import json
import subprocess
import sys
from pathlib import Path

from progs_codec import decode

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "training" / "gpu_run.sh"


def _run(out, data_dir, *extra):
    return subprocess.run(["bash", str(SCRIPT), str(out), "--rehearse", "--data", str(data_dir),
                           *extra], capture_output=True, text=True, timeout=1500,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable,
                               "OMP_NUM_THREADS": "1", "HOME": str(out)})


def test_rehearsal_runs_every_stage(data_dir, tmp_path):
    done = _run(tmp_path, data_dir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    stages = results["stages"]
    assert list(stages) == ["environment", "gsplat_compile", "rasterizer", "decode_render",
                            "images", "distill", "finetune", "lego"]
    assert all(s["status"] == "ok" for s in stages.values()), stages
    for name in ("images", "distill", "finetune"):
        stream = (tmp_path / stages[name]["stream"]).read_bytes()
        assert decode(stream).lod == len(stages[name]["lods"])
    assert stages["finetune"]["refine"] == "REPLACE"
    assert (tmp_path / "gsplat_reference.npz").exists()
    md = (tmp_path / "results.md").read_text()
    assert "## finetune: ok" in md and "| LoD |" in md
    log = (tmp_path / "log.txt").read_text()          # flushed as it went
    assert "stage lego: ok" in log and "step 4/4" in log
    assert len(list(tmp_path.iterdir())) <= 8        # what $OUT can send back


def test_a_failed_stage_is_reported_and_the_run_goes_on(data_dir, tmp_path):
    done = _run(tmp_path, data_dir, "--stages", "environment,finetune,decode_render")
    assert done.returncode == 1
    stages = json.loads((tmp_path / "results.json").read_text())["stages"]
    assert stages["environment"]["status"] == "ok"
    assert stages["finetune"]["status"] == "failed"
    assert "no distilled stream" in stages["finetune"]["error"]
    assert stages["decode_render"]["status"] == "ok"
    assert "## finetune: failed" in (tmp_path / "results.md").read_text()
