"""The rANS decoder of spec 7.4, in plain Python integers."""

from bisect import bisect_right

from pgs_errors import fail

MASK = (1 << 24) - 1
LOW = 1 << 32


class Rans:
    def __init__(self, words):
        self.words = list(words)
        self.left = len(self.words)          # words[0 .. left-1] remain
        self.state = 0
        if self.left:
            if self.words[-1] == 0:
                fail("the last rANS word is zero")
            self.state = self.words[-1]
            self.left -= 1
            if self.left:
                self.state = (self.state << 32) | self.words[self.left - 1]
                self.left -= 1

    def decode(self, freqs, starts):
        q = self.state & MASK
        i = bisect_right(starts, q) - 1
        self.state = freqs[i] * (self.state >> 24) + q - starts[i]
        if self.state < LOW and self.left:
            self.left -= 1
            self.state = (self.state << 32) | self.words[self.left]
        return i

    def decode_bits(self, count, f0):
        """``count`` symbols of the table ``[f0, 2**24 - f0]`` (5.4), as a bytearray of 0/1."""
        out = bytearray(count)
        f1, state, left, words = (1 << 24) - f0, self.state, self.left, self.words
        for n in range(count):
            q = state & MASK
            if q < f0:
                state = f0 * (state >> 24) + q
            else:
                state = f1 * (state >> 24) + q - f0
                out[n] = 1
            if state < LOW and left:
                left -= 1
                state = (state << 32) | words[left]
        self.state, self.left = state, left
        return out

    def end_check(self):
        if self.left or self.state:
            fail("rANS end check: words left or state not zero")
