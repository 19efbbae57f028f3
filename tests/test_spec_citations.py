"""Spec citations cannot rot: every section that code, docstrings and docs cite exists.

A citation is ``spec 7.3``, ``spec 5.4, 6.5``, ``spec 7.2-7.5``, ``spec 4 and 5``,
``chapter 7`` or ``chapters 5-7`` anywhere in the sources and docs below, and, in the comments
and strings of Python sources, a bare section number in parentheses: ``(7.4)``,
``(5.3, 6.1)``. Each number must be a heading of ``spec/*.md`` (``# 7 ...`` or ``## 7.3 ...``).
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["progs_codec", "training/progs_training", "conformance/generate.py",
           "conformance/independent_decoder", "benchmarks", "examples", "tools", "tests",
           "training/tests"]
DOCS = ["README.md", "docs", "training/README.md", "conformance/README.md", "spec/README.md"]

_NUMBER = r"\d{1,2}(?:\.\d{1,2})?"
_LIST = rf"{_NUMBER}(?:\s*(?:,|-|–|and|or)\s*{_NUMBER})*"
CITED = re.compile(rf"\b(?:[Ss]pec(?:ification)?(?:\s+chapters?)?|[Cc]hapters?)\s+({_LIST})")
BARE = re.compile(rf"\((\d{{1,2}}\.\d{{1,2}}(?:\s*(?:,|-|–)\s*\d{{1,2}}\.\d{{1,2}})*)\)")


def spec_sections() -> set[str]:
    """Every heading number of ``spec/*.md``: ``"7"``, ``"7.3"``, ..."""
    out = set()
    for path in (ROOT / "spec").glob("*.md"):
        for line in path.read_text().splitlines():
            m = re.match(r"#{1,3}\s+(\d+(?:\.\d+)?)\s", line)
            if m:
                out.add(m.group(1))
    return out


def _numbers(listed: str) -> list[str]:
    return re.findall(_NUMBER, listed)


def _python_text(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of the comments and string literals of a Python file: where a bare
    section number is a citation."""
    return [(tok.start[0], tok.string)
            for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
            if tok.type in (tokenize.COMMENT, tokenize.STRING)
            or tok.type == getattr(tokenize, "FSTRING_MIDDLE", None)]


def citations() -> list[tuple[str, int, str]]:
    """``(file, line, section)`` for every citation found."""
    out = []
    files = []
    for name in SOURCES + DOCS:
        path = ROOT / name
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".py", ".md"))
        elif path.exists():
            files.append(path)
    for path in files:
        text = path.read_text()
        for m in CITED.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out += [(str(path.relative_to(ROOT)), line, n) for n in _numbers(m.group(1))]
        if path.suffix == ".py":
            for start, piece in _python_text(path):
                for m in BARE.finditer(piece):
                    line = start + piece.count("\n", 0, m.start())
                    out += [(str(path.relative_to(ROOT)), line, n) for n in _numbers(m.group(1))]
    return out


def test_finds_citations():
    found = citations()
    assert len(found) > 200
    assert ("progs_codec/entropy/tables.py", 1, "7.3") in found


def test_every_cited_section_exists():
    sections = spec_sections()
    assert {"1", "7.3", "10.4"} <= sections
    missing = [f"{file}:{line}: spec {n}" for file, line, n in citations() if n not in sections]
    assert missing == [], "cited sections that spec/ does not have:\n" + "\n".join(missing)
