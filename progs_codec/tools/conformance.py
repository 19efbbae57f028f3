"""Conformance runner: test any decoder command against the suite in ``conformance/`` (spec 10).

The decoder is a command called as ``CMD INPUT MAX_LOD OUTPUT`` (spec 10.4). For each vector
case the runner checks the SHA-256 of the dump written to ``OUTPUT``; for each invalid stream
it checks that the decoder fails and prints ``error-class: NAME`` on stderr with exactly the
class that the table of spec 8.4 gives. ``lenient_classes=True`` (``--lenient-classes``)
checks as version 1.0 did: a missing class line passes, and so does ``format`` for any class.

>>> report = run_suite(f"{sys.executable} -m progs_codec.tools.canonical", select="raw-minimal")
>>> report.passed, report.counts()["fail"]
(True, 0)
"""

from __future__ import annotations

import argparse
import lzma
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from ..errors import ProgsError
from .canonical import DumpError, digest, split_dump

__all__ = [
    "ERROR_CLASSES",
    "CaseResult",
    "SuiteReport",
    "SuiteError",
    "find_suite",
    "default_suite",
    "run_suite",
    "main",
]

ERROR_CLASSES = ("format", "checksum", "truncated", "unsupported", "limit")
_CLASS_LINE = re.compile(r"^error-class:\s*(\S+)\s*$", re.MULTILINE)


class SuiteError(ProgsError):
    """The suite folder is missing or malformed (not a failure of the decoder under test)."""


@dataclass(frozen=True)
class CaseResult:
    """Outcome of one decoder call: ``kind`` is ``vector``, ``partial`` (a case of a prefix
    or of a stream valid only up to some LoD, checked as a vector case) or ``invalid``."""

    kind: str
    name: str
    case: str
    passed: bool
    reason: str
    seconds: float
    reported_class: str | None = None


