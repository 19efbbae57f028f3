// Spec chapter 3: the HEAD chunk (frame, table of contents, generation MLPs). The hash grid
// (chapter 5) and the context model (chapter 6) parts are parsed by their own modules.

import { ByteReader, f16BitsToF32Bits, LITTLE_ENDIAN } from './bytes.js';
import { FormatError, LimitError, UnsupportedError } from './errors.js';
import { parseHashGrid } from './hashgrid.js';
import { parseContextModel } from './context.js';

export const PART_NAMES = ['frame', 'toc', 'hash_grid', 'context_mlp', 'gaussian_mlps', 'rendering'];
/** refine (3.5): 0 add, 1 replace. */
export const REFINE_ADD = 0;
export const REFINE_REPLACE = 1;
export const GROUPS = ['feature', 'scaling', 'offsets'];
export const FRAME_SIZE = 28;

/**
 * @typedef {object} Frame
 * @property {number[]} origin binary32 values
 * @property {number} rootVoxelSize
 * @property {number} baseDepth D
 * @property {number} numLevels L
 * @property {number} convention 0 OpenCV (up -y), 1 OpenGL (up +y), 2 Z-up (up +z; minor version >= 1)
 * @property {number} attributeCoding 0 raw, 1 entropy coded
 * @property {number} featureDim F
 * @property {number} scalingDim S
 * @property {number} numOffsets K
 * @property {number} channels C = F + S + 3K
 * @property {number[]} groupDims [F, S, 3K]
 * @property {number[]} groupStarts [0, F, F + S]
 */

/**
 * Part `frame` (3.1), its fields checked in field order (8.4 row F2).
 * @param {number} minor the stream's minor_version: above 1, the fields a later minor version
 *   may define (`convention`, `attribute_coding`, `reserved`) are `unsupported` (2.4).
 */
export function parseFrame(bytes, minor = 0) {
  const where = (field) => ({ chunk: 'HEAD', field: `frame.${field}` });
  const Extension = minor > 1 ? UnsupportedError : FormatError;
  if (bytes.length !== FRAME_SIZE) {
    throw new FormatError(`part frame is ${bytes.length} bytes, not ${FRAME_SIZE}`, { chunk: 'HEAD', field: 'frame' });
  }
  const r = new ByteReader(bytes, { chunk: 'HEAD' });
  const origin = [r.f32(), r.f32(), r.f32()];
  const rootVoxelSize = r.f32();
  const baseDepth = r.u8();
  const numLevels = r.u8();
  const convention = r.u8();
  const attributeCoding = r.u8();
  const featureDim = r.u16();
  const scalingDim = r.u16();
  const numOffsets = r.u16();
  const reserved = r.u16();
  if (!origin.every(Number.isFinite)) throw new FormatError('origin is not finite', where('origin'));
  if (!Number.isFinite(rootVoxelSize) || !(rootVoxelSize > 0)) {
    throw new FormatError('root_voxel_size must be finite and > 0', where('root_voxel_size'));
  }
  if (baseDepth > 16) throw new FormatError(`base_depth ${baseDepth} > 16`, where('base_depth'));
  if (numLevels < 1 || numLevels > 16) throw new FormatError(`num_levels ${numLevels} not in 1..16`, where('num_levels'));
  if (baseDepth + numLevels - 1 > 21) {
    throw new FormatError(`deepest level depth ${baseDepth + numLevels - 1} > 21`, where('num_levels'));
  }
  // 0 OpenCV (up -y), 1 OpenGL (up +y), 2 Z-up (up +z), the last only from minor version 1 (3.1).
  if (convention > 2 || (convention === 2 && minor < 1)) {
    throw new Extension(`convention ${convention} undefined${convention === 2 ? ' in a 1.0 stream' : ''}`, where('convention'));
  }
  if (attributeCoding > 1) throw new Extension(`attribute_coding ${attributeCoding} undefined`, where('attribute_coding'));
  if (featureDim < 1 || featureDim > 1024) throw new FormatError(`feature_dim ${featureDim} not in 1..1024`, where('feature_dim'));
  if (scalingDim > 64) throw new FormatError(`scaling_dim ${scalingDim} > 64`, where('scaling_dim'));
  if (numOffsets < 1 || numOffsets > 64) throw new FormatError(`num_offsets ${numOffsets} not in 1..64`, where('num_offsets'));
  if (reserved !== 0) throw new Extension('reserved field is not 0', where('reserved'));
  const groupDims = [featureDim, scalingDim, 3 * numOffsets];
  return {
    origin, rootVoxelSize, baseDepth, numLevels, convention, attributeCoding,
    featureDim, scalingDim, numOffsets,
    channels: featureDim + scalingDim + 3 * numOffsets,
    groupDims,
    groupStarts: [0, featureDim, featureDim + scalingDim],
  };
}

