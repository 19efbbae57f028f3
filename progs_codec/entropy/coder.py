"""Entropy coder: rANS over 32-bit words, exp-Golomb escapes, Bernoulli bits (spec 7.4-7.6).

The fast path is constriction's ``AnsCoder`` (64-bit state, 32-bit words, 24-bit precision).
An integer frequency table ``F`` (entries >= 1, sum ``2**24``) is reproduced exactly by
``Categorical(F - 1, perfect=False)``: that model gives every symbol one unit plus its share
of the remaining ``2**24 - n`` units, and ``F - 1`` sums to exactly that remainder.
:func:`reference_encode` and :class:`ReferenceAnsDecoder` follow the spec's pseudo-code in
plain Python and agree with constriction word for word (``tests/test_coder.py``).

>>> f = np.array([1 << 23, 1 << 22, 1 << 22])
>>> words = encode_symbols(np.array([0, 2, 1, 0], np.int32), [f])
>>> decode_symbols(words, 4, [f]).tolist()
[0, 2, 1, 0]
"""

from __future__ import annotations

import functools

import constriction
import numpy as np
from bitarray import bitarray
from bitarray.util import ba2int

from ..errors import FormatError
from .tables import PRECISION, load_tables

__all__ = [
    "WORD_BITS",
    "MAX_ESCAPE_ZEROS",
    "categorical_model",
    "scale_models",
    "push_by_table",
    "pop_by_table",
    "pop_grouped",
    "open_decoder",
    "check_finished",
    "encode_symbols",
    "decode_symbols",
    "bernoulli_frequencies",
    "encode_bits",
    "decode_bits",
    "write_escapes",
    "EscapeReader",
    "reference_encode",
    "ReferenceAnsDecoder",
]

WORD_BITS = 32
MAX_ESCAPE_ZEROS = 24   # an escape magnitude + 1 is below 2**25 (spec 7.5)
_STATE_LOW = 1 << WORD_BITS
_MASK = (1 << PRECISION) - 1


def categorical_model(frequencies: np.ndarray):
    """constriction model that codes exactly with integer ``frequencies`` (sum ``2**24``)."""
    return constriction.stream.model.Categorical(
        (np.asarray(frequencies) - 1).astype(np.float64), perfect=False)


@functools.cache
def scale_models() -> tuple:
    """One constriction model per scale table (spec 7.3), built once per process."""
    return tuple(categorical_model(f) for f in load_tables().frequencies)


def push_by_table(coder, symbols: np.ndarray, table_index: np.ndarray, models) -> None:
    """Push one block so that :func:`pop_by_table` returns it (spec 7.4 symbol order).

    The pop order is: table 0's symbols in their given order, then table 1's, and so on.
    A stack coder pops last-pushed first, so tables are pushed in decreasing order.

    Args:
        coder: a constriction ``AnsCoder``.
        symbols: ``[n] int32`` symbol indices into their tables.
        table_index: ``[n] uint8`` the table of each symbol.
        models: constriction models indexed by table.
    """
    order = np.argsort(table_index, kind="stable")
    grouped = symbols[order]
    counts = np.bincount(table_index, minlength=len(models))
    ends = np.cumsum(counts)
    for t in np.flatnonzero(counts)[::-1]:
        coder.encode_reverse(grouped[ends[t] - counts[t]:ends[t]], models[t])


def pop_by_table(coder, table_index: np.ndarray, models) -> np.ndarray:
    """Pop one block pushed by :func:`push_by_table`: ``[n] int32`` symbols in given order."""
    grouped, order, _, _ = pop_grouped(coder, table_index, models)
    out = np.empty(len(table_index), np.int32)
    out[order] = grouped
    return out


