/**
 * Batching: uint8 NHWC → float32 [0,1] per batch, seeded shuffle per epoch, optional crop+flip augmentation.
 *
 * Reproducibility contract: the order of epoch e is a permutation drawn from deriveSeed(seed, e) and the
 * augmentation of batch b in epoch e from deriveSeed(seed, e, b). Nothing depends on which batches were
 * produced before, so a run resumed at (epoch, batch) gets exactly the batches an uninterrupted run got.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdvMoEError } from '../util/errors';
import { Rng } from '../util/rng';
import { deriveSeed, SeedTag } from './seed';
import { Dataset, imageBytes } from './types';

/** 0..255 → [0,1] lookup; a table read is cheaper than a division per pixel. */
const U8_TO_UNIT = Float32Array.from({ length: 256 }, (_, i) => i / 255);

export interface BatchPosition {
  epoch: number;
  /** Batch index within the epoch. */
  batch: number;
}

export interface AugmentOptions {
  /** Zero padding before the random crop (CIFAR convention: 4). */
  padding: number;
  /** Mirror left-right with probability 1/2. */
  flip: boolean;
}

export interface BatchIteratorOptions {
  batchSize: number;
  /** Base seed (use the experiment seed). Given an Rng, one number is drawn from it at construction. */
  seed: number | Rng;
  /** Shuffle each epoch (training). false = file order (evaluation). Default true. */
  shuffle?: boolean;
  /** Random crop with zero padding + horizontal flip. Default false. true = 4-px padding + flip. */
  augment?: boolean | AugmentOptions;
  /** Drop the last incomplete batch of an epoch. Default false. */
  dropLast?: boolean;
}

/** A batch as plain arrays, for code that does not want tensors (and for tests without a backend). */
export interface HostBatch extends BatchPosition {
  /** size × H × W × C floats in [0,1], NHWC. */
  x: Float32Array;
  y: Int32Array;
  /** Index of each sample in the dataset. */
  indices: Int32Array;
  size: number;
}

/** A batch as tensors. The caller owns x and y and must dispose them (or create them inside tf.tidy). */
export interface Batch extends BatchPosition {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  indices: Int32Array;
  size: number;
}

/** Copies the given samples out of the uint8 store as [0,1] floats (NHWC), without augmentation. */
export function gatherImages(ds: Dataset, indices: ArrayLike<number>): Float32Array {
  const per = imageBytes(ds);
  const out = new Float32Array(indices.length * per);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!(i >= 0 && i < ds.count)) throw new AdvMoEError('INVALID_ARGUMENT', `sample index ${i} is out of range 0..${ds.count - 1} of ${ds.name}/${ds.split}`);
    const src = i * per;
    const dst = k * per;
    for (let j = 0; j < per; j++) out[dst + j] = U8_TO_UNIT[ds.images[src + j]];
  }
  return out;
}

export function gatherLabels(ds: Dataset, indices: ArrayLike<number>): Int32Array {
  const y = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) y[k] = ds.labels[indices[k]];
  return y;
}

/**
 * Like gatherImages but with a random crop (of the image zero-padded by `padding` px on every side) and a
 * random horizontal flip per sample, all drawn from `rng`. Done in one pass over the uint8 source.
 */
export function gatherAugmented(ds: Dataset, indices: ArrayLike<number>, rng: Rng, aug: AugmentOptions): Float32Array {
  const [h, w, c] = ds.shape;
  const per = h * w * c;
  const pad = aug.padding;
  const out = new Float32Array(indices.length * per); // zero-filled: the padding
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!(i >= 0 && i < ds.count)) throw new AdvMoEError('INVALID_ARGUMENT', `sample index ${i} is out of range 0..${ds.count - 1} of ${ds.name}/${ds.split}`);
    // Draw all three numbers for every sample, so sample k's draws never depend on sample k-1's outcome.
    const dy = rng.int(2 * pad + 1) - pad;
    const dx = rng.int(2 * pad + 1) - pad;
    const flip = rng.next() < 0.5 && aug.flip;
    const src = i * per;
    const dst = k * per;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      if (sy < 0 || sy >= h) continue;
      for (let x = 0; x < w; x++) {
        const sx = (flip ? w - 1 - x : x) + dx;
        if (sx < 0 || sx >= w) continue;
        const s = src + (sy * w + sx) * c;
        const d = dst + (y * w + x) * c;
        for (let ch = 0; ch < c; ch++) out[d + ch] = U8_TO_UNIT[ds.images[s + ch]];
      }
    }
  }
  return out;
}

/** Tensors for the given samples (no augmentation): x [B,H,W,C] float32 in [0,1], y [B] int32. */
export function batchTensors(ds: Dataset, indices: ArrayLike<number>): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const [h, w, c] = ds.shape;
  return {
    x: tf.tensor4d(gatherImages(ds, indices), [indices.length, h, w, c], 'float32'),
    y: tf.tensor1d(gatherLabels(ds, indices), 'int32'),
  };
}

export class BatchIterator {
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly augment: AugmentOptions | null;
  readonly dropLast: boolean;
  readonly batchesPerEpoch: number;
  private cachedEpoch = -1;
  private cachedOrder: Int32Array | null = null;

