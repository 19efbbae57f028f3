// Unit tests per spec layer, against hand-computed values and small independent BigInt
// implementations of the spec's formulas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BitReader, crc32, f16BitsToF32Bits, readLeb128 } from '../src/bytes.js';
import { CodingTable, RansDecoder } from '../src/rans.js';
import { gridFeatures, tableLayout } from '../src/hashgrid.js';
import { maskTable, morton16 } from '../src/structure.js';
import { readEscape, stepTable } from '../src/attributes.js';
import { parseContextModel, evaluateContext } from '../src/context.js';
import { anchorPositions } from '../src/level.js';
import { FormatError, LimitError, ProgsError, ChecksumError, TruncatedError, UnsupportedError } from '../src/errors.js';
import { rng } from './helpers.mjs';

// --- chapter 1: bytes, bits -------------------------------------------------------------------

test('CRC-32 (ISO-HDLC, zlib) check value', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  // incremental = one shot
  const b = new TextEncoder().encode('HEADsome payload bytes');
  assert.equal(crc32(b, 4, b.length, crc32(b, 0, 4)), crc32(b));
});

test('packed bits are read MSB first (1.2)', () => {
  // 0b101_00111 0b1000_0000: fields 3 bits (5), 5 bits (7), 1 bit (1)
  const br = new BitReader(Uint8Array.of(0b10100111, 0b10000000));
  assert.equal(br.bits(3), 5);
  assert.equal(br.bits(5), 7);
  assert.equal(br.bit(), 1);
  assert.equal(br.bitsLeft, 7);
  // a 23-bit field across three bytes, then 48 bits
  const b2 = new BitReader(Uint8Array.of(0xff, 0xff, 0xfe, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc));
  assert.equal(b2.bits(23), 2 ** 23 - 1);
  assert.equal(b2.bits(1), 0);
  assert.equal(b2.bits(48), 0x123456789abc);
  assert.equal(b2.bit(), -1);
});

test('unsigned LEB128 (4.6)', () => {
  assert.deepEqual(readLeb128(Uint8Array.of(0x01), 0, 1), [1, 1]);
  assert.deepEqual(readLeb128(Uint8Array.of(0xe5, 0x8e, 0x26), 0, 3), [624485, 3]);
  assert.deepEqual(readLeb128(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f), 0, 5), [2 ** 32 - 1, 5]);
  assert.equal(readLeb128(Uint8Array.of(0x80, 0x80), 0, 2), null);                  // runs past the end
  assert.equal(readLeb128(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01), 0, 6), null); // > 5 bytes
});

test('binary16 widening is exact', () => {
  const f32 = (bits) => new Float32Array(new Uint32Array([bits]).buffer)[0];
  assert.equal(f32(f16BitsToF32Bits(0x3c00)), 1);
  assert.equal(f32(f16BitsToF32Bits(0xc000)), -2);
  assert.equal(f32(f16BitsToF32Bits(0x7bff)), 65504);
  assert.equal(f32(f16BitsToF32Bits(0x0001)), 2 ** -24);           // smallest subnormal
  assert.equal(f32(f16BitsToF32Bits(0x03ff)), 1023 * 2 ** -24);    // largest subnormal
  assert.equal(f32(f16BitsToF32Bits(0x0400)), 2 ** -14);           // smallest normal
  assert.ok(Object.is(f32(f16BitsToF32Bits(0x8000)), -0));
  assert.equal(f16BitsToF32Bits(0x7c00), -1);                       // inf
  assert.equal(f16BitsToF32Bits(0xfe00), -1);                       // NaN
});

// --- chapter 2, 8.4: error classes ------------------------------------------------------------

test('error classes (8.4)', () => {
  const cases = [[FormatError, 'format'], [ChecksumError, 'checksum'], [TruncatedError, 'truncated'],
    [UnsupportedError, 'unsupported'], [LimitError, 'limit']];
  for (const [E, name] of cases) {
    const e = new E('x', { chunk: 'HEAD', field: 'f', offset: 3 });
    assert.ok(e instanceof ProgsError);
    assert.ok(e instanceof FormatError);   // every class refines format
    assert.equal(e.errorClass, name);
    assert.match(e.message, /chunk HEAD, field f, offset 3/);
  }
});

