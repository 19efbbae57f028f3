// Spec chapter 2: file header and chunks.

import { crc32 } from './bytes.js';
import { ChecksumError, FormatError, TruncatedError, UnsupportedError } from './errors.js';

export const MAGIC = Uint8Array.of(0x89, 0x50, 0x47, 0x53, 0x0d, 0x0a, 0x1a, 0x0a);
export const FILE_HEADER_SIZE = 10;
export const MAJOR_VERSION = 1;
export const MINOR_VERSION = 1;
export const CHUNK_OVERHEAD = 12;

/**
 * Check the file header (2.1) in bytes[0..n). With fewer than 10 bytes, checks what is there
 * and, when `final`, raises `truncated`.
 * @returns {{major: number, minor: number} | null} null while incomplete
 */
export function parseFileHeader(bytes, n, final) {
  const m = Math.min(n, MAGIC.length);
  for (let i = 0; i < m; i++) {
    if (bytes[i] !== MAGIC[i]) {
      throw new FormatError('bad magic: not a .progs stream', { field: 'magic', offset: 0 });
    }
  }
  if (n < FILE_HEADER_SIZE) {
    if (final) throw new TruncatedError('stream ends inside the file header', { field: 'magic', offset: n });
    return null;
  }
  if (bytes[8] !== MAJOR_VERSION) {
    throw new UnsupportedError(`unsupported major version ${bytes[8]}`, { field: 'major_version', offset: 8 });
  }
  return { major: bytes[8], minor: bytes[9] };
}

function isLetter(b) { return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a); }

/** The type field as a string (only called on four letters). */
export function chunkTypeString(bytes, pos) {
  return String.fromCharCode(bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]);
}

/**
 * Look at the chunk starting at bytes[pos]; bytes[pos..end) is what has arrived.
 * @returns {null | {type: string, critical: boolean, length: number, payloadStart: number,
 *   next: number}} null while the chunk is incomplete. The type letters are checked as soon as
 *   type and length have arrived, the CRC once the chunk is complete (2.2).
 * @param {number} fileOffset the file offset of bytes[pos], for messages
 */
export function readChunk(bytes, pos, end, fileOffset) {
  if (end - pos < 8) return null;
  for (let i = 0; i < 4; i++) {
    if (!isLetter(bytes[pos + i])) {
      throw new FormatError('chunk type is not four ASCII letters', { field: 'type', offset: fileOffset });
    }
  }
  const length = (bytes[pos + 4] | (bytes[pos + 5] << 8) | (bytes[pos + 6] << 16) | (bytes[pos + 7] << 24)) >>> 0;
  const total = CHUNK_OVERHEAD + length;
  if (end - pos < total) return null;
  const type = chunkTypeString(bytes, pos);
  const payloadStart = pos + 8;
  const payloadEnd = payloadStart + length;
  let crc = crc32(bytes, pos, pos + 4);
  crc = crc32(bytes, payloadStart, payloadEnd, crc);
  const stored = (bytes[payloadEnd] | (bytes[payloadEnd + 1] << 8) | (bytes[payloadEnd + 2] << 16) | (bytes[payloadEnd + 3] << 24)) >>> 0;
  if (crc !== stored) {
    throw new ChecksumError('CRC-32 mismatch', { chunk: type, field: 'crc', offset: fileOffset + 8 + length });
  }
  return { type, critical: (bytes[pos] & 0x20) === 0, length, payloadStart, next: pos + total };
}
