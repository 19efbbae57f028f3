// The whole conformance suite (conformance/manifest.json) through the CLI, as the runner
// calls it (spec 10.4): dumps compared by SHA-256, invalid streams by exit status and the
// exact error class. Set PROGS_JS_SKIP_CLI_SUITE=1 to skip (tests/test_js_decoder.py does, as
// it runs the same suite through `progs-codec conformance run`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, readStream, suiteCases } from './helpers.mjs';

const skip = process.env.PROGS_JS_SKIP_CLI_SUITE === '1' ? 'PROGS_JS_SKIP_CLI_SUITE=1' : false;

function runCli(args) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

test('conformance suite through the CLI', { skip, timeout: 600_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'progs-js-'));
  try {
    const cases = suiteCases();
    const streams = new Map();
    const inputFor = (c) => {
      const key = `${c.stream}:${c.case ? c.case.bytes : 'all'}`;
      if (streams.has(key)) return streams.get(key);
      let path = c.stream;
      const cut = c.case ? c.case.bytes : null;
      if (path.endsWith('.xz') || cut !== null) {
        const data = readStream(c.stream);
        if (data === null) return null;
        path = join(tmp, `in-${streams.size}.progs`);
        writeFileSync(path, cut === null ? data : data.subarray(0, cut));
      }
      streams.set(key, path);
      return path;
    };
    const failures = [];
    let passed = 0;
    let skipped = 0;
    const queue = cases.map((c, i) => ({ c, i }));
    const worker = async () => {
      for (let job = queue.shift(); job; job = queue.shift()) {
        const { c, i } = job;
        const label = `${c.kind} ${c.name}${c.case ? ` [${c.case.name}]` : ''}`;
        const input = inputFor(c);
        if (input === null) { skipped++; continue; }
        const out = join(tmp, `out-${i}.dump`);
        const maxLod = c.case ? c.case.max_lod : c.expected.max_lod;
        const r = await runCli([input, String(maxLod), out]);
        if (c.case) {
          if (r.code !== 0) { failures.push(`${label}: exit ${r.code} ${r.signal ?? ''} ${r.stderr.trim()}`); continue; }
          const digest = createHash('sha256').update(readFileSync(out)).digest('hex');
          if (digest !== c.case.sha256) { failures.push(`${label}: dump differs`); continue; }
        } else {
          const m = /^error-class: (\w+)$/m.exec(r.stderr);
          if (r.code === 0 || r.code === null) { failures.push(`${label}: exit ${r.code} ${r.signal ?? ''}, expected an error`); continue; }
          if (!m || m[1] !== c.expected.error_class) {
            failures.push(`${label}: class ${m ? m[1] : 'none'}, expected ${c.expected.error_class}`);
            continue;
          }
        }
        passed++;
      }
    };
    const jobs = Math.max(1, Math.min(4, cpus().length));
    await Promise.all(Array.from({ length: jobs }, worker));
    assert.deepEqual(failures, [], failures.join('\n'));
    assert.equal(passed + skipped, cases.length);
    if (skipped) console.log(`# ${skipped} case(s) skipped: xz not available`);
    console.log(`# conformance: ${passed}/${cases.length} cases passed through the CLI`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