// --- 7.4: rANS ----------------------------------------------------------------------------------

// The informative encoder of 7.4, in BigInt.
function ransEncode(symbols, tables) {
  let state = 0n;
  const words = [];
  for (let n = symbols.length - 1; n >= 0; n--) {
    const t = tables[n];
    const i = symbols[n];
    const f = BigInt(t[i]);
    const l = BigInt(t.slice(0, i).reduce((a, b) => a + b, 0));
    if ((state >> 40n) >= f) { words.push(Number(state & 0xffffffffn)); state >>= 32n; }
    state = ((state / f) << 24n) | (l + (state % f));
  }
  while (state > 0n) { words.push(Number(state & 0xffffffffn)); state >>= 32n; }
  return Uint32Array.from(words);
}

test('rANS: hand-computed example (7.4)', () => {
  // table [2**22, 3 * 2**22]; symbols 1, 0, 1. Encoding (reverse order) from state 0:
  // s=1: state = 0 << 24 | (2**22 + 0) = 4194304; s=0: state = (4194304 // 2**22) << 24 | 0
  // = 16777216; s=1: (16777216 // 12582912) << 24 | (4194304 + 4194304) = 25165824; flush:
  // words = [25165824]. Decoding: q = 8388608 -> symbol 1, state = 12582912 * 1 + 8388608 -
  // 4194304 = 16777216; q = 0 -> symbol 0, state = 4194304; q = 4194304 -> symbol 1, state 0.
  const t = [2 ** 22, 3 * 2 ** 22];
  assert.deepEqual(Array.from(ransEncode([1, 0, 1], [t, t, t])), [25165824]);
  const table = new CodingTable(t);
  const d = new RansDecoder(Uint32Array.of(25165824));
  assert.equal(d.decode(table), 1);
  assert.equal(d.a * 2 ** 24 + d.q, 16777216);
  assert.equal(d.decode(table), 0);
  assert.equal(d.a * 2 ** 24 + d.q, 4194304);
  assert.equal(d.decode(table), 1);
  d.endCheck();
});

test('rANS: initial state and end check (7.4)', () => {
  assert.throws(() => new RansDecoder(Uint32Array.of(5, 0)), FormatError);   // last word 0
  const empty = new RansDecoder(new Uint32Array(0));
  empty.endCheck();
  const left = new RansDecoder(Uint32Array.of(7, 1, 2));   // state = 2 << 32 | 1, word 7 left
  assert.equal(left.a * 2 ** 24 + left.q, 2 * 2 ** 32 + 1);
  assert.throws(() => left.endCheck(), /left over/);
  assert.throws(() => new RansDecoder(Uint32Array.of(3)).endCheck(), /state is not 0/);
});

test('rANS: random round trips through 64-bit states, skewed and flat tables', () => {
  const rand = rng(7);
  const tables = [
    [1, 2 ** 24 - 2, 1],                      // extreme skew: state grows by ~24 bits per rare symbol
    [2 ** 23, 2 ** 23],
    Array.from({ length: 256 }, () => 65536),
    [47, 16777121, 47, 1],                    // scale table 0 of frequencies.txt
  ];
  for (let round = 0; round < 40; round++) {
    const n = 1 + Math.floor(rand() * 400);
    const ts = [], syms = [];
    for (let i = 0; i < n; i++) {
      const t = tables[Math.floor(rand() * tables.length)];
      ts.push(t);
      // draw mostly likely symbols, sometimes rare ones
      let s;
      if (rand() < 0.2) s = Math.floor(rand() * t.length);
      else { let q = rand() * 2 ** 24; s = 0; while (q >= t[s]) { q -= t[s]; s++; } }
      syms.push(s);
    }
    const words = ransEncode(syms, ts);
    const d = new RansDecoder(words);
    const built = new Map();
    const got = ts.map((t) => {
      if (!built.has(t)) built.set(t, new CodingTable(t));
      return d.decode(built.get(t));
    });
    assert.deepEqual(got, syms);
    d.endCheck();
    // decodeRun and decodeBits agree with decode
    const binary = syms.map(() => (rand() < 0.3 ? 1 : 0));
    const f0 = 2 ** 24 - 5033165;
    const bw = ransEncode(binary, binary.map(() => [f0, 2 ** 24 - f0]));
    const out = new Uint32Array(Math.ceil(binary.length / 32));
    const bd = new RansDecoder(bw);
    const ones = bd.decodeBits(binary.length, f0, out);
    bd.endCheck();
    assert.equal(ones, binary.reduce((a, b) => a + b, 0));
    binary.forEach((b, i) => assert.equal((out[i >>> 5] >>> (i & 31)) & 1, b));
  }
});

