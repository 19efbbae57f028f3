// Shared helpers of the tests (Node only).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = resolve(WEB, '..');
export const SUITE = join(ROOT, 'conformance');
export const CLI = join(WEB, 'bin', 'progs-dump.mjs');

/** Contents of a suite stream; .xz through the system's xz (null when xz is missing). */
export function readStream(path) {
  if (path.endsWith('.xz')) {
    try {
      return new Uint8Array(execFileSync('xz', ['-dc', path], { maxBuffer: 1 << 30 }));
    } catch {
      return null;
    }
  }
  return new Uint8Array(readFileSync(path));
}

/**
 * The suite's cases: {kind, name, dir, stream, case...}. `kind` is `vector`, `partial` (a
 * MAX_LOD and a byte count like a vector case, but the stream is not a whole valid stream:
 * prefixes, streams invalid above the LoDs asked for) or `invalid`.
 */
export function suiteCases() {
  const manifest = JSON.parse(readFileSync(join(SUITE, 'manifest.json'), 'utf8'));
  const out = [];
  for (const kind of ['vectors', 'partial']) {
    for (const v of manifest[kind] ?? []) {
      const dir = join(SUITE, kind, v.name);
      const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
      for (const c of expected.cases) {
        out.push({ kind: kind === 'vectors' ? 'vector' : 'partial', name: v.name, dir, stream: join(dir, expected.stream), expected, case: c });
      }
    }
  }
  for (const v of manifest.invalid) {
    const dir = join(SUITE, 'invalid', v.name);
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
    out.push({ kind: 'invalid', name: v.name, dir, stream: join(dir, expected.stream), expected });
  }
  return out;
}

/** Small seeded PRNG (mulberry32). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function vectorStreams() {
  const manifest = JSON.parse(readFileSync(join(SUITE, 'manifest.json'), 'utf8'));
  return manifest.vectors.map((v) => {
    const dir = join(SUITE, 'vectors', v.name);
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
    return { name: v.name, path: join(dir, expected.stream), expected, bytes: v.stream_bytes };
  });
}
