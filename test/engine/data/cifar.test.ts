import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadDataset } from '../../../engine/data/load';
import { parseCifarBatch } from '../../../engine/data/cifar';
import type { DataConfig } from '../../../engine/config/types';
import { caught, cifarBatch, cifarPixel, removeDir, tempDir } from './fixtures';

const cfg = (over: Partial<DataConfig>): DataConfig => ({
  dataset: 'cifar10',
  trainSamples: 0,
  testSamples: 0,
  augment: true,
  ...over,
});

test('CIFAR-10: batches concatenate, labels kept, planar RGB becomes HWC', async () => {
  const root = tempDir('c10');
  try {
    const dir = path.join(root, 'cifar-10-batches-bin');
    fs.mkdirSync(dir);
    const labelsOf = (b: number) => [b, (b + 3) % 10, 9 - b];
    for (let b = 1; b <= 5; b++) fs.writeFileSync(path.join(dir, `data_batch_${b}.bin`), cifarBatch(labelsOf(b)));
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarBatch([0, 1]));
    const train = await loadDataset(cfg({ root }), 'train', { baseDir: '/' });
    assert.equal(train.count, 15);
    assert.deepEqual(train.shape, [32, 32, 3]);
    assert.deepEqual(Array.from(train.labels), [1, 2, 3, 4, 5].flatMap(labelsOf));
    assert.equal(train.classNames?.[3], 'cat');
    // Record 1 of batch 2 is sample 4; pixel (y=2, x=5) channel c must be planar value at p = 2*32+5.
    const rec = 1;
    const k = 4;
    const p = 2 * 32 + 5;
    for (let c = 0; c < 3; c++) assert.equal(train.images[k * 3072 + p * 3 + c], cifarPixel(rec, c, p), `channel ${c}`);
    const t = await loadDataset(cfg({ root: dir }), 'test', { baseDir: '/' }); // the batch folder itself as root
    assert.deepEqual(Array.from(t.labels), [0, 1]);
    assert.equal(t.images[3 * 10 + 1], cifarPixel(0, 1, 10));
  } finally {
    removeDir(root);
  }
});

test('CIFAR-100: two label bytes, the fine label is used, names from fine_label_names.txt', async () => {
  const root = tempDir('c100');
  try {
    const dir = path.join(root, 'cifar-100-binary');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'train.bin'), cifarBatch([99, 42, 0], [19, 3, 4]));
    fs.writeFileSync(path.join(dir, 'test.bin'), cifarBatch([7], [1]));
    fs.writeFileSync(path.join(dir, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `class${i}`).join('\n') + '\n');
    const train = await loadDataset(cfg({ dataset: 'cifar100', root }), 'train', { baseDir: '/' });
    assert.deepEqual(Array.from(train.labels), [99, 42, 0]);
    assert.equal(train.numClasses, 100);
    assert.equal(train.classNames?.[42], 'class42');
    assert.equal(train.images[3072 + 100 * 3 + 2], cifarPixel(1, 2, 100));
  } finally {
    removeDir(root);
  }
});

test('CIFAR: truncated files, bad labels and missing folders give clear errors', async () => {
  const good = cifarBatch([1, 2]);
  let e = await caught(() => parseCifarBatch(good.subarray(0, good.length - 100), 'b.bin', 'cifar10'));
  assert.equal(e.code, 'DATA_CORRUPT');
  assert.match(e.message, /b\.bin: truncated file: expected a multiple of the 3073-byte CIFAR-10 record \(6146 bytes for 2 records\), got 6046/);
  e = await caught(() => parseCifarBatch(cifarBatch([1], [2]), 'c100.bin', 'cifar10'));
  assert.match(e.message, /the size fits CIFAR-100 records — wrong dataset\?/);
  e = await caught(() => parseCifarBatch(cifarBatch([1, 10]), 'l.bin', 'cifar10'));
  assert.match(e.message, /l\.bin: label 10 of record 1 is out of range 0\.\.9/);
  e = await caught(() => parseCifarBatch(cifarBatch([100], [3]), 'f.bin', 'cifar100'));
  assert.match(e.message, /f\.bin: label 100 of record 0 is out of range 0\.\.99/);
  e = await caught(() => parseCifarBatch(cifarBatch([5], [20]), 'co.bin', 'cifar100'));
  assert.match(e.message, /co\.bin: coarse label 20 of record 0 is out of range 0\.\.19/);
  e = await caught(() => parseCifarBatch(new Uint8Array(0), 'empty.bin', 'cifar10'));
  assert.match(e.message, /empty\.bin: empty file/);

  const root = tempDir('c10bad');
  try {
    e = await caught(() => loadDataset(cfg({ root }), 'train', { baseDir: '/' }));
    assert.equal(e.code, 'DATA_NOT_FOUND');
    assert.match(e.message, /CIFAR-10 not found: looked for .*cifar-10-batches-bin\/test_batch\.bin.*advmoe data download cifar10/);
    const dir = path.join(root, 'cifar-10-batches-bin');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarBatch([1]));
    fs.writeFileSync(path.join(dir, 'data_batch_1.bin'), cifarBatch([1]));
    e = await caught(() => loadDataset(cfg({ root }), 'train', { baseDir: '/' }));
    assert.equal(e.code, 'DATA_NOT_FOUND');
    assert.match(e.message, /data_batch_2\.bin: cannot read train batch/);
  } finally {
    removeDir(root);
  }
});
