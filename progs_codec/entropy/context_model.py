"""Integer context MLP: hash features -> mean, scale index, step index (spec 6).

Every layer computes an exact integer accumulator, requantizes it per output channel with an
integer multiply and a rounding shift, then (hidden layers) a ReLU clipped to ``[0, 127]``.
The accumulator bound of spec 6.3 lets :func:`predict` sum in float32 GEMM and still get the
exact integers; :func:`predict_reference` does the same in int64 arithmetic.

>>> rng = np.random.default_rng(0)
>>> model = random_context_model([8, 16, 3 * 4], rng)
>>> mean, scale, step = predict(model, rng.integers(-127, 128, (5, 8)))
>>> mean.shape, scale.dtype, step.dtype
((5, 4), dtype('uint8'), dtype('uint8'))
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..errors import FormatError, LimitError, ModelError
from .tables import NUM_SCALES, NUM_STEPS

__all__ = [
    "ContextLayer",
    "ContextModel",
    "ACTIVATION_MAX",
    "MEAN_LIMIT",
    "MAX_WIDTH",
    "MAX_LAYERS",
    "MAX_SHIFT",
    "accumulate",
    "requantize",
    "predict",
    "predict_reference",
    "random_context_model",
    "write_context_model",
    "parse_context_model",
]

ACTIVATION_MAX = 127          # hidden activations are clipped to [0, 127] (6.2)
MEAN_LIMIT = (1 << 24) - 1    # means are clipped to [-MEAN_LIMIT, MEAN_LIMIT] (6.4)
MAX_WIDTH = 1024              # input width of every layer (6.3)
MAX_OUTPUTS = 3 * 1280        # 3 C with C <= 1024 + 64 + 3 * 64 (spec 3.1)
MAX_LAYERS = 8
MAX_SHIFT = 40
MAX_BIAS = (1 << 31) - 1
_ROWS = 512                   # rows per chunk: float64 buffers stay in a core's L2

_HEAD = struct.Struct("<BH")


@dataclass(frozen=True, eq=False)
class ContextLayer:
    """One layer (spec 6.2): ``weight [out, in] int8`` (no -128), ``bias [out] int32``,
    ``multiplier [out] uint16``, ``shift [out] uint8`` (0..40)."""

    weight: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContextLayer):
            return NotImplemented
        return all(np.array_equal(getattr(self, f), getattr(other, f))
                   for f in ("weight", "bias", "multiplier", "shift"))


@dataclass(frozen=True, eq=False)
class ContextModel:
    """The integer context MLP (spec 6): ``layers[-1]`` has ``3 * channels`` outputs."""

    layers: tuple[ContextLayer, ...]
    channels: int

    def __post_init__(self):
        problems = _problems(self)
        if problems:
            raise ModelError("invalid context model: " + "; ".join(problems))

    @property
    def input_width(self) -> int:
        return int(self.layers[0].weight.shape[1])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContextModel):
            return NotImplemented
        return (self.channels == other.channels and len(self.layers) == len(other.layers)
                and all(a == b for a, b in zip(self.layers, other.layers)))


def _problems(model: ContextModel) -> list[str]:
    out = []
    if not 1 <= len(model.layers) <= MAX_LAYERS:
        return [f"{len(model.layers)} layers, expected 1..{MAX_LAYERS}"]
    width = model.layers[0].weight.shape[1] if model.layers[0].weight.ndim == 2 else -1
    for i, layer in enumerate(model.layers):
        w = layer.weight
        if w.dtype != np.int8 or w.ndim != 2 or w.shape[1] != width or (w == -128).any():
            out.append(f"layer {i}: weight must be [out, {width}] int8 without -128")
            continue
        n = w.shape[0]
        if not 1 <= width <= MAX_WIDTH:
            out.append(f"layer {i}: input width {width} not in 1..{MAX_WIDTH}")
        for name, arr, dtype in (("bias", layer.bias, np.int32),
                                 ("multiplier", layer.multiplier, np.uint16),
                                 ("shift", layer.shift, np.uint8)):
            if arr.dtype != dtype or arr.shape != (n,):
                out.append(f"layer {i}: {name} must be [{n}] {np.dtype(dtype).name}")
        if layer.shift.dtype == np.uint8 and (layer.shift > MAX_SHIFT).any():
            out.append(f"layer {i}: shift above {MAX_SHIFT}")
        if layer.bias.dtype == np.int32 and (layer.bias == -(1 << 31)).any():
            out.append(f"layer {i}: bias -2**31")
        width = n
    if width != 3 * model.channels or not 1 <= width <= MAX_OUTPUTS:
        out.append(f"last layer has {width} outputs, expected 3 x {model.channels}")
    return out


def accumulate(x: np.ndarray, weight: np.ndarray, *, method: str = "float32") -> np.ndarray:
    """``x @ weight.T`` exactly (spec 6.3), as ``float64`` holding integers.

    ``method`` is ``"float32"`` (GEMM, exact because every partial sum is below ``2**24``),
    ``"float64"`` or ``"int64"``; all three give the same integers within the bound.
    """
    if method == "float32":
        return (x.astype(np.float32, copy=False) @ weight.T.astype(np.float32)).astype(np.float64)
    if method == "float64":
        return x.astype(np.float64) @ weight.T.astype(np.float64)
    if method == "int64":
        return (x.astype(np.int64) @ weight.T.astype(np.int64)).astype(np.float64)
    raise ValueError(f"unknown method {method!r}")


def requantize(acc: np.ndarray, layer: ContextLayer) -> np.ndarray:
    """Spec 6.2: ``floor(((acc + bias) * m + 2**(s-1)) / 2**s)`` per channel (``s = 0``:
    ``(acc + bias) * m``), in float64: every value stays below ``2**53`` (6.3)."""
    m, offset, inv = _requant_constants(layer)
    return np.floor((acc * m + offset) * inv)


def _requant_constants(layer: ContextLayer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``m``, ``bias * m + 2**(s-1)`` and ``2**-s`` as float64: all exact (spec 6.3)."""
    m = layer.multiplier.astype(np.float64)
    s = layer.shift.astype(np.int64)
    half = np.where(s > 0, np.ldexp(1.0, s - 1), 0.0)
    return m, layer.bias * m + half, np.ldexp(1.0, -s)