// --- chapter 5: hash grid ---------------------------------------------------------------------

// 5.3 in BigInt, straight from the text, for one voxel.
function refFeature(cfg, bitsArray, c, d) {
  const out = [];
  const W = 8n;
  const { tables } = tableLayout(cfg.Fl, cfg.res3, cfg.B3, cfg.res2, cfg.B2);
  for (const tab of tables) {
    const n = tab.dim;
    const cc = tab.axes.map((ax) => BigInt(c[ax]));
    const R = BigInt(tab.R);
    const D1 = BigInt(d + 1);
    const i = [], w = [];
    for (const cj of cc) {
      const u = (2n * cj + 1n) * R;
      const ij = u >> D1;
      i.push(ij);
      w.push(((u - (ij << D1)) << W) >> D1);
    }
    for (let f = 0; f < cfg.Fl; f++) {
      let S = 0n;
      for (let b = 0; b < 1 << n; b++) {
        const bj = [];
        for (let j = 0; j < n; j++) bj.push(BigInt((b >> (n - 1 - j)) & 1));
        const v = i.map((x, j) => x + bj[j]);
        let weight = 1n;
        for (let j = 0; j < n; j++) weight *= bj[j] ? w[j] : (1n << W) - w[j];
        let e;
        if (tab.dense) {
          e = n === 3 ? v[0] + (R + 1n) * v[1] + (R + 1n) ** 2n * v[2] : v[0] + (R + 1n) * v[1];
        } else {
          let h = (v[0] * 1n) % 2n ** 32n ^ (v[1] * 2654435761n) % 2n ** 32n;
          if (n === 3) h ^= (v[2] * 805459861n) % 2n ** 32n;
          e = h % 2n ** 32n % BigInt(tab.E);
        }
        const p = tab.offset + Number(e) * cfg.Fl + f;
        S += weight * (bitsArray[p] ? 1n : -1n);
      }
      const nW = BigInt(n) * W;
      out.push(Number((S * 127n + (1n << (nW - 1n))) >> nW));
    }
  }
  return out;
}

function makeGrid(cfg, bitsArray) {
  const { tables, P } = tableLayout(cfg.Fl, cfg.res3, cfg.B3, cfg.res2, cfg.B2);
  const bits = new Uint32Array(Math.ceil(P / 32));
  bitsArray.forEach((b, i) => { if (b) bits[i >>> 5] |= 1 << (i & 31); });
  return { featuresPerLevel: cfg.Fl, tables, P, gridWidth: cfg.Fl * tables.length, bits };
}

test('hash grid: hand-computed cell, weights and feature (5.3)', () => {
  // One dense 3D table R = 1 (8 entries), F_l = 1, +1 only at vertex (0,0,0). Voxel (0,0,0)
  // at depth 0: u = 1, i = 0, w = (1 << 8) >> 1 = 128 on every axis, every corner weight
  // 2**21: S = 2**21 - 7 * 2**21 = -12582912, q = (S * 127 + 2**23) >> 24 = floor(-94.75) = -95.
  const cfg = { Fl: 1, res3: [1], B3: 14, res2: [], B2: 1 };
  const bitsArray = [1, 0, 0, 0, 0, 0, 0, 0];
  const out = gridFeatures(makeGrid(cfg, bitsArray), Uint32Array.of(0, 0, 0), 0);
  assert.deepEqual(Array.from(out), [-95]);
  assert.deepEqual(refFeature(cfg, bitsArray, [0, 0, 0], 0), [-95]);
  // All +1: q = (2**24 * 127 + 2**23) >> 24 = 127.
  assert.deepEqual(Array.from(gridFeatures(makeGrid(cfg, Array(8).fill(1)), Uint32Array.of(0, 0, 0), 0)), [127]);
  // Voxel (5, 0, 31) at depth 5 of R = 16: u = (176, 16, 1008), i = (2, 0, 15),
  // w = (192, 64, 192) (spec 5.3 with d + 1 = 6).
  const u = [176, 16, 1008];
  assert.deepEqual(u.map((x) => x >> 6), [2, 0, 15]);
  assert.deepEqual(u.map((x) => ((x - ((x >> 6) << 6)) << 8) >> 6), [192, 64, 192]);
});