  constructor(
    readonly dataset: Dataset,
    opts: BatchIteratorOptions,
  ) {
    if (!(Number.isInteger(opts.batchSize) && opts.batchSize > 0)) {
      throw new AdvMoEError('INVALID_ARGUMENT', `batch size must be a positive integer, got ${opts.batchSize}`);
    }
    if (dataset.count === 0) throw new AdvMoEError('INVALID_ARGUMENT', `dataset ${dataset.name}/${dataset.split} is empty`);
    this.batchSize = opts.batchSize;
    this.seed = typeof opts.seed === 'number' ? opts.seed >>> 0 : opts.seed.nextU32();
    this.shuffle = opts.shuffle ?? true;
    this.augment = opts.augment === true ? { padding: 4, flip: true } : opts.augment ? opts.augment : null;
    this.dropLast = opts.dropLast ?? false;
    this.batchesPerEpoch = this.dropLast
      ? Math.floor(dataset.count / this.batchSize)
      : Math.ceil(dataset.count / this.batchSize);
    if (this.batchesPerEpoch === 0) {
      throw new AdvMoEError(
        'INVALID_ARGUMENT',
        `batch size ${this.batchSize} exceeds the ${dataset.count} samples of ${dataset.name}/${dataset.split} and dropLast is set: no batch at all`,
      );
    }
  }

  /** The sample order of an epoch: a function of (seed, epoch) only. */
  epochOrder(epoch: number): Int32Array {
    if (!(Number.isInteger(epoch) && epoch >= 0)) throw new AdvMoEError('INVALID_ARGUMENT', `epoch must be a non-negative integer, got ${epoch}`);
    if (epoch !== this.cachedEpoch || !this.cachedOrder) {
      const n = this.dataset.count;
      this.cachedOrder = this.shuffle
        ? new Rng(deriveSeed(this.seed, SeedTag.epochOrder, epoch)).permutation(n)
        : Int32Array.from({ length: n }, (_, i) => i);
      this.cachedEpoch = epoch;
    }
    return this.cachedOrder;
  }

  batchIndices(epoch: number, batch: number): Int32Array {
    if (!(Number.isInteger(batch) && batch >= 0 && batch < this.batchesPerEpoch)) {
      throw new AdvMoEError('INVALID_ARGUMENT', `batch ${batch} is out of range 0..${this.batchesPerEpoch - 1} (batch size ${this.batchSize}, ${this.dataset.count} samples)`);
    }
    const order = this.epochOrder(epoch);
    return order.slice(batch * this.batchSize, Math.min(order.length, (batch + 1) * this.batchSize));
  }

  /** The batch at (epoch, batch) as plain arrays; the same position always gives the same data. */
  hostBatch(epoch: number, batch: number): HostBatch {
    const indices = this.batchIndices(epoch, batch);
    const x = this.augment
      ? gatherAugmented(this.dataset, indices, new Rng(deriveSeed(this.seed, SeedTag.augment, epoch, batch)), this.augment)
      : gatherImages(this.dataset, indices);
    return { x, y: gatherLabels(this.dataset, indices), indices, size: indices.length, epoch, batch };
  }

  /** The batch at (epoch, batch) as tensors (caller disposes x and y). */
  batch(epoch: number, batch: number): Batch {
    const hb = this.hostBatch(epoch, batch);
    const [h, w, c] = this.dataset.shape;
    return {
      x: tf.tensor4d(hb.x, [hb.size, h, w, c], 'float32'),
      y: tf.tensor1d(hb.y, 'int32'),
      indices: hb.indices,
      size: hb.size,
      epoch,
      batch,
    };
  }

  /** Batches of one epoch, from `startBatch` to its end. */
  *epoch(epoch: number, startBatch = 0): Generator<Batch> {
    for (let b = startBatch; b < this.batchesPerEpoch; b++) yield this.batch(epoch, b);
  }

  /** Batches from a position (e.g. a checkpoint's) up to, not including, epoch `endEpoch`; runs forever
   * without one. */
  *from(pos: BatchPosition, endEpoch = Infinity): Generator<Batch> {
    let { epoch, batch } = this.normalize(pos);
    while (epoch < endEpoch) {
      yield this.batch(epoch, batch);
      ({ epoch, batch } = this.advance({ epoch, batch }));
    }
  }

  /** The position after `pos`. Store it in a checkpoint to resume right after the batch just trained. */
  advance(pos: BatchPosition): BatchPosition {
    return pos.batch + 1 >= this.batchesPerEpoch ? { epoch: pos.epoch + 1, batch: 0 } : { epoch: pos.epoch, batch: pos.batch + 1 };
  }

  /** A position whose batch index runs past the epoch (e.g. saved with another batch size) is carried over. */
  private normalize(pos: BatchPosition): BatchPosition {
    if (!(Number.isInteger(pos.epoch) && pos.epoch >= 0 && Number.isInteger(pos.batch) && pos.batch >= 0)) {
      throw new AdvMoEError('INVALID_ARGUMENT', `batch position must have non-negative integer epoch and batch, got ${JSON.stringify(pos)}`);
    }
    const extra = Math.floor(pos.batch / this.batchesPerEpoch);
    return { epoch: pos.epoch + extra, batch: pos.batch - extra * this.batchesPerEpoch };
  }
}
