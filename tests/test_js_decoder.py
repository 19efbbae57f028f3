"""The JavaScript decoder in web/ (a third implementation written from spec/): its own tests
(`node --test web/test/`) and the whole conformance suite through the runner, as CI runs the
two Python decoders. Skips when node is not installed or when web/ is absent (it is not under
version control: a worktree has none)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
NODE = shutil.which("node")

pytestmark = [pytest.mark.skipif(NODE is None, reason="node is not installed"),
              pytest.mark.skipif(not (WEB / "bin" / "progs-dump.mjs").is_file(),
                                 reason="web/ (the JavaScript decoder) is not in this checkout")]


def _runner():
    """The conformance runner's command line (the CLI name is stable, module paths move)."""
    exe = shutil.which("progs-codec")
    return [exe] if exe else [sys.executable, "-m", "progs_codec"]


def test_js_unit_tests():
    # The CLI pass over the suite is skipped here: test_js_decoder_passes_the_suite runs it
    # through the official runner.
    env = dict(os.environ, PROGS_JS_SKIP_CLI_SUITE="1")
    r = subprocess.run([NODE, "--test", str(WEB / "test")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert "# fail 0" in r.stdout


def test_js_decoder_passes_the_suite(tmp_path):
    results = tmp_path / "js.json"
    cmd = _runner() + ["conformance", "run", "--decoder", f"{NODE} {WEB / 'bin' / 'progs-dump.mjs'}",
                       "--results", str(results), "--jobs", "2", "--timeout", "120"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = json.loads(results.read_text()) if results.exists() else {}
    failures = [f"{x['name']} [{x.get('case')}]: {x['reason']}" for x in report.get("results", [])
                if not x["passed"]]
    assert r.returncode == 0 and report.get("passed"), "\n".join(failures) or r.stdout + r.stderr
    invalid = [x for x in report["results"] if x["kind"] == "invalid"]
    assert invalid
    # the JS decoder names the exact class of every invalid stream, not just `format`
    suite = Path(report.get("suite") or ROOT / "conformance")
    for x in invalid:
        expected = json.loads((suite / "invalid" / x["name"] / "expected.json").read_text())
        assert x["reported_class"] == expected["error_class"], x
