// Incremental feeding (spec 8.3) equals one-shot decoding; levels come out as soon as their
// chunk is complete; the Web Worker front end posts the same levels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { canonicalDump, decode, Decoder, TruncatedError } from '../src/index.js';
import { attach } from '../src/worker.js';
import { readStream, rng, vectorStreams, WEB, ROOT } from './helpers.mjs';

const small = vectorStreams().filter((v) => v.bytes < 200_000);

function feedInPieces(bytes, rand, maxPiece, opts = {}) {
  const d = new Decoder(opts);
  const got = [];
  const completedAt = [];
  let pos = 0;
  while (pos < bytes.length) {
    const n = Math.min(bytes.length - pos, 1 + Math.floor(rand() * maxPiece));
    // a copy, reused afterwards: the decoder must not keep a reference to fed bytes
    const piece = bytes.slice(pos, pos + n);
    const levels = d.feed(piece);
    piece.fill(0xa5);
    pos += n;
    for (const l of levels) { got.push(l); completedAt.push(pos); }
  }
  return { model: d.close(), got, completedAt };
}

test('random piece sizes decode to the one-shot dump, levels as soon as complete', () => {
  const rand = rng(2024);
  for (const v of small) {
    const bytes = readStream(v.path);
    const oneShot = decode(bytes);
    const expected = canonicalDump(oneShot);
    for (const maxPiece of [1, 7, 100, 4096, 1 << 20]) {
      if (maxPiece === 1 && bytes.length > 20_000) continue;
      const { model, got, completedAt } = feedInPieces(bytes, rand, maxPiece);
      assert.deepEqual(canonicalDump(model), expected, `${v.name} pieces <= ${maxPiece}`);
      assert.equal(got.length, model.lod);
      got.forEach((l, i) => {
        assert.equal(l.level, i + 1);
        // returned by the feed that completed the chunk (spec 2.3: toc gives its end)
        const end = model.toc[i].offset + model.toc[i].size;
        assert.ok(completedAt[i] >= end && completedAt[i] - end < maxPiece, `${v.name} level ${i + 1}`);
        assert.equal(l.byteEnd, end);
      });
    }
  }
});

test('prefixes: each LoD from its range request, strict mode, the model of a cut stream', () => {
  for (const v of small) {
    const bytes = readStream(v.path);
    const full = decode(bytes);
    const L = full.frame.numLevels;
    for (let k = 1; k <= L; k++) {
      const end = full.toc[k - 1].offset + full.toc[k - 1].size;
      // maxLod = L asks for every level: strict then wants ENDS too (SPEC_NOTES.md)
      const strict = k < L || end === bytes.length;
      const m = decode(bytes.subarray(0, end), { maxLod: k, strict });
      assert.equal(m.lod, k);
      if (!strict) assert.throws(() => decode(bytes.subarray(0, end), { maxLod: k, strict: true }), TruncatedError);
      // the dump of LoD k is a prefix of the dump of the full decode (10.2)
      const dk = canonicalDump(m);
      assert.deepEqual(dk, canonicalDump(full).subarray(0, dk.length));
      const cut = decode(bytes.subarray(0, end - 1), { maxLod: k });
      assert.equal(cut.lod, k - 1);
      assert.throws(() => decode(bytes.subarray(0, end - 1), { maxLod: k, strict: true }), TruncatedError);
    }
    const lastEnd = full.toc[L - 1].offset + full.toc[L - 1].size;
    assert.equal(decode(bytes.subarray(0, lastEnd)).complete, lastEnd === bytes.length);
    assert.equal(full.complete, true);
    // a prefix inside HEAD is truncated, strict or not (8.3)
    assert.throws(() => decode(bytes.subarray(0, 12)), TruncatedError);
  }
});

test('feed after the requested LoD ignores the rest; feed after an error rethrows', () => {
  const v = small.find((x) => x.name === 'raw-basic');
  const bytes = readStream(v.path);
  const d = new Decoder({ maxLod: 1 });
  const levels = d.feed(bytes.subarray(0, 40000));
  assert.equal(levels.length, 1);
  assert.ok(d.done);
  assert.deepEqual(d.feed(Uint8Array.of(1, 2, 3)), []);
  assert.equal(d.close().lod, 1);
  const bad = bytes.slice();
  bad[1] = 0x51;
  const e = new Decoder();
  assert.throws(() => e.feed(bad), /bad magic/);
  assert.throws(() => e.feed(bytes), /bad magic/);
});

