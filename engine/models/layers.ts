/**
 * Functional building blocks (NHWC). BatchNorm is written by hand: tf.batchNorm's gradient goes through a
 * Tile kernel that is slow on wasm (see shared/notes), and the hand-written form halves a training step.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BatchNormWeights, ConvWeights, LinearWeights } from './params';
import type { ForwardOptions } from './types';

export const BN_EPSILON = 1e-5;
/** Weight of the new batch in the running statistics (PyTorch's default momentum). */
export const BN_MOMENTUM = 0.1;

export function conv(x: tf.Tensor4D, w: ConvWeights, stride: 1 | 2 = 1): tf.Tensor4D {
  return tf.conv2d(x, w.kernel as tf.Tensor4D, stride, 'same');
}

export function batchNorm(x: tf.Tensor4D, bn: BatchNormWeights, opts: ForwardOptions): tf.Tensor4D {
  if (!opts.training) {
    const { scale, shift } = inferenceAffine(bn);
    return tf.add(tf.mul(x, scale), shift);
  }
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  if (opts.updateBnStats) updateRunningStats(bn, mean, variance, x.size / bn.channels);
  const scale = tf.mul(tf.rsqrt(tf.add(variance, BN_EPSILON)), bn.gamma);
  return tf.add(tf.mul(tf.sub(x, mean), scale), bn.beta);
}

interface AffineEntry {
  /** The data of gamma, beta, movingMean, movingVar the entry was computed from (a variable's assign() gives it new data). */
  ids: object[];
  scale: tf.Tensor1D;
  shift: tf.Tensor1D;
}
const affineCache = new Map<tf.Variable, AffineEntry>();

function dataIds(bn: BatchNormWeights): object[] {
  return [bn.gamma.dataId, bn.beta.dataId, bn.movingMean.dataId, bn.movingVar.dataId];
}

/**
 * Inference BatchNorm as one affine map per channel, y = x·scale + shift, computed once per version of the
 * BN's weights and statistics (cached; recomputed when any of them is assigned) instead of on every forward.
 */
export function inferenceAffine(bn: BatchNormWeights): { scale: tf.Tensor1D; shift: tf.Tensor1D } {
  const ids = dataIds(bn);
  const hit = affineCache.get(bn.gamma);
  if (hit && hit.ids.every((id, i) => id === ids[i])) return hit;
  if (hit) {
    hit.scale.dispose();
    hit.shift.dispose();
  }
  const entry = tf.tidy(() => {
    const scale = tf.mul(tf.rsqrt(tf.add(bn.movingVar, BN_EPSILON)), bn.gamma) as tf.Tensor1D;
    const shift = tf.sub(bn.beta, tf.mul(bn.movingMean, scale)) as tf.Tensor1D;
    return { scale: tf.keep(scale), shift: tf.keep(shift) };
  });
  const e: AffineEntry = { ids, ...entry };
  affineCache.set(bn.gamma, e);
  return e;
}

/** Frees what `inferenceAffine` cached for a BN whose gamma is `gamma` (on model disposal). */
export function releaseInferenceCache(gamma: tf.Variable): void {
  const hit = affineCache.get(gamma);
  if (!hit) return;
  hit.scale.dispose();
  hit.shift.dispose();
  affineCache.delete(gamma);
}

/** Folds batch statistics into the running ones (unbiased variance, as PyTorch). Runs outside any gradient. */
function updateRunningStats(bn: BatchNormWeights, mean: tf.Tensor, variance: tf.Tensor, n: number): void {
  tf.tidy(() => {
    // Ops on `mean`/`variance` are recorded by an enclosing gradient tape but lead to no loss, so no
    // gradient flows through them; assign() itself is not differentiated.
    const unbiased = tf.mul(variance, n / Math.max(1, n - 1));
    bn.movingMean.assign(tf.add(tf.mul(bn.movingMean, 1 - BN_MOMENTUM), tf.mul(mean, BN_MOMENTUM)));
    bn.movingVar.assign(tf.add(tf.mul(bn.movingVar, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)));
  });
}

export function linear(x: tf.Tensor2D, w: LinearWeights): tf.Tensor2D {
  return tf.add(tf.matMul(x, w.kernel as tf.Tensor2D), w.bias);
}

export function globalAvgPool(x: tf.Tensor4D): tf.Tensor2D {
  return tf.mean(x, [1, 2]) as tf.Tensor2D;
}

/** Normalisation inside the model, so that attacks work (and clamp) in [0,1] pixel space. */
export function normalize(x: tf.Tensor4D, mean: number[], std: number[]): tf.Tensor4D {
  return tf.div(tf.sub(x, tf.tensor1d(mean)), tf.tensor1d(std));
}
