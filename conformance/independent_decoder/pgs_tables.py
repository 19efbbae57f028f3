"""The normative tables of spec 7.3, read from spec/tables/."""

from pathlib import Path

TABLES = Path(__file__).resolve().parents[2] / "spec" / "tables"


def _records(name):
    lines = (TABLES / name).read_text(encoding="ascii").splitlines()
    return [[int(x) for x in line.split(" ")] for line in lines if line and line[0] != "#"]


def _load():
    freqs, starts, halves = [], [], []
    for s, record in enumerate(_records("frequencies.txt")):
        assert record[0] == s and len(record) == 2 * record[1] + 4, "damaged frequencies.txt"
        f = record[2:]
        assert sum(f) == 1 << 24 and min(f) >= 1, "damaged frequencies.txt"
        acc, st = 0, []
        for x in f:
            st.append(acc)
            acc += x
        freqs.append(f)
        starts.append(st)
        halves.append(record[1])
    mult = [r[1] for r in _records("step_multipliers.txt")]
    assert len(freqs) == 64 and len(mult) == 32, "damaged tables"
    return freqs, starts, halves, mult


FREQUENCIES, STARTS, HALF_WIDTHS, STEP_MULTIPLIERS = _load()
