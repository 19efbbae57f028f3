#!/usr/bin/env node
// Decoder command of spec 10.4 / conformance/README.md:
//   node web/bin/progs-dump.mjs INPUT MAX_LOD OUTPUT [--sha256] [--records]
// writes the canonical dump (spec 10) of levels 1..MAX_LOD of INPUT (a stream or a prefix,
// decoded non-strictly as 8.3 says) to OUTPUT and exits 0. On an invalid stream it prints
// `error-class: NAME` on stderr and exits 1 (2: bad usage or unreadable input, 70: internal
// error). --sha256 prints the dump's digest (10.3), --records one digest per record (of its
// payload, as in conformance/*/expected.json).

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { decode, dumpRecords, ProgsError, recordPieces } from '../src/index.js';

function usage(msg) {
  process.stderr.write(`${msg}\nusage: progs-dump INPUT MAX_LOD OUTPUT [--sha256] [--records]\n`);
  process.exit(2);
}

const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
if (args.length !== 3) usage('expected 3 arguments');
const [input, maxLodText, output] = args;
if (!/^\d+$/.test(maxLodText) || Number(maxLodText) < 1) usage(`MAX_LOD must be an integer >= 1, not ${maxLodText}`);

let bytes;
try {
  bytes = readFileSync(input);
} catch (e) {
  process.stderr.write(`cannot read ${input}: ${e.message}\n`);
  process.exit(2);
}
let model;
try {
  model = decode(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), { maxLod: Number(maxLodText) });
} catch (e) {
  if (e instanceof ProgsError) {
    process.stderr.write(`${e.name}: ${e.message}\nerror-class: ${e.errorClass}\n`);
    process.exit(1);
  }
  // a bug of this decoder, not a verdict on the stream: no error-class line
  process.stderr.write(`internal error: ${e && e.stack ? e.stack : e}\n`);
  process.exit(70);
}
const recs = dumpRecords(model);
const pieces = recordPieces(recs);
const total = pieces.reduce((n, p) => n + p.length, 0);
const out = Buffer.allocUnsafe(total);
let o = 0;
for (const p of pieces) { out.set(p, o); o += p.length; }
writeFileSync(output, out);
if (flags.includes('--sha256')) console.log(createHash('sha256').update(out).digest('hex'));
if (flags.includes('--records')) {
  const counts = {};
  for (const r of recs) {
    const isLevel = !['FRAM', 'GMLP', 'RNDR'].includes(r.tag);
    counts[r.tag] = (counts[r.tag] ?? 0) + 1;
    const name = isLevel ? `${r.tag} ${counts[r.tag]}` : r.tag;
    const h = createHash('sha256');
    for (const p of r.parts) h.update(p);
    console.log(`${name} ${h.digest('hex')}`);
  }
}