function fakePort() {
  const messages = [];
  const port = {
    postMessage: (m, transfer) => {
      // emulate a transfer: the receiver gets the buffers, the sender's views go empty
      const clone = structuredClone(m, { transfer });
      messages.push(clone);
    },
    onmessage: null,
  };
  attach(port);
  return { port, messages, send: (data) => port.onmessage({ data }) };
}

test('worker front end (fake port): header, levels with transferred arrays, done', () => {
  const v = small.find((x) => x.name === 'trained-plant');
  const bytes = readStream(v.path);
  const oneShot = decode(bytes);
  const { messages, send } = fakePort();
  send({ type: 'start' });
  for (let p = 0; p < bytes.length; p += 5000) send({ type: 'chunk', bytes: bytes.slice(p, p + 5000).buffer });
  send({ type: 'close' });
  const types = messages.map((m) => m.type);
  assert.equal(types[0], 'header');
  // generation MLPs arrive as plain binary32 arrays (and their binary16 bits)
  const gm = messages[0].gaussianMlps;
  assert.deepEqual(gm.mlps.map((m) => m.name), ['opacity', 'color', 'covariance']);
  assert.deepEqual(gm.mlps[1].W2, oneShot.gaussianMlps.mlps[1].W2);
  assert.ok(gm.half instanceof Uint16Array);
  assert.equal(types.at(-1), 'done');
  const levels = messages.filter((m) => m.type === 'level').map((m) => m.level);
  assert.equal(levels.length, oneShot.lod);
  const model = { ...oneShot, levels };
  assert.deepEqual(canonicalDump(model), canonicalDump(oneShot));
  // a bad stream: one error message with the class
  const bad = fakePort();
  const b = bytes.slice();
  b[20] ^= 0xff;                       // inside HEAD: CRC mismatch
  bad.send({ type: 'chunk', bytes: b });
  assert.deepEqual(bad.messages.map((m) => [m.type, m.errorClass]), [['error', 'checksum']]);
});

test('worker.js runs in a real worker thread (DedicatedWorkerGlobalScope shim)', async () => {
  const v = small.find((x) => x.name === 'structure-mixed-layouts');
  const bytes = readStream(v.path);
  const oneShot = decode(bytes);
  const url = pathToFileURL(join(WEB, 'src', 'worker.js')).href;
  // a minimal `self` as a browser's module worker has it, over worker_threads' parentPort
  const shim = `
    import { parentPort } from 'node:worker_threads';
    globalThis.self = {
      postMessage: (m, t) => parentPort.postMessage(m, t),
      addEventListener: (type, h) => parentPort.on(type, (data) => h({ data })),
    };
    await import(${JSON.stringify(url)});
    parentPort.postMessage({ type: 'ready' });
  `;
  const w = new Worker(shim, { eval: true, type: 'module' });
  const messages = [];
  const done = new Promise((resolve, reject) => {
    w.on('message', (m) => {
      if (m.type === 'ready') {
        for (let p = 0; p < bytes.length; p += 3000) {
          const piece = bytes.slice(p, p + 3000);
          w.postMessage({ type: 'chunk', bytes: piece.buffer }, [piece.buffer]);
        }
        w.postMessage({ type: 'close' });
        return;
      }
      messages.push(m);
      if (m.type === 'done' || m.type === 'error') resolve();
    });
    w.on('error', reject);
  });
  await done;
  await w.terminate();
  const levels = messages.filter((m) => m.type === 'level').map((m) => m.level);
  assert.equal(messages.at(-1).type, 'done');
  assert.equal(levels.length, oneShot.lod);
  assert.deepEqual(canonicalDump({ ...oneShot, levels }), canonicalDump(oneShot));
});

test('src/ uses no Node-only API', async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  for (const f of readdirSync(join(WEB, 'src'))) {
    const text = readFileSync(join(WEB, 'src', f), 'utf8');
    assert.doesNotMatch(text, /from ['"]node:|require\(|\bBuffer\b|\bprocess\./, f);
  }
  assert.ok(ROOT);
});

test('refine (spec 3.5): part 5 of a 1.1 stream, add for a 1.0 stream', () => {
  const byName = new Map(vectorStreams().map((v) => [v.name, v]));
  const replace = decode(readStream(byName.get('refine-replace').path));
  assert.equal(replace.version.minor, 1);
  assert.deepEqual(replace.rendering, { refine: 1 });
  assert.equal(replace.refine, 1);
  const old = decode(readStream(byName.get('minor-0-trailing-part').path));
  assert.equal(old.version.minor, 0);
  assert.equal(old.rendering, null);
  assert.equal(old.refine, 0);
});
