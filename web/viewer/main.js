// The streaming viewer: fetches a .progs stream level by level (stream.js), decodes it in a
// worker (viewer-worker.js: src/decoder.js and src/gaussians.js) and hands each LoD's
// Gaussians to Spark (@sparkjsdev/spark, three.js), which sorts and rasterizes them.
//
// URL parameters:
//   src=URL         the stream (default: scene.progs beside the page)
//   mbit=N          bandwidth throttle in Mbit/s for demos (default: none); rtt=MS per request
//   maxlod=K        stop after LoD K
//   cam=ex,ey,ez,tx,ty,tz,ux,uy,uz[,fov]  eye, target, up, horizontal field of view (degrees)
//   size=WxH        canvas size in pixels (default: the window)
//   step=1          wait for window.progs.next() after each LoD is on screen (tests)
//   overlay=0       hide the overlay
//
// window.progs holds the state: {status, lods: [...], error, ...}; times are in ms from the
// navigation start (performance.now()).
import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import { ExtSplats, SparkRenderer, SplatMesh, utils } from '@sparkjsdev/spark';
import { fetchLevels, Throttle } from './stream.js';
import { DEFAULT_FOV } from './view.js';

const params = new URLSearchParams(location.search);
const num = (name, dflt) => (params.has(name) && params.get(name) !== '' && Number.isFinite(Number(params.get(name))) ? Number(params.get(name)) : dflt);
const src = params.get('src') || 'scene.progs';
const mbit = num('mbit', 0);
const rtt = num('rtt', 0);
const maxLod = num('maxlod', 16);
const step = params.get('step') === '1';
const sizeParam = /^(\d+)x(\d+)$/.exec(params.get('size') ?? '');

const state = {
  status: 'starting', src, mbit, total: null, received: 0, lods: [], error: null, header: null,
  ranges: null, startedAt: 0, requestAt: null, doneAt: null, shown: 0,
};
window.progs = state;

// ---- page --------------------------------------------------------------------------------
const canvas = document.getElementById('view');
const overlay = document.getElementById('overlay');
const errorBox = document.getElementById('error');
if (params.get('overlay') === '0') overlay.hidden = true;

const renderer = new THREE.WebGLRenderer({ canvas, antialias: false, preserveDrawingBuffer: true });
renderer.setClearColor(0x000000, 1);
const fixedSize = sizeParam ? [Number(sizeParam[1]), Number(sizeParam[2])] : null;
const camera = new THREE.PerspectiveCamera(DEFAULT_FOV, 1, 0.01, 1000);
let fovX = DEFAULT_FOV;
let fovOfMin = true;       // the default view: the field of view spans the canvas's smaller side
function resize() {
  const [w, h] = fixedSize ?? [window.innerWidth, window.innerHeight];
  const fovH = fovOfMin && w > h ? (2 * Math.atan(Math.tan((fovX * Math.PI) / 360) * (w / h)) * 180) / Math.PI : fovX;
  renderer.setPixelRatio(fixedSize ? 1 : Math.min(window.devicePixelRatio || 1, 2));
  renderer.setSize(w, h, !fixedSize);
  if (fixedSize) { canvas.style.width = `${w}px`; canvas.style.height = `${h}px`; }
  camera.aspect = w / h;
  // progs_codec's cameras give the horizontal field of view (fx = fy, centred principal point)
  camera.fov = (2 * Math.atan(Math.tan((fovH * Math.PI) / 360) * (h / w)) * 180) / Math.PI;
  camera.updateProjectionMatrix();
  dirty = true;
}
const scene = new THREE.Scene();
// Settings that follow the reference rasterizer (gsplat "classic", spec 9.3): 0.3 pixels^2
// added to the 2D covariance without opacity compensation, depth (not radial) sort,
// opacities below 1/255 dropped, about 3.33 standard deviations drawn.
const spark = new SparkRenderer({
  renderer, preBlurAmount: 0.3, blurAmount: 0, sortRadial: false, minAlpha: 1 / 255, maxStdDev: 3.33,
  onDirty: () => { dirty = true; },
});
scene.add(spark);
const controls = new OrbitControls(camera, canvas);
controls.enableDamping = false;
controls.addEventListener('change', () => { dirty = true; cameraMoved(); });

