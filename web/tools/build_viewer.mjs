// Builds the streaming viewer into web/dist/: index.html, viewer.js (the page, with three.js
// and Spark) and viewer-worker.js (the decoder and spec 9.1, dependency-free). esbuild.
//   node tools/build_viewer.mjs [--outdir DIR] [--dev]
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const at = args.indexOf('--outdir');
const outdir = at >= 0 ? resolve(args[at + 1]) : join(WEB, 'dist');
const dev = args.includes('--dev');
mkdirSync(outdir, { recursive: true });
const t0 = performance.now();
await build({
  entryPoints: { viewer: join(WEB, 'viewer', 'main.js'), 'viewer-worker': join(WEB, 'viewer', 'viewer-worker.js') },
  outdir,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: !dev,
  sourcemap: dev ? 'inline' : false,
  legalComments: 'linked',
  logLevel: 'warning',
});
copyFileSync(join(WEB, 'viewer', 'index.html'), join(outdir, 'index.html'));
console.log(`viewer built in ${outdir} (${(performance.now() - t0).toFixed(0)} ms)`);
