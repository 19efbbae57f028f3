// Spec chapter 9.1 (informative): neural Gaussians from decoded anchors, for one camera.
//
// The drawn anchors of LoD k (every anchor of levels 1..k with refine = add; the leaves of the
// octree cut at level k with refine = replace, 3.5) each spawn K Gaussians whose opacity,
// colour, scale and rotation come from the generation MLPs (3.4, binary16 weights widened to
// binary32) evaluated on [feature, viewing direction, distance]; a Gaussian is kept when its
// opacity is > 0. The reference is progs_codec/render/gaussians.py (`generate_gaussians`);
// this is the same computation, in binary64 with binary32 inputs and outputs (chapter 9 lets
// renderers differ in rounding). No dependency, no DOM: runs in a Worker, a page or Node.

import { REFINE_REPLACE } from './header.js';

const NORM_EPS = 1e-12;

/**
 * Which anchors of LoD `lod` spawn Gaussians (9.1), in LoD order (level 1 first, each level in
 * canonical order). `levels[j]` needs `count` and, from the second on, `parentIndex`.
 * @param {{count: number, parentIndex?: Int32Array}[]} levels decoded levels 1..>= lod
 * @param {number} lod 1..levels.length
 * @param {number} refine 0 add, 1 replace
 * @returns {Uint8Array} 1 for a drawn anchor
 */
export function drawnMask(levels, lod, refine) {
  if (!(lod >= 1 && lod <= levels.length)) throw new RangeError(`LoD ${lod} is not decoded (${levels.length} levels)`);
  let total = 0;
  for (let j = 0; j < lod; j++) total += levels[j].count;
  const drawn = new Uint8Array(total).fill(1);
  if (refine !== REFINE_REPLACE) return drawn;
  let base = 0;
  for (let j = 0; j < lod - 1; j++) {
    // an anchor of level j + 1 < lod is drawn only when no anchor of level j + 2 names it
    const children = levels[j + 1].parentIndex;
    for (let a = 0; a < children.length; a++) drawn[base + children[a]] = 0;
    base += levels[j].count;
  }
  return drawn;
}

/**
 * The drawn anchors of LoD `lod`, gathered into contiguous arrays (binary32).
 * @param {{count: number, positions: Float32Array, parentIndex: Int32Array,
 *   attributes: {feature: Float32Array, scaling: Float32Array, offsets: Float32Array}}[]} levels
 * @param {{featureDim: number, scalingDim: number, numOffsets: number}} frame
 * @returns {{count: number, lodAnchors: number, positions: Float32Array, feature: Float32Array,
 *   scaling: Float32Array, offsets: Float32Array}} offsets [count, K, 3]
 */
export function gatherAnchors(levels, frame, lod, refine) {
  const drawn = drawnMask(levels, lod, refine);
  let n = 0;
  for (let i = 0; i < drawn.length; i++) n += drawn[i];
  const F = frame.featureDim;
  const S = frame.scalingDim;
  const O = 3 * frame.numOffsets;
  const out = {
    count: n, lodAnchors: drawn.length,
    positions: new Float32Array(3 * n), feature: new Float32Array(F * n),
    scaling: new Float32Array(S * n), offsets: new Float32Array(O * n),
  };
  let i = 0;
  let g = 0;
  for (let j = 0; j < lod; j++) {
    const lv = levels[j];
    const at = lv.attributes;
    for (let a = 0; a < lv.count; a++, g++) {
      if (!drawn[g]) continue;
      out.positions.set(lv.positions.subarray(3 * a, 3 * a + 3), 3 * i);
      out.feature.set(at.feature.subarray(F * a, F * a + F), F * i);
      out.scaling.set(at.scaling.subarray(S * a, S * a + S), S * i);
      out.offsets.set(at.offsets.subarray(O * a, O * a + O), O * i);
      i++;
    }
  }
  return out;
}

/** binary16 bits -> Number (exact). */
function halfToNumber(h) {
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1024 + m) * 2 ** (e - 25);
  return h & 0x8000 ? -v : v;
}

function widen(a) {
  if (a instanceof Float32Array || a instanceof Float64Array) return Float64Array.from(a);
  if (a instanceof Uint16Array) return Float64Array.from(a, halfToNumber);
  return Float64Array.from(a);
}

/**
 * Evaluates spec 9.1 for one camera centre. Construct once per stream (the MLPs), call
 * `generate` per LoD and camera.
 */
export class GaussianGenerator {
  /**
   * @param {{useDistance: boolean, mlps: {name: string, inputs: number, hidden: number,
   *   outputs: number, W1: ArrayLike<number>, b1: ArrayLike<number>, W2: ArrayLike<number>,
   *   b2: ArrayLike<number>}[]}} gaussianMlps part `gaussian_mlps` as the decoder (or its
   *   worker) gives it: opacity, color, covariance
   * @param {{featureDim: number, scalingDim: number, numOffsets: number}} frame
   */
  constructor(gaussianMlps, frame) {
    if (!gaussianMlps) throw new Error('the stream carries no Gaussian-generation MLPs (spec 3.4): it cannot be rendered');
    if (frame.scalingDim !== 6) throw new Error(`Scaffold-GS generation needs 6 scaling channels, the stream has ${frame.scalingDim}`);
    this.K = frame.numOffsets;
    this.F = frame.featureDim;
    this.useDistance = !!gaussianMlps.useDistance;
    this.I = this.F + 3 + (this.useDistance ? 1 : 0);
    const [op, col, cov] = gaussianMlps.mlps;
    this.H = op.hidden;
    this.mlps = [op, col, cov].map((m) => ({
      H: m.hidden, O: m.outputs, W1: widen(m.W1), b1: widen(m.b1), W2: widen(m.W2), b2: widen(m.b2),
    }));
    this.x = new Float64Array(this.I);
    this.h = this.mlps.map((m) => new Float64Array(m.H));
  }

