"""The conformance suite: committed vectors match the generator, both decoders pass it, and
the runner itself fails every kind of bad decoder (spec 10)."""

import importlib.util
import json
import lzma
import shutil
import sys
from pathlib import Path

import pytest

from progs_codec.tools.conformance import SuiteError, default_suite, main, run_suite

SUITE = default_suite()
REFERENCE = [sys.executable, "-m", "progs_codec.tools.canonical"]
INDEPENDENT = [sys.executable, str(SUITE / "independent_decoder")]


def _generator():
    spec = importlib.util.spec_from_file_location("conformance_generate", SUITE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module    # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _content(path: Path) -> bytes:
    data = path.read_bytes()
    return lzma.decompress(data) if path.suffix == ".xz" else data


def test_committed_suite_is_what_the_generator_writes(tmp_path):
    _generator().generate(tmp_path)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(SUITE) for p in SUITE.rglob("*") if p.is_file()
                       and p.parts[len(SUITE.parts)] in ("vectors", "invalid", "partial")
                       or p.parent == SUITE and p.name in ("README.md", "manifest.json"))
    assert generated == committed, "run python conformance/generate.py"
    for rel in generated:
        assert _content(tmp_path / rel) == _content(SUITE / rel), f"{rel} is stale"


def test_suite_is_small():
    size = sum(p.stat().st_size for p in SUITE.rglob("*") if p.is_file())
    assert size < 4 << 20


@pytest.mark.parametrize("decoder", [REFERENCE, INDEPENDENT], ids=["reference", "independent"])
def test_decoder_passes_the_suite(decoder, tmp_path):
    report = run_suite(decoder, timeout=120)
    failures = [f"{r.name} [{r.case}]: {r.reason}" for r in report.results if not r.passed]
    assert report.passed, "\n".join(failures)
    invalid = [r for r in report.results if r.kind == "invalid"]
    assert invalid and all(r.reported_class is not None for r in invalid)


# --- the runner against bad decoders, on a small copy of the suite -----------------------------

