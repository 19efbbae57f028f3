"""Fuzzing harness: every reader of untrusted bytes, fed mutated real files.

Targets (``TARGETS``): ``decode``, ``feed`` (:class:`progs_codec.Decoder` with random piece
sizes), ``inspect`` (and its text and JSON reports), ``truncate`` (whose output must decode to
the input's levels), ``canonical`` (the reference decoder's dump, spec 10), ``independent``
(``conformance/independent_decoder``, compared with the reference: both must agree on the
outcome and the dump), and the 3DGS readers ``ply``, ``spz``, ``splat``.

Allowed outcomes: success, or the reader's own error class (:class:`progs_codec.ProgsError`,
the independent decoder's ``StreamError``). Anything else is a *crash*; an input that takes
more than 2 s of CPU time (per decoder) is a *hang*; memory is bounded by an address-space limit (``--memory-mb``, 3 GiB
by default: ``MemoryError`` is a crash). A crash is recorded (input saved under
``--artifacts``, one per distinct signature) and the run goes on.

Seeds: every conformance vector and invalid stream (up to 256 kB), the bundled sample, and
small real 3DGS files made from ``../shared/data`` (read there, never copied into the
project). Mutations are byte-level (atheris/libFuzzer's, or this module's own when atheris is
missing) followed, for ``.progs`` inputs, by a structure-aware pass that repairs chunk
lengths and CRCs nine times in ten, so that mutations reach the parsers behind the CRC.

    python fuzz/harness.py run --target decode --runs 100000 [--engine atheris|own]
    python fuzz/harness.py campaign --runs-per-target 120000 --results fuzz/results.json

``tests/test_fuzz.py`` runs every target for a few seconds with the own engine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import platform
import random
import resource
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PROGS_SHARED_DATA", ROOT.parent / "shared" / "data"))
INDEPENDENT = ROOT / "conformance" / "independent_decoder"
MAX_SEED_BYTES = 256 * 1024
HANG_SECONDS = 2.0
DEFAULT_MEMORY_MB = 3072

TARGET_NAMES = ("decode", "feed", "inspect", "truncate", "canonical", "independent", "ply",
                "spz", "splat")


# -- seeds -------------------------------------------------------------------------------------


def progs_seeds() -> list[bytes]:
    """Every conformance stream (vectors and invalid ones) up to 256 kB, and the sample."""
    seeds = []
    for kind in ("vectors", "invalid"):
        for case in sorted((ROOT / "conformance" / kind).iterdir()):
            expected = case / "expected.json"
            if not expected.exists():
                continue
            name = json.loads(expected.read_text())["stream"]
            data = (case / name).read_bytes()
            if name.endswith(".xz"):
                if len(data) > MAX_SEED_BYTES:
                    continue
                data = lzma.decompress(data)
            if len(data) <= MAX_SEED_BYTES:
                seeds.append(data)
    seeds.append((ROOT / "examples" / "plant.progs").read_bytes())
    return seeds


def _real_splats():
    from progs_codec.render.splats import read_splats

    scenes = []
    for name in ("scenes/plant/plant.ply", "scenes/donut/donut.ply"):
        if (DATA / name).exists():
            scenes.append(read_splats(DATA / name))
    return scenes


def splat_seeds(kind: str) -> list[bytes]:
    """Small real files: the first Gaussians of the shared scenes, in the target's format
    (and for ``.splat`` the real file's first bytes). Synthetic ones if the data is absent."""
    import numpy as np

    from progs_codec.render.splats import Splats, write_splats

    scenes = _real_splats()
    if not scenes:
        rng = np.random.default_rng(0)
        scenes = [Splats(rng.normal(size=(64, 3)), np.full((64, 3), 0.01),
                         rng.normal(size=(64, 4)), rng.uniform(size=64),
                         rng.normal(size=(64, 4, 3)) * 0.1)]
    seeds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, scene in enumerate(scenes):
            for n, degree in ((8, 0), (40, 1), (200, 3)):
                sh = np.zeros((n, (degree + 1) ** 2, 3), np.float32)
                sh[:, :min(degree + 1, scene.sh.shape[1]) ** 2] = \
                    scene.sh[:n, :min(degree + 1, scene.sh.shape[1]) ** 2]
                part = Splats(scene.means[:n], scene.scales[:n], scene.quats[:n],
                              scene.opacities[:n], sh)
                path = Path(tmp) / f"s{i}{n}.{kind}"
                write_splats(path, part)
                seeds.append(path.read_bytes())
        if kind == "ply":
            seeds.append(b"ply\nformat ascii 1.0\nelement vertex 2\n" + b"".join(
                f"property float {p}\n".encode() for p in (
                    "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0",
                    "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"))
                + b"end_header\n" + b"0 0 0 0.1 0.2 0.3 1 -3 -3 -3 1 0 0 0\n" * 2)
    if kind == "splat" and (DATA / "scenes/plant/plant.splat").exists():
        with open(DATA / "scenes/plant/plant.splat", "rb") as f:
            seeds.append(f.read(32 * 300))
    return seeds


# -- mutation ----------------------------------------------------------------------------------

_INTERESTING_32 = (0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                   1 << 20, (1 << 20) - 1, 1 << 24, 1 << 26, 0x7FFFFFFF, 0x80000000,
                   0xFFFFFFFE, 0xFFFFFFFF)


def repair_chunks(data: bytes) -> bytes:
    """Recomputes each chunk's CRC (and clips a length that overruns the input), so that a
    mutated ``.progs`` input gets past the container to the parsers (spec 2.2)."""
    if len(data) < 10 or not data.startswith(b"\x89PGS"):
        return data
    out = bytearray(data)
    pos = 10
    while pos + 8 <= len(out):
        (length,) = struct.unpack_from("<I", out, pos + 4)
        if pos + 12 + length > len(out):
            break
        crc = zlib.crc32(bytes(out[pos + 8: pos + 8 + length]), zlib.crc32(bytes(out[pos:pos + 4])))
        struct.pack_into("<I", out, pos + 8 + length, crc)
        pos += 12 + length
    return bytes(out)


def _chunk_spans(data: bytes) -> list[tuple[int, int]]:
    """``(payload start, payload end)`` of each complete chunk."""
    spans, pos = [], 10
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<I", data, pos + 4)
        if pos + 12 + length > len(data):
            break
        spans.append((pos + 8, pos + 8 + length))
        pos += 12 + length
    return spans


def resize_chunk(data: bytes, rng: random.Random) -> bytes:
    """Inserts or deletes bytes inside one chunk's payload and fixes its length field:
    the structure-aware mutation byte mutators cannot make."""
    spans = _chunk_spans(data)
    if not spans:
        return data
    start, end = rng.choice(spans)
    at = rng.randint(start, end)
    if rng.random() < 0.5 and end > start:
        cut = rng.randint(1, min(64, end - at)) if end > at else 0
        new = data[:at] + data[at + cut:]
        delta = -cut
    else:
        piece = bytes(rng.getrandbits(8) for _ in range(rng.choice((1, 2, 4, 8, 16))))
        new = data[:at] + piece + data[at:]
        delta = len(piece)
    out = bytearray(new)
    struct.pack_into("<I", out, start - 4, end - start + delta)
    return bytes(out)


def mutate_bytes(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """The own engine's byte-level mutations (a few stacked): flips, interesting values,
    inserts, deletes, duplications, splices with another seed."""
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 4))):
        op = rng.randrange(8)
        n = len(out)
        if op == 0 and n:
            i = rng.randrange(n)
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            out[rng.randrange(n)] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.getrandbits(8)))
        elif op == 2 and n >= 4:
            i = rng.randrange(n - 3)
            struct.pack_into("<I", out, i, rng.choice(_INTERESTING_32))
        elif op == 3:
            i = rng.randrange(n + 1)
            out[i:i] = bytes(rng.getrandbits(8) for _ in range(rng.choice((1, 2, 4, 16))))
        elif op == 4 and n:
            i = rng.randrange(n)
            del out[i:i + rng.choice((1, 2, 4, 16, 256))]
        elif op == 5 and n:
            i = rng.randrange(n)
            j = rng.randrange(n)
            out[j:j] = out[i:i + rng.choice((4, 16, 64))]
        elif op == 6 and others:
            other = rng.choice(others)
            i, j = rng.randrange(n + 1), rng.randrange(len(other) + 1)
            out = out[:i] + other[j:]
        elif op == 7 and n:
            del out[rng.randrange(n):]                       # a prefix
    return bytes(out)