@dataclass(frozen=True)
class SuiteReport:
    """All case results of one run; ``passed`` only when every case passed."""

    decoder: str
    suite: str
    results: tuple[CaseResult, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def counts(self) -> dict[str, int]:
        failed = sum(not r.passed for r in self.results)
        return {"total": len(self.results), "pass": len(self.results) - failed, "fail": failed}

    def to_dict(self) -> dict:
        return {"decoder": self.decoder, "suite": self.suite, "passed": self.passed,
                "counts": self.counts(), "seconds": round(self.seconds, 3),
                "results": [asdict(r) for r in self.results]}


@dataclass(frozen=True)
class _Call:
    kind: str
    name: str
    case: str
    input: Path
    max_lod: int
    expected: dict


_PACKAGE_DIR = Path(__file__).resolve().parent


def _is_suite(folder: Path) -> bool:
    return (folder / "vectors").is_dir() and (folder / "invalid").is_dir()


def find_suite(*starts: str | os.PathLike) -> Path | None:
    """The first suite folder met walking up from each of ``starts`` in turn: a folder that
    holds ``vectors/`` and ``invalid/``, or a ``conformance/`` folder that does. ``None`` if
    there is none (an installed wheel does not ship the suite)."""
    for start in starts:
        for folder in (Path(start).resolve(), *Path(start).resolve().parents):
            for candidate in (folder, folder / "conformance"):
                if _is_suite(candidate):
                    return candidate
    return None


def default_suite() -> Path:
    """The suite of the source checkout the caller is in, else the one this package was
    installed from (an editable install), found by :func:`find_suite` from the current
    folder, then from this module's folder.

    Raises:
        SuiteError: neither lies in a checkout; the message says what to pass.
    """
    found = find_suite(Path.cwd(), _PACKAGE_DIR)
    if found is None:
        raise SuiteError(
            f"no conformance suite found above {Path.cwd()} or {_PACKAGE_DIR}: an installed "
            f"progs-codec does not ship it. Pass --suite DIR with the conformance/ folder of "
            f"a progs_codec source checkout (it holds vectors/ and invalid/), or run from "
            f"inside that checkout")
    return found


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SuiteError(f"cannot read {path}: {error}") from error


def _stream_bytes(folder: Path, expected: dict) -> bytes:
    path = folder / expected["stream"]
    data = path.read_bytes()
    return lzma.decompress(data) if path.suffix == ".xz" else data


def _plan(suite: Path, work: Path, select: str | None) -> list[_Call]:
    """Write every input the decoder needs into ``work`` and list the calls."""
    calls = []
    for kind, sub in (("vector", "vectors"), ("invalid", "invalid"), ("partial", "partial")):
        folder = suite / sub
        if sub == "partial" and not folder.exists():
            continue                    # suites of version 1.0 have no partial streams
        if not folder.is_dir():
            raise SuiteError(f"{folder} is not a folder; pass the suite folder (conformance/)")
        for case_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            if select and not re.search(select, case_dir.name):
                continue
            expected = _load_json(case_dir / "expected.json")
            stream = _stream_bytes(case_dir, expected)
            source = work / f"{kind}-{case_dir.name}.progs"
            source.write_bytes(stream)
            if kind == "invalid":
                calls.append(_Call(kind, case_dir.name, "reject", source,
                                   expected["max_lod"], expected))
                continue
            if digest(stream) != expected["stream_sha256"]:
                raise SuiteError(f"{case_dir}: stream does not match its stream_sha256")
            for case in expected["cases"]:
                path = source
                if case["bytes"] is not None:
                    path = work / f"{kind}-{case_dir.name}-{case['bytes']}.progs"
                    path.write_bytes(stream[: case["bytes"]])
                calls.append(_Call(kind, case_dir.name, case["name"], path, case["max_lod"],
                                   dict(case, records=expected["records"])))
    if not calls:
        raise SuiteError(f"no cases selected in {suite}")
    return calls


def _first_difference(dump: bytes, records: list[dict]) -> str:
    """Name the first record of ``dump`` that differs from the expected record digests."""
    try:
        got = split_dump(dump)
    except DumpError as error:
        return f"malformed dump: {error}"
    for i, want in enumerate(records):
        if i >= len(got):
            return f"dump ends before record {want['name']}"
        if got[i].name != want["name"] or digest(got[i].payload) != want["sha256"]:
            return f"first difference in record {want['name']} (got {got[i].name})"
    return "dump has more records than expected"


def _check(call: _Call, rc: int | None, stderr: str, output: Path, seconds: float,
           lenient_classes: bool = False) -> CaseResult:
    def result(passed: bool, reason: str, reported: str | None = None) -> CaseResult:
        return CaseResult(call.kind, call.name, call.case, passed, reason, round(seconds, 3),
                          reported)

    reported = _CLASS_LINE.findall(stderr)
    reported = reported[-1] if reported else None
    if rc is None:
        return result(False, f"timed out after {seconds:.1f} s")
    if call.kind == "invalid":
        want = call.expected["error_class"]
        if rc == 0:
            return result(False, f"accepted an invalid stream (expected error class {want})")
        if rc < 0:
            return result(False, f"killed by signal {-rc} instead of reporting an error")
        if reported is None:
            if lenient_classes:
                return result(True, "rejected (no error class reported)")
            return result(False, f"rejected without an 'error-class: NAME' line on stderr "
                                 f"(spec 10.4; expected {want})")
        if reported not in ERROR_CLASSES:
            return result(False, f"reported unknown error class {reported!r}", reported)
        if reported != want and not (lenient_classes and reported == "format"):
            return result(False, f"reported error class {reported}, expected {want} "
                                 f"(spec 8.4)", reported)
        return result(True, f"rejected as {reported}", reported)
    if rc != 0:
        tail = stderr.strip().splitlines()[-1:] or [""]
        return result(False, f"exit status {rc} on a valid stream: {tail[0][:200]}", reported)
    try:
        dump = output.read_bytes()
    except OSError:
        return result(False, "exit status 0 but no output file")
    if digest(dump) == call.expected["sha256"]:
        return result(True, "dump matches")
    records = [r for r in call.expected["records"] if r["level"] <= call.expected["lod"]]
    return result(False, _first_difference(dump, records))


def _execute(command: list[str], call: _Call, work: Path, index: int, timeout: float,
             env: dict | None, lenient_classes: bool) -> CaseResult:
    output = work / f"out-{index}.dump"
    start = time.perf_counter()
    try:
        proc = subprocess.run([*command, str(call.input), str(call.max_lod), str(output)],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              env=env)
        rc, stderr = proc.returncode, proc.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        rc, stderr = None, ""
    except OSError as error:
        rc, stderr = 127, f"cannot run decoder: {error}"
    result = _check(call, rc, stderr, output, time.perf_counter() - start, lenient_classes)
    output.unlink(missing_ok=True)
    return result


def run_suite(decoder: str | Sequence[str], *, suite: str | os.PathLike | None = None,
              select: str | None = None, timeout: float = 60.0, jobs: int | None = None,
              env: dict | None = None, lenient_classes: bool = False) -> SuiteReport:
    """Run every vector and invalid stream of ``suite`` through ``decoder`` (spec 10.4).

    Args:
        decoder: the command, a shell-like string (split with :func:`shlex.split`) or an
            argument list; it is called as ``CMD INPUT MAX_LOD OUTPUT``.
        suite: the suite folder (holding ``vectors/`` and ``invalid/``); default
            :func:`default_suite`, the ``conformance/`` of the checkout around the current
            folder or around this package.
        select: a regular expression; only case folders whose name it matches run.
        timeout: seconds per decoder call; a call that takes longer fails.
        jobs: decoder calls run at once (default: the number of CPUs).
        env: environment of the decoder process (default: inherited).
        lenient_classes: accept an invalid stream rejected without a class line, or as
            ``format`` whatever its class (the checks of version 1.0); by default the class
            must be exactly the one of spec 8.4.

    Returns:
        A :class:`SuiteReport`; ``report.passed`` is true only when every case passed.

    Raises:
        SuiteError: the suite is missing or malformed.
    """
    command = shlex.split(decoder) if isinstance(decoder, str) else list(decoder)
    if not command:
        raise ValueError("decoder command is empty")
    suite = Path(suite) if suite is not None else default_suite()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="progs-conformance-") as tmp:
        work = Path(tmp)
        calls = _plan(suite, work, select)
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            results = list(pool.map(
                lambda ic: _execute(command, ic[1], work, ic[0], timeout, env,
                                    lenient_classes),
                enumerate(calls)))
    return SuiteReport(decoder=shlex.join(command), suite=str(suite), results=tuple(results),
                       seconds=time.perf_counter() - start)


