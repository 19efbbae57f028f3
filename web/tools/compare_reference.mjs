#!/usr/bin/env node
// Differential check against the Python reference decoder, used as a black box: corrupt
// the conformance vectors at random (fixing CRCs so the damage reaches the parsers), decode
// every variant with both decoders and report where they disagree (decoded vs error, error
// class, LoD; dumps of streams both decode, through `python -m progs_codec[.tools].canonical`).
// For each disagreement it also asks the suite's independent decoder
// (`python conformance/independent_decoder`, black box) which class it reports.
//
//   node web/tools/compare_reference.mjs [--tries N] [--seed S] [--python PYTHON]

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from '../src/bytes.js';
import { canonicalDump, decode, ProgsError } from '../src/index.js';
import { ROOT, readStream, rng, vectorStreams } from '../test/helpers.mjs';

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i < 0 ? d : args[i + 1]; };
const tries = Number(opt('--tries', 40));
const seed = Number(opt('--seed', 1));
const python = opt('--python', 'python3');
const rand = rng(seed);

function chunks(b) {
  const out = [];
  let p = 10;
  while (p + 12 <= b.length) {
    const len = (b[p + 4] | (b[p + 5] << 8) | (b[p + 6] << 16) | (b[p + 7] << 24)) >>> 0;
    if (p + 12 + len > b.length) break;
    out.push([p, p + 12 + len]);
    p += 12 + len;
  }
  return out;
}
function fixCrc(b, i) {
  for (const [s, e] of chunks(b)) {
    if (i >= s && i < e - 4) {
      const c = crc32(b, s + 8, e - 4, crc32(b, s, s + 4));
      new DataView(b.buffer, b.byteOffset).setUint32(e - 4, c, true);
    }
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'progs-cmp-'));
const files = [];
for (const v of vectorStreams()) {
  if (v.bytes > 120_000) continue;
  const bytes = readStream(v.path);
  for (let t = 0; t < tries; t++) {
    const b = bytes.slice();
    const n = 1 + Math.floor(rand() * 2);
    for (let f = 0; f < n; f++) {
      const i = rand() < 0.6 ? Math.floor(rand() * Math.min(b.length, 600)) : Math.floor(rand() * b.length);
      b[i] = rand() < 0.5 ? b[i] ^ (1 << Math.floor(rand() * 8)) : Math.floor(rand() * 256);
      fixCrc(b, i);
    }
    const path = join(tmp, `${v.name}-${t}.progs`);
    writeFileSync(path, b);
    files.push({ name: `${v.name}#${t}`, path, bytes: b });
  }
}

const PY = `
import json, sys
import progs_codec
out = []
for path in sys.argv[1:]:
    try:
        m = progs_codec.decode(open(path, 'rb').read())
        out.append({"lod": m.lod})
    except progs_codec.ProgsError as e:
        name = type(e).__name__.replace("Error", "").lower()
        out.append({"cls": name, "msg": str(e)})
print(json.dumps(out))
`;
const py = spawnSync(python, ['-c', PY, ...files.map((f) => f.path)], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 28 });
if (py.status !== 0) throw new Error(py.stderr);
const ref = JSON.parse(py.stdout);

let agree = 0;
const disagreements = [];
const bothDecoded = [];
files.forEach((f, i) => {
  let js;
  try {
    js = { lod: decode(f.bytes).lod };
  } catch (e) {
    if (!(e instanceof ProgsError)) throw e;
    js = { cls: e.errorClass, msg: e.message };
  }
  const r = ref[i];
  if (js.cls === r.cls && js.lod === r.lod) {
    agree++;
    if (js.lod !== undefined) bothDecoded.push(f);
  } else {
    disagreements.push({ name: f.name, js, ref: r });
  }
});

// dumps of the variants both decode
let dumpMismatch = 0;
const canonicalModules = ['progs_codec.tools.canonical', 'progs_codec.canonical'];
for (const f of bothDecoded) {
  const out = join(tmp, 'ref.dump');
  let ok = false;
  for (const mod of canonicalModules) {
    const r = spawnSync(python, ['-m', mod, f.path, '16', out], { cwd: ROOT });
    if (r.status === 0) { ok = true; break; }
  }
  if (!ok) { disagreements.push({ name: f.name, js: 'decoded', ref: 'canonical CLI failed' }); continue; }
  const a = createHash('sha256').update(readFileSync(out)).digest('hex');
  const b = createHash('sha256').update(canonicalDump(decode(f.bytes))).digest('hex');
  if (a !== b) { dumpMismatch++; disagreements.push({ name: f.name, js: b, ref: a, what: 'dump' }); }
}
const INDEPENDENT = join(ROOT, 'conformance', 'independent_decoder');
for (const d of disagreements) {
  const f = files.find((x) => x.name === d.name);
  const r = spawnSync(python, [INDEPENDENT, f.path, '16', join(tmp, 'ind.dump')], { cwd: ROOT, encoding: 'utf8' });
  const m = /error-class: (\w+)/.exec(r.stderr || '');
  d.independent = r.status === 0 ? 'decoded' : m ? m[1] : `exit ${r.status}`;
}
rmSync(tmp, { recursive: true, force: true });
console.log(`${files.length} corrupted variants: ${agree} agree (${bothDecoded.length} decoded by both, ${dumpMismatch} dump mismatches), ${disagreements.length} disagree`);
for (const d of disagreements) console.log(JSON.stringify(d));
process.exit(disagreements.length ? 1 : 0);
