// Spec 7.4: the rANS decoder (precision 24, 32-bit words, state < 2**64), and coding tables
// (7.3) with a fast symbol lookup.
//
// Exact integer arithmetic without BigInt: the 64-bit state is kept as two Numbers,
//   a = state >> 24   (< 2**40)     q = state mod 2**24
// and the update state' = f * a + (q - start) is computed in one multiplication when
// state < 2**53, else with a split of a into 20-bit halves, so that every intermediate stays
// below 2**53 (exact in binary64).

import { FormatError } from './errors.js';

const TWO24 = 16777216;
const TWO20 = 1048576;
const INV20 = 1 / TWO20;
const INV24 = 1 / TWO24;
// below this a (state < 2**53), f * a + r < 2**53 is exact in one multiplication
const SMALL_A = 2 ** 29;

export const LOOKUP_BITS = 12;

/**
 * A coding table (7.3): frequencies f[0..n-1] summing to 2**24, with cumulative starts and a
 * bucket lookup (q >> 12 -> first candidate symbol).
 */
export class CodingTable {
  /** @param {ArrayLike<number>} freqs */
  constructor(freqs) {
    const n = freqs.length;
    // frequencies and starts are at most 2**24: Int32Array keeps them small integers (no
    // boxed doubles before the JIT has optimized the decoding loops)
    const freq = new Int32Array(freqs);
    const start = new Int32Array(n + 1);
    const lookup = new Uint16Array(TWO24 >>> LOOKUP_BITS);
    fillTable(freq, start, lookup, n);
    if (start[n] !== TWO24) throw new Error('coding table does not sum to 2**24');
    this.size = n;
    this.freq = freq;
    this.start = start;
    this.lookup = lookup;
  }
}

/** start[i] = f[0] + .. + f[i-1]; lookup[b] = the symbol whose interval holds q = b << 12. */
function fillTable(freq, start, lookup, n) {
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const b0 = Math.ceil(acc / 4096);
    start[i] = acc;
    acc += freq[i];
    const b1 = Math.ceil(acc / 4096);
    if (b1 > b0) lookup.fill(i, b0, b1);
  }
  start[n] = acc;
}

export class RansDecoder {
  /**
   * Initialise from the words (7.4).
   * @param {Uint32Array} words
   * @param {{chunk?: string, field?: string}} where for error messages
   */
  constructor(words, where = {}) {
    this.words = words;
    this.where = where;
    const M = words.length;
    if (M === 0) {
      this.a = 0; this.q = 0; this.wp = 0;
    } else {
      const hi = words[M - 1];
      if (hi === 0) throw new FormatError('last rANS word is 0', where);
      if (M === 1) {
        this.a = hi >>> 24; this.q = hi & 0xffffff; this.wp = 0;
      } else {
        const lo = words[M - 2];
        this.a = hi * 256 + (lo >>> 24); this.q = lo & 0xffffff; this.wp = M - 2;
      }
    }
  }

  /** Decode one symbol with a CodingTable. */
  decode(table) {
    const q = this.q;
    const start = table.start;
    let i = table.lookup[q >>> LOOKUP_BITS];
    while (start[i + 1] <= q) i++;
    this._advance(table.freq[i], q - start[i]);
    return i;
  }

  _advance(f, r) {
    const a = this.a;
    let na, nq;
    if (a < SMALL_A) {
      const s = f * a + r;
      na = Math.floor(s * INV24);
      nq = s - na * TWO24;
    } else {
      const ah = Math.floor(a * INV20);
      const u = f * ah;
      const uh = Math.floor(u * 0.0625);
      const low = (u - uh * 16) * TWO20 + f * (a - ah * TWO20) + r;
      const lh = Math.floor(low * INV24);
      na = uh + lh;
      nq = low - lh * TWO24;
    }
    if (na < 256 && this.wp > 0) {
      const w = this.words[--this.wp];
      na = (na * TWO24 + nq) * 256 + (w >>> 24);
      nq = w & 0xffffff;
    }
    this.a = na; this.q = nq;
  }

  /**
   * Decode `count` symbols with table `table`, writing symbol indices to out[pos[j]] for
   * j = from..from+count-1 (or out[j] when pos is null). The hot loop of 7.5.
   */
  decodeRun(table, count, out, pos, from) {
    const start = table.start;
    const freq = table.freq;
    const lookup = table.lookup;
    const words = this.words;
    let a = this.a, q = this.q, wp = this.wp;
    for (let j = from, end = from + count; j < end; j++) {
      let i = lookup[q >>> LOOKUP_BITS];
      while (start[i + 1] <= q) i++;
      const f = freq[i];
      const r = q - start[i];
      if (a < SMALL_A) {
        const s = f * a + r;                  // < 2**53: exact in one step
        a = Math.floor(s * INV24);
        q = s - a * TWO24;
      } else {
        const ah = Math.floor(a * INV20);
        const u = f * ah;
        const uh = Math.floor(u * 0.0625);
        const low = (u - uh * 16) * TWO20 + f * (a - ah * TWO20) + r;
        const lh = Math.floor(low * INV24);
        a = uh + lh;
        q = low - lh * TWO24;
      }
      if (a < 256 && wp > 0) {
        const w = words[--wp];
        a = (a * TWO24 + q) * 256 + (w >>> 24);
        q = w & 0xffffff;
      }
      if (pos === null) out[j] = i; else out[pos[j]] = i;
    }
    this.a = a; this.q = q; this.wp = wp;
  }

  /**
   * Decode n bits with the two-symbol table [f0, 2**24 - f0] (5.4), packed LSB first into
   * 32-bit words of `out`. @returns {number} the number of 1 bits
   */
  decodeBits(n, f0, out) {
    const df = TWO24 - 2 * f0;   // f1 - f0
    const words = this.words;
    let a = this.a, q = this.q, wp = this.wp;
    let ones = 0;
    let acc = 0;
    for (let i = 0; i < n; i++) {
      // branch-free symbol choice: bit = 1 iff q >= f0 (start f0, frequency f1)
      const bit = q >= f0 ? 1 : 0;
      const f = f0 + bit * df;
      const r = q - bit * f0;
      acc |= bit << (i & 31);
      ones += bit;
      if ((i & 31) === 31) { out[i >>> 5] = acc; acc = 0; }
      if (a < SMALL_A) {
        const s = f * a + r;
        a = Math.floor(s * INV24);
        q = s - a * TWO24;
      } else {
        const ah = Math.floor(a * INV20);
        const u = f * ah;
        const uh = Math.floor(u * 0.0625);
        const low = (u - uh * 16) * TWO20 + f * (a - ah * TWO20) + r;
        const lh = Math.floor(low * INV24);
        a = uh + lh;
        q = low - lh * TWO24;
      }
      if (a < 256 && wp > 0) {
        const w = words[--wp];
        a = (a * TWO24 + q) * 256 + (w >>> 24);
        q = w & 0xffffff;
      }
    }
    if (n & 31) out[n >>> 5] = acc;
    this.a = a; this.q = q; this.wp = wp;
    return ones;
  }

  /** The end check of 7.4: no word left and state 0. */
  endCheck() {
    if (this.wp !== 0) throw new FormatError(`rANS data has ${this.wp} word(s) left over`, this.where);
    if (this.a !== 0 || this.q !== 0) throw new FormatError('rANS final state is not 0', this.where);
  }
}
