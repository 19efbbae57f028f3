"""Each reading of the spec that version 1.1 rules out fails at least one conformance case.

Issue 14 found places where two careful readings of version 1.0 of the spec decode or reject
differently. Version 1.1 settles each (spec/CHANGES.md says where). This test makes sure the
suite enforces the settlement: every alternative reading is written as a small change to the
independent decoder (``conformance/independent_decoder``, written from the spec), and the
changed decoder must fail at least one of the cases named for it (by a wrong dump or a wrong
error class; a crash is a broken change, and errors the test), while the unchanged one passes
them all. The decoders run in-process on the cases' bytes, so the whole test takes seconds.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import lzma
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "conformance"
DECODER = SUITE / "independent_decoder"


@dataclass(frozen=True)
class Reading:
    """An alternative reading: ``(file, old, new)`` source edits of the independent decoder,
    and the cases (folder names) of which at least one must catch it."""

    name: str
    edits: tuple[tuple[str, str, str], ...]
    cases: tuple[str, ...]


READINGS = [
    Reading("4.6: a mask's bit o read MSB first (bit 7 - o)",
            (("pgs_occupancy.py", "(masks[:, None] >> np.arange(8)) & 1",
              "(masks[:, None] >> (7 - np.arange(8))) & 1"),),
            ("structure-occupancy", "structure-mixed-layouts")),
    Reading("4.6: the presence bitmap read LSB first",
            (("pgs_occupancy.py", "section[v // 8] >> (7 - v % 8) & 1",
              "section[v // 8] >> (v % 8) & 1"),),
            ("structure-occupancy",)),
    Reading("8.1/8.2: MAX_LOD = L stops after LEVL L without reading ENDS",
            (("pgs_stream.py", "wanted < head.num_levels:", "wanted <= head.num_levels:"),),
            ("data-after-ends-max-lod-3", "extra-level-chunk-max-lod-3",
             "ends-payload-not-empty-max-lod-3")),
    Reading("8.2: a decoder of LoD k < L reads on after LEVL k",
            (("pgs_stream.py", "return decoded   # 8.2", "pass  # 8.2"),),
            ("lod-2-ignores-what-follows",)),
    Reading("3.3: the table of contents is checked whole when HEAD is read",
            (("pgs_header.py", "    toc = tuple(TocEntry(",
              "    toc = tuple(TocEntry(*struct.unpack_from('<QII', toc_part, 16 * i)) "
              "for i in range(levels))\n"
              "    if any(e.size < 34 or e.offset < 10 for e in toc):\n"
              "        fail('bad toc entry')\n"
              "    toc = tuple(TocEntry("),),
            ("lod-2-ignores-what-follows",)),
    Reading("8.4: every range error is format (limit only for lengths)",
            (("pgs_errors.py", "raise StreamError(message, error_class)",
              "raise StreamError(message, 'format' if error_class == 'limit' else "
              "error_class)"),),
            ("hash-grid-features-per-level-9", "context-base-step-0", "level-count-over-8x")),
    Reading("4.6: an overlong LEB128 count is rejected",
            (("pgs_occupancy.py", "                if not byte & 0x80:\n                    break",
              "                if not byte & 0x80:\n"
              "                    if byte == 0 and used > 1:\n"
              "                        fail('overlong varint')\n"
              "                    break"),),
            ("structure-occupancy-overlong-counts",)),
    Reading("5.4: B3 is not checked when L3 = 0",
            (("pgs_hashgrid.py", "1 <= b3 <= 24", "(l3 == 0 or 1 <= b3 <= 24)"),),
            ("hash-grid-log2-table-3d-unused-0",)),
    Reading("8.3: nothing of an incomplete chunk is checked, not even its type",
            (("pgs_stream.py",
              "        ctype = data[pos:pos + 4]\n"
              "        if not all(0x41 <= (b & ~0x20) <= 0x5A for b in ctype):\n"
              "            fail(f\"chunk type {ctype!r} is not four ASCII letters\")\n"
              "        (length,) = struct.unpack_from(\"<I\", data, pos + 4)\n"
              "        if pos + 12 + length > len(data):\n"
              "            return\n",
              "        ctype = data[pos:pos + 4]\n"
              "        (length,) = struct.unpack_from(\"<I\", data, pos + 4)\n"
              "        if pos + 12 + length > len(data):\n"
              "            return\n"
              "        if not all(0x41 <= (b & ~0x20) <= 0x5A for b in ctype):\n"
              "            fail(f\"chunk type {ctype!r} is not four ASCII letters\")\n"),),
            ("prefix-chunk-type-not-letters",)),
    Reading("8.3: the type letters are checked as soon as 4 bytes of a chunk are present",
            (("pgs_stream.py",
              "    while pos + 8 <= len(data):\n"
              "        ctype = data[pos:pos + 4]\n"
              "        if not all(0x41 <= (b & ~0x20) <= 0x5A for b in ctype):\n"
              "            fail(f\"chunk type {ctype!r} is not four ASCII letters\")\n",
              "    while pos + 4 <= len(data):\n"
              "        ctype = data[pos:pos + 4]\n"
              "        if not all(0x41 <= (b & ~0x20) <= 0x5A for b in ctype):\n"
              "            fail(f\"chunk type {ctype!r} is not four ASCII letters\")\n"
              "        if pos + 8 > len(data):\n"
              "            return\n"),),
            ("prefix-cut-in-chunk-header",)),
    Reading("8.1/2.1: the major version is checked before the file header is complete",
            (("pgs_stream.py",
              "    if len(data) < 10:\n        fail(\"stream ends inside the version\", "
              "\"truncated\")\n    if data[8] != 1:",
              "    if len(data) > 8 and data[8] != 1:\n"
              "        fail('major version', 'unsupported')\n"
              "    if len(data) < 10:\n        fail(\"stream ends inside the version\", "
              "\"truncated\")\n    if data[8] != 1:"),),
            ("truncated-before-major-version",)),
    Reading("4.6 (1.0 text): a structure section longer than its words is limit",
            (("pgs_occupancy.py", "fail(\"bytes after the occupancy words\")",
              "fail(\"bytes after the occupancy words\", \"limit\")"),),
            ("occupancy-trailing-bytes",)),
    Reading("5.4 (1.0 text): words running past the hash_grid part are format",
            (("pgs_hashgrid.py", "fail(\"num_words runs past the hash_grid part\", \"limit\")",
              "fail(\"num_words runs past the hash_grid part\")"),),
            ("hash-grid-num-words-over",)),
    Reading("2.4: reserved values are format whatever the stream's minor version",
            (("pgs_header.py", "reserved_class = \"unsupported\" if minor > 1 else \"format\"",
              "reserved_class = \"format\""),
             ("pgs_header.py", "\"unsupported\" if minor > 1 else \"format\")",
              "\"format\")")),
            ("head-reserved-nonzero-minor-2", "mlp-unknown-flags-minor-2")),
    Reading("3.1: convention 2 (Z-up) is valid whatever the minor version",
            (("pgs_header.py", "if convention > 2 or (convention == 2 and minor < 1):",
              "if convention > 2:"),),
            ("head-convention-2",)),
    Reading("3.1 (earlier 1.1 text): convention 2 is undefined in 1.1 streams too",
            (("pgs_header.py", "if convention > 2 or (convention == 2 and minor < 1):",
              "if convention > 1:"),),
            ("frame-zup",)),
    Reading("2.4: an undefined convention is unsupported from minor version 1 on",
            (("pgs_header.py", "fail(\"unknown convention\", reserved_class)",
              "fail(\"unknown convention\", \"unsupported\" if minor >= 1 else \"format\")"),),
            ("head-convention-3-minor-1",)),
    Reading("3: part 5 is read whatever the minor version",
            (("pgs_header.py", "    if minor >= 1:\n        names.append",
              "    if len(payload) > 0:\n        names.append"),
             ("pgs_header.py", "refine = _rendering(parts[5]) if minor >= 1 else None",
              "refine = _rendering(parts[5]) if len(parts) > 5 else None"),
             ("pgs_header.py", "        if pos + 4 > len(payload):\n",
              "        if pos + 4 > len(payload) and name == 'rendering':\n"
              "            break\n"
              "        if pos + 4 > len(payload):\n")),
            ("minor-0-trailing-part",)),
    Reading("3.5: refine is ignored (no RNDR record)",
            (("pgs_dump.py", "    if h.refine is not None:", "    if False:"),),
            ("refine-replace",)),
    Reading("1.1/3.1: positions computed in binary32",
            (("pgs_dump.py", "origin = np.array(h.origin, np.float64)",
              "origin = np.array(h.origin, np.float32)"),
             ("pgs_dump.py", "(origin + (lv.coords + 0.5) * size)",
              "(origin + (lv.coords.astype(np.float32) + np.float32(1) / 2) * np.float32(size))")),
            ("positions-binary64",)),
    Reading("1.1: subnormal results flushed to zero",
            (("pgs_dump.py", "(origin + (lv.coords + 0.5) * size).astype(\"<f4\")",
              "_ftz((origin + (lv.coords + 0.5) * size).astype(\"<f4\"))"),
             ("pgs_dump.py", "def _record(tag, payload):",
              "def _ftz(a):\n"
              "    return np.where(np.abs(a) < np.finfo(np.float32).tiny, np.float32(0), a)\n\n\n"
              "def _record(tag, payload):")),
            ("positions-subnormal",)),
    Reading("4.6: with D = 0 the level-1 occupancy section is empty",
            (("pgs_occupancy.py", "def roots(section, n, depth):\n",
              "def roots(section, n, depth):\n"
              "    if depth == 0 and section:\n"
              "        fail('a D = 0 section holds nothing')\n"),),
            ("structure-occupancy-empty",)),
    # precedence (8.4)
    Reading("8.4: a LEVL chunk's anchor_count is checked against toc first (8.1 step 2)",
            (("pgs_level.py", "    depth = head.base_depth + k - 1\n",
              "    if n != head.toc[k - 1].anchor_count:\n"
              "        fail('anchor_count differs from the table of contents')\n"
              "    depth = head.base_depth + k - 1\n"),),
            ("precedence-level-layout-before-toc", "level-count-over-8x")),
    Reading("8.4: all escapes of a group are read before any value is checked",
            (("pgs_entropy.py", "        if first_over is not None and first_over < pos:\n"
              "            break\n", ""),
             ("pgs_entropy.py", "        if abs(v[a, j]) > LIMIT:\n"
              "            first_over = pos\n            break\n",
              "        if abs(v[a, j]) > LIMIT and first_over is None:\n"
              "            first_over = pos\n")),
            ("precedence-raster-order",)),
    Reading("8.4: values are checked before the end check",
            (("pgs_entropy.py", "    rans.end_check()\n    half = np.array(",
              "    half = np.array("),
             ("pgs_entropy.py", "    if first_over is not None:\n",
              "    if first_over is None:\n        rans.end_check()\n"
              "    if first_over is not None:\n")),
            ("precedence-end-check-before-values",)),
    Reading("8.4: the three group payloads are split before any group is decoded",
            (("pgs_entropy.py", "    symbols, values, c0 = [], [], 0\n",
              "    for payload in groups:\n"
              "        if len(payload) >= 4 and 4 + 4 * struct.unpack_from('<I', payload)[0] "
              "> len(payload):\n"
              "            fail('num_words beyond the group payload', 'limit')\n"
              "    symbols, values, c0 = [], [], 0\n"),),
            ("precedence-groups-in-order",)),
    Reading("8.4: input_width = 2 G is checked after the arrays",
            (("pgs_context.py",
              "    if n0 != 2 * grid_width:\n        fail(\"input_width is not 2 G\")\n", ""),
             ("pgs_context.py", "    return steps, layers",
              "    if n0 != 2 * grid_width:\n        fail('input_width is not 2 G')\n"
              "    return steps, layers")),
            ("precedence-context-input-width",)),
    Reading("8.4: num_ones <= P is checked before the part's length",
            (("pgs_hashgrid.py", "    if head + 4 * m > len(part):",
              "    if ones > total:\n        fail('num_ones > P', 'limit')\n"
              "    if head + 4 * m > len(part):"),),
            ("precedence-hash-grid-length-before-ones",)),
    Reading("8.4: the frame's reserved values are checked before its other fields",
            (("pgs_header.py", "    if not all(math.isfinite(v) for v in (ox, oy, oz)):\n",
              "    if reserved != 0 and minor > 1:\n        fail('reserved', 'unsupported')\n"
              "    if not all(math.isfinite(v) for v in (ox, oy, oz)):\n"),),
            ("precedence-frame-field-order",)),
    Reading("8.4: what a chunk type means is checked before its CRC",
            (("pgs_stream.py", "        payload = data[pos + 8:pos + 8 + length]\n",
              "        payload = data[pos + 8:pos + 8 + length]\n"
              "        if ctype not in (b'HEAD', b'LEVL', b'ENDS') and not ctype[0] & 0x20:\n"
              "            fail('unknown critical chunk', 'unsupported')\n"),),
            ("precedence-crc-before-chunk-type",)),
    Reading("8.4: each HEAD part is checked as it is split off",
            (("pgs_header.py", "        parts.append(payload[pos + 4:pos + 4 + n])\n",
              "        parts.append(payload[pos + 4:pos + 4 + n])\n"
              "        if name == 'frame' and n != 28:\n"
              "            fail('frame part is not 28 bytes')\n"),),
            ("precedence-parts-split-first",)),
]


def _cases(names: tuple[str, ...]) -> list[tuple[str, bytes, int, dict]]:
    """``(label, data, max_lod, expectation)`` of the named suite cases."""
    out = []
    for name in names:
        for kind in ("vectors", "partial", "invalid"):
            folder = SUITE / kind / name
            if folder.is_dir():
                break
        else:
            raise AssertionError(f"no suite case {name}")
        expected = json.loads((folder / "expected.json").read_text())
        data = (folder / expected["stream"]).read_bytes()
        if expected["stream"].endswith(".xz"):
            data = lzma.decompress(data)
        if kind == "invalid":
            out.append((name, data, expected["max_lod"], {"error_class": expected["error_class"]}))
        else:
            for case in expected["cases"]:
                cut = data if case["bytes"] is None else data[: case["bytes"]]
                out.append((f"{name} [{case['name']}]", cut, case["max_lod"],
                            {"sha256": case["sha256"]}))
    return out


def _failures(tmp_path: Path, cases, edits=()) -> list[str]:
    """The cases that the independent decoder, copied with ``edits`` applied and loaded
    afresh (its modules import each other lazily, so they stay loaded while it runs), fails."""
    root = tmp_path / "copy"
    folder = root / "conformance" / "independent_decoder"
    shutil.copytree(DECODER, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "spec").symlink_to(ROOT / "spec")
    for file, old, new in edits:
        path = folder / file
        source = path.read_text()
        assert source.count(old) == 1, f"{file}: the text to change is gone: {old!r}"
        path.write_text(source.replace(old, new))
    saved = {n: sys.modules.pop(n) for n in list(sys.modules) if n.startswith("pgs_")}
    sys.path.insert(0, str(folder))
    try:
        decode_file = importlib.import_module("pgs_stream").decode_file
        write_dump = importlib.import_module("pgs_dump").write_dump
        stream_error = importlib.import_module("pgs_errors").StreamError
        failed = []
        for label, data, max_lod, want in cases:
            try:
                got = hashlib.sha256(write_dump(decode_file(data, max_lod))).hexdigest()
            except stream_error as error:
                got = f"error-class: {error.error_class}"
            if got != want.get("sha256", f"error-class: {want.get('error_class')}"):
                failed.append(f"{label}: {got}")
        return failed
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n.startswith("pgs_")]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_the_independent_decoder_passes_every_named_case(tmp_path):
    names = tuple(sorted({n for reading in READINGS for n in reading.cases}))
    assert _failures(tmp_path, _cases(names)) == []


@pytest.mark.parametrize("reading", READINGS, ids=[r.name for r in READINGS])
def test_each_alternative_reading_fails_a_case(reading, tmp_path):
    failed = _failures(tmp_path, _cases(reading.cases), reading.edits)
    assert failed, f"no case catches the reading: {reading.name}"
