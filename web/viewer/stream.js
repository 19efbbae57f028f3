// Fetching a .progs stream level by level with HTTP Range requests (spec 2, 3.3), at a chosen
// bandwidth. No DOM: the page passes `fetch` and a `deliver(bytes)` callback.
//
// 1. `bytes=0-17`: the file header (10 bytes, 2.1) and HEAD's type and length (2.2);
// 2. the rest of HEAD (its payload and CRC): the decoder reads the table of contents;
// 3. for each level k, from where the last request stopped to the end of LEVL k
//    (toc[k].offset + toc[k].size): optional chunks between levels come along;
// 4. the rest of the file (ENDS).
// A server that ignores Range (status 200) gets one plain GET, read as it arrives.

export const FILE_AND_CHUNK_HEADER = 18;

/** Holds a reader to `rate` bytes per second (null: no limit), plus `rtt` ms per request. */
export class Throttle {
  constructor(rate, rttMs = 0, now = () => performance.now()) {
    this.rate = rate && rate > 0 ? rate : null;
    this.rtt = rttMs > 0 ? rttMs : 0;
    this.now = now;
    this.due = null;
  }

  async _until(t) {
    const wait = t - this.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  }

  async request() {
    if (!this.rtt) return;
    this.due = Math.max(this.due ?? this.now(), this.now()) + this.rtt;
    await this._until(this.due);
  }

  /** Waits until the link would have delivered `n` more bytes. */
  async receive(n) {
    if (!this.rate) return;
    this.due = Math.max(this.due ?? this.now(), this.now()) + (1000 * n) / this.rate;
    await this._until(this.due);
  }
}

export class StreamError extends Error {
  constructor(message, errorClass = 'network') {
    super(message);
    this.name = 'StreamError';
    this.errorClass = errorClass;
  }
}

const PIECE = 16384;

/**
 * Reads a response body into `deliver`, in pieces of at most 16 kB, throttled.
 * @returns {Promise<number>} bytes read
 */
async function pump(response, throttle, deliver) {
  let n = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    for (let i = 0; i < value.length; i += PIECE) {
      const piece = value.subarray(i, Math.min(i + PIECE, value.length));
      await throttle.receive(piece.length);
      n += piece.length;
      deliver(piece);
    }
  }
  return n;
}

function totalFromContentRange(header) {
  const m = /\/(\d+)\s*$/.exec(header ?? '');
  return m ? Number(m[1]) : null;
}

/**
 * Fetches `url` level by level.
 * @param {string} url
 * @param {object} o
 * @param {(bytes: Uint8Array) => void} o.deliver the stream's bytes, in order
 * @param {() => Promise<{toc: {offset: number, size: number}[]}>} o.header resolves once the
 *   decoder has read HEAD (after the first two requests)
 * @param {number} [o.maxLod] levels to fetch (default: all, then ENDS)
 * @param {Throttle} [o.throttle]
 * @param {(info: {total: number|null, ranges: boolean}) => void} [o.onTotal]
 * @param {(k: number) => void} [o.onLevelBytes] called when the last byte of level k is delivered
 * @param {typeof fetch} [o.fetch]
 * @returns {Promise<{received: number, total: number|null, requests: number, complete: boolean}>}
 *   complete: every byte of the file (or every requested level) arrived
 */
export async function fetchLevels(url, o) {
  const doFetch = o.fetch ?? fetch;
  const throttle = o.throttle ?? new Throttle(null);
  let received = 0;
  let requests = 0;
  const deliver = (b) => { received += b.length; o.deliver(b); };
  const get = async (start, stop) => {   // [start, stop), stop null: to the end
    requests++;
    await throttle.request();
    const range = `bytes=${start}-${stop === null ? '' : stop - 1}`;
    const r = await doFetch(url, { headers: { Range: range }, cache: 'no-store' });
    if (r.status === 416) return { response: null, status: 416 };
    if (!r.ok) throw new StreamError(`GET ${url} (${range}): HTTP ${r.status}`);
    return { response: r, status: r.status };
  };

  // 1. file header and HEAD's type and length
  const first = await get(0, FILE_AND_CHUNK_HEADER);
  if (!first.response) throw new StreamError(`${url} is empty`, 'truncated');
  if (first.status === 200) {
    // no byte ranges: one GET, read as it arrives
    const total = Number(first.response.headers.get('Content-Length')) || null;
    o.onTotal?.({ total, ranges: false });
    await pump(first.response, throttle, deliver);
    return { received, total, requests, complete: total === null || received === total };
  }
  const total = totalFromContentRange(first.response.headers.get('Content-Range'));
  o.onTotal?.({ total, ranges: true });
  const head = new Uint8Array(await first.response.arrayBuffer());
  await throttle.receive(head.length);
  deliver(head);
  if (head.length < FILE_AND_CHUNK_HEADER) return { received, total, requests, complete: false };
  const headLength = (head[14] | (head[15] << 8) | (head[16] << 16) | (head[17] << 24)) >>> 0;

  // 2. the rest of HEAD: payload and CRC
  let pos = FILE_AND_CHUNK_HEADER;
  const headEnd = pos + headLength + 4;
  const fetchTo = async (stop) => {
    if (total !== null && pos >= total) return false;
    const part = await get(pos, stop);
    if (!part.response) return false;
    const n = await pump(part.response, throttle, deliver);
    pos += n;
    return stop === null || pos >= stop;
  };
  if (!(await fetchTo(headEnd))) return { received, total, requests, complete: false };
  const { toc } = await o.header();

  // 3. level by level
  const levels = Math.min(o.maxLod ?? toc.length, toc.length);
  for (let k = 0; k < levels; k++) {
    const stop = toc[k].offset + toc[k].size;
    if (stop > pos && !(await fetchTo(stop))) return { received, total, requests, complete: false };
    await o.onLevelBytes?.(k + 1);
  }
  if (levels < toc.length) return { received, total, requests, complete: true };
  // 4. ENDS and anything after it (which the decoder rejects)
  if (total === null || pos < total) await fetchTo(null);
  return { received, total, requests, complete: total === null || pos >= total };
}
