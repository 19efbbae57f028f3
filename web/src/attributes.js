// Spec chapter 7: steps and dequantization (7.1, 7.2), tables (7.3), symbol order and
// escapes (7.5), group payloads (7.6); and raw groups (4.5).

import { BitReader, readWords } from './bytes.js';
import { FormatError, LimitError } from './errors.js';
import { CodingTable, RansDecoder } from './rans.js';
import { FREQUENCIES, HALF_WIDTHS, STEP_MULTIPLIERS } from './tables.js';

export const BLOCK_SIZE = 4096;
export const NUM_TABLES = 64;
const V_MAX = 2 ** 24 - 1;
/** T_s and the escape index 2 T_s + 1 per scale table, as typed arrays for the hot loops. */
const HALF = Int32Array.from(HALF_WIDTHS);
const ESCAPE = Int32Array.from(HALF_WIDTHS, (T) => 2 * T + 1);
const INV16 = 2 ** -16;

const codingTables = new Array(NUM_TABLES).fill(null);
/** Coding table of scale index s (built on first use). */
export function scaleTable(s) {
  return codingTables[s] ?? (codingTables[s] = new CodingTable(FREQUENCIES[s]));
}

/** step_g[0..31] of 7.2 for a base step. */
export function stepTable(baseStep) {
  const out = new Float64Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Math.max(1, Math.floor((baseStep * STEP_MULTIPLIERS[i] + 2048) / 4096));
  }
  return out;
}

/**
 * A raw group (4.5): N x C_g finite binary32 values.
 * @returns {Float32Array}
 */
export function decodeRawGroup(payload, N, Cg, where) {
  if (payload.length !== 4 * N * Cg) {
    throw new FormatError(`raw group is ${payload.length} bytes, not 4 * ${N} * ${Cg}`, where);
  }
  const bits = readWords(payload, 0, N * Cg);     // binary32 bit patterns, little-endian
  for (let i = 0; i < bits.length; i++) {
    if ((bits[i] & 0x7f800000) === 0x7f800000) throw new FormatError(`raw value ${i} is not finite`, where);
  }
  return new Float32Array(bits.buffer);
}

/**
 * An entropy-coded group (7.6).
 * @param {Uint8Array} payload
 * @param {number} N anchors
 * @param {number} Cg channels of the group
 * @param {number} cStart first model channel of the group (c_g)
 * @param {{mean: Int32Array, scaleIndex: Uint8Array, stepIndex: Uint8Array}} ctx N x C
 * @param {number} C model channels
 * @param {Float64Array} steps step_g
 * @returns {{symbols: Int32Array, values: Float32Array}}
 */
export function decodeEntropyGroup(payload, N, Cg, cStart, ctx, C, steps, where) {
  if (payload.length < 4) throw new FormatError(`group payload is ${payload.length} bytes, shorter than num_words`, where);
  const M = (payload[0] | (payload[1] << 8) | (payload[2] << 16) | (payload[3] << 24)) >>> 0;
  if (4 + 4 * M > payload.length) throw new LimitError(`num_words ${M} exceeds the group payload`, where);
  const words = readWords(payload, 4, M);
  const escapeBytes = payload.subarray(4 + 4 * M);
  const rans = new RansDecoder(words, where);
  const index = new Uint16Array(N * Cg);
  if (N * Cg > 0) decodeSymbols(rans, index, N, Cg, cStart, C, ctx.scaleIndex);
  rans.endCheck();
  const br = new BitReader(escapeBytes);
  const out = dequantize(index, N, Cg, cStart, C, ctx, steps, br, where);
  const need = Math.ceil(br.bitPos / 8);
  if (escapeBytes.length !== need) {
    throw new FormatError(`escape section is ${escapeBytes.length} bytes, its codes need ${need}`, where);
  }
  return out;
}

/**
 * Symbol indices of a group in the order of 7.5: per block of 4096 anchors, table 0..63,
 * raster order inside each table; one rANS decoder for the whole group.
 */
function decodeSymbols(rans, index, N, Cg, cStart, C, scaleIndex) {
  const blockAnchors = Math.min(BLOCK_SIZE, N);
  const positions = new Int32Array(blockAnchors * Cg);
  const counts = new Int32Array(NUM_TABLES + 1);
  for (let a0 = 0; a0 < N; a0 += BLOCK_SIZE) {
    const a1 = Math.min(a0 + BLOCK_SIZE, N);
    sortBlock(scaleIndex, a0, a1, C, cStart, Cg, counts, positions);
    let from = 0;
    for (let s = 0; s < NUM_TABLES; s++) {
      const n = counts[s];
      if (n > 0) rans.decodeRun(scaleTable(s), n, index, positions, from);
      from += n;
    }
  }
}

/**
 * Counting sort of the raster positions of anchors [a0, a1) by coding table (stable, so
 * raster order within a table). counts[s] = the number of positions with table s.
 */