@pytest.fixture(scope="module")
def mini_suite(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("suite")
    for sub, name in (("vectors", "raw-basic"), ("invalid", "checksum-level"),
                      ("invalid", "duplicate-child")):
        shutil.copytree(SUITE / sub / name, root / sub / name)
    return root


def _decoder(tmp_path: Path, body: str) -> list[str]:
    """A decoder script: ``body`` runs with ``src, lod, out`` set and the reference's dump
    function ``ref(src, lod)`` (bytes or a raised ProgsError)."""
    script = tmp_path / "decoder.py"
    script.write_text(
        "import sys, time\n"
        "from progs_codec.tools.canonical import decode_to_dump\n"
        "src, lod, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]\n"
        "def ref():\n"
        "    return decode_to_dump(open(src, 'rb').read(), lod)\n" + body)
    return [sys.executable, str(script)]


def _run(decoder, suite, **kwargs):
    report = run_suite(decoder, suite=suite, jobs=2, **kwargs)
    return report, {(r.name, r.case): r for r in report.results}


def test_runner_passes_the_reference(mini_suite):
    report, _ = _run(REFERENCE, mini_suite)
    assert report.passed and report.counts()["total"] == 7


def test_wrong_dump_fails_and_names_the_record(mini_suite, tmp_path):
    decoder = _decoder(tmp_path, "d = bytearray(ref())\n"
                                 "d[-1] ^= 1\n"
                                 "open(out, 'wb').write(d)\n")
    report, results = _run(decoder, mini_suite)
    assert not report.passed
    assert "first difference in record ATTR 3" in results["raw-basic", "lod-3"].reason
    assert "record ATTR 1" in results["raw-basic", "lod-1"].reason


def test_decoder_that_accepts_invalid_streams_fails(mini_suite, tmp_path):
    decoder = _decoder(tmp_path, "open(out, 'wb').write(b'PGSDUMP1')\n")
    report, results = _run(decoder, mini_suite)
    assert not results["checksum-level", "reject"].passed
    assert "accepted an invalid stream" in results["checksum-level", "reject"].reason
    assert not results["raw-basic", "lod-1"].passed


def test_crashing_decoder_fails(mini_suite, tmp_path):
    report, results = _run(_decoder(tmp_path, "raise RuntimeError('boom')\n"), mini_suite)
    vector_results = [r for r in report.results if r.kind == "vector"]
    assert vector_results and not any(r.passed for r in vector_results)
    assert "exit status 1" in vector_results[0].reason
    killed = _decoder(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    _, results = _run(killed, mini_suite)
    assert "killed by signal" in results["checksum-level", "reject"].reason


def test_error_class_must_be_exact(mini_suite, tmp_path):
    """Spec 8.4's table decides the class: a refinement reported as ``format``, or no class
    line at all, fails; ``lenient_classes`` (1.0's checks) accepts both."""
    decoder = _decoder(tmp_path, "print('error-class: truncated', file=sys.stderr)\n"
                                 "sys.exit(3)\n")
    _, results = _run(decoder, mini_suite, select="checksum|duplicate")
    assert not results["checksum-level", "reject"].passed
    assert results["checksum-level", "reject"].reported_class == "truncated"
    decoder = _decoder(tmp_path, "print('error-class: format', file=sys.stderr)\nsys.exit(3)\n")
    report, results = _run(decoder, mini_suite, select="checksum|duplicate")
    assert results["duplicate-child", "reject"].passed
    assert not results["checksum-level", "reject"].passed
    assert "expected checksum" in results["checksum-level", "reject"].reason
    report, _ = _run(decoder, mini_suite, select="checksum|duplicate", lenient_classes=True)
    assert report.passed
    silent = _decoder(tmp_path, "sys.exit(3)\n")
    report, _ = _run(silent, mini_suite, select="checksum")
    assert not report.passed and "error-class" in report.results[0].reason
    report, _ = _run(silent, mini_suite, select="checksum", lenient_classes=True)
    assert report.passed
    decoder = _decoder(tmp_path, "print('error-class: oops', file=sys.stderr)\nsys.exit(3)\n")
    report, _ = _run(decoder, mini_suite, select="checksum")
    assert "unknown error class" in report.results[0].reason


def test_timeout_fails(mini_suite, tmp_path):
    decoder = _decoder(tmp_path, "time.sleep(30)\n")
    report, _ = _run(decoder, mini_suite, select="checksum", timeout=1.0)
    assert not report.passed and "timed out" in report.results[0].reason


def test_missing_output_and_missing_decoder_fail(mini_suite, tmp_path):
    report, _ = _run(_decoder(tmp_path, "pass\n"), mini_suite, select="raw-basic")
    assert not report.passed and "no output file" in report.results[0].reason
    report, _ = _run([str(tmp_path / "no-such-decoder")], mini_suite, select="raw-basic")
    assert not report.passed and "exit status 127" in report.results[0].reason


def test_main_writes_json_and_sets_exit_status(mini_suite, tmp_path, capsys):
    results = tmp_path / "out.json"
    command = " ".join(REFERENCE)
    assert main(["--decoder", command, "--suite", str(mini_suite),
                 "--results", str(results)]) == 0
    data = json.loads(results.read_text())
    assert data["passed"] and data["counts"] == {"total": 7, "pass": 7, "fail": 0}
    assert {r["kind"] for r in data["results"]} == {"vector", "invalid"}
    bad = " ".join(_decoder(tmp_path, "sys.exit(1)\n"))
    assert main(["--decoder", bad, "--suite", str(mini_suite)]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["--decoder", command, "--suite", str(tmp_path / "nowhere")]) == 2


def test_tampered_vector_is_a_suite_error(mini_suite, tmp_path):
    suite = tmp_path / "suite"
    shutil.copytree(mini_suite, suite)
    stream = suite / "vectors" / "raw-basic" / "stream.progs"
    stream.write_bytes(stream.read_bytes()[:-1])
    with pytest.raises(SuiteError):
        run_suite(REFERENCE, suite=suite)


# --- finding the suite -------------------------------------------------------------------------

def test_suite_is_found_from_anywhere_in_a_checkout(monkeypatch):
    from progs_codec.tools.conformance import find_suite

    root = SUITE.parent
    assert find_suite(root / "progs_codec" / "tools") == SUITE
    assert find_suite(SUITE / "vectors" / "raw-basic") == SUITE
    monkeypatch.chdir(root / "spec")
    assert default_suite() == SUITE


def test_without_a_checkout_the_runner_says_what_to_pass(monkeypatch, tmp_path, capsys):
    """An installed wheel: neither the current folder nor the package lies in a checkout."""
    from progs_codec.tools import conformance

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(conformance, "_PACKAGE_DIR", tmp_path)
    with pytest.raises(SuiteError, match="Pass --suite DIR"):
        default_suite()
    command = " ".join(REFERENCE)
    assert main(["--decoder", command]) == 2
    err = capsys.readouterr().err
    assert "does not ship it" in err and "--suite DIR" in err
    assert main(["--decoder", command, "--suite", str(tmp_path)]) == 2
    assert "does not hold vectors/ and invalid/" in capsys.readouterr().err


def test_cli_runs_the_suite_found_from_the_current_folder(monkeypatch, tmp_path):
    from progs_codec.tools.cli import main as cli_main

    monkeypatch.chdir(SUITE / "vectors")
    results = tmp_path / "out.json"
    assert cli_main(["conformance", "run", "--decoder", " ".join(REFERENCE),
                     "--select", "raw-minimal", "--results", str(results)]) == 0
    assert json.loads(results.read_text())["suite"] == str(SUITE)