def finish_progs(data: bytes, rng: random.Random) -> bytes:
    """The structure-aware pass for ``.progs`` inputs."""
    if rng.random() < 0.3:
        data = resize_chunk(data, rng)
    return repair_chunks(data) if rng.random() < 0.9 else data


# -- targets ------------------------------------------------------------------------------------


class Disagreement(Exception):
    """Two decoders, or a tool and the decoder, disagree about a stream: a finding."""


@dataclass
class Target:
    name: str
    run: Callable[[bytes], None]
    allowed: tuple[type, ...]
    seeds: Callable[[], list[bytes]]
    progs: bool = True
    decoders: int = 1          # decoders run per input: the hang limit is per decoder


def _max_lod(data: bytes) -> int | None:
    return (None, 1, 2, 3)[len(data) % 4]


def _decode(data: bytes) -> None:
    import progs_codec

    progs_codec.decode(data, max_lod=_max_lod(data), strict=len(data) % 3 == 0)


def _feed(data: bytes) -> None:
    import progs_codec

    rng = random.Random(zlib.crc32(data))
    decoder = progs_codec.Decoder(max_lod=_max_lod(data), strict=rng.random() < 0.3)
    pos = 0
    while pos < len(data):
        n = rng.choice((1, 2, 7, 64, 1000, 4096, 65536))
        decoder.feed(data[pos:pos + n])
        pos += n
    decoder.close()