function sortBlock(scaleIndex, a0, a1, C, cStart, Cg, counts, positions) {
  counts.fill(0);
  for (let a = a0; a < a1; a++) {
    const row = a * C + cStart;
    for (let j = 0; j < Cg; j++) counts[scaleIndex[row + j]]++;
  }
  // counts[s] becomes the running write offset of table s, then is restored
  let acc = 0;
  for (let s = 0; s < NUM_TABLES; s++) { const c = counts[s]; counts[s] = acc; acc += c; }
  let p = a0 * Cg;
  for (let a = a0; a < a1; a++) {
    const row = a * C + cStart;
    for (let j = 0; j < Cg; j++, p++) positions[counts[scaleIndex[row + j]]++] = p;
  }
  let prev = 0;
  for (let s = 0; s < NUM_TABLES; s++) { const end = counts[s]; counts[s] = end - prev; prev = end; }
}

/**
 * Symbols k and values V * 2**-16 (7.2, 7.5). The result and the error are those of 7.6's
 * raster loop (per channel: read its escape if any, compute V, check |V|), in two passes:
 * every channel without escape first, noting the first bad value; then the escapes, in
 * raster order, up to that channel.
 */
function dequantize(index, N, Cg, cStart, C, ctx, steps, br, where) {
  const { mean, scaleIndex, stepIndex } = ctx;
  const total = N * Cg;
  const symbols = new Int32Array(total);
  const values = new Float32Array(total);
  const escapes = new Int32Array(total + 1);
  const r = dequantizePlain(index, N, Cg, cStart, C, mean, scaleIndex, stepIndex, steps, symbols, values, escapes);
  const bad = r < 0 ? total : r >>> 0;
  fixEscapes(escapes, bad, Cg, cStart, C, mean, scaleIndex, stepIndex, steps, symbols, values, br, where);
  if (bad < total) {
    const a = Math.floor(bad / Cg), j = bad - a * Cg;
    throw new LimitError(`decoded value ${mean[a * C + cStart + j] + symbols[bad] * steps[stepIndex[a * C + cStart + j]]} exceeds 2**24 - 1 at anchor ${a}, channel ${j}`, where);
  }
  return { symbols, values };
}

/**
 * Pass 1: k = i - T and V for every channel that is not an escape; escape positions go to
 * escapes[] (terminated by -1). Returns the position of the first |V| > 2**24 - 1 that is not
 * an escape, or -1. Branch-free on escapes, so that its optimized code does not depend on
 * whether the first levels had any.
 */
function dequantizePlain(index, N, Cg, cStart, C, mean, scaleIndex, stepIndex, steps, symbols, values, escapes) {
  const half = HALF, escape = ESCAPE;
  let ne = 0;
  for (let a = 0, p = 0; a < N; a++) {
    const row = a * C + cStart;
    for (let j = 0; j < Cg; j++, p++) {
      const s = scaleIndex[row + j];
      const T = half[s];
      const i = index[p];
      const esc = i === escape[s] ? 1 : 0;
      escapes[ne] = p;
      ne += esc;
      const k = i - T;
      const V = mean[row + j] + k * steps[stepIndex[row + j]];
      if ((V > V_MAX || V < -V_MAX) && esc === 0) {
        escapes[ne] = -1;
        symbols[p] = k;
        return p;
      }
      symbols[p] = k;
      values[p] = V * INV16;
    }
  }
  escapes[ne] = -1;
  return -1;
}

/** Pass 2: read the escapes in raster order (those before position `bad`). */
function fixEscapes(escapes, bad, Cg, cStart, C, mean, scaleIndex, stepIndex, steps, symbols, values, br, where) {
  for (let e = 0; escapes[e] >= 0 && escapes[e] < bad; e++) {
    const p = escapes[e];
    const a = Math.floor(p / Cg), j = p - a * Cg;
    const c = a * C + cStart + j;
    const k = readEscape(br, HALF[scaleIndex[c]], where);
    const V = mean[c] + k * steps[stepIndex[c]];
    if (V > V_MAX || V < -V_MAX) {
      throw new LimitError(`decoded value ${V} exceeds 2**24 - 1 at anchor ${a}, channel ${j}`, where);
    }
    symbols[p] = k;
    values[p] = V * INV16;
  }
}

/**
 * One escape code (7.5): z zero bits, a 1, z more bits (m + 1 = 2**z + b, MSB first), then
 * the sign bit. Returns k = +-(m + T + 1).
 */
export function readEscape(br, T, where) {
  const bytes = br.bytes, total = br.totalBits;
  let p = br.bitPos;
  let z = 0;
  for (;;) {
    if (p >= total) throw new FormatError('escape section ends inside a code', where);
    const b = (bytes[p >>> 3] >>> (7 - (p & 7))) & 1;
    p++;
    if (b === 1) break;
    if (++z > 24) throw new FormatError('escape code has more than 24 leading zeros', where);
  }
  if (total - p < z + 1) throw new FormatError('escape section ends inside a code', where);
  let v = 1;                                   // v = m + 1, from its leading 1
  for (let i = 0; i < z; i++, p++) v = 2 * v + ((bytes[p >>> 3] >>> (7 - (p & 7))) & 1);
  const sign = (bytes[p >>> 3] >>> (7 - (p & 7))) & 1;
  br.bitPos = p + 1;
  return sign ? -(v + T) : v + T;              // |k| = m + T + 1 = v + T
}
