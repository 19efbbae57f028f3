#!/usr/bin/env node
// Decode time of a .progs stream in Node (this decoder) and in Python (progs_codec.decode),
// measured in one run on this machine. Both sides time the decode call only (bytes already in
// memory, modules loaded): the first call in a fresh process ("cold": JIT warm-up, lazy
// imports) and the median of the following calls ("warm"); wall-clock time, and CPU time of
// the whole process (all threads: V8's compiler threads, numpy's worker threads). Python runs
// twice per round: as is, and with numpy's BLAS on one thread ("python1").
//
//   node web/bench/bench_decode.mjs [STREAM] [--repeat N] [--rounds R] [--python PYTHON]

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const repeat = Number(opt('--repeat', 10));
const rounds = Number(opt('--rounds', 3));
const python = opt('--python', process.env.PYTHON ?? 'python3');
const stream = resolve(args[0] ?? join(ROOT, 'examples', 'plant.progs'));

const NODE_CHILD = `
import { readFileSync } from 'node:fs';
import { decode } from ${JSON.stringify(join(ROOT, 'web', 'src', 'index.js'))};
const b = new Uint8Array(readFileSync(process.argv[1]));
const times = [], cpu = [];
let lod = 0;
for (let i = 0; i <= ${repeat}; i++) {
  const c = process.cpuUsage();
  const t = performance.now();
  lod = decode(b).lod;
  times.push((performance.now() - t) / 1000);
  const u = process.cpuUsage(c);
  cpu.push((u.user + u.system) / 1e6);
}
console.log(JSON.stringify({ times, cpu, lod }));
`;

const PY_CHILD = `
import json, sys, time
import progs_codec
b = open(sys.argv[1], 'rb').read()
times, cpu = [], []
for i in range(${repeat} + 1):
    c = time.process_time()
    t = time.perf_counter()
    m = progs_codec.decode(b)
    times.append(time.perf_counter() - t)
    cpu.append(time.process_time() - c)
print(json.dumps({"times": times, "cpu": cpu, "lod": m.lod}))
`;

function run(cmd, argv, cwd, env) {
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', env: env ? { ...process.env, ...env } : process.env });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
const ms = (s) => `${(s * 1000).toFixed(1)} ms`;

const bytes = readFileSync(stream).length;
// python1: the same with numpy's BLAS limited to one thread (its threads spin when the
// machine is busy, which makes the default-threads time swing with the load)
const ONE_THREAD = { OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
const SIDES = ['node', 'python', 'python1'];
const res = Object.fromEntries(SIDES.map((k) => [k, { cold: [], warm: [], coldCpu: [], warmCpu: [] }]));
let lods = {};
for (let r = 0; r < rounds; r++) {   // alternate, so that machine load hits both sides alike
  const n = run(process.execPath, ['--input-type=module', '-e', NODE_CHILD, stream], ROOT);
  const p = run(python, ['-c', PY_CHILD, stream], ROOT);
  const p1 = run(python, ['-c', PY_CHILD, stream], ROOT, ONE_THREAD);
  for (const [name, x] of [['node', n], ['python', p], ['python1', p1]]) {
    res[name].cold.push(x.times[0]);
    res[name].warm.push(median(x.times.slice(1)));
    res[name].coldCpu.push(x.cpu[0]);
    res[name].warmCpu.push(median(x.cpu.slice(1)));
    lods[name] = x.lod;
  }
}
const summary = {};
for (const name of SIDES) {
  summary[name] = {
    cold: median(res[name].cold), warm: median(res[name].warm),
    coldCpu: median(res[name].coldCpu), warmCpu: median(res[name].warmCpu),
  };
}
console.log(`stream ${stream} (${bytes} bytes), LoD ${lods.node} (node) / ${lods.python} (python)`);
console.log('python1 = python with OPENBLAS/OMP/MKL_NUM_THREADS=1');
console.log(`${rounds} rounds, ${repeat} warm decodes each; medians over rounds`);
console.log('                 cold (1st call)   warm (median)   cold CPU   warm CPU');
for (const name of SIDES) {
  const x = summary[name];
  console.log(`${name.padEnd(16)} ${ms(x.cold).padStart(14)}   ${ms(x.warm).padStart(13)}   ${ms(x.coldCpu).padStart(8)}   ${ms(x.warmCpu).padStart(8)}`);
}
const ratio = (k, ref = 'python') => summary.node[k] / summary[ref][k];
const rx = (k, w, ref) => `${ratio(k, ref).toFixed(2)}x`.padStart(w);
console.log(`node / python    ${rx('cold', 14)}   ${rx('warm', 13)}   ${rx('coldCpu', 8)}   ${rx('warmCpu', 8)}`);
console.log(`node / python1   ${rx('cold', 14, 'python1')}   ${rx('warm', 13, 'python1')}   ${rx('coldCpu', 8, 'python1')}   ${rx('warmCpu', 8, 'python1')}`);
console.log(JSON.stringify({
  stream, bytes, rounds, repeat, ...summary,
  ratio_cold: ratio('cold'), ratio_warm: ratio('warm'),
  ratio_cold_python1: ratio('cold', 'python1'), ratio_warm_python1: ratio('warm', 'python1'),
}));
