// Truncated, corrupted and garbage input raise only ProgsError subclasses (spec 8.4), never
// another exception, and never hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from '../src/bytes.js';
import { decode, Decoder, ProgsError, TruncatedError, ERROR_CLASSES } from '../src/index.js';
import { readStream, rng, suiteCases, vectorStreams } from './helpers.mjs';

// streams whose decode takes tens of milliseconds get fewer random trials
// PROGS_JS_FUZZ_SCALE=20 runs 20 times as many random trials (a longer fuzzing session)
const SCALE = Number(process.env.PROGS_JS_FUZZ_SCALE ?? 1);
const HEAVY = new Set(['entropy-small-preset', 'entropy-hac-preset', 'trained-plant', 'entropy-two-blocks', 'raw-basic']);
const streams = vectorStreams().filter((v) => v.bytes < 200_000).map((v) => ({ name: v.name, bytes: readStream(v.path) }));

function outcome(bytes, opts) {
  try {
    return decode(bytes, opts);
  } catch (e) {
    if (!(e instanceof ProgsError)) {
      throw new assert.AssertionError({ message: `non-ProgsError ${e && e.name}: ${e && e.message}\n${e && e.stack}` });
    }
    assert.ok(ERROR_CLASSES.includes(e.errorClass));
    return e;
  }
}

/** Chunk boundaries [start, end) after the file header. */
function chunks(bytes) {
  const out = [];
  let p = 10;
  while (p + 12 <= bytes.length) {
    const len = (bytes[p + 4] | (bytes[p + 5] << 8) | (bytes[p + 6] << 16) | (bytes[p + 7] << 24)) >>> 0;
    if (p + 12 + len > bytes.length) break;
    out.push([p, p + 12 + len]);
    p += 12 + len;
  }
  return out;
}

/** Recompute the CRC of the chunk holding byte i, so that corruption reaches the parsers. */
function fixCrc(bytes, i) {
  for (const [s, e] of chunks(bytes)) {
    if (i >= s && i < e - 4) {
      let c = crc32(bytes, s, s + 4);
      c = crc32(bytes, s + 8, e - 4, c);
      new DataView(bytes.buffer, bytes.byteOffset).setUint32(e - 4, c, true);
      return;
    }
  }
}

test('every prefix: levels or a ProgsError; strict prefixes are truncated', () => {
  const rand = rng(99);
  for (const { name, bytes } of streams) {
    const full = decode(bytes);
    const cuts = bytes.length <= 3000
      ? Array.from({ length: bytes.length }, (_, i) => i)
      : Array.from({ length: HEAVY.has(name) ? 25 : 150 }, () => Math.floor(rand() * bytes.length));
    for (const n of cuts) {
      const r = outcome(bytes.subarray(0, n), {});
      const headEnd = chunks(bytes)[0][1];
      if (n < headEnd) {
        assert.ok(r instanceof TruncatedError, `${name} cut ${n}: ${r.message ?? 'decoded'}`);
      } else {
        assert.ok(!(r instanceof Error), `${name} cut ${n}: ${r.message}`);
        assert.ok(r.lod <= full.lod);
      }
      const s = outcome(bytes.subarray(0, n), { strict: true });
      assert.ok(s instanceof TruncatedError, `${name} strict cut ${n}`);
    }
  }
});

test('corrupted bytes (with and without a fixed CRC): only ProgsError', () => {
  const rand = rng(5 + SCALE);
  let errors = 0, decoded = 0;
  for (const { name, bytes } of streams) {
    const tries = SCALE * (HEAVY.has(name) ? 12 : 120);
    for (let t = 0; t < tries; t++) {
      const b = bytes.slice();
      const flips = 1 + Math.floor(rand() * 3);
      const where = [];
      for (let f = 0; f < flips; f++) {
        // bias towards the header and chunk headers, where lengths and counts live
        const i = rand() < 0.5 ? Math.floor(rand() * Math.min(b.length, 400)) : Math.floor(rand() * b.length);
        b[i] = rand() < 0.5 ? b[i] ^ (1 << Math.floor(rand() * 8)) : Math.floor(rand() * 256);
        where.push(i);
      }
      const withCrc = rand() < 0.8;
      if (withCrc) where.forEach((i) => fixCrc(b, i));
      const r = outcome(b, {});
      if (r instanceof Error) errors++; else decoded++;
      // incremental feeding fails the same way
      const d = new Decoder();
      let inc;
      try {
        for (let p = 0; p < b.length; p += 777) d.feed(b.subarray(p, p + 777));
        inc = d.close();
      } catch (e) {
        inc = e;
      }
      if (r instanceof Error) {
        assert.ok(inc instanceof ProgsError, `${name}: one-shot ${r.errorClass}, incremental ${inc && inc.message}`);
        assert.equal(inc.errorClass, r.errorClass, `${name} at ${where}`);
      } else {
        assert.ok(!(inc instanceof Error), `${name}: incremental failed ${inc.message}`);
        assert.equal(inc.lod, r.lod);
      }
    }
  }
  assert.ok(errors > 0 && decoded >= 0);
});

test('garbage after a valid magic, and garbage alone', () => {
  const rand = rng(1234);
  const magic = Uint8Array.of(0x89, 0x50, 0x47, 0x53, 0x0d, 0x0a, 0x1a, 0x0a, 1, 0);
  for (let t = 0; t < 300 * SCALE; t++) {
    const n = Math.floor(rand() * 300);
    const b = new Uint8Array(n + (t % 2 ? 10 : 0));
    if (t % 2) b.set(magic);
    for (let i = t % 2 ? 10 : 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
    const r = outcome(b, {});
    assert.ok(r instanceof ProgsError);
  }
});

test('the invalid streams of the suite fail with their class, one-shot and incremental', () => {
  for (const c of suiteCases().filter((x) => x.kind === 'invalid')) {
    const bytes = readStream(c.stream);
    const r = outcome(bytes, { maxLod: c.expected.max_lod });
    assert.ok(r instanceof ProgsError, c.name);
    assert.equal(r.errorClass, c.expected.error_class, `${c.name}: ${r.message}`);
    const d = new Decoder({ maxLod: c.expected.max_lod });
    assert.throws(() => {
      for (let p = 0; p < bytes.length; p += 100) d.feed(bytes.subarray(p, p + 100));
      d.close();
    }, (e) => e instanceof ProgsError && e.errorClass === c.expected.error_class, c.name);
  }
});

test('a declared anchor count beyond maxAnchors is a limit error from the toc (8.5)', () => {
  const { bytes } = streams.find((s) => s.name === 'raw-basic');
  const r = outcome(bytes, { maxAnchors: 100 });
  assert.equal(r.errorClass, 'limit');
  assert.equal(outcome(bytes, { maxAnchors: 100, maxLod: 2 }).lod, 2);  // 9 + 27 anchors
});