function setView(view, explicit) {
  fovX = view.fov ?? DEFAULT_FOV;
  fovOfMin = !explicit;
  camera.position.set(...view.eye);
  camera.up.set(...view.up);
  controls.target.set(...view.target);
  camera.lookAt(...view.target);
  controls.update();
  resize();
}

function parseCam(text) {
  if (!text) return null;
  const v = text.split(',').map(Number);
  if ((v.length !== 9 && v.length !== 10) || !v.every(Number.isFinite)) throw new Error(`cam= needs 9 or 10 numbers, got "${text}"`);
  return { eye: v.slice(0, 3), target: v.slice(3, 6), up: v.slice(6, 9), fov: v.length === 10 ? v[9] : DEFAULT_FOV };
}

// ---- overlay -----------------------------------------------------------------------------
const fmtBytes = (n) => (n === null ? '?' : n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : `${(n / 1e3).toFixed(1)} kB`);
const fmtMs = (v) => (v === null || v === undefined ? '–' : `${v.toFixed(0)}`);
function drawOverlay() {
  const h = state.header;
  const last = state.lods.filter((l) => l.shownAt !== null).at(-1);
  const lines = [
    `<b>${escapeHtml(src.split('/').pop())}</b> ${h ? `· ${h.numLevels} levels · refine ${h.refine === 1 ? 'replace' : 'add'}` : ''}`,
    `LoD <b>${last ? last.lod : 0}</b>${h ? ` / ${h.numLevels}` : ''} · ${fmtBytes(state.received)} / ${fmtBytes(state.total)}${mbit ? ` · ${mbit} Mbit/s` : ''}`,
    last ? `${last.lodAnchors.toLocaleString('en')} anchors (${last.drawn.toLocaleString('en')} drawn) · ${last.splats.toLocaleString('en')} splats` : 'waiting for LoD 1…',
  ];
  if (state.lods.length) {
    lines.push('<table><tr><th>LoD</th><th>kB</th><th>arrived</th><th>decode</th><th>9.1</th><th>shown</th></tr>'
      + state.lods.map((l) => `<tr><td>${l.lod}</td><td>${(l.byteEnd / 1e3).toFixed(1)}</td><td>${fmtMs(l.arrivedAt)}</td>`
        + `<td>${fmtMs(l.decodeMs)}</td><td>${fmtMs(l.genMs)}</td><td>${shownCell(l)}</td></tr>`).join('')
      + '</table><small>ms: arrival (from the navigation), decoding, Gaussians of spec 9.1, and from the last byte to the screen</small>');
  }
  overlay.innerHTML = lines.join('<br>');
}
function shownCell(l) {
  if (l.shownAt !== null) return `+${fmtMs(l.shownAt - l.arrivedAt)}`;
  // a LoD whose successor was ready before it reached the screen is skipped
  return state.lods.some((m) => m.lod > l.lod && m.shownAt !== null) ? 'skipped' : '…';
}
function escapeHtml(s) { return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]); }

function showError(errorClass, message) {
  if (state.error) return;
  state.error = { errorClass, message };
  state.status = 'error';
  errorBox.hidden = false;
  const decoded = state.lods.length;
  errorBox.textContent = `${errorClass ? `${errorClass} error` : 'error'}: ${message}`
    + (decoded ? ` (LoD ${decoded}, the last complete one, stays on screen)` : '');
  controller.abort();
  drawOverlay();
  dirty = true;
}

// ---- splats ------------------------------------------------------------------------------
let mesh = null;          // what Spark draws
let pending = null;       // {mesh, record}: waiting until Spark's sorted display holds it
let dirty = true;

