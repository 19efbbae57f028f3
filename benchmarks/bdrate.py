"""Bjontegaard delta metrics and equal-bytes comparisons of rate-distortion curves.

The Bjontegaard delta rate (VCEG-M33; the PCHIP variant of the JCT-VC common test
conditions, JCTVC-L1100) is the mean horizontal gap between two RD curves in log rate, over
the quality range both cover: fit log10(rate) as a function of PSNR for each curve, integrate
the difference over the overlap, divide by its width, and turn it into a percentage,
``(10 ** mean - 1) * 100``. Negative: the test curve needs fewer bytes for the same quality.

- ``method="pchip"`` (default): piecewise cubic Hermite interpolation (scipy's
  ``PchipInterpolator``), shape-preserving, any number of points >= 2.
- ``method="cubic"``: the original least-squares cubic polynomial (needs >= 4 points).

A curve is first reduced to its efficient points: sorted by quality, a point that costs as
many bytes as a better one or more is dropped (a LoD that adds bytes and loses quality cannot
be fitted as rate-of-quality). What was dropped is reported by :func:`efficient_points`.

Example:
    >>> bd_rate([100, 200, 400, 800], [30, 33, 36, 39], [80, 160, 320, 640], [30, 33, 36, 39])
    -20.0...
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["bd_rate", "bd_psnr", "efficient_points", "interpolate_at_rate", "BDError"]

METHODS = ("pchip", "cubic")


class BDError(ValueError):
    """The curves cannot be compared: too few points, no overlap, non-finite values."""


def _points(rate: Sequence[float], quality: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, np.float64).ravel()
    q = np.asarray(quality, np.float64).ravel()
    if r.shape != q.shape:
        raise BDError(f"rate and quality differ in length: {len(r)} vs {len(q)}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))) or np.any(r <= 0):
        raise BDError("rates must be finite and > 0, qualities finite")
    return r, q


def efficient_points(rate: Sequence[float], quality: Sequence[float]
                     ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The curve's efficient points sorted by quality, and the indices of those dropped.

    A point is dropped when another point of equal or higher quality costs no more bytes
    (ties in quality keep the cheaper point).

    Returns:
        ``(rate [M] float64, quality [M] float64, dropped indices into the input)``.
    """
    r, q = _points(rate, quality)
    order = np.lexsort((r, -q))        # best quality first, cheapest first among ties
    kept, dropped, cheapest = [], [], math.inf
    for i in order:
        if r[i] < cheapest:
            kept.append(i)
            cheapest = r[i]
        else:
            dropped.append(int(i))
    kept = kept[::-1]
    return r[kept], q[kept], sorted(dropped)


def _log_rate_integral(q: np.ndarray, log_r: np.ndarray, lo: float, hi: float,
                       method: str) -> float:
    if method == "pchip":
        from scipy.interpolate import PchipInterpolator

        return float(PchipInterpolator(q, log_r).integrate(lo, hi))
    poly = np.polyint(np.polyfit(q, log_r, 3))
    return float(np.polyval(poly, hi) - np.polyval(poly, lo))


def _check_method(method: str, *sizes: int) -> None:
    if method not in METHODS:
        raise BDError(f"unknown method {method!r}; expected one of {METHODS}")
    need = 4 if method == "cubic" else 2
    if min(sizes) < need:
        raise BDError(f"{method} needs at least {need} efficient points per curve, "
                      f"got {list(sizes)}")


def bd_rate(rate_anchor: Sequence[float], quality_anchor: Sequence[float],
            rate_test: Sequence[float], quality_test: Sequence[float], *,
            method: str = "pchip") -> float:
    """Bjontegaard delta rate of the test curve against the anchor, in percent.

    Args:
        rate_anchor, quality_anchor: the anchor's points (bytes or bits, PSNR in dB), any order.
        rate_test, quality_test: the test curve's points.
        method: ``"pchip"`` or ``"cubic"``.

    Raises:
        BDError: fewer efficient points than the method needs, or no quality overlap.
    """
    ra, qa, _ = efficient_points(rate_anchor, quality_anchor)
    rt, qt, _ = efficient_points(rate_test, quality_test)
    _check_method(method, len(ra), len(rt))
    lo, hi = max(qa.min(), qt.min()), min(qa.max(), qt.max())
    if not hi > lo:
        raise BDError(f"the curves share no quality range (anchor {qa.min():.2f}.."
                      f"{qa.max():.2f}, test {qt.min():.2f}..{qt.max():.2f})")
    mean = (_log_rate_integral(qt, np.log10(rt), lo, hi, method)
            - _log_rate_integral(qa, np.log10(ra), lo, hi, method)) / (hi - lo)
    return float((10.0 ** mean - 1.0) * 100.0)


def bd_psnr(rate_anchor: Sequence[float], quality_anchor: Sequence[float],
            rate_test: Sequence[float], quality_test: Sequence[float], *,
            method: str = "pchip") -> float:
    """Bjontegaard delta quality (dB for PSNR) of the test curve over the anchor at equal rate.

    The mean vertical gap over the log-rate range both curves cover; same arguments and errors
    as :func:`bd_rate`.
    """
    ra, qa, _ = efficient_points(rate_anchor, quality_anchor)
    rt, qt, _ = efficient_points(rate_test, quality_test)
    _check_method(method, len(ra), len(rt))
    la, lt = np.log10(ra), np.log10(rt)
    lo, hi = max(la.min(), lt.min()), min(la.max(), lt.max())
    if not hi > lo:
        raise BDError("the curves share no rate range")
    # Quality as a function of log rate: the efficient points are increasing in both.
    return float((_log_rate_integral(lt, qt, lo, hi, method)
                  - _log_rate_integral(la, qa, lo, hi, method)) / (hi - lo))


def interpolate_at_rate(rate: Sequence[float], quality: Sequence[float],
                        at: float | Sequence[float]) -> np.ndarray:
    """Quality of a curve at the given rates: PCHIP in log rate, NaN outside its range.

    The curve is reduced to its efficient points first (:func:`efficient_points`).

    Example:
        >>> interpolate_at_rate([10, 100, 1000], [10.0, 20.0, 30.0], [100, 5000]).tolist()
        [20.0, nan]
    """
    from scipy.interpolate import PchipInterpolator

    r, q, _ = efficient_points(rate, quality)
    x = np.log10(np.atleast_1d(np.asarray(at, np.float64)))
    if len(r) < 2:
        raise BDError("interpolation needs at least 2 efficient points")
    out = PchipInterpolator(np.log10(r), q, extrapolate=False)(x)
    return np.asarray(out, np.float64)
