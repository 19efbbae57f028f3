// Web Worker front end of the decoder. Module worker:
//   const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
//
// Messages to the worker:
//   {type: 'start', maxLod?, strict?, maxAnchors?}   (optional; a fresh decoder, all levels)
//   {type: 'chunk', bytes: ArrayBuffer | Uint8Array} bytes of the stream, in order
//   {type: 'close'}                                  end of input
// Messages from the worker:
//   {type: 'header', frame, toc, version, gaussianMlps, refine}  once HEAD is parsed (refine:
//                                                    0 add, 1 replace, 3.5; gaussianMlps:
//                                                    null, or plain data with binary32
//                                                    arrays W1 b1 W2 b2 per MLP and the
//                                                    binary16 bits as `half`)
//   {type: 'level', level, bytesReceived}            each decoded level (level.decodeMs:
//                                                    its decode time); its typed arrays
//                                                    are transferred (not copied)
//   {type: 'done', lod, complete, bytesReceived}     after close (or when the requested
//                                                    LoD is decoded)
//   {type: 'error', errorClass, name, message}       a ProgsError (or another failure,
//                                                    errorClass null); the decoder stops
//
// Only standard APIs (postMessage, structured clone with transfer): no Node-only API.

import { Decoder } from './decoder.js';
import { ProgsError } from './errors.js';

/** The typed-array buffers of a level, for the transfer list. */
export function levelTransferables(level) {
  const out = [];
  const add = (a) => { if (a && a.buffer && !out.includes(a.buffer)) out.push(a.buffer); };
  add(level.coords); add(level.parentIndex); add(level.octant); add(level.positions);
  if (level.context) { add(level.context.mean); add(level.context.scaleIndex); add(level.context.stepIndex); }
  if (level.symbols) level.symbols.forEach(add);
  Object.values(level.attributes).forEach(add);
  return out;
}

/**
 * Wire a decoder to a message port (the worker's global scope by default). Exported for
 * tests, which pass a fake port.
 * @param {{postMessage: Function, addEventListener?: Function, onmessage?: Function}} port
 */
export function attach(port) {
  let decoder = null;
  let headerSent = false;
  let finished = false;

  const fail = (e) => {
    finished = true;
    port.postMessage({
      type: 'error',
      errorClass: e instanceof ProgsError ? e.errorClass : null,
      name: e && e.name,
      message: e && e.message ? e.message : String(e),
    });
  };
  const start = (opts = {}) => {
    decoder = new Decoder({ maxLod: opts.maxLod, strict: opts.strict, maxAnchors: opts.maxAnchors, keepLevels: false });
    headerSent = false;
    finished = false;
  };
  const onChunk = (bytes) => {
    if (!decoder) start();
    if (finished) return;
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const levels = decoder.feed(u8);
    if (!headerSent && decoder.header) {
      headerSent = true;
      const h = decoder.header;
      const gm = h.gaussianMlps;
      const gaussianMlps = gm && { flags: gm.flags, useDistance: gm.useDistance, hiddenWidth: gm.hiddenWidth,
        inputWidth: gm.inputWidth, half: gm.half, mlps: gm.mlps.map((m) => m.toJSON()) };
      port.postMessage({ type: 'header', frame: h.frame, toc: h.toc, version: decoder.version, gaussianMlps, refine: h.refine });
    }
    for (const level of levels) {
      // the decoder keeps its own references to the coordinates for the next level: copy
      // those, transfer everything else
      const msg = { ...level, coords: level.coords.slice() };
      port.postMessage({ type: 'level', level: msg, bytesReceived: decoder.bytesReceived }, levelTransferables(msg));
    }
    if (decoder.done) {
      finished = true;
      port.postMessage({ type: 'done', lod: decoder.lod, complete: decoder.ended, bytesReceived: decoder.bytesReceived });
    }
  };
  const onClose = () => {
    if (!decoder) start();
    if (finished) return;
    const model = decoder.close();
    finished = true;
    port.postMessage({ type: 'done', lod: model.lod, complete: model.complete, bytesReceived: decoder.bytesReceived });
  };
  const handler = (ev) => {
    const m = ev.data;
    try {
      if (m.type === 'start') start(m);
      else if (m.type === 'chunk') onChunk(m.bytes);
      else if (m.type === 'close') onClose();
    } catch (e) {
      fail(e);
    }
  };
  if (port.addEventListener) port.addEventListener('message', handler);
  else port.onmessage = handler;
  return handler;
}

// Inside a worker (DedicatedWorkerGlobalScope), attach to it.
if (typeof self !== 'undefined' && typeof self.postMessage === 'function' && typeof window === 'undefined') {
  attach(self);
}
