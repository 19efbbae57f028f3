// Spec chapter 8: the decoding process (8.1), LoDs (8.2), prefixes (8.3), error classes
// (8.4) and resource limits (8.5). Incremental: feed bytes as they arrive, get levels as
// soon as their chunk is complete.

import { CHUNK_OVERHEAD, FILE_HEADER_SIZE, parseFileHeader, readChunk } from './container.js';
import { FormatError, LimitError, ProgsError, TruncatedError, UnsupportedError } from './errors.js';
import { parseHead } from './header.js';
import { decodeLevel, parseLevelPayload } from './level.js';

export const DEFAULT_MAX_ANCHORS = 2 ** 24;

const now = () => (globalThis.performance ? globalThis.performance.now() : Date.now());

const S_FILE = 0;   // waiting for the file header
const S_HEAD = 1;   // waiting for HEAD
const S_BODY = 2;   // levels, optional chunks, ENDS
const S_ENDED = 3;  // ENDS read: nothing may follow
const S_DONE = 4;   // requested LoD decoded: the rest is not read (8.2)

/** Map engine allocation failures (huge declared counts) to a `limit` error. */
function asProgsError(e) {
  if (e instanceof ProgsError) return e;
  if (e instanceof RangeError && /allocation|array length|Array buffer|out of memory/i.test(e.message)) {
    return new LimitError(`cannot allocate what the stream declares: ${e.message}`);
  }
  return e;
}

/**
 * Incremental decoder (spec 8). `feed(bytes)` returns the levels completed by these bytes;
 * `close()` returns the model.
 */
export class Decoder {
  /**
   * @param {{maxLod?: number, strict?: boolean, maxAnchors?: number, keepLevels?: boolean}} [opts]
   *   maxLod: decode levels 1..maxLod (default: all); strict: a stream that stops before the
   *   requested LoD (or before ENDS when all levels are requested) is a `truncated` error;
   *   maxAnchors: refuse (limit) a stream whose toc declares more anchors up to maxLod (8.5);
   *   keepLevels: keep decoded levels in the model (default true; a worker that transfers
   *   them away sets false).
   */
  constructor(opts = {}) {
    const maxLod = opts.maxLod ?? Infinity;
    if (!(maxLod >= 1)) throw new RangeError('maxLod must be >= 1');
    this.maxLod = maxLod;
    this.strict = !!opts.strict;
    this.maxAnchors = opts.maxAnchors ?? DEFAULT_MAX_ANCHORS;
    this.keepLevels = opts.keepLevels ?? true;
    this.state = S_FILE;
    this.version = null;
    this.header = null;
    this.levels = [];
    this.lod = 0;
    this.ended = false;
    this.bytesReceived = 0;
    this.error = null;
    this.closed = false;
    // pending bytes (an incomplete chunk), file offset of pending[0]
    this._pending = new Uint8Array(0);
    this._pendingLen = 0;
    this._base = 0;
    this._prev = null;
  }

  /** Frame of 3.1 once HEAD is parsed, else null. */
  get frame() { return this.header ? this.header.frame : null; }

  /** The number of levels this decoder will decode, once HEAD is known. */
  get targetLod() { return this.header ? Math.min(this.maxLod, this.header.frame.numLevels) : null; }

  /** True once the requested LoD is decoded (or ENDS read). */
  get done() { return this.state === S_DONE || this.state === S_ENDED; }

  /**
   * Feed the next bytes of the stream.
   * @param {Uint8Array|ArrayBuffer} bytes
   * @returns {import('./level.js').Level[]} levels completed by these bytes
   */
  feed(bytes) {
    if (this.error) throw this.error;
    if (this.closed) throw new Error('feed after close');
    if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
    this.bytesReceived += bytes.length;
    if (this.state === S_DONE || bytes.length === 0) return [];
    try {
      let buf, len;
      if (this._pendingLen === 0) {
        buf = bytes; len = bytes.length;      // zero copy: nothing pending
      } else {
        this._append(bytes);
        buf = this._pending; len = this._pendingLen;
      }
      const out = [];
      const used = this._process(buf, len, false, out);
      this._keep(buf, used, len);
      return out;
    } catch (e) {
      this.error = asProgsError(e);
      throw this.error;
    }
  }

