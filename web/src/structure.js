// Spec chapter 4, structure sections: canonical order (4.2), the fixed layout (4.3, 4.4) and
// the occupancy layout (4.6).

import { BitReader, readLeb128, readWords } from './bytes.js';
import { FormatError, LimitError } from './errors.js';
import { CodingTable, RansDecoder } from './rans.js';

// SPREAD[v]: the 8 bits of v moved to bit positions 3b (Morton interleaving, 4.2).
const SPREAD = (() => {
  const t = new Float64Array(256);
  for (let v = 0; v < 256; v++) {
    let s = 0;
    for (let b = 0; b < 8; b++) if (v & (1 << b)) s += 2 ** (3 * b);
    t[v] = s;
  }
  return t;
})();

/** Morton code (4.2) of coordinates below 2**16, as an exact Number (< 2**48). */
export function morton16(x, y, z) {
  const sx = SPREAD[x & 255] + SPREAD[x >>> 8] * 16777216;
  const sy = SPREAD[y & 255] + SPREAD[y >>> 8] * 16777216;
  const sz = SPREAD[z & 255] + SPREAD[z >>> 8] * 16777216;
  return sx * 4 + sy * 2 + sz;
}

/**
 * @typedef {object} Structure
 * @property {Uint32Array} coords N x 3 voxel coordinates
 * @property {Int32Array} parentIndex N (-1 at level 1)
 * @property {Uint8Array} octant N (0 at level 1)
 */

/** Fixed layout, level 1 (4.3): D-bit coordinates of each root, Morton order. */
export function decodeRootsFixed(section, N, D, where) {
  const coords = new Uint32Array(3 * N);
  const br = new BitReader(section);
  let prev = -1;
  for (let a = 0; a < N; a++) {
    const x = br.bits(D), y = br.bits(D), z = br.bits(D);
    coords[3 * a] = x; coords[3 * a + 1] = y; coords[3 * a + 2] = z;
    const m = morton16(x, y, z);
    if (m === prev) throw new FormatError(`duplicate root at anchor ${a}`, where);
    if (m < prev) throw new FormatError(`roots out of order at anchor ${a}`, where);
    prev = m;
  }
  return { coords, parentIndex: new Int32Array(N).fill(-1), octant: new Uint8Array(N) };
}

/** Children coordinates from (parent, octant) pairs (4.2). */
function childCoords(parentIndex, octant, prevCoords) {
  const N = parentIndex.length;
  const coords = new Uint32Array(3 * N);
  for (let a = 0; a < N; a++) {
    const p = 3 * parentIndex[a];
    const o = octant[a];
    coords[3 * a] = 2 * prevCoords[p] + ((o >> 2) & 1);
    coords[3 * a + 1] = 2 * prevCoords[p + 1] + ((o >> 1) & 1);
    coords[3 * a + 2] = 2 * prevCoords[p + 2] + (o & 1);
  }
  return coords;
}

/** Fixed layout, level k > 1 (4.4): 20-bit parent index and 3-bit octant per anchor. */
export function decodeChildrenFixed(section, N, prevCoords, prevCount, where) {
  const parentIndex = new Int32Array(N);
  const octant = new Uint8Array(N);
  const br = new BitReader(section);
  let prev = -1;
  for (let a = 0; a < N; a++) {
    const key = br.bits(23);          // parent_index * 8 + octant
    const p = key >>> 3;
    if (p >= prevCount) throw new FormatError(`parent index ${p} out of range (level has ${prevCount} parents) at anchor ${a}`, where);
    if (key === prev) throw new FormatError(`duplicate child at anchor ${a}`, where);
    if (key < prev) throw new FormatError(`anchors out of canonical order at anchor ${a}`, where);
    prev = key;
    parentIndex[a] = p;
    octant[a] = key & 7;
  }
  return { coords: childCoords(parentIndex, octant, prevCoords), parentIndex, octant };
}

/** Needed length of a fixed-layout structure section (4.3, 4.4). */
export function fixedStructureLength(level, N, D) {
  return Math.ceil((level === 1 ? 3 * D * N : 23 * N) / 8);
}

/**
 * The coding table of the masks (4.6), from count[0..255]. floor(count * R / H) needs more
 * than 53 bits (count < 2**32, R < 2**24), so it is done in BigInt (256 divisions).
 */
export function maskTable(counts) {
  const R = 2 ** 24 - 256;
  const f = new Array(256).fill(1);
  let H = 0n;
  for (const c of counts) H += BigInt(c);
  if (H === 0n) {
    f[0] += R;
    return f;
  }
  let sum = 0;
  let w = 0;
  for (let v = 0; v < 256; v++) {
    const share = Number((BigInt(counts[v]) * BigInt(R)) / H);
    f[v] += share;
    sum += share;
    if (counts[v] > counts[w]) w = v;
  }
  f[w] += R - sum;
  return f;
}

/**
 * Parse an occupancy-layout section (4.6): presence, counts, words.
 * @returns {{counts: number[], H: number, words: Uint32Array}}
 */
