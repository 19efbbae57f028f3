// Spec chapter 5: the binarized hash grid (part `hash_grid`) and the integer interpolated
// features of 5.3.

import { ByteReader, readWords } from './bytes.js';
import { FormatError, LimitError } from './errors.js';
import { RansDecoder } from './rans.js';

const WHERE = { chunk: 'HEAD', field: 'hash_grid' };
const PRIME1 = 2654435761 | 0;
const PRIME2 = 805459861;
const W = 8;
const ONE = 1 << W;
/** Planes of the 2D tables (5.1): axis pairs of xy, xz, yz. */
export const PLANES = [[0, 1], [0, 2], [1, 2]];

/**
 * Table layout of 5.1. @returns {{dim: number, R: number, E: number, dense: boolean,
 * offset: number, axes: number[], level: number}[]} and the parameter count P
 */
export function tableLayout(featuresPerLevel, res3, log2Table3d, res2, log2Table2d) {
  const tables = [];
  let entries = 0;
  const add = (dim, R, B, axes, level) => {
    const full = (R + 1) ** dim;
    const dense = full <= 2 ** B;
    const E = dense ? full : 2 ** B;
    tables.push({ dim, R, E, dense, offset: entries * featuresPerLevel, axes, level });
    entries += E;
  };
  res3.forEach((R, l) => add(3, R, log2Table3d, [0, 1, 2], l));
  for (const axes of PLANES) res2.forEach((R, l) => add(2, R, log2Table2d, axes, l));
  return { tables, P: entries * featuresPerLevel };
}

/**
 * Parse part `hash_grid` (5.4) and decode its parameter bits.
 * @param {Uint8Array} bytes
 */
export function parseHashGrid(bytes) {
  const r = new ByteReader(bytes, { chunk: 'HEAD' });
  const short = () => new FormatError(`part hash_grid is ${bytes.length} bytes, shorter than its fields`, WHERE);
  if (bytes.length < 5) throw short();
  const featuresPerLevel = r.u8();
  const L3 = r.u8();
  const B3 = r.u8();
  const L2 = r.u8();
  const B2 = r.u8();
  const limit = (msg, field) => new LimitError(msg, { chunk: 'HEAD', field: `hash_grid.${field}` });
  if (bytes.length < 13 + 2 * (L3 + L2)) throw short();
  if (featuresPerLevel < 1 || featuresPerLevel > 8) throw limit(`features_per_level ${featuresPerLevel} not in 1..8`, 'features_per_level');
  if (L3 > 32) throw limit(`num_levels_3d ${L3} > 32`, 'num_levels_3d');
  if (B3 < 1 || B3 > 24) throw limit(`log2_table_3d ${B3} not in 1..24`, 'log2_table_3d');
  if (L2 > 32) throw limit(`num_levels_2d ${L2} > 32`, 'num_levels_2d');
  if (B2 < 1 || B2 > 24) throw limit(`log2_table_2d ${B2} not in 1..24`, 'log2_table_2d');
  if (L3 + L2 < 1) throw limit('the grid has no levels', 'num_levels_3d');
  const res3 = [];
  const res2 = [];
  for (let l = 0; l < L3; l++) res3.push(r.u16());
  for (let l = 0; l < L2; l++) res2.push(r.u16());
  if (res3.includes(0)) throw limit('a 3D resolution is 0', 'resolutions_3d');
  if (res2.includes(0)) throw limit('a 2D resolution is 0', 'resolutions_2d');
  const numTables = L3 + 3 * L2;
  const gridWidth = featuresPerLevel * numTables;
  if (2 * gridWidth > 1024) throw limit(`2 G = ${2 * gridWidth} > 1024`, 'features_per_level');
  const { tables, P } = tableLayout(featuresPerLevel, res3, B3, res2, B2);
  if (P > 2 ** 26) throw limit(`${P} parameters > 2**26`, 'resolutions');
  const numOnes = r.u32();
  const M = r.u32();
  const expected = 13 + 2 * (L3 + L2) + 4 * M;
  if (expected > bytes.length) {
    throw limit(`num_words ${M} runs past the part (${bytes.length} bytes, the words need ${expected})`, 'num_words');
  }
  if (bytes.length !== expected) {
    throw new FormatError(`part hash_grid is ${bytes.length} bytes, its fields need ${expected}`, WHERE);
  }
  if (numOnes > P) throw limit(`num_ones ${numOnes} > ${P} parameters`, 'num_ones');
  const words = readWords(bytes, r.pos, M);
  // f1 = clip((n1 * 2**24 + P // 2) // P, 1, 2**24 - 1): n1 * 2**24 < 2**50, exact.
  const f1 = Math.min(Math.max(Math.floor((numOnes * 16777216 + Math.floor(P / 2)) / P), 1), 16777215);
  const f0 = 16777216 - f1;
  const bits = new Uint32Array(Math.ceil(P / 32));
  const rans = new RansDecoder(words, WHERE);
  const ones = rans.decodeBits(P, f0, bits);
  rans.endCheck();
  if (ones !== numOnes) throw new FormatError(`decoded ${ones} one bits, num_ones says ${numOnes}`, WHERE);
  return { featuresPerLevel, res3, log2Table3d: B3, res2, log2Table2d: B2, numOnes, tables, P, gridWidth, bits };
}

