/** Thread calibration: the decision rule and the per-machine cache (measurements injected; no timing asserted). */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type CalibratedBackend,
  chooseThreads,
  decideThreads,
  describeEntry,
  type MachineKey,
  readCache,
} from '../../../engine/backend/threadCalibration';

const KEY: MachineKey = { backend: 'tensorflow', cpu: 'Test CPU', cores: 4, versions: { node: 'v0', 'tfjs-core': '0' } };
const tmpFile = (): string => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-threads-')), 'sub', 'threads.json');

/** A measurement that records its calls and returns fixed samples. */
function fakeMeasure(samples: Record<string, number[]>) {
  const calls: Array<{ backend: CalibratedBackend; counts: number[] }> = [];
  const measure = async (backend: CalibratedBackend, counts: number[]) => {
    calls.push({ backend, counts });
    return samples;
  };
  return { calls, measure };
}

test('decideThreads keeps the fastest count by median, and fewer threads unless more are clearly faster', () => {
  assert.equal(decideThreads({ 1: [212, 200, 220], 2: [160, 170, 150] }), 1);
  assert.equal(decideThreads({ 1: [100, 100, 100], 2: [180, 20, 190] }), 2); // median, not mean: one slow outlier
  assert.equal(decideThreads({ 1: [100], 2: [103] }), 1); // within the margin: the cheaper count
  assert.equal(decideThreads({ 1: [100], 4: [150], 2: [120] }), 4);
  assert.throws(() => decideThreads({}), /no calibration samples/);
});

test('describeEntry names every count with its median and, from the cache, the date', () => {
  const e = { key: KEY, threads: 1, samples: { 2: [160, 150, 170], 1: [212, 211, 230] }, date: '2026-11-29T15:00:00.000Z' };
  assert.equal(describeEntry(e, true), 'calibrated: 1 thread 212 img/s, 2 threads 160 img/s; cached 2026-11-29');
  assert.equal(describeEntry(e, false), 'calibrated: 1 thread 212 img/s, 2 threads 160 img/s');
});

test('a cold cache measures 1 thread and every core, caches the result; a warm one does not measure again', async () => {
  const file = tmpFile();
  const m = fakeMeasure({ 1: [300, 310, 305], 4: [200, 210, 190] });
  const first = await chooseThreads('tensorflow', { file, key: KEY, measure: m.measure });
  assert.equal(first.threads, 1);
  assert.match(first.why, /^calibrated: 1 thread 305 img\/s, 4 threads 200 img\/s$/);
  assert.deepEqual(m.calls, [{ backend: 'tensorflow', counts: [1, 4] }]);
  const second = await chooseThreads('tensorflow', { file, key: KEY, measure: m.measure });
  assert.equal(second.threads, 1);
  assert.match(second.why, /; cached \d{4}-\d\d-\d\d$/);
  assert.equal(m.calls.length, 1);
  // Another backend, core count or version is another key.
  await chooseThreads('wasm', { file, key: { ...KEY, backend: 'wasm' }, measure: m.measure });
  await chooseThreads('tensorflow', { file, key: { ...KEY, versions: { ...KEY.versions, node: 'v1' } }, measure: m.measure });
  assert.equal(m.calls.length, 3);
  assert.equal(readCache(file).entries.length, 3);
});

test('a corrupt cache file is noted and recalibrated, not a crash, and is rewritten valid', async () => {
  for (const junk of ['{"entries": [', '[1,2]', '']) {
    const file = tmpFile();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, junk);
    const notes: string[] = [];
    const m = fakeMeasure({ 1: [100], 4: [250] });
    const c = await chooseThreads('tensorflow', { file, key: KEY, measure: m.measure, log: (n) => notes.push(n) });
    assert.equal(c.threads, 4);
    assert.equal(m.calls.length, 1);
    assert.equal(notes.length, 1, junk);
    assert.match(notes[0], /unreadable.*recalibrating/);
    assert.equal(readCache(file).entries.length, 1);
    assert.equal(readCache(file).note, undefined);
  }
});

test('a failed measurement falls back to every core with the reason; one core needs no measurement', async () => {
  const file = tmpFile();
  const failing = async (): Promise<never> => {
    throw new Error('worker exited (1)');
  };
  const c = await chooseThreads('wasm', { file, key: KEY, measure: failing });
  assert.deepEqual(c, { threads: 4, why: 'every core (thread calibration failed: worker exited (1))' });
  assert.equal(fs.existsSync(file), false);
  const one = await chooseThreads('wasm', { file, key: { ...KEY, cores: 1 }, measure: failing });
  assert.deepEqual(one, { threads: 1, why: 'one core' });
});