export function parseOccupancySection(section, where) {
  const len = section.length;
  // 8.4: a section cut short is `format` (O1-O3); only words past it are `limit` (O4)
  const cut = (what) => new FormatError(`occupancy section: ${what}`, where);
  if (len < 32) throw cut('shorter than the presence bits');
  const counts = new Array(256).fill(0);
  let pos = 32;
  let H = 0;
  for (let v = 0; v < 256; v++) {
    if (!((section[v >>> 3] >>> (7 - (v & 7))) & 1)) continue;
    const r = readLeb128(section, pos, len, 5);
    if (r === null) {
      // ran past the section, or a sixth byte would be needed
      let i = 0;
      while (i < 5 && pos + i < len && section[pos + i] & 0x80) i++;
      if (pos + i >= len) throw cut(`count[${v}] runs past the section`);
      throw new FormatError(`count[${v}] is longer than 5 bytes`, where);
    }
    const [value, used] = r;
    if (value < 1 || value > 2 ** 32 - 1) throw new FormatError(`count[${v}] = ${value} not in 1..2**32-1`, where);
    counts[v] = value;
    H += value;
    pos += used;
  }
  if (len - pos < 4) throw cut('num_words runs past the section');
  const M = (section[pos] | (section[pos + 1] << 8) | (section[pos + 2] << 16) | (section[pos + 3] << 24)) >>> 0;
  pos += 4;
  if (4 * M > len - pos) throw new LimitError(`occupancy section: num_words ${M} runs past the ${len - pos} bytes left`, where);
  if (4 * M !== len - pos) throw new FormatError(`${len - pos - 4 * M} bytes after the ${M} words of the occupancy section`, where);
  return { counts, H, words: readWords(section, pos, M) };
}

function finishMasks(rans, decoded, H, hist, counts, where) {
  if (decoded !== H) throw new FormatError(`decoded ${decoded} masks, counts say ${H}`, where);
  for (let v = 0; v < 256; v++) {
    if (hist[v] !== counts[v]) throw new FormatError(`histogram of the masks differs from count[${v}]`, where);
  }
  rans.endCheck();
}

/** Occupancy layout, level 1 (4.6): masks of the roots' virtual ancestors. */
export function decodeRootsOccupancy(section, N, D, where) {
  const { counts, H, words } = parseOccupancySection(section, where);
  const table = new CodingTable(maskTable(counts));
  const rans = new RansDecoder(words, where);
  const hist = new Float64Array(256);
  let decoded = 0;
  let nodes = new Uint32Array(3); // depth 0: (0, 0, 0)
  let count = 1;
  for (let depth = 0; depth < D; depth++) {
    if (decoded + count > H) throw new FormatError(`depth ${depth} has ${count} nodes, more masks than counts say`, where);
    // children of this depth: at most N (checked as they are made)
    const children = new Uint32Array(3 * Math.min(8 * count, N));
    let n = 0;
    for (let i = 0; i < count; i++) {
      const mask = rans.decode(table);
      hist[mask]++;
      if (mask === 0) throw new FormatError(`virtual node mask is 0 at depth ${depth}`, where);
      const x = 2 * nodes[3 * i], y = 2 * nodes[3 * i + 1], z = 2 * nodes[3 * i + 2];
      for (let o = 0; o < 8; o++) {
        if (!(mask & (1 << o))) continue;
        if (n >= N) throw new FormatError(`depth ${depth + 1} holds more than ${N} nodes`, where);
        children[3 * n] = x + ((o >> 2) & 1);
        children[3 * n + 1] = y + ((o >> 1) & 1);
        children[3 * n + 2] = z + (o & 1);
        n++;
      }
    }
    decoded += count;
    nodes = children;
    count = n;
  }
  if (count !== N) throw new FormatError(`occupancy gives ${count} roots, anchor_count is ${N}`, where);
  finishMasks(rans, decoded, H, hist, counts, where);
  const coords = nodes.length === 3 * N ? nodes : nodes.slice(0, 3 * N);
  return { coords, parentIndex: new Int32Array(N).fill(-1), octant: new Uint8Array(N) };
}

/** Occupancy layout, level k > 1 (4.6): one mask per anchor of level k - 1. */
export function decodeChildrenOccupancy(section, N, prevCoords, prevCount, where) {
  const { counts, H, words } = parseOccupancySection(section, where);
  if (H !== prevCount) throw new FormatError(`counts sum to ${H}, level k-1 has ${prevCount} anchors`, where);
  const table = new CodingTable(maskTable(counts));
  const rans = new RansDecoder(words, where);
  const hist = new Float64Array(256);
  const parentIndex = new Int32Array(N);
  const octant = new Uint8Array(N);
  let n = 0;
  for (let p = 0; p < prevCount; p++) {
    const mask = rans.decode(table);
    hist[mask]++;
    if (mask === 0) continue;
    for (let o = 0; o < 8; o++) {
      if (!(mask & (1 << o))) continue;
      if (n >= N) throw new FormatError(`masks have more set bits than anchor_count ${N}`, where);
      parentIndex[n] = p;
      octant[n] = o;
      n++;
    }
  }
  if (n !== N) throw new FormatError(`masks have ${n} set bits, anchor_count is ${N}`, where);
  finishMasks(rans, prevCount, H, hist, counts, where);
  return { coords: childCoords(parentIndex, octant, prevCoords), parentIndex, octant };
}
