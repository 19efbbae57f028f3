// The viewer's worker: decodes the stream as its bytes arrive (src/decoder.js) and turns each
// LoD into the Gaussians one camera sees (src/gaussians.js, spec 9.1), off the page's thread.
//
// To the worker:  {type: 'start', maxLod, view}   view: {eye, target, up, fov} or null
//                 {type: 'chunk', bytes}          the stream's next bytes, in order
//                 {type: 'close', strict}         end of input
//                 {type: 'camera', eye}           the camera moved: Gaussians for this centre
// From it:        {type: 'header', frame, toc, refine, version}
//                 {type: 'view', view}            the default view, framed on LoD 1
//                 {type: 'level', lod, count, lodAnchors, decodeMs, byteEnd}
//                 {type: 'splats', lod, seq, count, drawn, lodAnchors, genMs, means, ...}
//                 {type: 'done', lod, complete}
//                 {type: 'error', errorClass, message}
import { Decoder } from '../src/decoder.js';
import { GaussianGenerator, gatherAnchors } from '../src/gaussians.js';
import { defaultView } from './view.js';

let decoder = null;
let generator = null;
let header = null;
let levels = [];
let lod = 0;
let eye = null;
let anchors = null;          // gathered drawn anchors of LoD `lod`
let seq = 0;
let regenerate = 0;          // a camera update waiting to be served
let failed = false;

function fail(e) {
  failed = true;
  postMessage({ type: 'error', errorClass: e?.errorClass ?? null, name: e?.name ?? 'Error', message: String(e?.message ?? e) });
}

function emitSplats() {
  if (!anchors || !generator || !eye) return;
  const t0 = performance.now();
  const g = generator.generate(anchors, eye);
  const genMs = performance.now() - t0;
  const msg = {
    type: 'splats', lod, seq: ++seq, count: g.count, drawn: anchors.count, lodAnchors: anchors.lodAnchors, genMs,
    means: g.means.slice(), scales: g.scales.slice(), quats: g.quats.slice(), opacities: g.opacities.slice(), colors: g.colors.slice(),
  };
  postMessage(msg, [msg.means.buffer, msg.scales.buffer, msg.quats.buffer, msg.opacities.buffer, msg.colors.buffer]);
}

function onLevels(done) {
  if (!header && decoder.header) {
    header = decoder.header;
    postMessage({ type: 'header', frame: header.frame, toc: header.toc, refine: header.refine, version: decoder.version });
    if (header.gaussianMlps) generator = new GaussianGenerator(header.gaussianMlps, header.frame);
    else throw new Error('this stream carries no Gaussian-generation MLPs (spec 3.4): there is nothing to draw');
    if (header.frame.scalingDim !== 6) throw new Error(`Scaffold-GS generation needs 6 scaling channels, the stream has ${header.frame.scalingDim}`);
  }
  for (const level of done) {
    levels.push(level);
    lod = levels.length;
    let lodAnchors = 0;
    for (const l of levels) lodAnchors += l.count;
    postMessage({ type: 'level', lod, count: level.count, lodAnchors, decodeMs: level.decodeMs, byteEnd: level.byteEnd });
    if (!eye) {
      const view = defaultView(level.positions, header.frame.convention);
      eye = view.eye;
      postMessage({ type: 'view', view });
    }
  }
  if (done.length) {
    anchors = gatherAnchors(levels, header.frame, lod, header.refine);
    emitSplats();
  }
}

self.onmessage = ({ data }) => {
  if (failed) return;
  try {
    switch (data.type) {
      case 'start':
        decoder = new Decoder({ maxLod: data.maxLod ?? 16, strict: false });
        header = null; levels = []; lod = 0; anchors = null; generator = null;
        eye = data.view ? data.view.eye : null;
        break;
      case 'chunk':
        onLevels(decoder.feed(data.bytes instanceof Uint8Array ? data.bytes : new Uint8Array(data.bytes)));
        break;
      case 'close': {
        // strict: what was asked for must be there (8.3); the page passes it when the
        // server said how long the stream is
        let model;
        try {
          model = decoder.close();
        } catch (e) {
          onLevels([]);
          throw e;
        }
        if (data.strict && !model.complete && model.lod < Math.min(data.maxLod ?? 16, model.frame.numLevels)) {
          const e = new Error(`the stream ends after LoD ${model.lod} of ${model.frame.numLevels}`);
          e.errorClass = 'truncated';
          e.name = 'TruncatedError';
          throw e;
        }
        postMessage({ type: 'done', lod: model.lod, complete: model.complete });
        break;
      }
      case 'camera':
        eye = data.eye;
        if (!regenerate) {
          regenerate = setTimeout(() => { regenerate = 0; if (!failed) emitSplats(); }, 0);
        }
        break;
      default:
        break;
    }
  } catch (e) {
    fail(e);
  }
};
