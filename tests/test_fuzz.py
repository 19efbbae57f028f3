"""A short fuzz run of every target in CI (fuzz/harness.py; the campaign is fuzz/results.json).

One process under the harness's address-space limit runs each target on its seeds (every
conformance stream, the sample, small real 3DGS files) and then on mutations for a second:
no input may raise anything but the reader's own error class, or take more than 2 s per
decoder.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_short_fuzz_run(tmp_path):
    stats = tmp_path / "stats.json"
    subprocess.run([sys.executable, str(ROOT / "fuzz" / "harness.py"), "smoke", "--seconds",
                    "1", "--stats", str(stats)], check=True, timeout=600)
    runs = json.loads(stats.read_text())
    assert [r["target"] for r in runs] == ["decode", "feed", "inspect", "truncate",
                                           "canonical", "independent", "ply", "spz", "splat"]
    for run in runs:
        assert run["inputs"] >= 10, run["target"]      # its seeds, then a second of mutations
        assert run["crashes"] == [], run
        assert run["hangs"] == [], run


def test_committed_results():
    """The campaign's results file: over a million inputs, no crash, no hang."""
    results = json.loads((ROOT / "fuzz" / "results.json").read_text())
    assert results["inputs"] >= 1_000_000
    assert results["crashes"] == 0 and results["hangs"] == 0
    assert {t["target"] for t in results["targets"]} == {
        "decode", "feed", "inspect", "truncate", "canonical", "independent", "ply", "spz",
        "splat"}
