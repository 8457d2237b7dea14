import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { BatchIterator, batchTensors, gatherAugmented, gatherImages } from '../../../engine/data/batch';
import type { Dataset } from '../../../engine/data/types';
import { Rng } from '../../../engine/util/rng';
import { setupTestBackend } from '../helpers';

/** n images of h×w×c whose pixels encode (sample, y, x, channel) so moves are traceable. */
function synthetic(n: number, h = 8, w = 8, c = 3): Dataset {
  const images = new Uint8Array(n * h * w * c);
  for (let i = 0; i < images.length; i++) images[i] = 1 + (i % 251); // never 0, so padding is visible
  return {
    name: 'synthetic',
    split: 'train',
    images,
    labels: Int32Array.from({ length: n }, (_, i) => i % 10),
    count: n,
    shape: [h, w, c],
    numClasses: 10,
    sourceIndex: Int32Array.from({ length: n }, (_, i) => i),
    source: 'memory',
  };
}

before(async () => {
  await setupTestBackend();
});

test('each epoch is a seeded permutation: same seed same order, other seed or epoch other order', () => {
  const ds = synthetic(100);
  const a = new BatchIterator(ds, { batchSize: 32, seed: 7 });
  const b = new BatchIterator(ds, { batchSize: 32, seed: 7 });
  const c = new BatchIterator(ds, { batchSize: 32, seed: 8 });
  assert.equal(a.batchesPerEpoch, 4);
  assert.deepEqual(a.epochOrder(0), b.epochOrder(0));
  assert.notDeepEqual(a.epochOrder(0), c.epochOrder(0));
  assert.notDeepEqual(a.epochOrder(0), a.epochOrder(1));
  assert.deepEqual(Array.from(a.epochOrder(3)).sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
  const seen: number[] = [];
  for (let bi = 0; bi < a.batchesPerEpoch; bi++) seen.push(...a.batchIndices(2, bi));
  assert.equal(seen.length, 100);
  assert.equal(new Set(seen).size, 100, 'every sample exactly once per epoch');
  assert.equal(a.batchIndices(0, 3).length, 4, 'last batch holds the remainder');
  assert.equal(new BatchIterator(ds, { batchSize: 32, seed: 7, dropLast: true }).batchesPerEpoch, 3);
  // Constructing from an Rng draws one seed from it.
  const r = new BatchIterator(ds, { batchSize: 32, seed: new Rng(5) });
  assert.equal(r.seed, new Rng(5).nextU32());
  const plain = new BatchIterator(ds, { batchSize: 32, seed: 7, shuffle: false });
  assert.deepEqual(Array.from(plain.batchIndices(4, 1)), Array.from({ length: 32 }, (_, i) => 32 + i));
});

test('resuming at (epoch, batch) yields exactly the batches of an uninterrupted run', () => {
  const ds = synthetic(50);
  const opts = { batchSize: 16, seed: 11, augment: true } as const;
  const full = new BatchIterator(ds, opts);
  const straight: { x: Float32Array; y: Int32Array; i: Int32Array }[] = [];
  let pos = { epoch: 0, batch: 0 };
  for (let k = 0; k < 3 * full.batchesPerEpoch; k++) {
    const hb = full.hostBatch(pos.epoch, pos.batch);
    straight.push({ x: hb.x, y: hb.y, i: hb.indices });
    pos = full.advance(pos);
  }
  // A fresh iterator (a new process after a crash) starting at epoch 1, batch 2.
  const resumed = new BatchIterator(ds, opts);
  const gen = resumed.from({ epoch: 1, batch: 2 }, 3);
  let k = 1 * full.batchesPerEpoch + 2;
  for (const b of gen) {
    assert.deepEqual(b.indices, straight[k].i, `indices of step ${k}`);
    assert.deepEqual(b.y.dataSync(), straight[k].y);
    assert.deepEqual(b.x.dataSync(), straight[k].x, `pixels of step ${k}`);
    b.x.dispose();
    b.y.dispose();
    k++;
  }
  assert.equal(k, straight.length);
  // A batch index past the epoch (saved by a run with more batches) carries into the next epoch.
  const carried = resumed.from({ epoch: 0, batch: 5 }).next().value!;
  assert.equal(carried.epoch, 1);
  assert.equal(carried.batch, 1);
  tf.dispose([carried.x, carried.y]);
});

test('tensors: x [B,H,W,C] float32 in [0,1], y int32, no tensor leaks', () => {
  const ds = synthetic(10, 4, 4, 1);
  const it = new BatchIterator(ds, { batchSize: 4, seed: 1 });
  const before = tf.memory().numTensors;
  for (const b of it.epoch(0)) {
    assert.equal(b.x.dtype, 'float32');
    assert.equal(b.y.dtype, 'int32');
    assert.deepEqual(b.x.shape, [b.size, 4, 4, 1]);
    const x = b.x.dataSync();
    assert.ok(x.every((v) => v > 0 && v <= 1));
    assert.equal(x[0], Math.fround(ds.images[b.indices[0] * 16] / 255));
    assert.deepEqual(Array.from(b.y.dataSync()), Array.from(b.indices, (i) => ds.labels[i]));
    tf.dispose([b.x, b.y]);
  }
  const t = batchTensors(ds, [9, 0]);
  assert.deepEqual(Array.from(t.y.dataSync()), [9, 0]);
  tf.dispose([t.x, t.y]);
  assert.equal(tf.memory().numTensors, before);
});

test('augmentation: shape kept, seeded, actually crops and flips, off when disabled', () => {
  const ds = synthetic(64, 32, 32, 3);
  const idx = Int32Array.from({ length: 64 }, (_, i) => i);
  const aug = { padding: 4, flip: true };
  const a = gatherAugmented(ds, idx, new Rng(1), aug);
  const b = gatherAugmented(ds, idx, new Rng(1), aug);
  const c = gatherAugmented(ds, idx, new Rng(2), aug);
  const plain = gatherImages(ds, idx);
  assert.equal(a.length, plain.length);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const per = 32 * 32 * 3;
  let flipped = 0, shifted = 0, same = 0;
  for (let k = 0; k < 64; k++) {
    const img = a.subarray(k * per, (k + 1) * per);
    const src = plain.subarray(k * per, (k + 1) * per);
    const zeros = img.filter((v) => v === 0).length;
    assert.ok(zeros <= (32 * 8 + 8 * 32) * 3, 'at most 4 px of padding on each axis');
    if (zeros > 0) shifted++;
    // Recover the transform: find (dy, dx, flip) that maps the source onto the output.
    let found = false;
    for (const f of [false, true]) {
      for (let dy = -4; dy <= 4 && !found; dy++) {
        for (let dx = -4; dx <= 4 && !found; dx++) {
          let ok = true;
          for (let y = 0; y < 32 && ok; y++) {
            for (let x = 0; x < 32 && ok; x++) {
              const sy = y + dy, sx = (f ? 31 - x : x) + dx;
              const want = sy < 0 || sy > 31 || sx < 0 || sx > 31 ? 0 : src[(sy * 32 + sx) * 3 + 1];
              ok = img[(y * 32 + x) * 3 + 1] === want;
            }
          }
          if (ok) {
            found = true;
            if (f) flipped++;
            if (!f && dx === 0 && dy === 0) same++;
          }
        }
      }
    }
    assert.ok(found, `sample ${k} is a padded crop (+flip) of its source`);
  }
  assert.ok(flipped > 16 && flipped < 48, `about half flipped, got ${flipped}/64`);
  assert.ok(shifted > 48, `most are shifted, got ${shifted}/64`);
  assert.ok(same < 8);
  // Through the iterator: augment on differs from off, and is a function of (seed, epoch, batch).
  const on = new BatchIterator(ds, { batchSize: 16, seed: 3, augment: true });
  const off = new BatchIterator(ds, { batchSize: 16, seed: 3 });
  assert.notDeepEqual(on.hostBatch(0, 1).x, off.hostBatch(0, 1).x);
  assert.deepEqual(off.hostBatch(0, 1).x, gatherImages(ds, off.batchIndices(0, 1)));
  assert.deepEqual(on.hostBatch(2, 1).x, new BatchIterator(ds, { batchSize: 16, seed: 3, augment: true }).hostBatch(2, 1).x);
  assert.notDeepEqual(on.hostBatch(2, 1).x, on.hostBatch(3, 1).x);
  // Identical images in every batch: only the per-(epoch, batch) draws can make batches differ.
  const twins = synthetic(32, 32, 32, 3);
  const one = twins.images.slice(0, per);
  for (let k = 0; k < 32; k++) twins.images.set(one, k * per);
  const seq = new BatchIterator(twins, { batchSize: 16, seed: 3, augment: true, shuffle: false });
  assert.notDeepEqual(seq.hostBatch(0, 0).x, seq.hostBatch(0, 1).x, 'batches of one epoch get different crops');
});

test('bad arguments name the problem', () => {
  const ds = synthetic(5);
  assert.throws(() => new BatchIterator(ds, { batchSize: 0, seed: 1 }), /batch size must be a positive integer, got 0/);
  assert.throws(() => new BatchIterator(ds, { batchSize: 8, seed: 1, dropLast: true }), /batch size 8 exceeds the 5 samples/);
  const it = new BatchIterator(ds, { batchSize: 2, seed: 1 });
  assert.throws(() => it.batchIndices(0, 3), /batch 3 is out of range 0\.\.2/);
  assert.throws(() => it.epochOrder(-1), /epoch must be a non-negative integer/);
  assert.throws(() => gatherImages(ds, [5]), /sample index 5 is out of range 0\.\.4/);
});