/** Part `toc` (3.3). @returns {{offset: number, size: number, anchorCount: number}[]} */
export function parseToc(bytes, numLevels) {
  if (bytes.length !== 16 * numLevels) {
    throw new FormatError(`part toc is ${bytes.length} bytes, not 16 * ${numLevels}`, { chunk: 'HEAD', field: 'toc' });
  }
  const r = new ByteReader(bytes, { chunk: 'HEAD' });
  const toc = [];
  for (let k = 0; k < numLevels; k++) {
    toc.push({ offset: r.u64('toc.offset'), size: r.u32('toc.size'), anchorCount: r.u32('toc.anchor_count') });
  }
  return toc;
}

/** binary16 bits -> binary32 values (exact), as a Float32Array. */
export function halfToFloat32(half) {
  const out = new Float32Array(half.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < half.length; i++) bits[i] = f16BitsToF32Bits(half[i]);
  return out;
}

/**
 * One generation MLP of 3.4. `half` holds the stream's binary16 bits; `W1`, `b1`, `W2`, `b2`
 * are the values widened to binary32 (exact), converted on first use: decoding does not need
 * them, a renderer may upload the binary16 data as it is.
 */
export class GenerationMlp {
  constructor(name, inputs, hidden, outputs, half) {
    this.name = name;
    this.inputs = inputs;
    this.hidden = hidden;
    this.outputs = outputs;
    /** @type {{W1: Uint16Array, b1: Uint16Array, W2: Uint16Array, b2: Uint16Array}} */
    this.half = half;
    this._f32 = {};
  }
  _get(key) { return this._f32[key] ?? (this._f32[key] = halfToFloat32(this.half[key])); }
  /** @returns {Float32Array} [hidden, inputs] */
  get W1() { return this._get('W1'); }
  /** @returns {Float32Array} [hidden] */
  get b1() { return this._get('b1'); }
  /** @returns {Float32Array} [outputs, hidden] */
  get W2() { return this._get('W2'); }
  /** @returns {Float32Array} [outputs] */
  get b2() { return this._get('b2'); }
  /** Plain data (structured-clone friendly), with binary32 arrays. */
  toJSON() {
    return { name: this.name, inputs: this.inputs, hidden: this.hidden, outputs: this.outputs,
      W1: this.W1, b1: this.b1, W2: this.W2, b2: this.b2 };
  }
}

/**
 * Part `gaussian_mlps` (3.4), or null when empty. Every value is checked finite here.
 * @returns {null | {flags: number, useDistance: boolean, hiddenWidth: number,
 *   inputWidth: number, mlps: GenerationMlp[]}} opacity, color, covariance
 */