def _output_bounds(channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output clip bounds of spec 6.4: means, scale indices, step indices."""
    low = np.repeat([-MEAN_LIMIT, 0, 0], channels).astype(np.float64)
    high = np.repeat([MEAN_LIMIT, NUM_SCALES - 1, NUM_STEPS - 1], channels).astype(np.float64)
    return low, high


def _outputs(y: np.ndarray, channels: int):
    low, high = _output_bounds(channels)
    y = np.minimum(np.maximum(y, low), high)
    return (y[:, :channels].astype(np.int32), y[:, channels:2 * channels].astype(np.uint8),
            y[:, 2 * channels:].astype(np.uint8))


def _fused_constants(layer: ContextLayer) -> tuple[np.ndarray, np.ndarray]:
    """``a = m * 2**-s`` and ``b = (bias * m + 2**(s-1)) * 2**-s`` as float64, both exact.

    For an integer accumulator ``acc`` (``|acc| < 2**24``, spec 6.3), ``acc * a`` is exact
    (24 by 16 significant bits) and equals ``acc * m / 2**s``; ``acc * a + b`` is then the
    exact sum ``(acc * m + bias * m + r) / 2**s``: its numerator is an integer below
    ``2**49``, times a power of two, so binary64 represents it and the correctly rounded
    addition returns it. ``floor`` of it is spec 6.2's ``y``, in two float64 passes.
    """
    m, offset, inv = _requant_constants(layer)
    return m * inv, offset * inv


def predict(model: ContextModel, inputs: np.ndarray):
    """Run the integer MLP (spec 6.2, 6.4).

    Sums run in float32 GEMM (exact by the bound of 6.3) and requantization in float64
    (``floor(acc * a + b)``, exact: :func:`_fused_constants`), in row chunks that stay in
    cache, with preallocated buffers; the last layer's three output blocks are computed
    separately so that each is contiguous. The scale and step outputs need no ``floor``: clipping
    to ``[0, 63]`` / ``[0, 31]`` commutes with it (integer bounds), and the cast to ``uint8``
    of a nonnegative value truncates, which is ``floor``.

    Args:
        model: the context model.
        inputs: ``[N, input_width]`` integers in ``[-127, 127]`` (any integer or float dtype).

    Returns:
        ``mean [N, C] int32`` (units of ``2**-16``), ``scale_index [N, C] uint8`` (0..63),
        ``step_index [N, C] uint8`` (0..31).
    """
    c, n = model.channels, len(inputs)
    hidden = [(layer.weight.T.astype(np.float32), *_fused_constants(layer))
              for layer in model.layers[:-1]]
    # the last layer as three [in, C] blocks (means, scale and step positions), computed as
    # one batched product into [3, rows, C]: every output pass then runs on contiguous rows
    last = model.layers[-1]
    w_last = np.ascontiguousarray(last.weight.astype(np.float32).reshape(3, c, -1)
                                  .transpose(0, 2, 1))
    a_last, b_last = (v.reshape(3, 1, c) for v in _fused_constants(last))
    rows = min(_ROWS, max(n, 1))
    acc = [np.empty((rows, w.shape[1]), np.float32) for w, _, _ in hidden]
    req = [np.empty((rows, w.shape[1]), np.float64) for w, _, _ in hidden]
    act = [np.empty((rows, w.shape[1]), np.float32) for w, _, _ in hidden]
    acc_last = np.empty((3, rows, c), np.float32)
    req_last = np.empty((3, rows, c), np.float64)
    outputs = (np.empty((n, c), np.int32), np.empty((n, c), np.uint8),
               np.empty((n, c), np.uint8))
    bounds = ((-MEAN_LIMIT, MEAN_LIMIT), (0, NUM_SCALES - 1), (0, NUM_STEPS - 1))
    for start in range(0, n, rows):
        h = np.asarray(inputs[start:start + rows], dtype=np.float32)
        r = len(h)
        for i, (w, a, b) in enumerate(hidden):
            y = np.multiply(np.matmul(h, w, out=acc[i][:r]), a, out=req[i][:r])
            y += b
            np.floor(y, out=y)
            h = np.clip(y, 0, ACTIVATION_MAX, out=act[i][:r])
        if r < rows:
            acc_last, req_last = acc_last[:, :r], req_last[:, :r]
        y = np.multiply(np.matmul(h, w_last, out=acc_last), a_last, out=req_last)
        y += b_last
        np.floor(y[0], out=y[0])
        for out, part, (low, high) in zip(outputs, y, bounds):
            np.clip(part, low, high, out=out[start:start + r], casting="unsafe")
    return outputs


def predict_reference(model: ContextModel, inputs: np.ndarray):
    """Spec 6.2 in int64 arithmetic, no floats (for tests)."""
    h = np.asarray(inputs, dtype=np.int64)
    for i, layer in enumerate(model.layers):
        acc = h @ layer.weight.T.astype(np.int64) + layer.bias
        s = layer.shift.astype(np.int64)
        half = np.where(s > 0, np.left_shift(1, np.maximum(s - 1, 0)), 0)
        y = (acc * layer.multiplier.astype(np.int64) + half) >> s
        h = np.clip(y, 0, ACTIVATION_MAX) if i < len(model.layers) - 1 else y
    return _outputs(h, model.channels)


def random_context_model(widths: list[int], rng: np.random.Generator) -> ContextModel:
    """Random weights with requantization that keeps activations in range (for tests)."""
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers.append(ContextLayer(
            rng.integers(-127, 128, (n_out, n_in)).astype(np.int8),
            rng.integers(-5000, 5000, n_out).astype(np.int32),
            rng.integers(1, 1 << 16, n_out).astype(np.uint16),
            rng.integers(16, 24, n_out).astype(np.uint8)))
    return ContextModel(tuple(layers), widths[-1] // 3)


def write_context_model(model: ContextModel) -> bytes:
    """Spec 6.5: u8 layer count, u16 input width, u16 output width per layer, then per layer
    ``weight i8``, ``bias i32``, ``multiplier u16``, ``shift u8``."""
    widths = [layer.weight.shape[0] for layer in model.layers]
    parts = [_HEAD.pack(len(model.layers), model.input_width),
             np.array(widths, "<u2").tobytes()]
    for layer in model.layers:
        parts += [layer.weight.tobytes(), layer.bias.astype("<i4").tobytes(),
                  layer.multiplier.astype("<u2").tobytes(), layer.shift.tobytes()]
    return b"".join(parts)


def parse_context_model(data: bytes, channels: int, *, field: str = "context_mlp",
                        input_width: int | None = None) -> ContextModel:
    """Parse spec 6.5 bytes after the base steps (exactly); errors are
    ``FormatError(chunk="HEAD", field=field)`` or its subclass ``LimitError``.

    Checks in the order of spec 8.4 (rows X3-X10): ``num_layers``, the widths' bytes present,
    ``input_width`` in range and equal to ``input_width`` (``2 G`` of the hash grid, when
    given), the output widths, the exact length, then each layer's arrays.
    """
    def fail(cls, message):
        return cls(message, chunk="HEAD", field=field)

    data = bytes(data)
    if len(data) < _HEAD.size:
        raise fail(FormatError, "context model too short")
    count, width = _HEAD.unpack_from(data)
    if not 1 <= count <= MAX_LAYERS:
        raise fail(LimitError, f"{count} layers, expected 1..{MAX_LAYERS}")
    if len(data) < _HEAD.size + 2 * count:
        raise fail(FormatError, "context model too short for its layer widths")
    outs = np.frombuffer(data, "<u2", count, _HEAD.size).tolist()
    ins = [width] + outs[:-1]
    if not 1 <= width <= MAX_WIDTH:
        raise fail(LimitError, f"input_width {width} not in 1..{MAX_WIDTH}")
    if input_width is not None and width != input_width:
        raise fail(FormatError, f"context model takes {width} inputs, the hash grid gives "
                                f"{input_width} (2 G)")
    if any(not 1 <= n <= MAX_WIDTH for n in ins[1:]):
        raise fail(LimitError, f"hidden layer widths {ins[1:]} not in 1..{MAX_WIDTH}")
    if outs[-1] != 3 * channels:
        raise fail(LimitError, f"last layer has {outs[-1]} outputs, expected 3 C = "
                               f"{3 * channels}")
    need = _HEAD.size + 2 * count + sum(o * (i + 7) for i, o in zip(ins, outs))
    if len(data) != need:
        raise fail(FormatError, f"context model is {len(data)} bytes, its widths need {need}")
    pos, layers = _HEAD.size + 2 * count, []
    for n_in, n_out in zip(ins, outs):
        arrays = []
        for dtype, n in ((np.int8, n_out * n_in), (np.int32, n_out), (np.uint16, n_out),
                         (np.uint8, n_out)):
            arrays.append(np.frombuffer(data, np.dtype(dtype).newbyteorder("<"), n, pos)
                          .astype(dtype))
            pos += arrays[-1].nbytes
        weight, bias, multiplier, shift = arrays
        if (weight == -128).any() or (bias == -(1 << 31)).any() or (shift > MAX_SHIFT).any():
            raise fail(LimitError, "weight -128, bias -2**31 or shift above 40")
        layers.append(ContextLayer(weight.reshape(n_out, n_in), bias, multiplier, shift))
    return ContextModel(tuple(layers), channels)
