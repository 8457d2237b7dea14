import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { loadDataset } from '../../../engine/data/load';
import { decodeImage, resizeRgb } from '../../../engine/data/image';
import type { DataConfig } from '../../../engine/config/types';
import { caught, removeDir, tempDir } from './fixtures';

function png(w: number, h: number, colorType: 0 | 2 | 6, px: (x: number, y: number) => [number, number, number, number]): Buffer {
  const p = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) p.data.set(px(x, y), (y * w + x) * 4);
  return PNG.sync.write(p, { colorType, inputHasAlpha: true });
}

function jpg(w: number, h: number, rgb: [number, number, number]): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) data.set([...rgb, 255], i * 4);
  return jpeg.encode({ width: w, height: h, data }, 95).data;
}

const cfg = (root: string, over: Partial<DataConfig> = {}): DataConfig => ({
  dataset: 'image-folder',
  root,
  trainSamples: 0,
  testSamples: 0,
  augment: false,
  imageSize: 8,
  ...over,
});

test('decode: grayscale and RGBA PNG become RGB; JPEG decodes', () => {
  const g = decodeImage(png(2, 1, 0, (x) => [x * 200, x * 200, x * 200, 255]), 'g.png');
  assert.deepEqual(Array.from(g.data), [0, 0, 0, 200, 200, 200]);
  const a = decodeImage(png(1, 1, 6, () => [10, 20, 30, 40]), 'a.png');
  assert.deepEqual(Array.from(a.data), [10, 20, 30]);
  const j = decodeImage(jpg(8, 8, [200, 40, 40]), 'j.jpg');
  assert.equal(j.width, 8);
  assert.ok(Math.abs(j.data[0] - 200) < 8 && Math.abs(j.data[1] - 40) < 8, `jpeg colour ${Array.from(j.data.subarray(0, 3))}`);
});

test('resize: area average when shrinking, bilinear when growing, identity at the same size', () => {
  // 4×4 → 2×2: each output pixel is the mean of a 2×2 block.
  const data = new Uint8Array(4 * 4 * 3);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) data.fill(y * 40 + x * 10, (y * 4 + x) * 3, (y * 4 + x) * 3 + 3);
  const small = resizeRgb({ width: 4, height: 4, data }, 2, 2);
  assert.deepEqual(Array.from(small).filter((_, i) => i % 3 === 0), [25, 45, 105, 125]);
  // 3 → 2 (non-integer ratio): output 0 covers input [0, 1.5): (1·a + 0.5·b)/1.5.
  const row = resizeRgb({ width: 3, height: 1, data: Uint8Array.from([0, 0, 0, 90, 90, 90, 180, 180, 180]) }, 1, 2);
  assert.deepEqual(Array.from(row).filter((_, i) => i % 3 === 0), [30, 150]);
  // 2 → 4 bilinear with half-pixel centres: 0, 25, 75, 100 for inputs 0, 100.
  const up = resizeRgb({ width: 2, height: 1, data: Uint8Array.from([0, 0, 0, 100, 100, 100]) }, 1, 4);
  assert.deepEqual(Array.from(up).filter((_, i) => i % 3 === 0), [0, 25, 75, 100]);
  assert.equal(resizeRgb({ width: 4, height: 4, data }, 4, 4), data);
});

