"""Generate the normative coding tables in ``spec/tables/`` (spec 7.3, informative).

The files this script writes are the normative data; the script only records how they were
made. It uses binary64 floating point (``math.erfc``), so a different platform could in
principle round one entry differently: that would change the *generator's* output, never the
meaning of the published tables. ``tests/test_tables.py`` checks that this script regenerates
the published files byte for byte.

Usage: ``python spec/tools/make_tables.py [OUTPUT_DIR]`` (default: ``spec/tables``).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

PRECISION = 24          # frequencies of every table sum to 2**PRECISION
NUM_SCALES = 64         # scale table entries, log-spaced
SCALE_MIN = 0.11        # smallest standard deviation, in quantization steps
SCALE_MAX = 256.0       # largest standard deviation, in quantization steps
TAIL = 6.0              # a table covers symbols -T..T with T = ceil(TAIL * scale)
NUM_STEPS = 32          # step multiplier entries
STEP_BITS = 12          # step multipliers are fixed point with 2**-STEP_BITS units
STEP_CENTRE = 16        # entry with multiplier 1.0
STEPS_PER_OCTAVE = 8


def scales() -> list[float]:
    """The 64 standard deviations, ``SCALE_MIN * (SCALE_MAX / SCALE_MIN) ** (i / 63)``."""
    ratio = math.log(SCALE_MAX / SCALE_MIN)
    return [SCALE_MIN * math.exp(ratio * i / (NUM_SCALES - 1)) for i in range(NUM_SCALES)]


def half_width(scale: float) -> int:
    return max(1, math.ceil(TAIL * scale))


def probabilities(scale: float) -> list[float]:
    """Mass of a zero-mean Gaussian on each integer ``-T..T``, then the escape (both tails)."""
    t = half_width(scale)

    def upper(x: float) -> float:        # P(X > x) for x >= 0, accurate in the tail
        return 0.5 * math.erfc(x / (scale * math.sqrt(2.0)))

    def mass(k: int) -> float:
        k = abs(k)
        if k == 0:
            return 1.0 - 2.0 * upper(0.5)
        return upper(k - 0.5) - upper(k + 0.5)

    return [mass(k) for k in range(-t, t + 1)] + [2.0 * upper(t + 0.5)]


def frequencies(probs: list[float]) -> list[int]:
    """Integer frequencies, each >= 1, summing to exactly ``2**PRECISION``.

    Every entry gets 1 plus the floor of its share of the remaining ``2**PRECISION - n``; the
    units left over go, one each, to the entries with the largest fractional shares (lowest
    index first on ties).
    """
    n, total = len(probs), sum(probs)
    shares = [p / total * ((1 << PRECISION) - n) for p in probs]
    freqs = [1 + math.floor(s) for s in shares]
    left = (1 << PRECISION) - sum(freqs)
    by_fraction = sorted(range(n), key=lambda i: (-(shares[i] - math.floor(shares[i])), i))
    for i in by_fraction[:left]:
        freqs[i] += 1
    return freqs


def step_multipliers() -> list[int]:
    """``round(2**STEP_BITS * 2**((i - STEP_CENTRE) / STEPS_PER_OCTAVE))``, i = 0..31."""
    return [round((1 << STEP_BITS) * 2.0 ** ((i - STEP_CENTRE) / STEPS_PER_OCTAVE))
            for i in range(NUM_STEPS)]


def render() -> dict[str, str]:
    """File name -> exact file text."""
    sc = scales()
    scale_lines = ["# scale index, standard deviation in quantization steps (informative)"]
    scale_lines += [f"{i} {s!r}" for i, s in enumerate(sc)]
    freq_lines = ["# scale index, half width T, then 2T+2 frequencies: symbols -T..T, escape",
                  f"# precision {PRECISION}: each line's frequencies sum to {1 << PRECISION}"]
    for i, s in enumerate(sc):
        freqs = frequencies(probabilities(s))
        freq_lines.append(" ".join(map(str, [i, half_width(s)] + freqs)))
    step_lines = [f"# step index, multiplier in units of 2**-{STEP_BITS}"]
    step_lines += [f"{i} {m}" for i, m in enumerate(step_multipliers())]
    return {"scales.txt": "\n".join(scale_lines) + "\n",
            "frequencies.txt": "\n".join(freq_lines) + "\n",
            "step_multipliers.txt": "\n".join(step_lines) + "\n"}


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (out_dir / name).write_text(text, encoding="ascii", newline="\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "tables")