test('hash grid: hashed entry index (5.2)', () => {
  // R = 54, B = 14: 55**3 > 2**14, hashed. Voxel (0,0,0) at depth 0: u = 54, i = 27, w = 0 on
  // every axis, so only vertex (27, 27, 27) has weight (2**8)**3 = 2**24. Its entry:
  // (27 ^ (27 * 2654435761 mod 2**32) ^ (27 * 805459861 mod 2**32)) mod 2**14.
  const h1 = (27n * 2654435761n) % 2n ** 32n;    // 2950288811
  const h2 = (27n * 805459861n) % 2n ** 32n;     // 272579767
  assert.equal(h1, 2950288811n);
  assert.equal(h2, 272579767n);
  const e = Number((27n ^ h1 ^ h2) % 16384n);
  const cfg = { Fl: 1, res3: [54], B3: 14, res2: [], B2: 1 };
  const bitsArray = new Array(16384).fill(0);
  bitsArray[e] = 1;
  const grid = makeGrid(cfg, bitsArray);
  assert.equal(grid.tables[0].dense, false);
  assert.equal(grid.tables[0].E, 16384);
  // +1 at that entry only: S = +2**24, q = 127; flip it and q = -127
  assert.deepEqual(Array.from(gridFeatures(grid, Uint32Array.of(0, 0, 0), 0)), [127]);
  bitsArray[e] = 0;
  bitsArray[(e + 1) % 16384] = 1;
  assert.deepEqual(Array.from(gridFeatures(makeGrid(cfg, bitsArray), Uint32Array.of(0, 0, 0), 0)), [-127]);
});

test('hash grid: gridFeatures equals the BigInt reference on random grids', () => {
  const rand = rng(11);
  const configs = [
    { Fl: 2, res3: [16, 24, 54], B3: 10, res2: [64, 128], B2: 9 },
    { Fl: 8, res3: [1, 65535], B3: 6, res2: [], B2: 1 },
    { Fl: 1, res3: [], B3: 1, res2: [3, 300], B2: 12 },
  ];
  for (const cfg of configs) {
    const { P } = tableLayout(cfg.Fl, cfg.res3, cfg.B3, cfg.res2, cfg.B2);
    const bitsArray = Array.from({ length: P }, () => (rand() < 0.5 ? 1 : 0));
    const grid = makeGrid(cfg, bitsArray);
    for (const d of [0, 1, 5, 21]) {
      const N = 12;
      const coords = new Uint32Array(3 * N);
      for (let i = 0; i < coords.length; i++) coords[i] = Math.floor(rand() * 2 ** d);
      coords[0] = coords[1] = coords[2] = 0;
      coords[3] = coords[4] = coords[5] = 2 ** d - 1;
      const out = gridFeatures(grid, coords, d);
      for (let a = 0; a < N; a++) {
        const ref = refFeature(cfg, bitsArray, Array.from(coords.subarray(3 * a, 3 * a + 3)), d);
        assert.deepEqual(Array.from(out.subarray(a * grid.gridWidth, (a + 1) * grid.gridWidth)), ref, `cfg ${JSON.stringify(cfg)} d ${d} a ${a}`);
      }
    }
  }
});

// --- chapter 4 ----------------------------------------------------------------------------------

test('Morton order (4.2)', () => {
  assert.equal(morton16(0, 0, 1), 1);
  assert.equal(morton16(0, 1, 0), 2);
  assert.equal(morton16(1, 0, 0), 4);
  assert.equal(morton16(0, 0, 2), 8);
  assert.equal(morton16(65535, 65535, 65535), 2 ** 48 - 1);
  assert.ok(morton16(1, 1, 1) < morton16(0, 0, 2));
});