/**
 * Grid features (5.3) of voxels at depth d, written as numbers into
 * out[a * stride + offset + t * F_l + f] for anchor a, table t, feature f.
 * @param {ReturnType<typeof parseHashGrid>} grid
 * @param {Uint32Array} coords N x 3
 * @param {number} depth d
 * @param {Float64Array|Int8Array|Int32Array} [out] defaults to a new N x G Int8Array
 * @param {number} [stride] defaults to G
 * @param {number} [offset] defaults to 0
 */
export function gridFeatures(grid, coords, depth, out, stride, offset = 0) {
  const N = coords.length / 3;
  const G = grid.gridWidth;
  out = out ?? new Int8Array(N * G);
  stride = stride ?? G;
  let col = offset;
  for (const tab of grid.tables) {
    if (tab.dim === 3) table3d(grid, tab, coords, N, depth, out, stride, col);
    else table2d(grid, tab, coords, N, depth, out, stride, col);
    col += grid.featuresPerLevel;
  }
  return out;
}

// One 3D table for all anchors (5.2, 5.3). Every value is an integer below 2**53: exact.
// Corner c = 4 b_x + 2 b_y + b_z.
function table3d(grid, tab, coords, N, depth, out, stride, col) {
  const bits = grid.bits;
  const Fl = grid.featuresPerLevel;
  const R = tab.R, R1 = R + 1, R2 = R1 * R1, dense = tab.dense, mask = tab.E - 1, base = tab.offset;
  const scale = 2 ** (depth + 1);
  const inv = 1 / scale;
  const wscale = ONE * inv;
  const S = new Float64Array(Fl);
  const e = new Int32Array(8);
  const w = new Float64Array(8);
  for (let a = 0; a < N; a++) {
    const ux = (2 * coords[3 * a] + 1) * R;          // u_j < 2**38
    const uy = (2 * coords[3 * a + 1] + 1) * R;
    const uz = (2 * coords[3 * a + 2] + 1) * R;
    const ix = Math.floor(ux * inv), iy = Math.floor(uy * inv), iz = Math.floor(uz * inv);
    const wx = Math.floor((ux - ix * scale) * wscale);  // ((u - (i << (d+1))) << W) >> (d+1)
    const wy = Math.floor((uy - iy * scale) * wscale);
    const wz = Math.floor((uz - iz * scale) * wscale);
    const xy00 = (ONE - wx) * (ONE - wy), xy01 = (ONE - wx) * wy, xy10 = wx * (ONE - wy), xy11 = wx * wy;
    const z0 = ONE - wz;
    w[0] = xy00 * z0; w[1] = xy00 * wz; w[2] = xy01 * z0; w[3] = xy01 * wz;
    w[4] = xy10 * z0; w[5] = xy10 * wz; w[6] = xy11 * z0; w[7] = xy11 * wz;
    if (dense) {
      const e0 = ix + R1 * iy + R2 * iz;
      e[0] = e0; e[1] = e0 + R2; e[2] = e0 + R1; e[3] = e0 + R1 + R2;
      e[4] = e0 + 1; e[5] = e0 + 1 + R2; e[6] = e0 + 1 + R1; e[7] = e0 + 1 + R1 + R2;
    } else {
      const hy0 = Math.imul(iy, PRIME1), hy1 = Math.imul(iy + 1, PRIME1);
      const hz0 = Math.imul(iz, PRIME2), hz1 = Math.imul(iz + 1, PRIME2);
      const x0 = ix, x1 = ix + 1;
      e[0] = (x0 ^ hy0 ^ hz0) & mask; e[1] = (x0 ^ hy0 ^ hz1) & mask;
      e[2] = (x0 ^ hy1 ^ hz0) & mask; e[3] = (x0 ^ hy1 ^ hz1) & mask;
      e[4] = (x1 ^ hy0 ^ hz0) & mask; e[5] = (x1 ^ hy0 ^ hz1) & mask;
      e[6] = (x1 ^ hy1 ^ hz0) & mask; e[7] = (x1 ^ hy1 ^ hz1) & mask;
    }
    interpolate(bits, base, Fl, e, w, 8, S);
    const o = a * stride + col;
    for (let f = 0; f < Fl; f++) out[o + f] = Math.floor((S[f] * 127 + 8388608) * 5.9604644775390625e-8);  // (S*127 + 2**23) >> 24
  }
}