test('image folder: TinyImageNet layout with val_annotations.txt, PNG + JPEG, resized', async () => {
  const root = tempDir('tin');
  try {
    const classes = ['n02', 'n01', 'n03']; // sorted → n01=0, n02=1, n03=2
    for (const c of classes) fs.mkdirSync(path.join(root, 'train', c, 'images'), { recursive: true });
    fs.writeFileSync(path.join(root, 'train', 'n01', 'images', 'a.png'), png(16, 16, 2, () => [255, 0, 0, 255]));
    fs.writeFileSync(path.join(root, 'train', 'n01', 'images', 'b.png'), png(4, 4, 0, () => [128, 128, 128, 255]));
    fs.writeFileSync(path.join(root, 'train', 'n02', 'images', 'c.JPEG'), jpg(16, 16, [0, 0, 255]));
    fs.writeFileSync(path.join(root, 'train', 'n03', 'images', 'd.JPEG'), jpg(8, 12, [0, 255, 0]));
    fs.writeFileSync(path.join(root, 'train', 'n03', 'images', 'notes.txt'), 'ignored');
    fs.mkdirSync(path.join(root, 'val', 'images'), { recursive: true });
    fs.writeFileSync(path.join(root, 'val', 'images', 'val_0.JPEG'), jpg(16, 16, [0, 255, 0]));
    fs.writeFileSync(path.join(root, 'val', 'images', 'val_1.png'), png(16, 16, 2, () => [255, 0, 0, 255]));
    fs.writeFileSync(path.join(root, 'val', 'val_annotations.txt'), 'val_0.JPEG\tn03\t0\t0\t10\t10\nval_1.png\tn01\t1\t1\t5\t5\n');
    fs.writeFileSync(path.join(root, 'words.txt'), 'n01\tgoldfish, Carassius auratus\nn02\tsalamander\n');

    const train = await loadDataset(cfg(root), 'train', { baseDir: '/' });
    assert.equal(train.count, 4);
    assert.deepEqual(train.shape, [8, 8, 3]);
    assert.deepEqual(Array.from(train.labels), [0, 0, 1, 2]);
    assert.deepEqual(train.classNames, ['goldfish', 'salamander', 'n03']);
    const px = (k: number, y: number, x: number) => Array.from(train.images.subarray(k * 192 + (y * 8 + x) * 3, k * 192 + (y * 8 + x) * 3 + 3));
    assert.deepEqual(px(0, 3, 3), [255, 0, 0]);
    assert.deepEqual(px(1, 7, 0), [128, 128, 128], 'grayscale 4×4 upscaled to 8×8 RGB');
    assert.ok(px(2, 4, 4)[2] > 240 && px(2, 4, 4)[0] < 15, `blue jpeg ${px(2, 4, 4)}`);

    const val = await loadDataset(cfg(root), 'test', { baseDir: '/' });
    assert.deepEqual(Array.from(val.labels), [2, 0]);

    const sub = await loadDataset(cfg(root, { trainSamples: 2, imageSize: 4 }), 'train', { baseDir: '/', seed: 3 });
    assert.equal(sub.count, 2);
    assert.deepEqual(sub.shape, [4, 4, 3]);
    assert.deepEqual(Array.from(sub.labels), Array.from(sub.sourceIndex, (i) => train.labels[i]));
  } finally {
    removeDir(root);
  }
});

test('image folder: val/<class>/ layout, and clear errors', async () => {
  const root = tempDir('folders');
  try {
    for (const c of ['cat', 'dog']) {
      fs.mkdirSync(path.join(root, 'train', c), { recursive: true });
      fs.writeFileSync(path.join(root, 'train', c, '1.png'), png(6, 6, 2, () => [1, 2, 3, 255]));
    }
    fs.mkdirSync(path.join(root, 'val', 'dog'), { recursive: true });
    fs.writeFileSync(path.join(root, 'val', 'dog', 'x.png'), png(6, 6, 2, () => [9, 9, 9, 255]));
    const val = await loadDataset(cfg(root, { imageSize: undefined }), 'test', { baseDir: '/' });
    assert.deepEqual(Array.from(val.labels), [1]);
    assert.deepEqual(val.shape, [6, 6, 3], 'without imageSize the first image sets the size');

    fs.mkdirSync(path.join(root, 'val', 'cow'));
    let e = await caught(() => loadDataset(cfg(root), 'test', { baseDir: '/' }));
    assert.equal(e.code, 'DATA_CORRUPT');
    assert.match(e.message, /val\/cow: class folder is not one of the 2 folders under/);
    fs.rmdirSync(path.join(root, 'val', 'cow'));

    fs.writeFileSync(path.join(root, 'train', 'cat', '2.png'), Buffer.from('GIF89a........'));
    e = await caught(() => loadDataset(cfg(root), 'train', { baseDir: '/' }));
    assert.equal(e.code, 'DATA_CORRUPT');
    assert.match(e.message, /cat\/2\.png: not a PNG or JPEG image \(starts with bytes 47 49 46 38\)/);
    const half = png(6, 6, 2, () => [1, 2, 3, 255]);
    fs.writeFileSync(path.join(root, 'train', 'cat', '2.png'), half.subarray(0, 40));
    e = await caught(() => loadDataset(cfg(root), 'train', { baseDir: '/' }));
    assert.match(e.message, /cat\/2\.png: cannot decode PNG image/);

    e = await caught(() => loadDataset(cfg(path.join(root, 'train')), 'train', { baseDir: '/' }));
    assert.equal(e.code, 'DATA_NOT_FOUND');
    assert.match(e.message, /train\/train not found; expected <root>\/train\/<class>/);
    e = await caught(() => loadDataset({ ...cfg(root), root: undefined }, 'train', { baseDir: '/' }));
    assert.equal(e.code, 'CONFIG_INVALID');
  } finally {
    removeDir(root);
  }
});