test('occupancy mask table (4.6)', () => {
  const R = 2 ** 24 - 256;
  const counts = new Array(256).fill(0);
  counts[1] = 3; counts[255] = 1; counts[8] = 3;
  const f = maskTable(counts);
  assert.equal(f.reduce((a, b) => a + b, 0), 2 ** 24);
  const share = (c) => Math.floor((c * R) / 7);
  assert.equal(f[8], 1 + share(3));
  assert.equal(f[255], 1 + share(1));
  // w = the smallest v with the largest count: 1 (count 3, tied with 8)
  assert.equal(f[1], 1 + share(3) + (R - 2 * share(3) - share(1)));
  // H = 0: all 1, and the remainder R goes to v = 0
  const z = maskTable(new Array(256).fill(0));
  assert.equal(z[0], 1 + R);
  assert.equal(z.reduce((a, b) => a + b, 0), 2 ** 24);
  // counts near 2**32: needs more than 53 bits, exact through BigInt
  const big = new Array(256).fill(0);
  big[3] = 2 ** 32 - 1; big[7] = 2 ** 32 - 3; big[9] = 5;
  const fb = maskTable(big);
  const H = 2n ** 32n - 1n + 2n ** 32n - 3n + 5n;
  assert.equal(fb[7], 1 + Number((BigInt(2 ** 32 - 3) * BigInt(R)) / H));
  assert.equal(fb.reduce((a, b) => a + b, 0), 2 ** 24);
});

// --- chapter 6 ----------------------------------------------------------------------------------

function contextPart({ baseSteps, widths, layers }) {
  const bytes = [];
  const u = (v, n) => { for (let i = 0; i < n; i++) bytes.push(Number((BigInt(v) >> BigInt(8 * i)) & 0xffn)); };
  baseSteps.forEach((b) => u(b, 4));
  u(widths.length - 1, 1);
  widths.forEach((w) => u(w, 2));
  for (const L of layers) {
    L.W.flat().forEach((w) => u(w & 0xff, 1));
    L.b.forEach((b) => u(b >>> 0, 4));
    L.m.forEach((m) => u(m, 2));
    L.s.forEach((s) => u(s, 1));
  }
  return Uint8Array.from(bytes);
}

test('context model: hand-computed requantization (6.2, 6.4)', () => {
  // G = 1 (I = 2), one hidden unit, C = 1 (3 outputs).
  // hidden: acc = 3*10 + (-2)*(-5) + 1 = 41; y = (41 * 3 + 2) >> 2 = 125 >> 2 = 31
  // out mean: acc = 100*31 - 7 = 3093; m = 65535, s = 0: 202699755 -> clipped 2**24 - 1
  // out scale: acc = -1*31 + 0 = -31, m = 1, s = 1: (-31 + 1) >> 1 = -15 -> 0
  // out step: acc = 2*31 + 5 = 67, m = 3, s = 3: (201 + 4) >> 3 = 25
  const part = contextPart({
    baseSteps: [1, 2, 3], widths: [2, 1, 3],
    layers: [
      { W: [[3, -2]], b: [1], m: [3], s: [2] },
      { W: [[100], [-1], [2]], b: [-7, 0, 5], m: [65535, 1, 3], s: [0, 1, 3] },
    ],
  });
  const model = parseContextModel(part, 1, 1);
  const r = evaluateContext(model, Float64Array.of(10, -5), 1);
  assert.deepEqual([r.mean[0], r.scaleIndex[0], r.stepIndex[0]], [2 ** 24 - 1, 0, 25]);
  // a negative round half up: acc = -3, m = 1, s = 1: (-3 + 1) >> 1 = -1
  const part2 = contextPart({
    baseSteps: [1, 1, 1], widths: [2, 3],
    layers: [{ W: [[-1, 0], [0, 0], [0, 0]], b: [0, 40, 0], m: [1, 1, 1], s: [1, 0, 40] }],
  });
  const r2 = evaluateContext(parseContextModel(part2, 1, 1), Float64Array.of(3, 0), 1);
  assert.deepEqual([r2.mean[0], r2.scaleIndex[0], r2.stepIndex[0]], [-1, 40, 0]);
});

