"""The normative tables of spec 7.3, read from spec/tables/ and checked against the SHA-256
digests that spec 7.3 gives."""

import hashlib
from pathlib import Path

TABLES = Path(__file__).resolve().parents[2] / "spec" / "tables"

SHA256 = {   # spec 7.3
    "frequencies.txt": "a69f778503ea639facfd702dbe115f7ef8ac1afa69e545437a0c095b870284a1",
    "step_multipliers.txt": "41fd7065e3a3f2877c92ba37d0cf93499ae6ce7f3995e0d7aeaf1624ec219183",
}


def _records(name):
    data = (TABLES / name).read_bytes()
    if hashlib.sha256(data).hexdigest() != SHA256[name]:
        raise RuntimeError(f"{TABLES / name} is not the table of spec 7.3 (SHA-256 differs)")
    lines = data.decode("ascii").splitlines()
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
