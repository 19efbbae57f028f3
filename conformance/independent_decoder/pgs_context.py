"""Integer context model: part context_mlp and its evaluation (spec 6)."""

import struct

import numpy as np

from pgs_errors import fail


def parse_context(part, grid_width, channels):
    """``(base_steps, layers)``; each layer ``(W [out, in], b, m, s)`` as int64 arrays."""
    if len(part) < 15:
        fail("context_mlp part too short")
    steps = struct.unpack_from("<3I", part, 0)
    n = part[12]
    (n0,) = struct.unpack_from("<H", part, 13)
    if not all(1 <= x <= 1 << 20 for x in steps) or not 1 <= n <= 8:
        fail("base_step or num_layers out of range", "limit")
    if len(part) < 15 + 2 * n:
        fail("context_mlp part too short for its widths")
    widths = [n0, *struct.unpack_from(f"<{n}H", part, 15)]
    if not 1 <= n0 <= 1024:
        fail("input_width out of range", "limit")
    if n0 != 2 * grid_width:
        fail("input_width is not 2 G")
    if any(not 1 <= w <= 1024 for w in widths[1:-1]) or widths[-1] != 3 * channels:
        fail("layer widths out of range", "limit")
    need = 15 + 2 * n + sum(o * (i + 7) for i, o in zip(widths, widths[1:]))
    if len(part) != need:
        fail("context_mlp part length does not match its widths")
    pos, layers = 15 + 2 * n, []
    for n_in, n_out in zip(widths, widths[1:]):
        w = np.frombuffer(part, "i1", n_out * n_in, pos).astype(np.int64).reshape(n_out, n_in)
        pos += n_out * n_in
        b = np.frombuffer(part, "<i4", n_out, pos).astype(np.int64)
        pos += 4 * n_out
        m = np.frombuffer(part, "<u2", n_out, pos).astype(np.int64)
        pos += 2 * n_out
        s = np.frombuffer(part, "u1", n_out, pos).astype(np.int64)
        pos += n_out
        if (w == -128).any() or (b == -(1 << 31)).any() or (s > 40).any():
            fail("weight -128, bias -2**31 or shift > 40", "limit")
        layers.append((w, b, m, s))
    return steps, layers


def run_context(layers, x, channels):
    """``(mean, scale_index, step_index)``, each ``[N, C]`` int64 (6.2, 6.4)."""
    h = np.asarray(x, np.int64)
    for i, (w, b, m, s) in enumerate(layers):
        acc = h @ w.T + b                       # exact: |values| < 2**32 (6.3)
        r = np.where(s > 0, 1 << np.maximum(s - 1, 0), 0)
        y = (acc * m + r) >> s
        h = np.clip(y, 0, 127) if i < len(layers) - 1 else y
    c = channels
    return (np.clip(h[:, :c], -(1 << 24) + 1, (1 << 24) - 1), np.clip(h[:, c:2 * c], 0, 63),
            np.clip(h[:, 2 * c:], 0, 31))
