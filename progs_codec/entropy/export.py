"""Float context MLP -> integer :class:`ContextModel`, and the rate it costs (spec 6.6).

A *float context MLP* is a list of ``(W [out, in] float32, b [out] float32)`` layers with ReLU
between them. It sees the grid features as ``inputs / 127`` and outputs, per channel, the mean
in value units, the scale position (a real-valued index into the scale table) and the step
position (a real-valued index into the step-multiplier table). Export quantizes weights per
output channel to int8, biases to int32, and folds the scales into each channel's
requantization multiplier and shift; hidden activation scales come from calibration inputs.

>>> from progs_codec.model import AttributeDims
>>> rng = np.random.default_rng(0)
>>> inputs = rng.integers(-127, 128, (256, 8))
>>> layers = synthetic_float_mlp(inputs, AttributeDims(2, 1, 1), (16,), (64, 64, 64), rng)
>>> export_context_model(layers, inputs).channels
6
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..model import AttributeDims
from .attributes import (Prediction, encode_level_attributes, group_steps,
                         quantize_attributes)
from .context_model import ACTIVATION_MAX, MAX_SHIFT, ContextLayer, ContextModel, predict
from .model import FIXED_POINT_BITS, EntropyModel
from .tables import NUM_SCALES, NUM_STEPS, PRECISION, STEP_ONE_INDEX, load_tables

__all__ = [
    "FloatLayers",
    "RateGap",
    "float_predict",
    "export_context_model",
    "synthetic_float_mlp",
    "float_sample_attributes",
    "float_model_bits",
    "ideal_bits",
    "rate_gap",
]

FloatLayers = list[tuple[np.ndarray, np.ndarray]]
_MAX_MULTIPLIER = (1 << 16) - 1
_MAX_BIAS = (1 << 31) - 1
_MIN_PROBABILITY = 2.0 ** -30     # floor of the float model's likelihood (as in training)


def float_predict(layers: FloatLayers, inputs: np.ndarray):
    """Float forward pass: ``(mean [N, C] value units, scale position, step position)``."""
    h = np.asarray(inputs, np.float64) / ACTIVATION_MAX
    for i, (w, b) in enumerate(layers):
        h = h @ np.asarray(w, np.float64).T + np.asarray(b, np.float64)
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    c = h.shape[1] // 3
    return h[:, :c], h[:, c:2 * c], h[:, 2 * c:]


def _multiplier_and_shift(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel ``m / 2**s ~= real`` with ``m <= 65535``, ``s <= 40``, ``s`` maximal."""
    with np.errstate(divide="ignore"):
        shift = np.floor(np.log2(_MAX_MULTIPLIER / real))
    shift = np.clip(np.nan_to_num(shift, posinf=MAX_SHIFT), 0, MAX_SHIFT).astype(np.int64)
    mult = np.round(np.ldexp(real, shift))
    over = mult > _MAX_MULTIPLIER                     # log2 rounding put us one too high
    shift[over] -= 1
    mult = np.round(np.ldexp(real, shift))
    if (mult > _MAX_MULTIPLIER).any() or (shift < 0).any():
        raise ValueError("a requantization factor exceeds 65535: rescale the float model")
    return mult.astype(np.uint16), shift.astype(np.uint8)


def _integer_layer(h: np.ndarray, layer: ContextLayer, hidden: bool) -> np.ndarray:
    """Spec 6.2 for one layer on integer inputs ``h`` (int64), as int64."""
    acc = h @ layer.weight.T.astype(np.int64) + layer.bias
    s = layer.shift.astype(np.int64)
    half = np.where(s > 0, np.left_shift(1, np.maximum(s - 1, 0)), 0)
    y = (acc * layer.multiplier.astype(np.int64) + half) >> s
    return np.clip(y, 0, ACTIVATION_MAX) if hidden else y


