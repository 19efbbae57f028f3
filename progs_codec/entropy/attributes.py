"""Attribute coding of a level: contexts, quantization, rANS-coded groups (spec 7).

Per level: contexts for every anchor and channel in one vectorized pass (hash grid, spec 5,
then the integer MLP, spec 6); then per group, quantization around the predicted mean and
rANS coding with the frequency table of the predicted scale (spec 7.2-7.5).

>>> from progs_codec.model import AttributeDims
>>> from progs_codec.testing import random_entropy_model
>>> dims = AttributeDims(feature=4, scaling=2, num_offsets=1)
>>> model = random_entropy_model(dims, hidden=(8,))
>>> coords = np.array([[0, 1, 2], [3, 3, 3]], np.int32)
>>> prediction = level_contexts(model, coords, None, depth=2)
>>> attrs = sample_attributes(model, prediction, dims, np.random.default_rng(0))
>>> payloads, decoded = encode_level_attributes(model, prediction, dims, *attrs)
>>> again = decode_level_attributes(model, prediction, dims, payloads, level=1)
>>> all(np.array_equal(a, b) for a, b in zip(decoded, again))
True
"""

from __future__ import annotations

import struct
from contextlib import contextmanager
from dataclasses import dataclass

import constriction
import numpy as np

from ..errors import FormatError, LimitError, ModelError
from ..model import AttributeDims
from .coder import (EscapeReader, check_finished, open_decoder, pop_by_table, pop_grouped,
                    push_by_table, scale_models, write_escapes)
from .context_model import predict
from .hashgrid import hash_features
from .model import FIXED_POINT_BITS, EntropyModel
from .tables import STEP_MULTIPLIER_BITS, load_tables

__all__ = [
    "VALUE_LIMIT",
    "BLOCK_ANCHORS",
    "Prediction",
    "level_contexts",
    "group_steps",
    "quantize_attributes",
    "encode_level_attributes",
    "decode_level_attributes",
    "predict_and_decode_attributes",
    "sample_attributes",
]

VALUE_LIMIT = (1 << 24) - 1    # |value| <= VALUE_LIMIT units, so float32 holds it exactly
BLOCK_ANCHORS = 4096           # symbols are grouped by table within blocks of anchors (7.5)
_UNIT = 2.0 ** -FIXED_POINT_BITS
_WORD_COUNT = struct.Struct("<I")


@dataclass(frozen=True, eq=False)
class Prediction:
    """Context-model outputs of one level (spec 6.4), ``[N, C]`` each, channels in spec 3.1
    order: ``mean`` int32 (units of ``2**-16``), ``scale_index`` uint8, ``step_index`` uint8."""

    mean: np.ndarray
    scale_index: np.ndarray
    step_index: np.ndarray

    def __len__(self) -> int:
        return len(self.mean)