// One 2D table (plane axes a0, a1) for all anchors. Corner c = 2 b_0 + b_1.
function table2d(grid, tab, coords, N, depth, out, stride, col) {
  const bits = grid.bits;
  const Fl = grid.featuresPerLevel;
  const R = tab.R, R1 = R + 1, dense = tab.dense, mask = tab.E - 1, base = tab.offset;
  const ax0 = tab.axes[0], ax1 = tab.axes[1];
  const scale = 2 ** (depth + 1);
  const inv = 1 / scale;
  const wscale = ONE * inv;
  const S = new Float64Array(Fl);
  const e = new Int32Array(4);
  const w = new Float64Array(4);
  for (let a = 0; a < N; a++) {
    const u0 = (2 * coords[3 * a + ax0] + 1) * R;
    const u1 = (2 * coords[3 * a + ax1] + 1) * R;
    const i0 = Math.floor(u0 * inv), i1 = Math.floor(u1 * inv);
    const w0 = Math.floor((u0 - i0 * scale) * wscale);
    const w1 = Math.floor((u1 - i1 * scale) * wscale);
    w[0] = (ONE - w0) * (ONE - w1); w[1] = (ONE - w0) * w1; w[2] = w0 * (ONE - w1); w[3] = w0 * w1;
    if (dense) {
      const e0 = i0 + R1 * i1;
      e[0] = e0; e[1] = e0 + R1; e[2] = e0 + 1; e[3] = e0 + 1 + R1;
    } else {
      const h0 = Math.imul(i1, PRIME1), h1 = Math.imul(i1 + 1, PRIME1);
      e[0] = (i0 ^ h0) & mask; e[1] = (i0 ^ h1) & mask; e[2] = ((i0 + 1) ^ h0) & mask; e[3] = ((i0 + 1) ^ h1) & mask;
    }
    interpolate(bits, base, Fl, e, w, 4, S);
    const o = a * stride + col;
    for (let f = 0; f < Fl; f++) out[o + f] = Math.floor((S[f] * 127 + 32768) * 1.52587890625e-5);  // (S*127 + 2**15) >> 16
  }
}

/** S[f] = sum over corners c of w[c] * (+1 or -1 as parameter f of entry e[c]). */
function interpolate(bits, base, Fl, e, w, corners, S) {
  for (let f = 0; f < Fl; f++) S[f] = 0;
  for (let c = 0; c < corners; c++) {
    const wc = w[c];
    let p = base + e[c] * Fl;
    for (let f = 0; f < Fl; f++, p++) S[f] += ((bits[p >>> 5] >>> (p & 31)) & 1) ? wc : -wc;
  }
}
