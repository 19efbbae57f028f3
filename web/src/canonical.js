// Spec chapter 10: the canonical decoded output (dump). The digest (10.3, SHA-256) is left
// to the caller (the CLI uses node:crypto; a browser has crypto.subtle.digest).

import { LITTLE_ENDIAN } from './bytes.js';
import { GROUPS, halfToFloat32 } from './header.js';

export const DUMP_MAGIC = 'PGSDUMP1';
const enc = new TextEncoder();

/** Bytes of a typed array in little-endian order (a view when the platform is LE). */
function leBytes(arr) {
  if (LITTLE_ENDIAN || arr.BYTES_PER_ELEMENT === 1) return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  const out = new Uint8Array(arr.byteLength);
  const dv = new DataView(out.buffer);
  const size = arr.BYTES_PER_ELEMENT;
  for (let i = 0; i < arr.length; i++) {
    if (arr instanceof Float32Array) dv.setFloat32(i * 4, arr[i], true);
    else if (size === 4) dv.setUint32(i * 4, arr[i] >>> 0, true);
    else if (size === 2) dv.setUint16(i * 2, arr[i], true);
  }
  return out;
}

/** A record: {tag, parts: Uint8Array[], length}. */
function record(tag, parts) {
  let length = 0;
  for (const p of parts) length += p.length;
  return { tag, parts, length };
}

/** Encode a record's 12-byte framing (10.1). */
function recordHeader(tag, length) {
  const h = new Uint8Array(12);
  h.set(enc.encode(tag), 0);
  const dv = new DataView(h.buffer);
  dv.setUint32(4, length % 4294967296, true);
  dv.setUint32(8, Math.floor(length / 4294967296), true);
  return h;
}

/** Records FRAM, GMLP and, for a stream that carries part `rendering`, RNDR (10.2). */
export function headerRecords(header) {
  const f = header.frame;
  const fram = new Uint8Array(26);
  const dv = new DataView(fram.buffer);
  f.origin.forEach((v, i) => dv.setFloat32(4 * i, v, true));
  dv.setFloat32(12, f.rootVoxelSize, true);
  fram[16] = f.baseDepth; fram[17] = f.numLevels; fram[18] = f.convention; fram[19] = f.attributeCoding;
  dv.setUint16(20, f.featureDim, true);
  dv.setUint16(22, f.scalingDim, true);
  dv.setUint16(24, f.numOffsets, true);
  const gm = header.gaussianMlps;
  const gparts = [];
  if (gm) {
    gparts.push(Uint8Array.of(gm.flags, gm.hiddenWidth & 0xff, gm.hiddenWidth >>> 8));
    // the twelve arrays in stream order, binary16 widened to binary32
    gparts.push(leBytes(halfToFloat32(gm.half)));
  }
  const recs = [record('FRAM', [fram]), record('GMLP', gparts)];
  if (header.rendering) recs.push(record('RNDR', [Uint8Array.of(header.rendering.refine)]));
  return recs;
}

/** Records STRC, POSN, CTXT, SYMB, ATTR of one level (10.2 item 3). */
export function levelRecords(level, header) {
  const N = level.count;
  const head = new Uint8Array(8);
  const dv = new DataView(head.buffer);
  dv.setUint32(0, level.level, true);
  dv.setUint32(4, N, true);
  const recs = [
    record('STRC', [head, leBytes(level.coords), leBytes(level.parentIndex), leBytes(level.octant)]),
    record('POSN', [leBytes(level.positions)]),
  ];
  if (header.frame.attributeCoding === 1) {
    const c = level.context;
    recs.push(record('CTXT', [leBytes(c.mean), leBytes(c.scaleIndex), leBytes(c.stepIndex)]));
    recs.push(record('SYMB', level.symbols.map(leBytes)));
  }
  recs.push(record('ATTR', GROUPS.map((g) => leBytes(level.attributes[g]))));
  return recs;
}

/** All records of a decoded model, in dump order. */
export function dumpRecords(model) {
  const recs = headerRecords(model);
  for (const level of model.levels) recs.push(...levelRecords(level, model));
  return recs;
}

/** Serialize records (with the PGSDUMP1 magic when `withMagic`) into byte pieces. */
export function recordPieces(recs, withMagic = true) {
  const pieces = withMagic ? [enc.encode(DUMP_MAGIC)] : [];
  for (const r of recs) {
    pieces.push(recordHeader(r.tag, r.length));
    for (const p of r.parts) if (p.length) pieces.push(p);
  }
  return pieces;
}

/** The one record's bytes (framing + payload), e.g. to hash per record (10.3). */
export function recordBytes(r) {
  return concat(recordPieces([r], false));
}

export function concat(pieces) {
  let n = 0;
  for (const p of pieces) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of pieces) { out.set(p, o); o += p.length; }
  return out;
}

/** The whole dump (10.1, 10.2) of a model as one Uint8Array. */
export function canonicalDump(model) {
  return concat(recordPieces(dumpRecords(model)));
}