def _unique_rows(parent_coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of equal consecutive rows (children of one parent): the rows and an inverse."""
    if len(parent_coords) == 0:
        return parent_coords, np.zeros(0, np.intp)
    new = np.ones(len(parent_coords), bool)
    new[1:] = (parent_coords[1:] != parent_coords[:-1]).any(axis=1)
    return parent_coords[new], np.cumsum(new) - 1


def level_contexts(model: EntropyModel, coords: np.ndarray, parent_coords: np.ndarray | None,
                   depth: int) -> Prediction:
    """Mean, scale index and step index of every anchor and channel (spec 6.1, 6.4).

    Args:
        model: the entropy model.
        coords: ``[N, 3]`` voxel coordinates at ``depth``.
        parent_coords: ``[N, 3]`` each anchor's parent at ``depth - 1``, or ``None`` for
            level 1 (the parent half of the input is then zero).
        depth: octree depth of the level.
    """
    grid = model.hash_grid
    width = grid.config.feature_width
    inputs = np.zeros((len(coords), 2 * width), np.float32)
    inputs[:, :width] = hash_features(grid, coords, depth)
    if parent_coords is not None:
        parents, inverse = _unique_rows(np.asarray(parent_coords))
        inputs[:, width:] = hash_features(grid, parents, depth - 1)[inverse]
    return Prediction(*predict(model.context_model, inputs))


def group_steps(base_step: int) -> np.ndarray:
    """Spec 7.2: ``step[i] = max(1, (base_step * multiplier[i] + 2**11) >> 12)``, ``[32]``."""
    mult = load_tables().step_multipliers
    return np.maximum(1, (base_step * mult + (1 << (STEP_MULTIPLIER_BITS - 1)))
                      >> STEP_MULTIPLIER_BITS)


def _group_slices(dims: AttributeDims) -> dict[str, slice]:
    out, start = {}, 0
    for group, n in dims.group_channels().items():
        out[group] = slice(start, start + n)
        start += n
    return out


def _check_attributes(dims: AttributeDims, n: int, feature, scaling, offsets) -> dict:
    arrays = {}
    for group, arr, shape in (("feature", feature, (n, dims.feature)),
                              ("scaling", scaling, (n, dims.scaling)),
                              ("offsets", offsets, (n, dims.num_offsets, 3))):
        arr = np.asarray(arr)
        if arr.shape != shape:
            raise ModelError(f"{group} has shape {arr.shape}, expected {shape}")
        if not np.isfinite(arr).all():
            raise ModelError(f"{group} holds non-finite values")
        arrays[group] = arr.reshape(n, shape[1] * (shape[2] if len(shape) > 2 else 1))
    return arrays


def quantize_attributes(model: EntropyModel, prediction: Prediction, dims: AttributeDims,
                        feature, scaling, offsets) -> dict[str, np.ndarray]:
    """Symbols of each group, ``[N, C_g] int64`` (spec 7.2).

    ``k = floor((x - mean) / step + 1/2)`` with ``x`` the value in units of ``2**-16``,
    clamped so that ``|mean + k * step| <= VALUE_LIMIT``. A decoded value re-quantizes to
    its own symbol, so re-encoding decoded attributes reproduces the payload.
    """
    arrays = _check_attributes(dims, len(prediction), feature, scaling, offsets)
    out = {}
    for g, (group, cols) in enumerate(_group_slices(dims).items()):
        mean = prediction.mean[:, cols].astype(np.int64)
        step = group_steps(model.base_steps[g])[prediction.step_index[:, cols]]
        x = np.clip(arrays[group].astype(np.float64) * (1 << FIXED_POINT_BITS),
                    -4.0 * VALUE_LIMIT, 4.0 * VALUE_LIMIT)
        k = np.floor((x - mean) / step + 0.5).astype(np.int64)
        out[group] = np.clip(k, -((VALUE_LIMIT + mean) // step), (VALUE_LIMIT - mean) // step)
    return out


def _blocks(n: int):
    for start in range(0, n, BLOCK_ANCHORS):
        yield slice(start, min(start + BLOCK_ANCHORS, n))


def _encode_group(symbols: np.ndarray, scale_index: np.ndarray) -> bytes:
    """Spec 7.4, 7.6: u32 word count, words, escape section."""
    half = load_tables().half_widths[scale_index]
    escape = np.abs(symbols) > half
    index = np.where(escape, 2 * half + 1, symbols + half).astype(np.int32)
    models = scale_models()
    coder = constriction.stream.stack.AnsCoder()
    for rows in reversed(list(_blocks(len(symbols)))):
        push_by_table(coder, index[rows].ravel(), scale_index[rows].ravel(), models)
    words = coder.get_compressed().astype("<u4")
    escapes = write_escapes(np.abs(symbols[escape]) - half[escape] - 1, symbols[escape] < 0)
    return _WORD_COUNT.pack(len(words)) + words.tobytes() + escapes


def encode_level_attributes(model: EntropyModel, prediction: Prediction, dims: AttributeDims,
                            feature, scaling, offsets
                            ) -> tuple[dict[str, bytes], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Quantize and code one level's attributes (spec 7).

    Args:
        model, prediction: the entropy model and this level's :func:`level_contexts`.
        dims: attribute dimensions.
        feature: ``[N, F] float32``; scaling: ``[N, S] float32``; offsets: ``[N, K, 3] float32``.

    Returns:
        The three group payloads by group name, and the dequantized ``(feature, scaling,
        offsets)`` float32 arrays: exactly what the decoder returns.

    Raises:
        ModelError: wrong shapes or non-finite values.
    """
    symbols = quantize_attributes(model, prediction, dims, feature, scaling, offsets)
    payloads, decoded = {}, []
    for g, (group, cols) in enumerate(_group_slices(dims).items()):
        k = symbols[group]
        payloads[group] = _encode_group(k, prediction.scale_index[:, cols])
        step = group_steps(model.base_steps[g])[prediction.step_index[:, cols]]
        value = prediction.mean[:, cols] + k * step
        decoded.append(value.astype(np.float32) * np.float32(_UNIT))
    n = len(prediction)
    return payloads, (decoded[0], decoded[1], decoded[2].reshape(n, dims.num_offsets, 3))


class _GroupDecoder:
    """Spec 7.4-7.6 for one group, block by block; errors are :class:`FormatError` without
    location (the caller adds chunk and group).

    Per block, the symbols come out of :func:`pop_grouped` in table order; ``k = i - T_s``
    is formed there (``T_s`` is constant along a table's run), and one scatter puts the
    ``k`` in raster order. Escapes are rare: their raster positions are the sorted
    positions of the runs' escape indices. The values ``mean + k * step`` are formed in
    int32 when the block's bound allows it (``max |k| * max step + 2**24 < 2**31``), else
    in int64, and turned to binary32 exactly (``|V| < 2**24``, times a power of two).
    """

    def __init__(self, payload: bytes, steps: np.ndarray):
        payload = bytes(payload)
        if len(payload) < _WORD_COUNT.size:
            raise FormatError("group payload shorter than its word count")
        (count,) = _WORD_COUNT.unpack_from(payload)
        self.words_end = _WORD_COUNT.size + 4 * count
        if self.words_end > len(payload):
            raise LimitError(f"group payload declares {count} words, holds "
                             f"{(len(payload) - _WORD_COUNT.size) // 4}")
        self.escape_bytes = len(payload) - self.words_end
        self.coder = open_decoder(np.frombuffer(payload, "<u4", count, _WORD_COUNT.size))
        self.escapes = EscapeReader(payload[self.words_end:])
        self.half_widths = load_tables().half_widths.astype(np.int32)
        self.models = scale_models()
        self.steps = np.asarray(steps, np.int64)
        self.small_steps = self.steps.astype(np.int32)

    def block(self, mean: np.ndarray, scale: np.ndarray, step_index: np.ndarray,
              out: np.ndarray) -> None:
        """Decode the next block (at most ``BLOCK_ANCHORS`` anchors) into ``out`` (float32)."""
        flat = scale.ravel()
        half_widths = self.half_widths
        grouped, order, tables, counts = pop_grouped(self.coder, flat, self.models)
        half = np.repeat(half_widths[tables], counts)
        grouped -= half                                   # k; the escape index gives T + 1
        escape = grouped > half
        k = np.empty(len(flat), np.int32)
        k[order] = grouped
        k = k.reshape(scale.shape)
        block_steps = self.small_steps
        if escape.any():
            k = k.astype(np.int64)
            block_steps = self.steps
            where = np.sort(order[escape])
            magnitude, negative = self.escapes.read(len(where))
            k.ravel()[where] = np.where(negative, -1, 1) * (magnitude + half_widths[flat[where]]
                                                            + 1)
        elif (int(half_widths[tables].max(initial=0)) + 1) * int(self.steps.max()) \
                >= (1 << 31) - (1 << 24):
            k = k.astype(np.int64)
            block_steps = self.steps
        value = block_steps.take(step_index)
        value *= k
        value += mean
        if value.size and max(-int(value.min()), int(value.max())) > VALUE_LIMIT:
            raise LimitError(f"a decoded value exceeds {VALUE_LIMIT} units")
        np.multiply(value, np.float32(_UNIT), out=out, dtype=np.float32, casting="unsafe")

    def finish(self) -> None:
        check_finished(self.coder)
        if self.escapes.bytes_used != self.escape_bytes:
            raise FormatError(f"escape section is {self.escape_bytes} bytes, its escapes need "
                              f"{self.escapes.bytes_used}")


def _decode_groups(model: EntropyModel, dims: AttributeDims, payloads: dict[str, bytes],
                   count: int, predict_block, level: int):
    """Decode the three groups (spec 7.5, 7.6); ``predict_block(rows)`` gives a block's
    :class:`Prediction`.

    The fast path decodes one block of every group in turn, so that only one block's contexts
    are held at a time. Its checks come in another order than spec 8.4's (each group
    completely, in group order; in a group the end check before the values, escapes and
    values channel by channel in raster order), so when it finds a fault,
    :func:`_raise_first_fault` decodes again in the spec's order and raises the first one.
    """
    try:
        return _decode_groups_fast(model, dims, payloads, count, predict_block, level)
    except FormatError as e:
        # a copy without the traceback, whose frames would keep the fast path's output
        # arrays alive while the re-check allocates its own (spec 8.5's memory bound)
        fast_error = type(e)(e.message, chunk=e.chunk, field=e.field)
    _raise_first_fault(model, dims, payloads, count, predict_block, level)
    raise fast_error          # unreachable: both paths make the same checks


@contextmanager
def _located(level: int, group: str):
    """Errors of one group's decoding, named by their chunk and group (spec 8.4)."""
    try:
        yield
    except FormatError as e:
        raise type(e)(e.message, chunk=f"LEVL {level}", field=group) from e


def _raise_first_fault(model: EntropyModel, dims: AttributeDims, payloads: dict[str, bytes],
                       count: int, predict_block, level: int) -> None:
    """Spec 7.6 for each group in turn, checks in the order of spec 8.4 (rows E1-E6): raise
    the first failing check, or return when there is none. The straightforward twin of
    :func:`_decode_groups_fast` for invalid streams: it keeps a group's symbol indices and
    computes every block's contexts twice."""
    half_widths = load_tables().half_widths.astype(np.int64)
    models = scale_models()
    for g, (group, cols) in enumerate(_group_slices(dims).items()):
        with _located(level, group):
            _check_group_in_order(payloads[group], group_steps(model.base_steps[g]), count,
                                  cols, predict_block, half_widths, models)


def _check_group_in_order(payload: bytes, steps: np.ndarray, count: int, cols: slice,
                          predict_block, half_widths: np.ndarray, models) -> None:
    payload = bytes(payload)
    if len(payload) < _WORD_COUNT.size:                                          # E1
        raise FormatError("group payload shorter than its word count")
    (num_words,) = _WORD_COUNT.unpack_from(payload)
    words_end = _WORD_COUNT.size + 4 * num_words
    if words_end > len(payload):                                                 # E2
        raise LimitError(f"group payload declares {num_words} words, holds "
                         f"{(len(payload) - _WORD_COUNT.size) // 4}")
    coder = open_decoder(np.frombuffer(payload, "<u4", num_words, _WORD_COUNT.size))   # E3
    width = cols.stop - cols.start
    index = np.empty((count, width), np.int16)     # symbol indices < 2 * 1536 + 2 (spec 7.3)
    for rows in _blocks(count):
        scale = predict_block(rows).scale_index[:, cols]
        index[rows] = pop_by_table(coder, scale.ravel(), models).reshape(scale.shape)
    check_finished(coder)                                                        # E4
    escapes = EscapeReader(payload[words_end:])
    for rows in _blocks(count):                                                  # E5
        prediction = predict_block(rows)
        half = half_widths[prediction.scale_index[:, cols]].ravel()
        k = index[rows].ravel().astype(np.int64) - half
        step = steps[prediction.step_index[:, cols]].ravel()
        mean = prediction.mean[:, cols].ravel().astype(np.int64)
        escaped = k > half
        over = np.flatnonzero(~escaped & (np.abs(mean + k * step) > VALUE_LIMIT))
        first_over = int(over[0]) if len(over) else len(k)
        for position in np.flatnonzero(escaped).tolist():
            if first_over < position:
                break
            (magnitude,), (negative,) = escapes.read(1)
            k[position] = (-1 if negative else 1) * (int(magnitude) + int(half[position]) + 1)
            if abs(int(mean[position]) + int(k[position]) * int(step[position])) > VALUE_LIMIT:
                first_over = position
                break
        if first_over < len(k):
            raise LimitError(f"a decoded value exceeds {VALUE_LIMIT} units")
    if escapes.bytes_used != len(payload) - words_end:                           # E6
        raise FormatError(f"escape section is {len(payload) - words_end} bytes, its escapes "
                          f"need {escapes.bytes_used}")


def _decode_groups_fast(model: EntropyModel, dims: AttributeDims, payloads: dict[str, bytes],
                        count: int, predict_block, level: int):
    """The three groups block by block: one block of each group in turn."""
    slices = _group_slices(dims)
    decoders, out = {}, {}
    for g, (group, cols) in enumerate(slices.items()):
        with _located(level, group):
            decoders[group] = _GroupDecoder(payloads[group], group_steps(model.base_steps[g]))
        out[group] = np.empty((count, cols.stop - cols.start), np.float32)
    for rows in _blocks(count):
        prediction = predict_block(rows)
        for group, cols in slices.items():
            with _located(level, group):
                decoders[group].block(prediction.mean[:, cols], prediction.scale_index[:, cols],
                                      prediction.step_index[:, cols], out[group][rows])
    for group, decoder in decoders.items():
        with _located(level, group):
            decoder.finish()
    return out["feature"], out["scaling"], out["offsets"].reshape(count, dims.num_offsets, 3)


def decode_level_attributes(model: EntropyModel, prediction: Prediction, dims: AttributeDims,
                            payloads: dict[str, bytes], *, level: int
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one level's three group payloads (spec 7) given its contexts.

    Returns ``(feature [N, F], scaling [N, S], offsets [N, K, 3])``, float32.

    Raises:
        FormatError: (or a subclass) naming ``chunk="LEVL {level}"`` and ``field=group`` when a
            payload is truncated, holds unused data or decodes to values out of range.
    """
    def predict_block(rows):
        return Prediction(prediction.mean[rows], prediction.scale_index[rows],
                          prediction.step_index[rows])

    return _decode_groups(model, dims, payloads, len(prediction), predict_block, level)


def predict_and_decode_attributes(model: EntropyModel, dims: AttributeDims,
                                  payloads: dict[str, bytes], coords: np.ndarray,
                                  parent_coords: np.ndarray | None, depth: int, *,
                                  level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contexts and attributes of one level, one block of anchors at a time (spec 6, 7).

    The same result as :func:`level_contexts` then :func:`decode_level_attributes`, but the
    contexts of only one block are alive at once, so decoding needs little more memory than
    the decoded attributes themselves.
    """
    def predict_block(rows):
        return level_contexts(model, coords[rows],
                              None if parent_coords is None else parent_coords[rows], depth)

    return _decode_groups(model, dims, payloads, len(coords), predict_block, level)


def sample_attributes(model: EntropyModel, prediction: Prediction, dims: AttributeDims,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attributes drawn from the model's own predicted Gaussians (float32)."""
    scales = load_tables().scales
    out = []
    for g, (group, cols) in enumerate(_group_slices(dims).items()):
        step = group_steps(model.base_steps[g])[prediction.step_index[:, cols]]
        std = scales[prediction.scale_index[:, cols]] * step
        value = prediction.mean[:, cols] + std * rng.standard_normal(std.shape)
        out.append((np.clip(value, -VALUE_LIMIT, VALUE_LIMIT) * _UNIT).astype(np.float32))
    return out[0], out[1], out[2].reshape(len(prediction), dims.num_offsets, 3)