  /**
   * End of input. Checks what a prefix allows (8.3) and returns the model.
   * @returns {Model}
   */
  close() {
    if (this.error) throw this.error;
    if (this.closed) return this._model();
    this.closed = true;
    try {
      if (this.state === S_FILE) parseFileHeader(this._pending, this._pendingLen, true);
      if (this.state === S_HEAD) {
        throw new TruncatedError('stream ends inside the header', { chunk: 'HEAD', offset: this._base + this._pendingLen });
      }
      if (this.strict && this.state === S_BODY) {
        const target = this.targetLod;
        if (this.lod < target) {
          throw new TruncatedError(`stream ends after ${this.lod} of the ${target} levels requested`, { offset: this._base + this._pendingLen });
        }
        throw new TruncatedError('stream ends before ENDS', { chunk: 'ENDS', offset: this._base + this._pendingLen });
      }
    } catch (e) {
      this.error = asProgsError(e);
      throw this.error;
    }
    this._pending = new Uint8Array(0);
    this._pendingLen = 0;
    return this._model();
  }

  _model() {
    const h = this.header;
    return {
      version: this.version,
      frame: h.frame,
      toc: h.toc,
      hashGrid: h.hashGrid,
      contextModel: h.contextModel,
      gaussianMlps: h.gaussianMlps,
      rendering: h.rendering,
      refine: h.refine,
      levels: this.levels,
      lod: this.lod,
      complete: this.ended,
    };
  }

  _append(bytes) {
    const need = this._pendingLen + bytes.length;
    if (need > this._pending.length) {
      const grown = new Uint8Array(Math.max(need, 2 * this._pending.length, 4096));
      grown.set(this._pending.subarray(0, this._pendingLen));
      this._pending = grown;
    }
    this._pending.set(bytes, this._pendingLen);
    this._pendingLen = need;
  }

  /** Keep buf[used, len) as the pending bytes. */
  _keep(buf, used, len) {
    this._base += used;
    const rest = len - used;
    if (this.state === S_DONE) {
      this._pending = new Uint8Array(0);
      this._pendingLen = 0;
      return;
    }
    if (buf === this._pending) {
      if (used > 0) this._pending.copyWithin(0, used, len);
    } else {
      if (rest > this._pending.length) this._pending = new Uint8Array(Math.max(rest, 4096));
      this._pending.set(buf.subarray(used, len));
    }
    this._pendingLen = rest;
  }

  /** Parse everything complete in buf[0, len); returns the bytes consumed. */
  _process(buf, len, final, out) {
    let pos = 0;
    if (this.state === S_FILE) {
      const fh = parseFileHeader(buf, len, final);
      if (!fh) return 0;
      this.version = fh;
      pos = FILE_HEADER_SIZE;
      this.state = S_HEAD;
    }
    while (this.state === S_HEAD || this.state === S_BODY || this.state === S_ENDED) {
      const fileOffset = this._base + pos;
      if (this.state === S_ENDED) {
        if (pos < len) throw new FormatError('data after ENDS', { offset: fileOffset });
        break;
      }
      const c = readChunk(buf, pos, len, fileOffset);
      if (!c) break;
      const payload = buf.subarray(c.payloadStart, c.payloadStart + c.length);
      if (this.state === S_HEAD) {
        if (c.type !== 'HEAD') throw new FormatError(`first chunk is ${c.type}, not HEAD`, { chunk: c.type, field: 'type', offset: fileOffset });
        this.header = parseHead(payload, this.version.minor);
        this._checkResources();
        this.state = S_BODY;
      } else {
        this._bodyChunk(c, payload, fileOffset, out);
      }
      pos = c.next;
      if (this.state === S_DONE) break;
    }
    return pos;
  }

