// Drives Debian's chromium (headless, software WebGL) through the streaming viewer with
// playwright-core, for tests/test_web_viewer.py. Never downloads a browser.
//
//   node web/tools/drive_browser.mjs JOBS.json OUT_DIR
//
// JOBS.json: {chromium: "/usr/bin/chromium", base: "http://127.0.0.1:PORT/", jobs: [...]}; each
// job is one of
//   {name, kind: "lods", query}      step through the LoDs (step=1), one canvas PNG per LoD
//   {name, kind: "stream", query}    load and wait until done or error: the page's state
//   {name, kind: "decode", stream, runs}  decode the stream in the page: cold, then warm runs
//   {name, kind: "midstream", query, lod, viewport}  a screenshot of the page as soon as LoD
//                                    `lod` is on screen (OUT_DIR/NAME.png)
// Prints one JSON object: {name: result}. PNGs go to OUT_DIR/NAME-lodK.png (and
// OUT_DIR/NAME.png, a screenshot of the whole page at the end of every job).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [jobsPath, outDir] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(jobsPath, 'utf8'));
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];
const TIMEOUT = spec.timeoutMs ?? 60_000;

const profile = mkdtempSync(join(tmpdir(), 'progs-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: spec.chromium, headless: true, args: FLAGS, viewport: { width: 800, height: 600 },
});
const results = {};
const log = [];

async function open(query, viewport) {
  const page = await context.newPage();
  if (viewport) await page.setViewportSize(viewport);
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') log.push(`console: ${m.text()}`); });
  await page.goto(`${spec.base}index.html?${query}`);
  await page.waitForFunction(() => window.progs !== undefined, null, { timeout: TIMEOUT });
  return page;
}

const state = (page) => page.evaluate(() => {
  const s = window.progs;
  return { status: s.status, error: s.error, total: s.total, received: s.received, ranges: s.ranges,
    requestAt: s.requestAt, doneAt: s.doneAt, lods: s.lods, header: s.header && { numLevels: s.header.numLevels, refine: s.header.refine },
    errorText: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
    overlay: document.getElementById('overlay').textContent };
});

async function canvasPng(page, path) {
  const url = await page.evaluate(() => document.getElementById('view').toDataURL('image/png'));
  writeFileSync(path, Buffer.from(url.slice(url.indexOf(',') + 1), 'base64'));
}

for (const job of spec.jobs) {
  const t0 = Date.now();
  try {
    if (job.kind === 'lods') {
      const page = await open(job.query);
      const shots = [];
      for (let k = 1; ; k++) {
        await page.waitForFunction((lod) => {
          const s = window.progs;
          return s.status === 'error' || s.status === 'done' || (s.lods[lod - 1] && s.lods[lod - 1].shownAt !== null);
        }, k, { timeout: TIMEOUT });
        const s = await state(page);
        if (s.status === 'error' || !s.lods[k - 1] || s.lods[k - 1].shownAt === null) break;
        const path = join(outDir, `${job.name}-lod${k}.png`);
        await canvasPng(page, path);
        shots.push(path);
        await page.evaluate(() => window.progs.next());
        if (s.header && k >= s.header.numLevels) break;
      }
      await page.waitForFunction(() => ['done', 'error'].includes(window.progs.status), null, { timeout: TIMEOUT });
      results[job.name] = { ...(await state(page)), shots };
      await page.screenshot({ path: join(outDir, `${job.name}.png`) });
      await page.close();
    } else if (job.kind === 'stream') {
      const page = await open(job.query);
      await page.waitForFunction(() => ['done', 'error'].includes(window.progs.status), null, { timeout: TIMEOUT });
      // an error leaves the last complete LoD on screen: give its sort a moment to finish
      if (job.settleMs) await page.waitForTimeout(job.settleMs);
      results[job.name] = await state(page);
      await page.screenshot({ path: join(outDir, `${job.name}.png`) });
      if (job.canvas) await canvasPng(page, join(outDir, `${job.name}-canvas.png`));
      await page.close();
    } else if (job.kind === 'midstream') {
      const page = await open(job.query, job.viewport);
      await page.waitForFunction((lod) => window.progs.status === 'error' || window.progs.lods[lod - 1]?.shownAt != null, job.lod, { timeout: TIMEOUT });
      await page.screenshot({ path: join(outDir, `${job.name}.png`) });
      results[job.name] = await state(page);
      await page.close();
    } else if (job.kind === 'decode') {
      const page = await context.newPage();
      await page.goto(`${spec.base}src/index.js`);   // a page of this origin that runs nothing
      results[job.name] = await page.evaluate(async ({ stream, runs }) => {
        const bytes = new Uint8Array(await (await fetch(stream)).arrayBuffer());
        const { decode } = await import('/src/index.js');
        const times = [];
        let lod = 0;
        for (let i = 0; i <= runs; i++) {
          const t = performance.now();
          lod = decode(bytes).lod;
          times.push(performance.now() - t);
        }
        const warm = times.slice(1).sort((a, b) => a - b);
        return { bytes: bytes.length, lod, coldMs: times[0], warmMs: warm[Math.floor(warm.length / 2)], times };
      }, { stream: job.stream, runs: job.runs ?? 10 });
      await page.close();
    }
  } catch (e) {
    results[job.name] = { failed: String(e?.stack ?? e) };
  }
  results[job.name].wallMs = Date.now() - t0;
}
results.log = log;
await context.close();
rmSync(profile, { recursive: true, force: true });
console.log(JSON.stringify(results));