def _refit(inputs: np.ndarray, target: np.ndarray, w: np.ndarray, b: np.ndarray,
           ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Least squares ``inputs @ W.T + b ~= target``, pulled towards ``(w, b)`` by a ridge.

    Solves ``min |X [W b].T - target|^2 + lam |[W b] - [w b]|^2`` with ``X = [inputs, 1]``
    and ``lam = ridge * mean(diag(X.T X))`` over the inputs (scale free).
    """
    n = len(inputs)
    x = np.concatenate([inputs, np.ones((n, 1))], axis=1)
    gram = x.T @ x
    lam = ridge * max(float(np.trace(gram[:-1, :-1])) / max(inputs.shape[1], 1), 1e-12)
    prior = np.concatenate([w, b[:, None]], axis=1)
    reg = lam * np.eye(len(gram))
    sol = np.linalg.solve(gram + reg, x.T @ target + reg @ prior.T)
    return sol[:-1].T, sol[-1]


def _round_with_feedback(w: np.ndarray, b: np.ndarray, inputs: np.ndarray, scale: np.ndarray,
                         ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Round ``w / scale`` to integers input by input, each rounding error compensated by
    the weights of the inputs not yet rounded and finally by the bias (GPTQ, Frantar et al.
    2023): minimizes ``|inputs @ (W - W_q).T + (b - b_q)|^2`` greedily, bias unrounded.

    Returns ``(weight [out, in] float64 integers in [-127, 127], bias [out] float64)`` in
    the units of ``scale``.
    """
    n, d = inputs.shape
    x = np.concatenate([inputs, np.ones((n, 1))], axis=1)
    gram = x.T @ x
    gram += ridge * max(float(np.trace(gram)) / (d + 1), 1e-12) * np.eye(d + 1)
    upper = np.linalg.cholesky(np.linalg.inv(gram)).T     # inv(gram) = upper.T @ upper
    work = np.concatenate([w, b[:, None]], axis=1) / scale[:, None]
    for t in range(d):
        q = np.clip(np.round(work[:, t]), -127, 127)
        err = (work[:, t] - q) / upper[t, t]
        work[:, t] = q
        work[:, t + 1:] -= np.outer(err, upper[t, t + 1:])
    return work[:, :d], work[:, d]


def export_context_model(layers: FloatLayers, calibration_inputs: np.ndarray, *,
                         refit: bool = True, ridge: float = 1e-3,
                         per_channel_activations: bool = True, error_feedback: bool = True,
                         activation_headroom: float = 1.15) -> ContextModel:
    """Quantize a float context MLP to the integer model of spec 6.

    Args:
        layers: ``[(W [out, in] float32, b [out] float32), ...]``, last ``out = 3 C``.
        calibration_inputs: ``[N, in]`` integer grid features (own and parent) of
            representative anchors: they set each hidden layer's activation scales and are
            the data of the refit.
        refit: layer by layer, re-fit the float weights and bias by ridge least squares to
            map the *integer* activations of the layers exported so far (on the calibration
            inputs) to the float model's own pre-activations, before quantizing them; so
            each layer compensates the rounding of those before it. After quantization the
            bias absorbs the mean remaining error (bias correction).
        ridge: strength of the pull towards the float weights (relative to the mean squared
            input); keeps the refit well posed for dead or constant activations.
        per_channel_activations: one activation scale per hidden channel (its largest
            calibration activation times ``activation_headroom``, / 127), folded into the
            next layer's weights, instead of one per layer.
        error_feedback: round the weights input by input, compensating each rounding error
            on the calibration data with the weights not yet rounded and the bias
            (:func:`_round_with_feedback`); else round to nearest, then correct the bias.
        activation_headroom: margin over the calibration maximum of each activation: inputs
            beyond the calibration set would otherwise clip (costly) where a slightly
            coarser step costs little.

    Returns:
        The :class:`ContextModel`. Weight scales are per output channel (``max |W_j| / 127``,
        widened where the bias would not fit an int32); mean outputs come out in units of
        ``2**-16``, scale and step positions in table units.
    """
    channels = layers[-1][0].shape[0] // 3
    x_int = np.asarray(calibration_inputs, np.int64)
    x_float = x_int.astype(np.float64) / ACTIVATION_MAX
    in_scale = np.full(x_int.shape[1], 1.0 / ACTIVATION_MAX)    # real value per input unit
    out = []
    for i, (w, b) in enumerate(layers):
        w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
        last = i == len(layers) - 1
        target = x_float @ w.T + b                      # the float model's pre-activation
        real_in = x_int * in_scale                      # what the integer layer sees
        if refit and len(x_int):
            w, b = _refit(real_in, target, w, b, ridge)
        w_int = w * in_scale                            # weights per integer input unit
        w_scale = _weight_scales(w_int, b)
        if last:
            out_scale = np.concatenate([np.full(channels, 2.0 ** -FIXED_POINT_BITS),
                                        np.ones(2 * channels)])
        else:
            out_scale = _activation_scales(target, w_scale, activation_headroom,
                                           per_channel_activations)
        layer = _quantize_layer(w_int, b, w_scale, out_scale, x_int, real_in, target, in_scale,
                                refit=refit, error_feedback=error_feedback)
        out.append(layer)
        if not last:
            x_int = _integer_layer(x_int, layer, hidden=True)
            x_float = np.maximum(target, 0.0)
            in_scale = out_scale
    return ContextModel(tuple(out), channels)


def _weight_scales(w_int: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Real value of one integer weight unit per output channel: ``max |W_j| / 127``, widened
    where the bias would not fit an int32 (``[out]``; 1 for an all-zero channel)."""
    w_scale = np.maximum(np.abs(w_int).max(axis=1) / ACTIVATION_MAX,
                         np.abs(b) / _MAX_BIAS * 2.0)
    w_scale[w_scale == 0] = 1.0
    return w_scale


def _activation_scales(target: np.ndarray, w_scale: np.ndarray, headroom: float,
                       per_channel: bool) -> np.ndarray:
    """Real value of one hidden activation unit per channel: the largest calibration
    activation times ``headroom``, / 127 (one scale for the layer unless ``per_channel``;
    dead channels take the layer's), never so fine that the requantization factor would
    exceed 65535."""
    peak = headroom * np.maximum(target, 0.0).max(axis=0, initial=0.0)
    layer_peak = max(float(peak.max(initial=0.0)), 1e-12)
    if not per_channel:
        peak = np.full_like(peak, layer_peak)
    peak = np.where(peak > 0, peak, layer_peak)          # dead on calibration data
    return np.maximum(peak / ACTIVATION_MAX, w_scale / _MAX_MULTIPLIER)


def _quantize_layer(w_int: np.ndarray, b: np.ndarray, w_scale: np.ndarray,
                    out_scale: np.ndarray, x_int: np.ndarray, real_in: np.ndarray,
                    target: np.ndarray, in_scale: np.ndarray, *, refit: bool,
                    error_feedback: bool) -> ContextLayer:
    """One integer layer (spec 6.2) from float weights per integer input unit, given the
    weight and output scales: int8 weights (with error feedback on the calibration inputs,
    or rounded to nearest with bias correction), int32 bias, requantization multiplier and
    shift ``~= w_scale / out_scale``."""
    if error_feedback and len(x_int):
        weight, bias = _round_with_feedback(w_int, b, x_int.astype(np.float64), w_scale, 1e-6)
    else:
        weight = np.clip(np.round(w_int / w_scale[:, None]), -127, 127)
        bias = b / w_scale
    if refit and len(x_int) and not error_feedback:  # bias correction after rounding
        bias += (target - real_in @ (weight * w_scale[:, None] / in_scale).T
                 - b).mean(axis=0) / w_scale
    bias = np.clip(np.round(bias), -_MAX_BIAS, _MAX_BIAS)
    mult, shift = _multiplier_and_shift(w_scale / out_scale)
    return ContextLayer(weight.astype(np.int8), bias.astype(np.int32), mult, shift)


def synthetic_float_mlp(calibration_inputs: np.ndarray, dims: AttributeDims,
                        hidden: tuple[int, ...], base_steps: tuple[int, int, int],
                        rng: np.random.Generator) -> FloatLayers:
    """A random float MLP whose outputs look like a trained one's on ``calibration_inputs``.

    Hidden layers are He-initialised; the last layer is rescaled per channel so that means
    sit around plausible values (features 0, log scalings -4, offsets 0) and vary by a few
    quantization steps, scale positions spread around 20 (about 1.2 steps) and step
    positions around the unit multiplier.
    """
    h = np.asarray(calibration_inputs, np.float64) / ACTIVATION_MAX
    widths = [h.shape[1], *hidden]
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        w = rng.normal(0, math.sqrt(2.0 / n_in), (n_out, n_in)).astype(np.float32)
        b = rng.normal(0, 0.1, n_out).astype(np.float32)
        layers.append((w, b))
        h = np.maximum(h @ w.T.astype(np.float64) + b, 0.0)
    c = dims.channels
    counts = list(dims.group_channels().values())
    step = np.repeat(np.asarray(base_steps, np.float64) * 2.0 ** -FIXED_POINT_BITS, counts)
    centre = np.concatenate([np.repeat([0.0, -4.0, 0.0], counts) + rng.normal(0, 0.5, c),
                             rng.normal(20, 4, c), rng.normal(STEP_ONE_INDEX, 1.5, c)])
    spread = np.concatenate([3.0 * step, np.full(c, 5.0), np.full(c, 2.0)])
    w = rng.normal(0, 1, (3 * c, widths[-1]))
    z = h @ w.T
    gain = spread / np.maximum(z.std(axis=0), 1e-9)
    layers.append(((w * gain[:, None]).astype(np.float32),
                   (centre - z.mean(axis=0) * gain).astype(np.float32)))
    return layers


def float_sample_attributes(layers: FloatLayers, inputs: np.ndarray, base_steps,
                            dims: AttributeDims, rng: np.random.Generator):
    """Attributes drawn from the float model's own Gaussians: ``(feature, scaling, offsets)``."""
    mean, sigma, step = _float_gaussians(layers, inputs, base_steps, dims)
    values = (mean + sigma * step * rng.standard_normal(mean.shape)) * 2.0 ** -FIXED_POINT_BITS
    return _split(values.astype(np.float32), dims)


def _split(values: np.ndarray, dims: AttributeDims):
    f, s = dims.feature, dims.scaling
    return (values[:, :f], values[:, f:f + s],
            values[:, f + s:].reshape(len(values), dims.num_offsets, 3))


def _float_gaussians(layers: FloatLayers, inputs: np.ndarray, base_steps, dims: AttributeDims):
    """Float model's mean (units of ``2**-16``), std (steps) and step (units) per channel.

    Scales are log-interpolated between table entries; the step is the table step at the
    rounded step position, so float and integer models quantize on the same grid.
    """
    mean, scale_pos, step_pos = float_predict(layers, inputs)
    scales = load_tables().scales
    ratio = math.log(scales[-1] / scales[0]) / (NUM_SCALES - 1)
    sigma = scales[0] * np.exp(np.clip(scale_pos, 0, NUM_SCALES - 1) * ratio)
    step_index = np.clip(np.floor(step_pos + 0.5), 0, NUM_STEPS - 1).astype(np.int64)
    group = np.repeat(np.arange(3), list(dims.group_channels().values()))
    steps = np.stack([group_steps(b) for b in base_steps])         # [3, 32]
    return mean * (1 << FIXED_POINT_BITS), sigma, steps[group, step_index]


_erfc = np.frompyfunc(math.erfc, 1, 1)


def _gaussian_bits(k: np.ndarray, sigma: np.ndarray) -> float:
    """``-sum log2 P(k)`` for zero-mean Gaussians discretized to integers."""
    a = (np.abs(k) - 0.5) / (sigma * math.sqrt(2.0))
    b = (np.abs(k) + 0.5) / (sigma * math.sqrt(2.0))
    upper = _erfc(b).astype(np.float64)
    p = np.where(k == 0, 1.0 - upper, 0.5 * (_erfc(np.maximum(a, 0)).astype(np.float64) - upper))
    return float(-np.log2(np.maximum(p, _MIN_PROBABILITY)).sum())


def float_model_bits(layers: FloatLayers, inputs: np.ndarray, base_steps, dims: AttributeDims,
                     feature, scaling, offsets) -> float:
    """Rate the float model estimates for these attributes (its training objective)."""
    mean, sigma, step = _float_gaussians(layers, inputs, base_steps, dims)
    values = np.concatenate([np.asarray(a, np.float64).reshape(len(mean), -1)
                             for a in (feature, scaling, offsets)], axis=1)
    k = np.floor((values * (1 << FIXED_POINT_BITS) - mean) / step + 0.5)
    return _gaussian_bits(k.ravel(), sigma.ravel())


def ideal_bits(model: EntropyModel, prediction: Prediction, dims: AttributeDims,
               feature, scaling, offsets) -> float:
    """Cross-entropy of the integer model's own symbols under its integer tables, plus the
    escape bits: what a perfect entropy coder would spend (spec 7.3-7.5)."""
    tables = load_tables()
    symbols = quantize_attributes(model, prediction, dims, feature, scaling, offsets)
    log_freq = [np.log2(f) for f in tables.frequencies]
    bits, start = 0.0, 0
    for k in symbols.values():
        scale = prediction.scale_index[:, start:start + k.shape[1]].ravel()
        start += k.shape[1]
        k = k.ravel()
        half = tables.half_widths[scale]
        escape = np.abs(k) > half
        index = np.where(escape, 2 * half + 1, k + half)
        for t in np.unique(scale):
            bits += float((PRECISION - log_freq[t][index[scale == t]]).sum())
        magnitude = np.abs(k[escape]) - half[escape]          # exp-Golomb of m - 1, + sign
        bits += float((2 * np.floor(np.log2(magnitude)) + 2).sum())
    return bits


@dataclass(frozen=True)
class RateGap:
    """Bits of one attribute set under the float model, the integer model, and as coded."""

    float_bits: float
    ideal_bits: float
    coded_bits: int

    @property
    def export_gap(self) -> float:
        """Relative size of the coded payloads over the float model's estimate."""
        return self.coded_bits / self.float_bits - 1.0

    @property
    def coder_overhead(self) -> float:
        """Relative size of the coded payloads over the integer model's cross-entropy."""
        return self.coded_bits / self.ideal_bits - 1.0

    def to_dict(self) -> dict[str, float]:
        """The three sizes and the two ratios, for JSON logs."""
        return {"float_bits": self.float_bits, "ideal_bits": self.ideal_bits,
                "coded_bits": self.coded_bits, "export_gap": self.export_gap,
                "coder_overhead": self.coder_overhead}


def rate_gap(layers: FloatLayers, model: EntropyModel, inputs: np.ndarray, dims: AttributeDims,
             feature, scaling, offsets) -> RateGap:
    """Compare the float model's estimated bits with the integer model's real coded bits.

    Args:
        layers: the float context MLP that ``model.context_model`` was exported from.
        model: the integer entropy model.
        inputs: ``[N, in]`` integer context inputs (own and parent grid features).
        dims, feature, scaling, offsets: the attributes to code.
    """
    prediction = Prediction(*predict(model.context_model, inputs))
    payloads, _ = encode_level_attributes(model, prediction, dims, feature, scaling, offsets)
    return RateGap(float_model_bits(layers, inputs, model.base_steps, dims,
                                    feature, scaling, offsets),
                   ideal_bits(model, prediction, dims, feature, scaling, offsets),
                   8 * sum(len(p) for p in payloads.values()))
