// Spec chapter 4: the LEVL chunk payload (4.1) and the decoding of one level (8.1 step 2),
// from structure (4.3, 4.4, 4.6) through contexts (5, 6) to attributes (4.5, 7).

import { ByteReader } from './bytes.js';
import { FormatError, LimitError, UnsupportedError } from './errors.js';
import { GROUPS } from './header.js';
import {
  decodeChildrenFixed, decodeChildrenOccupancy, decodeRootsFixed, decodeRootsOccupancy,
  fixedStructureLength,
} from './structure.js';
import { gridFeatures } from './hashgrid.js';
import { evaluateContext } from './context.js';
import { decodeEntropyGroup, decodeRawGroup, stepTable } from './attributes.js';

export const STRUCTURE_FIXED = 0;
export const STRUCTURE_OCCUPANCY = 1;

/**
 * Split a LEVL payload into its sections and check the counts and lengths of 4.1 (before
 * anything is allocated for N anchors).
 * @param {Uint8Array} payload
 * @param {number} k the level expected next (1-based)
 * @param {object} header parsed HEAD
 * @param {number} prevCount N_{k-1} (0 for k = 1)
 */
export function parseLevelPayload(payload, k, header, prevCount) {
  const chunk = `LEVL ${k}`;
  const r = new ByteReader(payload, { chunk });
  const { frame, toc } = header;
  const D = frame.baseDepth;
  const L = frame.numLevels;
  if (payload.length < 10) throw new FormatError('LEVL payload shorter than its fixed fields', { chunk, field: 'structure_length' });
  const level = r.u8('level');
  if (level !== k) throw new FormatError(`level ${level} where level ${k} is next`, { chunk, field: 'level' });
  const mode = r.u8('structure_mode');
  if (mode > 1) throw new UnsupportedError(`structure_mode ${mode}`, { chunk, field: 'structure_mode' });
  const N = r.u32('anchor_count');
  const limit = (msg) => new LimitError(msg, { chunk, field: 'anchor_count' });
  if (k === 1) {
    if (N < 1) throw limit('level 1 has no anchors');
    if (N > 2 ** (3 * D)) throw limit(`${N} roots > 2**(3 * ${D})`);
  } else if (N > 8 * prevCount) {
    throw limit(`${N} anchors > 8 * ${prevCount} of level ${k - 1}`);
  }
  if (k < L && N > 2 ** 20) throw limit(`${N} anchors > 2**20 on a level that is not the last`);
  const structureLength = r.u32('structure_length');
  if (mode === STRUCTURE_FIXED) {
    const need = fixedStructureLength(k, N, D);
    if (structureLength !== need) {
      throw new FormatError(`structure_length ${structureLength}, ${N} anchors need ${need}`, { chunk, field: 'structure_length' });
    }
  }
  if (structureLength > r.remaining) {
    throw new LimitError(`structure_length ${structureLength} exceeds the payload`, { chunk, field: 'structure_length' });
  }
  const structure = r.take(structureLength, 'structure');
  const groups = [];
  for (const g of GROUPS) {
    if (r.remaining < 4) throw new FormatError(`payload ends before the length of group ${g}`, { chunk, field: g });
    const n = r.u32(g);
    if (n > r.remaining) throw new LimitError(`group ${g} declares ${n} bytes, ${r.remaining} remain`, { chunk, field: g });
    groups.push(r.take(n, g));
  }
  if (r.remaining) throw new FormatError(`${r.remaining} bytes after the attribute section`, { chunk, field: 'payload' });
  if (N !== toc[k - 1].anchorCount) {
    throw new FormatError(`anchor_count ${N} differs from toc (${toc[k - 1].anchorCount})`, { chunk, field: 'anchor_count' });
  }
  return { level: k, mode, N, structure, groups };
}

/**
 * @typedef {object} Level
 * @property {number} level k (1-based)
 * @property {number} count N
 * @property {number} depth d_k
 * @property {number} structureMode 0 fixed, 1 occupancy
 * @property {Uint32Array} coords N x 3
 * @property {Int32Array} parentIndex N (-1 at level 1)
 * @property {Uint8Array} octant N
 * @property {Float32Array} positions N x 3 anchor centres (3.1, 10.2)
 * @property {{mean: Int32Array, scaleIndex: Uint8Array, stepIndex: Uint8Array} | null} context
 * @property {Int32Array[] | null} symbols per group, N x C_g
 * @property {{feature: Float32Array, scaling: Float32Array, offsets: Float32Array}} attributes
 * @property {number} [decodeMs] milliseconds spent decoding the level (set by Decoder)
 * @property {number} [byteEnd] file offset just past the level's chunk (set by Decoder)
 */