function toMesh(s) {
  const n = s.count;
  const max = utils.computeMaxSplats(Math.max(n, 1));
  const ext = [new Uint32Array(4 * max), new Uint32Array(4 * max)];
  const { means: m, scales: sc, quats: q, opacities: o, colors: c } = s;
  for (let i = 0; i < n; i++) {
    // spec 9.1 quaternions are (w, x, y, z); Spark takes x, y, z, w
    utils.encodeExtSplat(ext, i, m[3 * i], m[3 * i + 1], m[3 * i + 2], sc[3 * i], sc[3 * i + 1], sc[3 * i + 2],
      q[4 * i + 1], q[4 * i + 2], q[4 * i + 3], q[4 * i], o[i], c[3 * i], c[3 * i + 1], c[3 * i + 2]);
  }
  return new SplatMesh({ extSplats: new ExtSplats({ extArrays: ext, numSplats: n }) });
}

let queued = null;        // splats that wait until the pending LoD has been on screen once

function onSplats(s) {
  // every LoD is shown at least once: a LoD that arrives while the previous one is still
  // being sorted waits for it (camera updates simply replace each other)
  if (pending?.record) { queued = s; return; }
  const record = state.lods[s.lod - 1];
  const fresh = record && record.shownAt === null && record.splats === null;
  const next = toMesh(s);
  if (mesh) scene.remove(mesh);
  if (pending && pending.mesh !== mesh) { scene.remove(pending.mesh); pending.mesh.dispose?.(); }
  scene.add(next);
  const old = pending ? pending.old : mesh;
  mesh = next;
  pending = { mesh: next, record: fresh ? record : null, old };
  if (fresh) {
    record.splats = s.count;
    record.drawn = s.drawn;
    record.lodAnchors = s.lodAnchors;
    record.genMs = s.genMs;
    record.splatsAt = performance.now() - state.startedAt;
  }
  dirty = true;
}

// Spark compiles its shaders and starts its sort worker on the first splats it draws: one
// invisible splat (black on black) while the header downloads, so that LoD 1 does not wait.
function warmUp() {
  const ext = [new Uint32Array(4 * utils.computeMaxSplats(1)), new Uint32Array(4 * utils.computeMaxSplats(1))];
  utils.encodeExtSplat(ext, 0, 0, 0, -1, 0.01, 0.01, 0.01, 0, 0, 0, 1, 0.02, 0, 0, 0);
  mesh = new SplatMesh({ extSplats: new ExtSplats({ extArrays: ext, numSplats: 1 }) });
  scene.add(mesh);
}

function displayed(m) {
  const mapping = spark.display?.mapping;
  return Array.isArray(mapping) && mapping.some((e) => e.node === m) && spark.activeSplats > 0;
}

// ---- camera updates: the Gaussians depend on the view (9.1) --------------------------------
let lastEye = null;
let cameraTimer = 0;
function cameraMoved() {
  if (!worker || state.error) return;
  if (cameraTimer) return;
  cameraTimer = setTimeout(() => {
    cameraTimer = 0;
    const eye = camera.position.toArray();
    if (lastEye && Math.hypot(eye[0] - lastEye[0], eye[1] - lastEye[1], eye[2] - lastEye[2]) < 1e-6) return;
    lastEye = eye;
    worker.postMessage({ type: 'camera', eye });
  }, 120);
}

// ---- frame loop --------------------------------------------------------------------------
let stepResolve = null;
state.next = () => { const r = stepResolve; stepResolve = null; r?.(); };
function frame() {
  requestAnimationFrame(frame);
  if (!dirty && !pending) return;
  dirty = false;
  renderer.render(scene, camera);
  if (pending && displayed(pending.mesh)) {
    const { record, old } = pending;
    pending = null;
    old?.dispose?.();
    if (record && record.shownAt === null) {
      renderer.getContext().finish();
      record.shownAt = performance.now() - state.startedAt;
      state.shown = record.lod;
      drawOverlay();
    }
    if (queued) { const q = queued; queued = null; onSplats(q); }
  }
}