def format_report(report: SuiteReport) -> str:
    """One line per failed case and a summary line."""
    lines = [f"FAIL {r.kind} {r.name} [{r.case}]: {r.reason}"
             for r in report.results if not r.passed]
    c = report.counts()
    lines.append(f"{'PASS' if report.passed else 'FAIL'}: {c['pass']}/{c['total']} cases "
                 f"passed in {report.seconds:.1f} s ({report.decoder})")
    return "\n".join(lines)


def _positive(kind):
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value
    return convert


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m progs_codec.tools.conformance --decoder CMD [--results out.json] [--suite DIR]``.

    Exit status 0 when every case passed, 1 when one failed, 2 when the suite is unusable.
    """
    parser = argparse.ArgumentParser(prog="progs-codec conformance run",
                                     description="Run the conformance suite against a decoder.")
    parser.add_argument("--decoder", required=True,
                        help='decoder command, called as CMD INPUT MAX_LOD OUTPUT')
    parser.add_argument("--results", help="write JSON results to this file")
    parser.add_argument("--suite", help="suite folder holding vectors/ and invalid/ (default: "
                        "the conformance/ folder of the source checkout around the current "
                        "folder or the package; an installed wheel does not ship it)")
    parser.add_argument("--select", help="regular expression selecting case folders")
    parser.add_argument("--timeout", type=_positive(float), default=60.0,
                        help="seconds per decoder call")
    parser.add_argument("--jobs", type=_positive(int), default=None,
                        help="decoder calls run at once")
    parser.add_argument("--lenient-classes", action="store_true",
                        help="as in version 1.0: accept a rejection without an error-class "
                             "line, and 'format' for any class (default: the exact class of "
                             "spec 8.4)")
    args = parser.parse_args(argv)
    try:
        if not shlex.split(args.decoder):
            parser.error("--decoder is empty")
    except ValueError as error:  # an unbalanced quote
        parser.error(f"--decoder {args.decoder!r}: {error}")
    if args.select is not None:
        try:
            re.compile(args.select)
        except re.error as error:
            parser.error(f"--select {args.select!r} is not a regular expression: {error}")
    if args.results:  # before the run, not after it
        from ..files import check_output_file

        try:
            check_output_file(args.results)
        except OSError as error:
            parser.error(f"--results: {error}")
    if args.suite is not None and not _is_suite(Path(args.suite)):
        print(f"conformance: error: --suite {args.suite} does not hold vectors/ and invalid/; "
              f"pass the conformance/ folder of a progs_codec source checkout", file=sys.stderr)
        return 2
    try:
        report = run_suite(args.decoder, suite=args.suite, select=args.select,
                           timeout=args.timeout, jobs=args.jobs,
                           lenient_classes=args.lenient_classes)
    except SuiteError as error:
        print(f"conformance: error: {error}", file=sys.stderr)
        return 2
    if args.results:
        from ..files import write_atomic

        write_atomic(args.results, (json.dumps(report.to_dict(), indent=2) + "\n").encode())
    print(format_report(report))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