def _inspect(data: bytes) -> None:
    import progs_codec
    from progs_codec.tools.inspect import format_info

    info = progs_codec.inspect(data)
    format_info(info)
    json.dumps(info.to_dict())


def _truncate(data: bytes) -> None:
    import progs_codec

    k = 1 + len(data) % 3
    cut = progs_codec.truncate(data, k)
    try:
        whole = progs_codec.decode(data, max_lod=k)
    except progs_codec.ProgsError:
        return            # the chunk walk passed but a level's payload is bad: both refuse
    ours = progs_codec.decode(cut, strict=True)
    if ours.levels != whole.levels:
        raise Disagreement("truncate's levels differ from the input's")


def _canonical(data: bytes) -> None:
    from progs_codec.tools.canonical import decode_to_dump

    decode_to_dump(data, _max_lod(data) or 16)


_independent_modules = None


def _independent_decoder():
    global _independent_modules
    if _independent_modules is None:
        sys.path.insert(0, str(INDEPENDENT))
        import pgs_dump
        import pgs_errors
        import pgs_stream

        _independent_modules = (pgs_stream.decode_file, pgs_dump.write_dump,
                                pgs_errors.StreamError)
    return _independent_modules


def _independent(data: bytes) -> str:
    """The independent decoder, and the reference on the same input: same outcome class
    (ok or the spec 8.4 class) and the same dump."""
    from progs_codec import LimitError, ProgsError, decode
    from progs_codec.tools.canonical import canonical_dump, decode_to_dump, error_class

    decode_file, write_dump, StreamError = _independent_decoder()
    lod = _max_lod(data) or 16
    try:
        theirs = ("ok", write_dump(decode_file(data, lod)))
    except StreamError as error:
        theirs = (error.error_class, None)
    try:
        ours = ("ok", decode_to_dump(data, lod))
    except LimitError as error:
        if "max_anchors=" not in str(error) and "max_values=" not in str(error):
            ours = (error_class(error), None)
        else:  # beyond capability 1 (spec 8.6), which the independent decoder does not bound
            try:
                ours = ("ok", canonical_dump(decode(data, lod, max_anchors=None,
                                                    max_values=None)))
            except ProgsError as again:
                ours = (error_class(again), None)
    except ProgsError as error:
        ours = (error_class(error), None)
    if ours != theirs:
        raise Disagreement(f"reference {ours[0]}, independent {theirs[0]}")
    return f"both {ours[0]}"


def _splats_reader(suffix: str) -> Callable[[bytes], None]:
    folder = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    path = folder / f"progs-fuzz-{os.getpid()}{suffix}"

    def run(data: bytes) -> None:
        from progs_codec.render.splats import read_splats

        path.write_bytes(data)
        try:
            read_splats(path)
        finally:
            path.unlink(missing_ok=True)
    return run


