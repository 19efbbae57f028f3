// Spec chapter 1: little-endian numbers (1.1), packed bits MSB first (1.2), plus the
// byte-level helpers the other layers share (CRC-32 of 2.2, LEB128 of 4.6, binary16).

import { FormatError } from './errors.js';

export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Sequential little-endian reader over a byte range. Reading past the end raises the error
 * made by `onShort(field, offset)` (default: a FormatError naming the field).
 */
export class ByteReader {
  /**
   * @param {Uint8Array} bytes
   * @param {{chunk?: string, start?: number, end?: number, base?: number}} [opts]
   *   base: file offset of bytes[0], for error messages
   */
  constructor(bytes, opts = {}) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = opts.start ?? 0;
    this.end = opts.end ?? bytes.length;
    this.chunk = opts.chunk;
    this.base = opts.base ?? 0;
  }
  get remaining() { return this.end - this.pos; }
  where(field) { return { chunk: this.chunk, field, offset: this.base + this.pos }; }
  need(n, field, ErrorClass = FormatError, what = 'field runs past the end') {
    if (n > this.end - this.pos) throw new ErrorClass(what, this.where(field));
  }
  u8(field) { this.need(1, field); return this.bytes[this.pos++]; }
  u16(field) { this.need(2, field); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  u32(field) { this.need(4, field); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  i32(field) { this.need(4, field); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  f32(field) { this.need(4, field); const v = this.view.getFloat32(this.pos, true); this.pos += 4; return v; }
  /** u64 as a Number; values above 2**53 come back inexact but still larger than any file. */
  u64(field) {
    this.need(8, field);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    return hi * 4294967296 + lo;
  }
  /** A view (no copy) of the next n bytes. */
  take(n, field, ErrorClass = FormatError) {
    this.need(n, field, ErrorClass);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
}

/**
 * n little-endian u32 words starting at bytes[offset], as a fresh Uint32Array.
 * @param {Uint8Array} bytes @param {number} offset @param {number} n
 */
export function readWords(bytes, offset, n) {
  const out = new Uint32Array(n);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes.subarray(offset, offset + 4 * n));
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, 4 * n);
    for (let i = 0; i < n; i++) out[i] = dv.getUint32(4 * i, true);
  }
  return out;
}

/** Packed bits, most significant bit first (spec 1.2). */
export class BitReader {
  /** @param {Uint8Array} bytes a view of the packed section */
  constructor(bytes) {
    this.bytes = bytes;
    this.bitPos = 0;
    this.totalBits = bytes.length * 8;
  }
  get bitsLeft() { return this.totalBits - this.bitPos; }
  /** One bit, or -1 past the end. */
  bit() {
    const p = this.bitPos;
    if (p >= this.totalBits) return -1;
    this.bitPos = p + 1;
    return (this.bytes[p >>> 3] >>> (7 - (p & 7))) & 1;
  }
  /** n bits (0 <= n <= 48) MSB first, as a Number; the caller checks bitsLeft first. */
  bits(n) {
    let v = 0;
    let p = this.bitPos;
    const b = this.bytes;
    while (n > 0) {
      const avail = 8 - (p & 7);
      const take = n < avail ? n : avail;
      const chunk = (b[p >>> 3] >>> (avail - take)) & ((1 << take) - 1);
      v = v * (1 << take) + chunk;
      p += take;
      n -= take;
    }
    this.bitPos = p;
    return v;
  }
}

/**
 * Unsigned LEB128 (spec 4.6): 7 bits per byte, low group first, bit 7 = more bytes follow.
 * Returns [value, bytesUsed] or null when it does not end within maxBytes / the data.
 */
export function readLeb128(bytes, pos, end, maxBytes = 5) {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < maxBytes; i++) {
    if (pos + i >= end) return null;
    const b = bytes[pos + i];
    value += (b & 0x7f) * scale;
    scale *= 128;
    if ((b & 0x80) === 0) return [value, i + 1];
  }
  return null;
}

// CRC-32, ISO-HDLC (zlib's crc32), spec 2.2.
const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/**
 * Update a CRC-32 with bytes[start, end). Start with crc = 0.
 * @returns {number} unsigned 32-bit CRC
 */
export function crc32(bytes, start = 0, end = bytes.length, crc = 0) {
  return ~crcUpdate(CRC_TABLE, ~crc, bytes, start, end) >>> 0;
}

function crcUpdate(t, c, bytes, start, end) {
  for (let i = start; i < end; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return c;
}

/**
 * Bits of the binary32 value equal to a binary16 value (exact widening), or -1 when the
 * binary16 value is not finite.
 */
export function f16BitsToF32Bits(h) {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return -1;
  if (exp === 0) {
    if (mant === 0) return sign >>> 0;
    // subnormal binary16: normalise into binary32
    let e = -1;
    do { mant <<= 1; e++; } while ((mant & 0x400) === 0);
    mant &= 0x3ff;
    return (sign | ((127 - 15 - e) << 23) | (mant << 13)) >>> 0;
  }
  return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
}