export function parseGaussianMlps(bytes, frame, minor = 0) {
  if (bytes.length === 0) return null;
  const where = (field) => ({ chunk: 'HEAD', field: `gaussian_mlps.${field}` });
  if (bytes.length < 3) throw new FormatError('part gaussian_mlps is shorter than its fields', where('hidden_width'));
  const flags = bytes[0];
  const hiddenWidth = bytes[1] | (bytes[2] << 8);
  if (flags & ~1) throw new (minor > 1 ? UnsupportedError : FormatError)(`unknown flags ${flags}`, where('flags'));
  if (hiddenWidth < 1 || hiddenWidth > 1024) throw new FormatError(`hidden_width ${hiddenWidth} not in 1..1024`, where('hidden_width'));
  const useDistance = (flags & 1) === 1;
  const H = hiddenWidth;
  const I = frame.featureDim + 3 + (useDistance ? 1 : 0);
  const K = frame.numOffsets;
  const outs = [['opacity', K], ['color', 3 * K], ['covariance', 7 * K]];
  let count = 0;
  for (const [, O] of outs) count += H * I + H + O * H + O;
  if (bytes.length !== 3 + 2 * count) {
    throw new FormatError(`part gaussian_mlps is ${bytes.length} bytes, its shapes need ${3 + 2 * count}`, { chunk: 'HEAD', field: 'gaussian_mlps' });
  }
  // all binary16 values, aligned, in stream order
  const all = new Uint16Array(count);
  if (LITTLE_ENDIAN) {
    new Uint8Array(all.buffer).set(bytes.subarray(3, 3 + 2 * count));
  } else {
    for (let i = 0; i < count; i++) all[i] = bytes[3 + 2 * i] | (bytes[4 + 2 * i] << 8);
  }
  let pos = 0;
  const take = (n, field) => {
    const a = all.subarray(pos, pos + n);
    pos += n;
    if (!allFinite(a)) throw new FormatError('value is not finite', where(field));
    return a;
  };
  const mlps = outs.map(([name, O]) => new GenerationMlp(name, I, H, O, {
    W1: take(H * I, `${name}.W1`),
    b1: take(H, `${name}.b1`),
    W2: take(O * H, `${name}.W2`),
    b2: take(O, `${name}.b2`),
  }));
  return { flags, useDistance, hiddenWidth, inputWidth: I, mlps, half: all };
}

/** True when no binary16 value is inf or NaN (exponent bits all ones). */
function allFinite(half) {
  for (let i = 0; i < half.length; i++) if ((half[i] & 0x7c00) === 0x7c00) return false;
  return true;
}

/** Part `rendering` (3.5): 1 byte, `refine` (8.4 rows R1, R2). */
export function parseRendering(bytes) {
  if (bytes.length !== 1) {
    throw new FormatError(`part rendering is ${bytes.length} bytes, not 1`, { chunk: 'HEAD', field: 'rendering' });
  }
  const refine = bytes[0];
  if (refine > 1) throw new UnsupportedError(`refine ${refine} is reserved`, { chunk: 'HEAD', field: 'rendering.refine' });
  return { refine };
}

/**
 * The HEAD payload (chapter 3 with 5.4 and 6.5).
 * @param {Uint8Array} payload
 * @param {number} minor the file header's minor_version: part 5 (`rendering`) is read when it
 *   is >= 1; bytes after part 4 of a 1.0 stream are ignored (3, 3.5).
 */
export function parseHead(payload, minor = 0) {
  const r = new ByteReader(payload, { chunk: 'HEAD' });
  const parts = [];
  const names = minor >= 1 ? PART_NAMES : PART_NAMES.slice(0, 5);
  for (const name of names) {
    if (r.remaining < 4) {
      throw new FormatError(`HEAD payload ends before part ${name}`, { chunk: 'HEAD', field: name });
    }
    const n = r.u32(name);
    parts.push(r.take(n, name, LimitError));
  }
  const frame = parseFrame(parts[0], minor);
  const toc = parseToc(parts[1], frame.numLevels);
  let hashGrid = null;
  let contextModel = null;
  if (frame.attributeCoding === 0) {
    if (parts[2].length) throw new FormatError('part hash_grid must be empty with raw attributes', { chunk: 'HEAD', field: 'hash_grid' });
    if (parts[3].length) throw new FormatError('part context_mlp must be empty with raw attributes', { chunk: 'HEAD', field: 'context_mlp' });
  } else {
    if (!parts[2].length) throw new FormatError('part hash_grid is empty with entropy coding', { chunk: 'HEAD', field: 'hash_grid' });
    if (!parts[3].length) throw new FormatError('part context_mlp is empty with entropy coding', { chunk: 'HEAD', field: 'context_mlp' });
    hashGrid = parseHashGrid(parts[2]);
    contextModel = parseContextModel(parts[3], hashGrid.gridWidth, frame.channels);
  }
  const gaussianMlps = parseGaussianMlps(parts[4], frame, minor);
  const rendering = minor >= 1 ? parseRendering(parts[5]) : null;
  const refine = rendering ? rendering.refine : REFINE_ADD;
  return { frame, toc, hashGrid, contextModel, gaussianMlps, rendering, refine };
}
