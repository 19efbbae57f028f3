// The Gaussians of spec 9.1 that src/gaussians.js generates, for tests against the Python
// reference (tests/test_web_gaussians.py):
//   node web/tools/dump_gaussians.mjs INPUT LOD CX,CY,CZ OUTPUT
// OUTPUT: u32 count, u32 drawn anchors, u32 LoD anchors, u8 refine, then float32 arrays means
// [count, 3], scales [count, 3], quats [count, 4] (w, x, y, z), opacities [count],
// colors [count, 3], then the drawn mask (u8 per LoD anchor).
import { readFileSync, writeFileSync } from 'node:fs';
import { decode } from '../src/index.js';
import { drawnMask, GaussianGenerator, gatherAnchors } from '../src/gaussians.js';

const [input, lodText, centerText, output] = process.argv.slice(2);
const model = decode(new Uint8Array(readFileSync(input)));
const lod = Number(lodText);
const center = centerText.split(',').map(Number);
const anchors = gatherAnchors(model.levels, model.frame, lod, model.refine);
const g = new GaussianGenerator(model.gaussianMlps, model.frame).generate(anchors, center);
const mask = drawnMask(model.levels, lod, model.refine);
const head = new Uint8Array(13);
const dv = new DataView(head.buffer);
dv.setUint32(0, g.count, true);
dv.setUint32(4, anchors.count, true);
dv.setUint32(8, anchors.lodAnchors, true);
head[12] = model.refine;
const parts = [head, g.means, g.scales, g.quats, g.opacities, g.colors, mask]
  .map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength));
writeFileSync(output, Buffer.concat(parts));