/** Anchor centres (3.1 / 10.2): binary64, then one rounding to binary32. */
export function anchorPositions(frame, coords, k) {
  const out = new Float32Array(coords.length);
  const size = frame.rootVoxelSize / 2 ** (k - 1);
  const [ox, oy, oz] = frame.origin;
  for (let i = 0; i < coords.length; i += 3) {
    out[i] = ox + (coords[i] + 0.5) * size;
    out[i + 1] = oy + (coords[i + 1] + 0.5) * size;
    out[i + 2] = oz + (coords[i + 2] + 0.5) * size;
  }
  return out;
}

/** x[a * 2G + G + t] = px[parent[a] * 2G + t]: the second half of each context input (6.1). */
function copyParentFeatures(x, px, parent, N, G) {
  const I = 2 * G;
  for (let a = 0; a < N; a++) {
    const o = a * I + G;
    const po = parent[a] * I;
    for (let t = 0; t < G; t++) x[o + t] = px[po + t];
  }
}

/**
 * Decode one level (8.1 step 2).
 * @param {ReturnType<typeof parseLevelPayload>} parsed
 * @param {object} header
 * @param {{coords: Uint32Array, count: number, features: Float64Array | null} | null} prev
 *   level k-1's coordinates and context inputs (null for k = 1)
 * @returns {{level: Level, features: Float64Array | null}} features: this level's context
 *   inputs (N x 2G), whose first halves are the next level's parent features
 */
export function decodeLevel(parsed, header, prev) {
  const { level: k, mode, N } = parsed;
  const chunk = `LEVL ${k}`;
  const { frame, hashGrid, contextModel } = header;
  const D = frame.baseDepth;
  const depth = D + k - 1;
  const where = { chunk, field: 'structure' };
  let st;
  if (k === 1) {
    st = mode === STRUCTURE_FIXED
      ? decodeRootsFixed(parsed.structure, N, D, where)
      : decodeRootsOccupancy(parsed.structure, N, D, where);
  } else {
    st = mode === STRUCTURE_FIXED
      ? decodeChildrenFixed(parsed.structure, N, prev.coords, prev.count, where)
      : decodeChildrenOccupancy(parsed.structure, N, prev.coords, prev.count, where);
  }
  const positions = anchorPositions(frame, st.coords, k);
  const attributes = {};
  let context = null;
  let symbols = null;
  let features = null;
  if (frame.attributeCoding === 0) {
    GROUPS.forEach((g, gi) => {
      attributes[g] = decodeRawGroup(parsed.groups[gi], N, frame.groupDims[gi], { chunk, field: g });
    });
  } else {
    const G = hashGrid.gridWidth;
    // 6.1: x = [own grid feature at depth d, parent's grid feature at depth d - 1]; the
    // parent's is the first half of its own input row at level k - 1 (zeros at level 1).
    const I = 2 * G;
    const x = new Float64Array(((N + 3) & ~3) * I);   // rows padded for evaluateContext
    gridFeatures(hashGrid, st.coords, depth, x, I, 0);
    if (prev) copyParentFeatures(x, prev.features, st.parentIndex, N, G);
    features = x;
    context = evaluateContext(contextModel, x, N);
    symbols = [];
    GROUPS.forEach((g, gi) => {
      const steps = stepTable(contextModel.baseSteps[gi]);
      const r = decodeEntropyGroup(parsed.groups[gi], N, frame.groupDims[gi], frame.groupStarts[gi],
        context, frame.channels, steps, { chunk, field: g });
      symbols.push(r.symbols);
      attributes[g] = r.values;
    });
  }
  return {
    level: {
      level: k, count: N, depth, structureMode: mode,
      coords: st.coords, parentIndex: st.parentIndex, octant: st.octant, positions,
      context, symbols, attributes,
    },
    features,
  };
}