  _hidden(m, h) {
    const { W1, b1, H } = m;
    const x = this.x;
    const I = this.I;
    for (let r = 0; r < H; r++) {
      let s = b1[r];
      const o = r * I;
      for (let c = 0; c < I; c++) s += W1[o + c] * x[c];
      h[r] = s > 0 ? s : 0;
    }
  }

  static _row(m, h, row) {
    const { W2, b2, H } = m;
    let s = b2[row];
    const o = row * H;
    for (let c = 0; c < H; c++) s += W2[o + c] * h[c];
    return s;
  }

  /**
   * The Gaussians the camera at `center` sees (9.1), anchor-major then by offset.
   * @param {ReturnType<typeof gatherAnchors>} anchors
   * @param {ArrayLike<number>} center camera centre, world coordinates
   * @returns {{count: number, means: Float32Array, scales: Float32Array, quats: Float32Array,
   *   opacities: Float32Array, colors: Float32Array}} quats (w, x, y, z), linear scales,
   *   RGB in (0, 1)
   */
  generate(anchors, center) {
    const { K, F, I, useDistance } = this;
    const [mo, mc, mv] = this.mlps;
    const [ho, hc, hv] = this.h;
    const x = this.x;
    const n = anchors.count;
    const cap = n * K;
    const means = new Float32Array(3 * cap);
    const scales = new Float32Array(3 * cap);
    const quats = new Float32Array(4 * cap);
    const opacities = new Float32Array(cap);
    const colors = new Float32Array(3 * cap);
    const { positions, feature, scaling, offsets } = anchors;
    const cx = center[0];
    const cy = center[1];
    const cz = center[2];
    const opa = new Float64Array(K);
    let g = 0;
    for (let a = 0; a < n; a++) {
      const px = positions[3 * a];
      const py = positions[3 * a + 1];
      const pz = positions[3 * a + 2];
      for (let c = 0; c < F; c++) x[c] = feature[F * a + c];
      const vx = Math.fround(px - cx);
      const vy = Math.fround(py - cy);
      const vz = Math.fround(pz - cz);
      const dist = Math.sqrt(vx * vx + vy * vy + vz * vz);
      const inv = 1 / Math.max(dist, NORM_EPS);
      x[F] = vx * inv;
      x[F + 1] = vy * inv;
      x[F + 2] = vz * inv;
      if (useDistance) x[F + 3] = dist;
      this._hidden(mo, ho);
      let any = false;
      for (let j = 0; j < K; j++) {
        opa[j] = Math.tanh(GaussianGenerator._row(mo, ho, j));
        if (opa[j] > 0) any = true;
      }
      if (!any) continue;
      this._hidden(mc, hc);
      this._hidden(mv, hv);
      const s = 6 * a;
      const e0 = Math.exp(scaling[s]);
      const e1 = Math.exp(scaling[s + 1]);
      const e2 = Math.exp(scaling[s + 2]);
      const e3 = Math.exp(scaling[s + 3]);
      const e4 = Math.exp(scaling[s + 4]);
      const e5 = Math.exp(scaling[s + 5]);
      for (let j = 0; j < K; j++) {
        if (!(opa[j] > 0)) continue;
        const d = 3 * (K * a + j);
        means[3 * g] = px + offsets[d] * e0;
        means[3 * g + 1] = py + offsets[d + 1] * e1;
        means[3 * g + 2] = pz + offsets[d + 2] * e2;
        const r = 7 * j;
        scales[3 * g] = e3 * sigmoid(GaussianGenerator._row(mv, hv, r));
        scales[3 * g + 1] = e4 * sigmoid(GaussianGenerator._row(mv, hv, r + 1));
        scales[3 * g + 2] = e5 * sigmoid(GaussianGenerator._row(mv, hv, r + 2));
        const qw = GaussianGenerator._row(mv, hv, r + 3);
        const qx = GaussianGenerator._row(mv, hv, r + 4);
        const qy = GaussianGenerator._row(mv, hv, r + 5);
        const qz = GaussianGenerator._row(mv, hv, r + 6);
        const qn = 1 / Math.max(Math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz), NORM_EPS);
        quats[4 * g] = qw * qn;
        quats[4 * g + 1] = qx * qn;
        quats[4 * g + 2] = qy * qn;
        quats[4 * g + 3] = qz * qn;
        opacities[g] = opa[j];
        colors[3 * g] = sigmoid(GaussianGenerator._row(mc, hc, 3 * j));
        colors[3 * g + 1] = sigmoid(GaussianGenerator._row(mc, hc, 3 * j + 1));
        colors[3 * g + 2] = sigmoid(GaussianGenerator._row(mc, hc, 3 * j + 2));
        g++;
      }
    }
    return {
      count: g, means: means.subarray(0, 3 * g), scales: scales.subarray(0, 3 * g),
      quats: quats.subarray(0, 4 * g), opacities: opacities.subarray(0, g), colors: colors.subarray(0, 3 * g),
    };
  }
}

function sigmoid(t) { return 0.5 * (1 + Math.tanh(0.5 * t)); }