def pop_grouped(coder, table_index: np.ndarray, models):
    """Pop one block pushed by :func:`push_by_table`, leaving the symbols in table order.

    Returns ``(grouped, order, tables, counts)``: ``grouped [n] int32`` holds table
    ``tables[0]``'s ``counts[0]`` symbols, then ``tables[1]``'s, ...; the symbol at
    ``grouped[i]`` belongs at position ``order[i]`` (so ``out[order] = grouped`` gives
    :func:`pop_by_table`'s result). ``tables`` lists the tables used, increasing.
    """
    table_index = np.asarray(table_index, np.uint8)
    order = np.argsort(table_index, kind="stable")
    counts = np.bincount(table_index, minlength=len(models))
    tables = np.flatnonzero(counts)
    counts = counts[tables]
    grouped = np.empty(len(table_index), np.int32)
    start = 0
    for t, n in zip(tables.tolist(), counts.tolist()):
        grouped[start:start + n] = coder.decode(models[t], n)
        start += n
    return grouped, order, tables, counts


def open_decoder(words: np.ndarray):
    """A constriction ``AnsCoder`` reading ``words`` (spec 7.4: the last word is nonzero)."""
    if len(words) and words[-1] == 0:
        raise FormatError("coded words end in a zero word")
    return constriction.stream.stack.AnsCoder(np.ascontiguousarray(words, dtype=np.uint32))


def check_finished(coder) -> None:
    """Spec 7.4 end check: every word consumed and the state back to zero."""
    if not coder.is_empty():
        raise FormatError("coded words do not end where the last symbol does")


def encode_symbols(symbols: np.ndarray, frequency_tables, table_index=None) -> np.ndarray:
    """Words coding ``symbols`` (one table, or one per symbol), decoded in the given order."""
    models = [categorical_model(f) for f in frequency_tables]
    if table_index is None:
        table_index = np.zeros(len(symbols), np.uint8)
    coder = constriction.stream.stack.AnsCoder()
    push_by_table(coder, np.asarray(symbols, np.int32), np.asarray(table_index, np.uint8), models)
    return coder.get_compressed()


def decode_symbols(words: np.ndarray, count: int, frequency_tables,
                   table_index=None) -> np.ndarray:
    """Inverse of :func:`encode_symbols`; raises :class:`FormatError` if the words don't fit."""
    models = [categorical_model(f) for f in frequency_tables]
    if table_index is None:
        table_index = np.zeros(count, np.uint8)
    coder = open_decoder(words)
    out = pop_by_table(coder, np.asarray(table_index, np.uint8), models)
    check_finished(coder)
    return out