// ---- streaming ---------------------------------------------------------------------------
const controller = new AbortController();
let worker = null;

async function start() {
  resize();
  window.addEventListener('resize', () => { if (!fixedSize) resize(); });
  warmUp();
  requestAnimationFrame(frame);
  let view;
  try {
    view = parseCam(params.get('cam'));
  } catch (e) {
    showError(null, e.message);
    return;
  }
  if (view) { setView(view, true); lastEye = view.eye; }
  worker = new Worker(new URL('./viewer-worker.js', import.meta.url), { type: 'module' });
  let headerReady;
  let headerFailed;
  const header = new Promise((resolve, reject) => { headerReady = resolve; headerFailed = reject; });
  header.catch(() => {});
  const waitShown = (lod) => new Promise((resolve) => {
    const check = () => ((state.lods[lod - 1]?.shownAt ?? null) !== null || state.error ? resolve() : setTimeout(check, 5));
    check();
  });
  const doneMsg = new Promise((resolve) => {
    worker.onmessage = ({ data }) => {
      switch (data.type) {
        case 'header':
          state.header = { ...data.frame, refine: data.refine, toc: data.toc };
          headerReady({ toc: data.toc });
          drawOverlay();
          break;
        case 'view':
          if (!view) { setView(data.view); lastEye = data.view.eye; }
          break;
        case 'level':
          state.lods[data.lod - 1] = {
            lod: data.lod, count: data.count, lodAnchors: data.lodAnchors, drawn: null, splats: null,
            decodeMs: data.decodeMs, genMs: null, byteEnd: data.byteEnd,
            arrivedAt: levelArrival[data.lod] ?? performance.now() - state.startedAt, shownAt: null,
          };
          drawOverlay();
          break;
        case 'splats':
          onSplats(data);
          break;
        case 'done':
          resolve(data);
          break;
        case 'error':
          showError(data.errorClass, data.message);
          headerFailed(new Error(data.message));
          resolve(null);
          break;
        default:
      }
    };
    worker.onerror = (e) => { showError(null, e.message || 'the decoder worker failed'); resolve(null); };
  });
  worker.postMessage({ type: 'start', maxLod, view });
  state.status = 'streaming';
  const levelArrival = {};
  const throttle = new Throttle(mbit > 0 ? (mbit * 1e6) / 8 : null, rtt);
  let result;
  state.requestAt = performance.now();
  try {
    result = await fetchLevels(src, {
      maxLod,
      throttle,
      fetch: (url, init) => fetch(url, { ...init, signal: controller.signal }),
      deliver: (bytes) => {
        state.received += bytes.length;
        const copy = bytes.slice();
        worker.postMessage({ type: 'chunk', bytes: copy }, [copy.buffer]);
      },
      header: () => header,
      onTotal: ({ total, ranges }) => { state.total = total; state.ranges = ranges; },
      onLevelBytes: async (k) => {
        levelArrival[k] = performance.now() - state.startedAt;
        if (state.lods[k - 1]) state.lods[k - 1].arrivedAt = levelArrival[k];
        if (step) {
          await waitShown(k);
          if (!state.error) await new Promise((r) => { stepResolve = r; });
        }
      },
    });
  } catch (e) {
    if (!state.error) showError(e.errorClass ?? 'network', e.message);
    return;
  }
  if (state.error) return;
  worker.postMessage({ type: 'close', strict: !result.complete, maxLod });
  const done = await doneMsg;
  if (!done || state.error) return;
  const target = done.lod;
  const wait = () => (state.shown >= target || state.error ? null : new Promise((r) => setTimeout(r, 10)).then(wait));
  await wait();
  state.doneAt = performance.now() - state.startedAt;
  if (!state.error) state.status = 'done';
  drawOverlay();
}

start().catch((e) => showError(null, e.message));