  _checkResources() {
    const { toc, frame } = this.header;
    const n = Math.min(this.maxLod, frame.numLevels);
    let total = 0;
    for (let k = 0; k < n; k++) total += toc[k].anchorCount;
    if (total > this.maxAnchors) {
      throw new LimitError(`the table of contents declares ${total} anchors up to LoD ${n}, more than maxAnchors ${this.maxAnchors}`, { chunk: 'HEAD', field: 'toc.anchor_count' });
    }
  }

  _bodyChunk(c, payload, fileOffset, out) {
    const { frame, toc } = this.header;
    const L = frame.numLevels;
    switch (c.type) {
      case 'HEAD':
        throw new FormatError('a second HEAD chunk', { chunk: 'HEAD', offset: fileOffset });
      case 'ENDS':
        if (c.length !== 0) throw new FormatError('ENDS payload is not empty', { chunk: 'ENDS', field: 'length', offset: fileOffset });
        if (this.lod < L) throw new FormatError(`ENDS after ${this.lod} of ${L} levels`, { chunk: 'ENDS', offset: fileOffset });
        this.ended = true;
        this.state = S_ENDED;
        return;
      case 'LEVL': {
        const k = this.lod + 1;
        if (k > L) throw new FormatError(`LEVL chunk after the ${L} levels declared`, { chunk: 'LEVL', offset: fileOffset });
        const entry = toc[k - 1];
        if (entry.offset !== fileOffset) {
          throw new FormatError(`LEVL ${k} at offset ${fileOffset}, toc says ${entry.offset}`, { chunk: `LEVL ${k}`, field: 'toc.offset', offset: fileOffset });
        }
        if (entry.size !== CHUNK_OVERHEAD + c.length) {
          throw new FormatError(`LEVL ${k} is ${CHUNK_OVERHEAD + c.length} bytes, toc says ${entry.size}`, { chunk: `LEVL ${k}`, field: 'toc.size', offset: fileOffset });
        }
        const t0 = now();
        const parsed = parseLevelPayload(payload, k, this.header, this._prev ? this._prev.count : 0);
        const { level, features } = decodeLevel(parsed, this.header, this._prev);
        level.decodeMs = now() - t0;
        level.byteEnd = fileOffset + CHUNK_OVERHEAD + c.length;
        this._prev = { coords: level.coords, count: level.count, features };
        this.lod = k;
        if (this.keepLevels) this.levels.push(level);
        out.push(level);
        if (k >= this.maxLod && k < L) this.state = S_DONE;
        // k === L: all levels were requested, read on to ENDS (2.3, 8.1 step 3)
        return;
      }
      default:
        if (c.critical) throw new UnsupportedError(`unknown critical chunk ${c.type}`, { chunk: c.type, field: 'type', offset: fileOffset });
        // unknown optional chunk: CRC checked by readChunk, skipped (2.2)
    }
  }
}

/**
 * @typedef {object} Model
 * @property {{major: number, minor: number}} version
 * @property {import('./header.js').Frame} frame
 * @property {{offset: number, size: number, anchorCount: number}[]} toc
 * @property {object|null} hashGrid
 * @property {object|null} contextModel
 * @property {object|null} gaussianMlps
 * @property {{refine: number}|null} rendering part 5 (3.5), null in a 1.0 stream
 * @property {number} refine 0 add, 1 replace (0 for a 1.0 stream)
 * @property {import('./level.js').Level[]} levels
 * @property {number} lod levels decoded
 * @property {boolean} complete ENDS was read
 */

/**
 * One-shot decoding.
 * @param {Uint8Array|ArrayBuffer} bytes a stream or a prefix of one
 * @param {{maxLod?: number, strict?: boolean, maxAnchors?: number}} [opts]
 * @returns {Model}
 */
export function decode(bytes, opts = {}) {
  const d = new Decoder(opts);
  d.feed(bytes);
  return d.close();
}