def targets() -> dict[str, Target]:
    from progs_codec import ProgsError

    def independent_allowed():
        return (_independent_decoder()[2], ProgsError)

    out = {
        "decode": Target("decode", _decode, (ProgsError,), progs_seeds),
        "feed": Target("feed", _feed, (ProgsError,), progs_seeds),
        "inspect": Target("inspect", _inspect, (ProgsError,), progs_seeds),
        "truncate": Target("truncate", _truncate, (ProgsError,), progs_seeds),
        "canonical": Target("canonical", _canonical, (ProgsError,), progs_seeds),
        "independent": Target("independent", _independent, (), progs_seeds, decoders=2),
        "ply": Target("ply", _splats_reader(".ply"), (ProgsError,), lambda: splat_seeds("ply"),
                      progs=False),
        "spz": Target("spz", _splats_reader(".spz"), (ProgsError,), lambda: splat_seeds("spz"),
                      progs=False),
        "splat": Target("splat", _splats_reader(".splat"), (ProgsError,),
                        lambda: splat_seeds("splat"), progs=False),
    }
    out["independent"].allowed = independent_allowed()
    return out


# -- running ------------------------------------------------------------------------------------


@dataclass
class Stats:
    """What one run of one target saw."""

    target: str
    engine: str
    inputs: int = 0
    seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)   # "ok" or an error class name
    distinct_errors: set = field(default_factory=set)        # (class, message head)
    crashes: dict[str, dict] = field(default_factory=dict)   # signature -> info
    hangs: dict[str, dict] = field(default_factory=dict)
    disagreements: dict[str, dict] = field(default_factory=dict)
    slowest: float = 0.0

    def to_dict(self) -> dict:
        return {"target": self.target, "engine": self.engine, "inputs": self.inputs,
                "seconds": round(self.seconds, 1), "outcomes": dict(sorted(self.outcomes.items())),
                "distinct_errors": len(self.distinct_errors),
                "crashes": list(self.crashes.values()), "hangs": list(self.hangs.values()),
                "disagreements": list(self.disagreements.values()),
                "slowest_input_s": round(self.slowest, 3)}


def _signature(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames)
                  if "progs_codec" in f.filename or "independent_decoder" in f.filename
                  or "fuzz" in f.filename), "?")
    return f"{type(error).__name__} at {where}"


class Runner:
    """Runs one target on inputs, classifying each outcome; never raises for an input."""

    def __init__(self, target: Target, engine: str, artifacts: Path | None):
        self.target, self.artifacts = target, artifacts
        self.stats = Stats(target.name, engine)
        self.started = time.monotonic()

    def __call__(self, data: bytes) -> None:
        start = time.process_time()     # CPU time: the machine is shared, wall time is not ours
        try:
            outcome = self.target.run(data) or "ok"
        except self.target.allowed as error:
            outcome = type(error).__name__
            message = str(error).split("(")[0].strip()
            self.stats.distinct_errors.add((outcome, "".join(
                c for c in message if not c.isdigit())[:80]))
        except Disagreement as error:
            outcome = "disagreement"
            self._record(self.stats.disagreements, str(error), data, str(error))
        except Exception as error:  # noqa: BLE001 - a crash is what we look for
            outcome = "crash"
            self._record(self.stats.crashes, _signature(error), data,
                         f"{type(error).__name__}: {str(error)[:200]}")
        elapsed = time.process_time() - start
        if elapsed > HANG_SECONDS * self.target.decoders:
            self._record(self.stats.hangs, f"{elapsed:.1f} s", data,
                         f"{elapsed:.2f} s, outcome {outcome}")
        self.stats.slowest = max(self.stats.slowest, elapsed)
        self.stats.inputs += 1
        self.stats.outcomes[outcome] = self.stats.outcomes.get(outcome, 0) + 1
        self.stats.seconds = time.monotonic() - self.started

    def _record(self, table: dict, signature: str, data: bytes, detail: str) -> None:
        entry = table.setdefault(signature, {"signature": signature, "detail": detail,
                                             "count": 0, "input": None})
        entry["count"] += 1
        if entry["input"] is None and self.artifacts is not None:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            name = f"{self.target.name}-{hashlib.sha256(data).hexdigest()[:16]}"
            (self.artifacts / name).write_bytes(data)
            entry["input"] = name


