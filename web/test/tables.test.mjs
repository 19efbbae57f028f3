// web/src/tables.js is what web/tools/make_tables.mjs generates from spec/tables (spec 7.3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { OUTPUT, readSpecTables, renderModule } from '../tools/make_tables.mjs';
import { FREQUENCIES, HALF_WIDTHS, STEP_MULTIPLIERS } from '../src/tables.js';

test('generated tables.js is up to date with spec/tables', () => {
  assert.equal(readFileSync(OUTPUT, 'utf8'), renderModule(readSpecTables()),
    'run node web/tools/make_tables.mjs');
});

test('tables.js holds the spec values', () => {
  const spec = readSpecTables();
  assert.deepEqual(HALF_WIDTHS, spec.halfWidths);
  assert.deepEqual(STEP_MULTIPLIERS, spec.stepMultipliers);
  assert.deepEqual(FREQUENCIES, spec.frequencies);
  assert.equal(STEP_MULTIPLIERS[16], 4096);
  for (let s = 0; s < 64; s++) {
    assert.equal(FREQUENCIES[s].length, 2 * HALF_WIDTHS[s] + 2);
    assert.equal(FREQUENCIES[s].reduce((a, b) => a + b, 0), 2 ** 24);
    assert.ok(FREQUENCIES[s].every((f) => f >= 1));
  }
});
