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

#: Cases of spec 1.1 that the JavaScript decoder is still allowed to fail: the changes it
#: must make are listed in spec/CHANGES.md. Remove a name once web/ passes it; a pending
#: case that passes is reported, not failed.
PENDING_1_1: frozenset[str] = frozenset()


def _runner():
    """The conformance runner's command line (the CLI name is stable, module paths move)."""
    exe = shutil.which("progs-codec")
    return [exe] if exe else [sys.executable, "-m", "progs_codec"]


def _tree_without_pending(tmp_path: Path) -> Path:
    """A copy of web/ beside spec/ and a conformance/ whose manifest leaves out PENDING_1_1:
    web/'s own tests walk the manifest of ../conformance."""
    root = tmp_path / "tree"
    shutil.copytree(WEB, root / "web", ignore=shutil.ignore_patterns("node_modules"))
    (root / "spec").symlink_to(ROOT / "spec")
    suite = root / "conformance"
    suite.mkdir()
    for sub in ("vectors", "invalid", "partial"):
        (suite / sub).symlink_to(ROOT / "conformance" / sub)
    manifest = json.loads((ROOT / "conformance" / "manifest.json").read_text())
    for kind in ("vectors", "invalid", "partial"):
        manifest[kind] = [c for c in manifest[kind] if c["name"] not in PENDING_1_1]
    (suite / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_js_unit_tests(tmp_path):
    # The CLI pass over the suite is skipped here: test_js_decoder_passes_the_suite runs it
    # through the official runner.
    root = _tree_without_pending(tmp_path) if PENDING_1_1 else ROOT
    env = dict(os.environ, PROGS_JS_SKIP_CLI_SUITE="1")
    r = subprocess.run([NODE, "--test", str(root / "web" / "test")], cwd=root, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert "# fail 0" in r.stdout


def test_js_decoder_passes_the_suite(tmp_path):
    results = tmp_path / "js.json"
    cmd = _runner() + ["conformance", "run", "--decoder", f"{NODE} {WEB / 'bin' / 'progs-dump.mjs'}",
                       "--results", str(results), "--jobs", "2", "--timeout", "120"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = json.loads(results.read_text()) if results.exists() else {}
    assert report.get("results"), r.stdout + r.stderr
    failures = [f"{x['name']} [{x.get('case')}]: {x['reason']}" for x in report["results"]
                if not x["passed"] and x["name"] not in PENDING_1_1]
    assert not failures, "\n".join(failures)
    done = sorted({x["name"] for x in report["results"] if x["name"] in PENDING_1_1}
                  - {x["name"] for x in report["results"] if not x["passed"]})
    if done:
        print(f"web/ now passes {done}: remove them from PENDING_1_1")
    invalid = [x for x in report["results"] if x["kind"] == "invalid"
               and x["name"] not in PENDING_1_1]
    assert invalid
    # the JS decoder names the exact class of every invalid stream, not just `format`
    suite = Path(report.get("suite") or ROOT / "conformance")
    for x in invalid:
        expected = json.loads((suite / "invalid" / x["name"] / "expected.json").read_text())
        assert x["reported_class"] == expected["error_class"], x