def strict_warnings() -> None:
    """A RuntimeWarning from progs_codec (overflow, invalid value) is an error, as in the
    test suite (``pyproject.toml``): the decode path computes in integers."""
    warnings.filterwarnings("error", category=RuntimeWarning, module=r"progs_codec\..*")


def limit_memory(megabytes: int) -> None:
    """The address-space bound: an allocation beyond it raises MemoryError (a crash)."""
    limit = megabytes << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_own(target: Target, runs: int, seed: int, artifacts: Path | None,
            seconds: float | None = None) -> Stats:
    """The own engine: seeds first, then stacked mutations of random seeds."""
    rng = random.Random(seed)
    corpus = target.seeds()
    runner = Runner(target, "own", artifacts)
    for data in corpus:
        runner(data)
    deadline = None if seconds is None else time.monotonic() + seconds
    while runner.stats.inputs < runs and (deadline is None or time.monotonic() < deadline):
        data = mutate_bytes(rng.choice(corpus), rng, corpus)
        if target.progs:
            data = finish_progs(data, rng)
        runner(data)
    return runner.stats


def write_seeds(name: str, folder: Path) -> None:
    """The target's seeds as files (``python fuzz/harness.py seeds``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(targets()[name].seeds()):
        (folder / f"seed{i:03d}").write_bytes(data)


#: What atheris instruments for coverage: this project's readers, not the libraries under
#: them (gsply's numba kernels cannot be compiled from instrumented bytecode).
INSTRUMENTED = ["progs_codec", "pgs_stream", "pgs_header", "pgs_level", "pgs_occupancy",
                "pgs_entropy", "pgs_context", "pgs_hashgrid", "pgs_rans", "pgs_tables",
                "pgs_dump", "pgs_errors"]


def run_atheris(name: str, runs: int, seed: int, artifacts: Path | None,
                max_len: int, stats_path: Path) -> None:
    """Coverage-guided: libFuzzer mutations plus the structure-aware pass. The seeds are
    made in another process, so that progs_codec is first imported here, instrumented.
    Writes the stats to ``stats_path`` as it goes and at exit (libFuzzer ends the process)."""
    import atexit

    import atheris

    corpus_dir = Path(tempfile.mkdtemp(prefix=f"progs-fuzz-{name}-"))
    subprocess.run([sys.executable, __file__, "seeds", "--target", name, "--out",
                    str(corpus_dir)], check=True)
    for path in corpus_dir.iterdir():
        if path.stat().st_size > max_len:
            path.unlink()
    if artifacts is not None:
        artifacts.mkdir(parents=True, exist_ok=True)
    with atheris.instrument_imports(include=INSTRUMENTED):
        import progs_codec  # noqa: F401
        import progs_codec.render.splats  # noqa: F401
        import progs_codec.tools.canonical  # noqa: F401
        import progs_codec.tools.inspect  # noqa: F401
        if name == "independent":
            _independent_decoder()
    target = targets()[name]
    runner = Runner(target, "atheris", artifacts)

    def mutator(data: bytes, max_size: int, mutator_seed: int) -> bytes:
        data = atheris.Mutate(data, max_size)
        if target.progs:
            data = finish_progs(data, random.Random(mutator_seed))[:max_size]
        return data

    def one_input(data: bytes) -> None:
        runner(data)
        if runner.stats.inputs % 1000 == 0 or runner.stats.inputs >= runs:
            stats_path.write_text(json.dumps(runner.stats.to_dict(), indent=1))

    atexit.register(lambda: stats_path.write_text(json.dumps(runner.stats.to_dict(), indent=1)))
    argv = [sys.argv[0], str(corpus_dir), f"-runs={runs}", f"-seed={seed}",
            f"-max_len={max_len}", "-timeout=60", "-rss_limit_mb=0", "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/" if artifacts else "-artifact_prefix=/tmp/"]
    atheris.Setup(argv, one_input, custom_mutator=mutator)
    atheris.Fuzz()


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count()}
    try:
        model = next(line.split(":", 1)[1].strip() for line in
                     Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
        info["cpu"] = model
    except (OSError, StopIteration):
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="fuzz one target")
    p.add_argument("--target", choices=TARGET_NAMES, required=True)
    p.add_argument("--runs", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--engine", choices=("atheris", "own"), default="atheris")
    p.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB)
    p.add_argument("--max-len", type=int, default=MAX_SEED_BYTES)
    p.add_argument("--artifacts", type=Path, default=Path("/tmp/progs-fuzz-artifacts"))
    p.add_argument("--stats", type=Path, required=True, help="JSON stats of the run")
    p = sub.add_parser("seeds", help="write a target's seeds to a folder")
    p.add_argument("--target", choices=TARGET_NAMES, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("smoke", help="every target for a few seconds in this process (CI)")
    p.add_argument("--seconds", type=float, default=1.0, help="per target, after its seeds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB)
    p.add_argument("--targets", nargs="+", choices=TARGET_NAMES, default=list(TARGET_NAMES))
    p.add_argument("--stats", type=Path, required=True)
    p = sub.add_parser("campaign", help="every target, one process each, results merged")
    p.add_argument("--runs-per-target", type=int, default=120000)
    p.add_argument("--targets", nargs="+", choices=TARGET_NAMES, default=list(TARGET_NAMES))
    p.add_argument("--engine", choices=("atheris", "own"), default="atheris")
    p.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB)
    p.add_argument("--artifacts", type=Path, default=Path("/tmp/progs-fuzz-artifacts"))
    p.add_argument("--work", type=Path, default=Path("/tmp/progs-fuzz-stats"))
    p.add_argument("--results", type=Path, default=ROOT / "fuzz" / "results.json")
    p.add_argument("--code", default=None, help="the commit fuzzed, for the results file")
    args = parser.parse_args(argv)

    strict_warnings()
    if args.command == "seeds":
        write_seeds(args.target, args.out)
        return 0
    if args.command == "run":
        limit_memory(args.memory_mb)
        if args.engine == "atheris":
            run_atheris(args.target, args.runs, args.seed, args.artifacts, args.max_len,
                        args.stats)
        else:
            stats = run_own(targets()[args.target], args.runs, args.seed, args.artifacts)
            args.stats.write_text(json.dumps(stats.to_dict(), indent=1))
        return 0

    if args.command == "smoke":
        limit_memory(args.memory_mb)
        table = targets()
        runs = [run_own(table[name], 10**9, args.seed, None, seconds=args.seconds).to_dict()
                for name in args.targets]
        args.stats.write_text(json.dumps(runs, indent=1))
        return 0

    args.work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    runs = []
    for name in args.targets:
        stats_path = args.work / f"{name}.json"
        command = [sys.executable, __file__, "run", "--target", name, "--runs",
                   str(args.runs_per_target), "--engine", args.engine, "--memory-mb",
                   str(args.memory_mb), "--artifacts", str(args.artifacts), "--stats",
                   str(stats_path)]
        log = args.work / f"{name}.log"
        with open(log, "w") as out:
            rc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
        stats = json.loads(stats_path.read_text()) if stats_path.exists() else \
            {"target": name, "inputs": 0}
        stats["exit_status"] = rc
        runs.append(stats)
        print(f"{name}: {stats.get('inputs', 0):,} inputs, "
              f"{len(stats.get('crashes', []))} crashes, {len(stats.get('hangs', []))} hangs, "
              f"rc {rc}", flush=True)
    results = {
        "code": args.code,
        "machine": machine(),
        "engine": args.engine,
        "memory_limit_mb": args.memory_mb,
        "hang_limit_s": HANG_SECONDS,
        "wall_seconds": round(time.time() - started),
        "inputs": sum(r.get("inputs", 0) for r in runs),
        "crashes": sum(len(r.get("crashes", [])) for r in runs),
        "hangs": sum(len(r.get("hangs", [])) for r in runs),
        "distinct_errors": sum(r.get("distinct_errors", 0) for r in runs),
        "targets": runs,
    }
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    print(f"total {results['inputs']:,} inputs, {results['crashes']} crashes, "
          f"{results['hangs']} hangs -> {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