test('context model part checks (6.5)', () => {
  const ok = { baseSteps: [1, 1, 1], widths: [2, 3], layers: [{ W: [[1, 1], [1, 1], [1, 1]], b: [0, 0, 0], m: [1, 1, 1], s: [0, 0, 0] }] };
  parseContextModel(contextPart(ok), 1, 1);
  assert.throws(() => parseContextModel(contextPart(ok), 2, 1), FormatError);           // input width != 2G
  assert.throws(() => parseContextModel(contextPart({ ...ok, baseSteps: [0, 1, 1] }), 1, 1), LimitError);
  assert.throws(() => parseContextModel(contextPart({ ...ok, layers: [{ ...ok.layers[0], s: [41, 0, 0] }] }), 1, 1), LimitError);
  assert.throws(() => parseContextModel(contextPart({ ...ok, layers: [{ ...ok.layers[0], W: [[-128, 1], [1, 1], [1, 1]] }] }), 1, 1), LimitError);
  const longer = Uint8Array.from([...contextPart(ok), 0]);
  assert.throws(() => parseContextModel(longer, 1, 1), FormatError);
});

// --- chapter 7 ----------------------------------------------------------------------------------

test('step tables (7.2)', () => {
  const s = stepTable(1);
  assert.equal(s[0], 1);                                   // max(1, (1024 + 2048) >> 12 = 0)
  assert.equal(s[16], 1);
  const b = stepTable(2 ** 20);
  assert.equal(b[16], 2 ** 20);
  assert.equal(b[31], Math.floor((2 ** 20 * 15024 + 2048) / 4096));
  assert.equal(stepTable(100)[0], Math.floor((100 * 1024 + 2048) / 4096));
});

test('escape codes (7.5)', () => {
  // m = 0: "1" then sign 0 -> k = T + 1; m = 4: m + 1 = 5 = 0b101: "00" "1" "01" sign 1
  const br = new BitReader(Uint8Array.of(0b10001011, 0b00000000));
  assert.equal(readEscape(br, 3, {}), 4);
  assert.equal(readEscape(br, 3, {}), -(4 + 3 + 1));
  assert.equal(br.bitPos, 8);
  // 24 leading zeros is allowed: m + 1 = 2**24 + b
  const max = new BitReader(Uint8Array.of(0, 0, 0, 0x80 | 0x7f, 0xff, 0xff, 0xff));
  assert.equal(readEscape(max, 0, {}), -(2 ** 25 - 1));
  // 25 zeros
  assert.throws(() => readEscape(new BitReader(Uint8Array.of(0, 0, 0, 0x40, 0)), 0, {}), /more than 24 leading zeros/);
  // ends inside a code
  assert.throws(() => readEscape(new BitReader(Uint8Array.of(0b00000010)), 0, {}), /ends inside a code/);
  assert.throws(() => readEscape(new BitReader(Uint8Array.of(0)), 0, {}), /ends inside a code/);
});

// --- 3.1 / 10.2: positions ----------------------------------------------------------------------

test('anchor positions: binary64 then one rounding to binary32 (10.2)', () => {
  const f = Math.fround;
  const frame = { origin: [f(-3.4028234663852886e38), f(0.1), f(1e-3)], rootVoxelSize: f(1.401298464324817e-45) };
  const pos = anchorPositions(frame, Uint32Array.of(7, 2 ** 21 - 1, 12345), 16);
  const size = frame.rootVoxelSize / 2 ** 15;
  assert.equal(pos[0], f(frame.origin[0] + 7.5 * size));
  assert.equal(pos[1], f(frame.origin[1] + (2 ** 21 - 0.5) * size));
  assert.equal(pos[2], f(frame.origin[2] + 12345.5 * size));
  // a case where rounding straight to binary32 would differ from binary64 first
  const fr2 = { origin: [f(1), f(0), f(0)], rootVoxelSize: f(2 ** -23) };
  const p2 = anchorPositions(fr2, Uint32Array.of(0, 1, 2), 1);
  assert.equal(p2[0], f(1 + 0.5 * 2 ** -23));   // ties to even in binary32 -> 1
  assert.equal(p2[0], 1);
  assert.equal(p2[1], f(1.5 * 2 ** -23));
});
