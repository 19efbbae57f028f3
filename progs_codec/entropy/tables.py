"""Normative coding tables: scales, frequencies, step multipliers (spec 7.3).

The tables are data files in ``spec/tables/`` (installed as the package
``progs_codec.spec_tables``), generated once by ``spec/tools/make_tables.py``.

>>> t = load_tables()
>>> len(t.frequencies), int(t.frequencies[0].sum()) == 1 << PRECISION
(64, True)
>>> int(t.step_multipliers[STEP_ONE_INDEX]) == 1 << STEP_MULTIPLIER_BITS
True
>>> t.scale_range, t.steps_per_octave
((0.11, 256.0), 8)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "PRECISION",
    "NUM_SCALES",
    "NUM_STEPS",
    "STEP_MULTIPLIER_BITS",
    "STEP_ONE_INDEX",
    "CodingTables",
    "load_tables",
    "tables_dir",
]

PRECISION = 24               # every frequency table sums to 2**PRECISION (spec 7.3)
NUM_SCALES = 64
NUM_STEPS = 32
STEP_MULTIPLIER_BITS = 12    # step multipliers are in units of 2**-12
STEP_ONE_INDEX = 16          # the entry whose multiplier is exactly 1.0


@dataclass(frozen=True, eq=False)
class CodingTables:
    """The contents of ``spec/tables`` (spec 7.3).

    Attributes:
        scales: ``[64] float64`` standard deviation of each table, in steps (informative).
        half_widths: ``[64] int64`` ``T_s``: table ``s`` codes symbols ``-T_s..T_s``.
        frequencies: 64 arrays ``[2 T_s + 2] int64``; entry ``k + T_s`` is symbol ``k``,
            the last entry is the escape. Each entry >= 1, each array sums to ``2**24``.
        step_multipliers: ``[32] int64`` in units of ``2**-12``.
    """

    scales: np.ndarray
    half_widths: np.ndarray
    frequencies: tuple[np.ndarray, ...]
    step_multipliers: np.ndarray

    @property
    def scale_range(self) -> tuple[float, float]:
        """``(first, last)`` standard deviation of the scale table, in steps: the tables are
        log-spaced between them (``0.11``, ``256.0``)."""
        return float(self.scales[0]), float(self.scales[-1])

    @property
    def steps_per_octave(self) -> int:
        """Step indices per doubling of the step: ``mult[i] ~ 2**((i - 16) / steps_per_octave)``
        (``8``)."""
        one = int(self.step_multipliers[STEP_ONE_INDEX])
        return int(np.flatnonzero(self.step_multipliers == 2 * one)[0]) - STEP_ONE_INDEX


def tables_dir() -> Path:
    """Folder holding the table files: the installed package data, else the repository's."""
    try:
        folder = resources.files("progs_codec.spec_tables")
        if folder.joinpath("frequencies.txt").is_file():
            return Path(str(folder))
    except ModuleNotFoundError:
        pass
    return Path(__file__).parents[2] / "spec" / "tables"


def _rows(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="ascii").splitlines()
    return [line.split() for line in lines if line and not line.startswith("#")]


@functools.cache
def load_tables() -> CodingTables:
    """Read and check the tables (cached: one instance per process)."""
    folder = tables_dir()
    scale_rows = _rows(folder / "scales.txt")
    freq_rows = _rows(folder / "frequencies.txt")
    step_rows = _rows(folder / "step_multipliers.txt")
    scales = np.array([float(r[1]) for r in scale_rows])
    half_widths = np.array([int(r[1]) for r in freq_rows], dtype=np.int64)
    frequencies = tuple(np.array(r[2:], dtype=np.int64) for r in freq_rows)
    steps = np.array([int(r[1]) for r in step_rows], dtype=np.int64)
    ok = (len(scales) == len(frequencies) == NUM_SCALES and len(steps) == NUM_STEPS
          and all(int(r[0]) == i for rows in (scale_rows, freq_rows, step_rows)
                  for i, r in enumerate(rows))
          and all(len(f) == 2 * t + 2 and f.min() >= 1 and f.sum() == 1 << PRECISION
                  for f, t in zip(frequencies, half_widths))
          and steps.min() >= 1 and steps[STEP_ONE_INDEX] == 1 << STEP_MULTIPLIER_BITS)
    if not ok:
        raise RuntimeError(f"coding tables in {folder} are damaged; reinstall progs_codec")
    return CodingTables(scales, half_widths, frequencies, steps)