def bernoulli_frequencies(ones: int, count: int) -> np.ndarray:
    """Spec 5.4: ``f1 = clip(round(ones * 2**24 / count), 1, 2**24 - 1)``, table ``[f0, f1]``."""
    f1 = min(max((ones * (1 << PRECISION) + count // 2) // count, 1), (1 << PRECISION) - 1)
    return np.array([(1 << PRECISION) - f1, f1], dtype=np.int64)


_BITS_PER_CALL = 1 << 22


def encode_bits(bits: np.ndarray) -> tuple[int, np.ndarray]:
    """Code a bool array with one Bernoulli table (spec 5.4): ``(ones, words)``."""
    ones = int(np.count_nonzero(bits))
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(bits.astype(np.int32),
                         categorical_model(bernoulli_frequencies(ones, len(bits))))
    return ones, coder.get_compressed()


def decode_bits(words: np.ndarray, count: int, ones: int) -> np.ndarray:
    """Inverse of :func:`encode_bits`; checks the end and the declared count of ones.

    Decodes ``2**22`` bits at a time into a bool array: a few coded bytes may declare
    ``2**26`` of them (spec 5.4), and the coder's int32 output would take four times more.
    """
    coder = open_decoder(words)
    model = categorical_model(bernoulli_frequencies(ones, count))
    bits = np.empty(count, bool)
    for start in range(0, count, _BITS_PER_CALL):
        n = min(_BITS_PER_CALL, count - start)
        bits[start:start + n] = coder.decode(model, n)
    check_finished(coder)
    if int(np.count_nonzero(bits)) != ones:
        raise FormatError(f"decoded {int(np.count_nonzero(bits))} one bits, header says {ones}")
    return bits


def write_escapes(magnitudes: np.ndarray, negative: np.ndarray) -> bytes:
    """Spec 7.5: each escape as order-0 exp-Golomb of its magnitude, then a sign bit.

    ``m = magnitude + 1`` with ``n`` significant bits is written as ``n - 1`` zeros, then ``m``
    in ``n`` bits (MSB first), then 1 if the symbol is negative. Packed MSB first, zero padded.
    """
    m = np.asarray(magnitudes, np.int64) + 1
    if len(m) == 0:
        return b""
    nbits = np.frexp(m.astype(np.float64))[1].astype(np.int64)   # exact for m < 2**53
    lengths = 2 * nbits
    starts = np.cumsum(lengths) - lengths
    bits = np.zeros(int(lengths.sum()), np.uint8)
    for j in range(int(nbits.max())):                 # j-th bit of m, MSB first
        has = nbits > j
        bits[(starts + nbits - 1 + j)[has]] = (m[has] >> (nbits[has] - 1 - j)) & 1
    bits[starts + lengths - 1] = np.asarray(negative, bool)
    return np.packbits(bits).tobytes()


class EscapeReader:
    """Reads escapes written by :func:`write_escapes`, in order, from one escape section.

    Raises :class:`FormatError` when the bits run out or a code has more than
    :data:`MAX_ESCAPE_ZEROS` leading zeros.

    >>> EscapeReader(write_escapes(np.array([0, 4]), np.array([False, True]))).read(2)
    (array([0, 4]), array([False,  True]))
    """

    def __init__(self, data: bytes):
        self.bits = bitarray(endian="big")
        self.bits.frombytes(bytes(data))
        self.pos = 0

    @property
    def bytes_used(self) -> int:
        return (self.pos + 7) // 8

    def read(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``([count] int64 magnitudes, [count] bool negative)``."""
        bits, pos = self.bits, self.pos
        magnitudes, negative = np.empty(count, np.int64), np.empty(count, bool)
        for i in range(count):
            try:
                one = bits.index(1, pos, min(len(bits), pos + MAX_ESCAPE_ZEROS + 1))
            except ValueError:
                if len(bits) - pos <= MAX_ESCAPE_ZEROS:
                    raise FormatError("escape section ends inside an escape")
                raise FormatError(f"escape with more than {MAX_ESCAPE_ZEROS} leading zeros")
            end = 2 * one - pos + 1                  # past the value bits
            if end + 1 > len(bits):
                raise FormatError("escape section ends inside an escape")
            magnitudes[i] = ba2int(bits[one:end]) - 1
            negative[i] = bits[end]
            pos = end + 1
        self.pos = pos
        return magnitudes, negative


def reference_encode(symbols, frequency_tables, table_index) -> np.ndarray:
    """Plain-Python rANS encoder of spec 7.4 (for tests): symbols decode in the given order."""
    state, words = 0, []
    for s, t in zip(reversed(list(symbols)), reversed(list(table_index))):
        freqs = [int(f) for f in frequency_tables[t]]
        f, start = freqs[s], sum(freqs[:s])
        if state >> (64 - PRECISION) >= f:
            words.append(state & (_STATE_LOW - 1))
            state >>= WORD_BITS
        state = ((state // f) << PRECISION) | (start + state % f)
    while state:
        words.append(state & (_STATE_LOW - 1))
        state >>= WORD_BITS
    return np.array(words, dtype=np.uint32)


class ReferenceAnsDecoder:
    """Plain-Python rANS decoder, line by line as spec 7.4 states it.

    >>> d = ReferenceAnsDecoder(np.array([7], np.uint32))
    >>> d.state
    7
    """

    def __init__(self, words):
        self.words = [int(w) for w in words]
        self.state = 0
        if self.words:
            if self.words[-1] == 0:
                raise FormatError("coded words end in a zero word")
            self.state = self.words.pop()
            if self.words:
                self.state = (self.state << WORD_BITS) | self.words.pop()

    def decode(self, frequencies) -> int:
        q = self.state & _MASK
        start = 0
        for symbol, f in enumerate(int(x) for x in frequencies):
            if q < start + f:
                break
            start += f
        self.state = f * (self.state >> PRECISION) + q - start
        if self.state < _STATE_LOW and self.words:
            self.state = (self.state << WORD_BITS) | self.words.pop()
        return symbol

    def finished(self) -> bool:
        return not self.words and self.state == 0
