// Spec chapter 6: the integer context model (part `context_mlp`) and its evaluation.

import { ByteReader } from './bytes.js';
import { FormatError, LimitError } from './errors.js';

const WHERE = { chunk: 'HEAD', field: 'context_mlp' };
const MEAN_MAX = 2 ** 24 - 1;

/**
 * Parse part `context_mlp` (6.5).
 * @param {Uint8Array} bytes
 * @param {number} gridWidth G of the hash grid
 * @param {number} channels C = F + S + 3K
 */
export function parseContextModel(bytes, gridWidth, channels) {
  const limit = (msg, field) => new LimitError(msg, { chunk: 'HEAD', field: `context_mlp.${field}` });
  const short = () => new FormatError(`part context_mlp is ${bytes.length} bytes, shorter than its fields`, WHERE);
  if (bytes.length < 15) throw short();
  const r = new ByteReader(bytes, { chunk: 'HEAD' });
  const baseSteps = [r.u32(), r.u32(), r.u32()];
  baseSteps.forEach((b, g) => {
    if (b < 1 || b > 2 ** 20) throw limit(`base_step ${b} not in 1..2**20`, `base_step[${g}]`);
  });
  const n = r.u8();
  if (n < 1 || n > 8) throw limit(`num_layers ${n} not in 1..8`, 'num_layers');
  const inputWidth = r.u16();
  if (inputWidth < 1 || inputWidth > 1024) throw limit(`input_width ${inputWidth} not in 1..1024`, 'input_width');
  if (inputWidth !== 2 * gridWidth) {
    throw new FormatError(`input_width ${inputWidth} is not 2 G = ${2 * gridWidth}`, { chunk: 'HEAD', field: 'context_mlp.input_width' });
  }
  if (bytes.length < 15 + 2 * n) throw short();
  const widths = [inputWidth];
  for (let i = 0; i < n; i++) widths.push(r.u16());
  for (let i = 1; i < n; i++) {
    if (widths[i] < 1 || widths[i] > 1024) throw limit(`output_width ${widths[i]} not in 1..1024`, `output_width[${i - 1}]`);
  }
  if (widths[n] !== 3 * channels) throw limit(`last output_width ${widths[n]} is not 3 C = ${3 * channels}`, `output_width[${n - 1}]`);
  let expected = 15 + 2 * n;
  for (let i = 0; i < n; i++) expected += widths[i + 1] * (widths[i] + 7);
  if (bytes.length !== expected) {
    throw new FormatError(`part context_mlp is ${bytes.length} bytes, its widths need ${expected}`, WHERE);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = r.pos;
  const layers = [];
  for (let i = 0; i < n; i++) {
    const Nin = widths[i];
    const Nout = widths[i + 1];
    const w = new Int8Array(bytes.buffer, bytes.byteOffset + pos, Nin * Nout);
    if (w.indexOf(-128) >= 0) throw limit('a weight is -128', `layer[${i}].weight`);
    pos += Nin * Nout;
    const weights = new Float64Array(w);   // row-major, row j = output j
    const bias = new Float64Array(Nout);
    for (let j = 0; j < Nout; j++, pos += 4) bias[j] = view.getInt32(pos, true);
    if (bias.indexOf(-2147483648) >= 0) throw limit('a bias is -2**31', `layer[${i}].bias`);
    const multiplier = new Float64Array(Nout);
    for (let j = 0; j < Nout; j++, pos += 2) multiplier[j] = view.getUint16(pos, true);
    const shift = bytes.slice(pos, pos + Nout);
    pos += Nout;
    const invScale = new Float64Array(Nout);
    const rounding = new Float64Array(Nout);
    for (let j = 0; j < Nout; j++) {
      const s = shift[j];
      if (s > 40) throw limit(`a shift is ${s} > 40`, `layer[${i}].shift`);
      invScale[j] = 2 ** -s;
      rounding[j] = s > 0 ? 2 ** (s - 1) : 0;
    }
    layers.push({ inputs: Nin, outputs: Nout, weights, bias, multiplier, shift, invScale, rounding });
  }
  return { baseSteps, numLayers: n, widths, layers, channels };
}

/**
 * out[a * Nout + j] = sum_t W[j * Nin + t] * x[a * Nin + t] + b[j] for anchors a of [0, n)
 * rounded up to a multiple of 4 (x and out have those rows): integer products and partial
 * sums below 2**24 in magnitude, plus a bias below 2**31, so every binary64 operation is
 * exact (6.3) and the summation order does not matter. Blocks of 4 anchors x 2 outputs share
 * their loads.
 */
function layerSums(W, bias, Nin, Nout, x, n, out) {
  for (let a = 0; a < n; a += 4) {
    const o0 = a * Nin, o1 = o0 + Nin, o2 = o1 + Nin, o3 = o2 + Nin;
    const q0 = a * Nout, q1 = q0 + Nout, q2 = q1 + Nout, q3 = q2 + Nout;
    for (let j = 0; j < Nout; j += 2) {
      // an odd last output pairs with itself (computed twice, written once)
      const j2 = j + 1 < Nout ? j + 1 : j;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, u0 = 0, u1 = 0, u2 = 0, u3 = 0;
      const r = j * Nin, r2 = j2 * Nin;
      for (let t = 0; t < Nin; t++) {
        const w = W[r + t], v = W[r2 + t];
        const x0 = x[o0 + t], x1 = x[o1 + t], x2 = x[o2 + t], x3 = x[o3 + t];
        s0 += w * x0; s1 += w * x1; s2 += w * x2; s3 += w * x3;
        u0 += v * x0; u1 += v * x1; u2 += v * x2; u3 += v * x3;
      }
      const b = bias[j], c = bias[j2];
      out[q0 + j] = s0 + b; out[q1 + j] = s1 + b; out[q2 + j] = s2 + b; out[q3 + j] = s3 + b;
      out[q0 + j2] = u0 + c; out[q1 + j2] = u1 + c; out[q2 + j2] = u2 + c; out[q3 + j2] = u3 + c;
    }
  }
}

/** Requantize a hidden layer (6.2) in place: h = clip((acc * m + r) >> s, 0, 127). */
function requantizeHidden(L, acc, n) {
  const Nout = L.outputs, mul = L.multiplier, inv = L.invScale, rnd = L.rounding;
  for (let a = 0; a < n; a++) {
    const q = a * Nout;
    for (let j = 0; j < Nout; j++) {
      // acc * m < 2**48 and + r <= 2**39: exact in binary64, and so is the floor
      const y = Math.floor((acc[q + j] * mul[j] + rnd[j]) * inv[j]);
      acc[q + j] = y < 0 ? 0 : y > 127 ? 127 : y;
    }
  }
}

/** The last layer's outputs (6.4) of anchors a0 .. a0 + n - 1. */
function requantizeOutput(L, acc, n, C, a0, mean, scaleIndex, stepIndex) {
  const mul = L.multiplier, inv = L.invScale, rnd = L.rounding;
  const Nout = L.outputs;
  for (let a = 0; a < n; a++) {
    const q = a * Nout;
    const o = (a0 + a) * C;
    for (let c = 0; c < C; c++) {
      let y = Math.floor((acc[q + c] * mul[c] + rnd[c]) * inv[c]);
      mean[o + c] = y < -MEAN_MAX ? -MEAN_MAX : y > MEAN_MAX ? MEAN_MAX : y;
      const c1 = C + c, c2 = 2 * C + c;
      y = Math.floor((acc[q + c1] * mul[c1] + rnd[c1]) * inv[c1]);
      scaleIndex[o + c] = y < 0 ? 0 : y > 63 ? 63 : y;
      y = Math.floor((acc[q + c2] * mul[c2] + rnd[c2]) * inv[c2]);
      stepIndex[o + c] = y < 0 ? 0 : y > 31 ? 31 : y;
    }
  }
}

const CHUNK = 256;

/**
 * Evaluate the model (6.2, 6.4) on N input rows x[a * I + t], in chunks of anchors.
 * @param {ReturnType<typeof parseContextModel>} model
 * @param {Float64Array} x N x I inputs in [-127, 127] (best with rows up to a multiple of 4,
 *   else copied)
 * @param {number} N
 * @returns {{mean: Int32Array, scaleIndex: Uint8Array, stepIndex: Uint8Array}} N x C each
 */
export function evaluateContext(model, x, N) {
  const C = model.channels;
  const I = model.widths[0];
  const rows = (N + 3) & ~3;                 // layerSums works on blocks of 4 anchors
  if (x.length < rows * I) {
    const padded = new Float64Array(rows * I);
    padded.set(x.subarray(0, N * I));
    x = padded;
  }
  const mean = new Int32Array(N * C);
  const scaleIndex = new Uint8Array(N * C);
  const stepIndex = new Uint8Array(N * C);
  // scratch buffers, kept with the model for its later levels
  const scratch = model.scratch ?? (model.scratch = [
    new Float64Array(CHUNK * Math.max(...model.widths)), new Float64Array(CHUNK * Math.max(...model.widths))]);
  let bufA = scratch[0];
  let bufB = scratch[1];
  const nl = model.layers.length;
  const last = model.layers[nl - 1];
  for (let a0 = 0; a0 < N; a0 += CHUNK) {
    const n = Math.min(CHUNK, N - a0);
    let input = a0 === 0 ? x : x.subarray(a0 * I);
    for (let li = 0; li < nl; li++) {
      const L = model.layers[li];
      layerSums(L.weights, L.bias, L.inputs, L.outputs, input, n, bufA);
      if (li < nl - 1) requantizeHidden(L, bufA, (n + 3) & ~3);
      input = bufA;
      const tmp = bufA; bufA = bufB; bufB = tmp;
    }
    requantizeOutput(last, input, n, C, a0, mean, scaleIndex, stepIndex);
  }
  return { mean, scaleIndex, stepIndex };
}
