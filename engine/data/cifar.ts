/**
 * CIFAR-10 / CIFAR-100 binary batches (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version").
 * Each record is the label byte(s) followed by 3072 pixel bytes stored planar: 1024 red, 1024 green,
 * 1024 blue, each row-major 32×32. We transpose to HWC (interleaved RGB), the layout tfjs convs expect.
 * CIFAR-100 records carry two label bytes, coarse (20 classes) then fine (100 classes); we use fine.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AdvMoEError, errorMessage } from '../util/errors';
import { isDir, isFile } from './files';

export const CIFAR_PIXELS = 32 * 32 * 3;

export const CIFAR10_CLASSES = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
];

export type CifarVariant = 'cifar10' | 'cifar100';

export const CIFAR_FOLDERS: Record<CifarVariant, string> = {
  cifar10: 'cifar-10-batches-bin',
  cifar100: 'cifar-100-binary',
};

export const CIFAR_FILES: Record<CifarVariant, { train: string[]; test: string[] }> = {
  cifar10: {
    train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
    test: ['test_batch.bin'],
  },
  cifar100: { train: ['train.bin'], test: ['test.bin'] },
};

export interface CifarParsed {
  images: Uint8Array;
  labels: Int32Array;
  count: number;
}

/** Parses one binary batch file's bytes. `file` is only for messages. */
export function parseCifarBatch(buf: Uint8Array, file: string, variant: CifarVariant): CifarParsed {
  const labelBytes = variant === 'cifar10' ? 1 : 2;
  const record = labelBytes + CIFAR_PIXELS;
  if (buf.length === 0) throw new AdvMoEError('DATA_CORRUPT', `${file}: empty file (expected records of ${record} bytes)`);
  const count = Math.floor(buf.length / record);
  if (buf.length % record !== 0) {
    throw new AdvMoEError(
      'DATA_CORRUPT',
      `${file}: truncated file: expected a multiple of the ${record}-byte ${variant === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} record ` +
        `(${(count + 1) * record} bytes for ${count + 1} records), got ${buf.length}` +
        (variant === 'cifar10' && buf.length % (CIFAR_PIXELS + 2) === 0 ? '; the size fits CIFAR-100 records — wrong dataset?' : '') +
        (variant === 'cifar100' && buf.length % (CIFAR_PIXELS + 1) === 0 ? '; the size fits CIFAR-10 records — wrong dataset?' : ''),
    );
  }
  const numClasses = variant === 'cifar10' ? 10 : 100;
  const images = new Uint8Array(count * CIFAR_PIXELS);
  const labels = new Int32Array(count);
  for (let r = 0; r < count; r++) {
    const base = r * record;
    if (variant === 'cifar100' && buf[base] >= 20) {
      throw new AdvMoEError('DATA_CORRUPT', `${file}: coarse label ${buf[base]} of record ${r} is out of range 0..19`);
    }
    const label = buf[base + labelBytes - 1];
    if (label >= numClasses) {
      throw new AdvMoEError('DATA_CORRUPT', `${file}: label ${label} of record ${r} is out of range 0..${numClasses - 1}`);
    }
    labels[r] = label;
    const src = base + labelBytes;
    const dst = r * CIFAR_PIXELS;
    // planar (CHW) → interleaved (HWC)
    for (let p = 0; p < 1024; p++) {
      const o = dst + p * 3;
      images[o] = buf[src + p];
      images[o + 1] = buf[src + 1024 + p];
      images[o + 2] = buf[src + 2048 + p];
    }
  }
  return { images, labels, count };
}

/** The folder holding the batch files: `<root>/cifar-10-batches-bin` (the archive's folder) or `root` itself. */
export function findCifarDir(root: string, variant: CifarVariant): string | null {
  const first = CIFAR_FILES[variant].test[0];
  for (const dir of [path.join(root, CIFAR_FOLDERS[variant]), root]) {
    if (isDir(dir) && isFile(path.join(dir, first))) return dir;
  }
  return null;
}

export interface CifarSplit extends CifarParsed {
  classNames?: string[];
  dir: string;
}

/** Reads every batch file of a split and concatenates them. */
export async function readCifarSplit(root: string, variant: CifarVariant, split: 'train' | 'test'): Promise<CifarSplit> {
  const dir = findCifarDir(root, variant);
  if (!dir) {
    throw new AdvMoEError(
      'DATA_NOT_FOUND',
      `${variant === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} not found: looked for ${path.join(root, CIFAR_FOLDERS[variant], CIFAR_FILES[variant].test[0])} ` +
        `and ${path.join(root, CIFAR_FILES[variant].test[0])}; run \`advmoe data download ${variant}\` or set data.root to the folder holding ${CIFAR_FOLDERS[variant]}/`,
    );
  }
  const parts: CifarParsed[] = [];
  for (const name of CIFAR_FILES[variant][split]) {
    const file = path.join(dir, name);
    let buf: Buffer;
    try {
      buf = await fs.promises.readFile(file);
    } catch (e) {
      throw new AdvMoEError('DATA_NOT_FOUND', `${file}: cannot read ${split} batch (${errorMessage(e)})`);
    }
    parts.push(parseCifarBatch(buf, file, variant));
  }
  const count = parts.reduce((a, p) => a + p.count, 0);
  const images = new Uint8Array(count * CIFAR_PIXELS);
  const labels = new Int32Array(count);
  let off = 0;
  for (const p of parts) {
    images.set(p.images, off * CIFAR_PIXELS);
    labels.set(p.labels, off);
    off += p.count;
  }
  let classNames: string[] | undefined;
  if (variant === 'cifar10') classNames = CIFAR10_CLASSES;
  else {
    // The CIFAR-100 archive ships fine_label_names.txt (one name a line, in label order); use it if present.
    const namesFile = path.join(dir, 'fine_label_names.txt');
    if (isFile(namesFile)) {
      const names = fs.readFileSync(namesFile, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
      if (names.length === 100) classNames = names;
    }
  }
  return { images, labels, count, classNames, dir };
}
