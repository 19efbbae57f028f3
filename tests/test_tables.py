"""Tests for progs_codec.entropy.tables and spec/tools/make_tables.py (spec 7.3)."""

import importlib.util
from pathlib import Path

import numpy as np

from progs_codec.entropy.tables import (NUM_SCALES, PRECISION, STEP_ONE_INDEX, load_tables,
                                        tables_dir)

SPEC = Path(__file__).parents[1] / "spec"


def load_generator():
    spec = importlib.util.spec_from_file_location("make_tables", SPEC / "tools" / "make_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_published_tables(tmp_path):
    generator = load_generator()
    generator.main(tmp_path)
    for name in ("scales.txt", "frequencies.txt", "step_multipliers.txt"):
        assert (tmp_path / name).read_bytes() == (SPEC / "tables" / name).read_bytes(), name


def test_tables_are_valid_and_small():
    t = load_tables()
    assert len(t.frequencies) == NUM_SCALES
    for f, half in zip(t.frequencies, t.half_widths):
        assert len(f) == 2 * half + 2 and f.min() >= 1 and f.sum() == 1 << PRECISION
        assert f[half] == f.max()                       # symbol 0 is the most likely
    assert np.all(np.diff(t.scales) > 0) and np.all(np.diff(t.step_multipliers) > 0)
    assert t.step_multipliers[STEP_ONE_INDEX] == 4096
    assert sum(p.stat().st_size for p in (SPEC / "tables").iterdir()) < 300_000


def test_tables_folder_resolves():
    assert (tables_dir() / "frequencies.txt").is_file()


def test_spec_gives_the_sha256_of_every_table_file():
    """Spec 7.3 lists the SHA-256 of each file in spec/tables/; they match the files."""
    import hashlib
    import re

    text = (SPEC / "07-attribute-coding.md").read_text()
    listed = dict(re.findall(r"^\| `([a-z_]+\.txt)` \| `([0-9a-f]{64})` \|$", text, re.MULTILINE))
    files = {p.name for p in (SPEC / "tables").glob("*.txt")}
    assert set(listed) == files
    for name, digest in listed.items():
        assert hashlib.sha256((SPEC / "tables" / name).read_bytes()).hexdigest() == digest, name
