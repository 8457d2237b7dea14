/**
 * Functional building blocks (NHWC). BatchNorm is written by hand: tf.batchNorm's gradient goes through a
 * Tile kernel that is slow on wasm (see shared/notes), and the hand-written form halves a training step. In
 * training mode it is one custom-gradient op (batchNormFused) with the closed-form backward.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedBatchNormGrad, fusedBatchNormTraining, hasNativeBatchNorm, hasNativeOps, reluGrad } from './nativeOps';
import type { BatchNormWeights, ConvWeights, LinearWeights } from './params';
import type { ConvPadding } from '../config/types';
import type { ForwardOptions } from './types';

export const BN_EPSILON = 1e-5;
/** Weight of the new batch in the running statistics (PyTorch's default momentum). */
export const BN_MOMENTUM = 0.1;

export function conv(x: tf.Tensor4D, w: ConvWeights, stride: 1 | 2 = 1, padding: ConvPadding = 'same'): tf.Tensor4D {
  return conv2dPadded(x, w.kernel as tf.Tensor4D, stride, padding);
}

/**
 * tf.conv2d with the model's padding (odd square kernels). `symmetric` is PyTorch's padding = (k − 1)/2 on every
 * side; it gives the same output size as `same`, and the same values wherever `same` pads symmetrically too (stride
 * 1, or odd input sizes), so only the other convs (a 3×3 stride-2 conv on an even size) get an explicit pad and a
 * `valid` conv (tfjs-node's conv2d takes only 'same'/'valid', README "Backends").
 */
export function conv2dPadded(x: tf.Tensor4D, kernel: tf.Tensor4D, stride: 1 | 2, padding: ConvPadding): tf.Tensor4D {
  const k = kernel.shape[0];
  if (padding === 'same' || samePadsSymmetrically(x.shape[1], k, stride) && samePadsSymmetrically(x.shape[2], k, stride)) {
    return tf.conv2d(x, kernel, stride, 'same');
  }
  const p = (k - 1) / 2;
  return tf.conv2d(tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]), kernel, stride, 'valid');
}

/** Whether TensorFlow's `same` pads (k − 1)/2 on both sides of a dimension of this size. */
function samePadsSymmetrically(size: number, k: number, stride: number): boolean {
  const total = Math.max((Math.ceil(size / stride) - 1) * stride + k - size, 0);
  return total === k - 1;
}

export function batchNorm(x: tf.Tensor4D, bn: BatchNormWeights, opts: ForwardOptions): tf.Tensor4D {
  if (!opts.training) {
    const { scale, shift } = inferenceAffine(bn);
    return inferenceBatchNorm(x, scale, shift);
  }
  if (trainingImpl === 'autodiff') return batchNormAutodiff(x, bn, opts);
  if (nativeBn && hasNativeBatchNorm()) return batchNormNative(x, bn, opts);
  return batchNormFused(x, bn, opts);
}

/**
 * How training-mode BN is computed: 'fused' (default) is one tf.customGrad op whose per-channel reductions are
 * average pools and ones-row matMuls (channelMean) and whose backward is BN's closed form; 'autodiff' is the
 * earlier form (tf.moments, sub/mul/add, differentiated op by op). Both give the same values and gradients up to
 * float rounding; the switch exists for the benchmark and the tests.
 */
export type BatchNormImpl = 'fused' | 'autodiff';
let trainingImpl: BatchNormImpl = 'fused';
export function setBatchNormImpl(impl: BatchNormImpl): void {
  trainingImpl = impl;
}
export function getBatchNormImpl(): BatchNormImpl {
  return trainingImpl;
}

let nativeBn = true;
/**
 * Benchmarks and tests only: on the tensorflow backend, training-mode BN through TensorFlow's FusedBatchNormV3
 * and its gradient op (true, default) or through batchNormFused's tfjs ops (false), to compare the two.
 */
export function setNativeBatchNorm(on: boolean): void {
  nativeBn = on;
}

/** Training-mode BN as two native calls (forward, backward) on tfjs-node; same values as batchNormFused. */
function batchNormNative(x: tf.Tensor4D, bn: BatchNormWeights, opts: ForwardOptions): tf.Tensor4D {
  const m = x.shape[0] * x.shape[1] * x.shape[2];
  const fn = tf.customGrad((...args: unknown[]) => {
    const [xi, gamma, beta, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const fwd = fusedBatchNormTraining(xi, gamma, beta, BN_EPSILON);
    if (opts.updateBnStats) updateRunningStats(bn, fwd.mean, fwd.variance, m);
    save([xi, gamma, fwd.mean, fwd.variance, fwd.reserve]);
    return {
      value: fwd.y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sg, mean, variance, reserve] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor];
        return fusedBatchNormGrad(dy as tf.Tensor4D, sx, sg, { mean, variance, reserve }, BN_EPSILON);
      },
    };
  });
  return fn(x, bn.gamma, bn.beta) as tf.Tensor4D;
}

function batchNormAutodiff(x: tf.Tensor4D, bn: BatchNormWeights, opts: ForwardOptions): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  if (opts.updateBnStats) updateRunningStats(bn, mean, variance, x.size / bn.channels);
  const scale = tf.mul(tf.rsqrt(tf.add(variance, BN_EPSILON)), bn.gamma);
  return tf.add(tf.mul(tf.sub(x, mean), scale), bn.beta);
}

/**
 * Per-channel mean of an NHWC tensor as [C], without Mean/Sum over outer axes (on wasm those transpose first):
 * an average pool over the whole H×W plane (XNNPACK) then a ones-row matMul over the batch, or for small planes
 * one ones-row matMul over all N·H·W rows. Forward only (used inside custom-gradient ops).
 */
function channelMean(x: tf.Tensor4D): tf.Tensor1D {
  const [n, h, w, c] = x.shape;
  // The division makes a fresh rank-1 tensor: the wasm fused kernels check the rank of a bias's data, which a
  // reshape of the [1, C] matMul output would not change.
  if (h * w >= 16) {
    const perImage = tf.reshape(tf.avgPool(x, [h, w], 1, 'valid'), [n, c]) as tf.Tensor2D;
    return tf.div(tf.reshape(tf.matMul(tf.ones([1, n]) as tf.Tensor2D, perImage), [c]), n);
  }
  const m = n * h * w;
  return tf.div(tf.reshape(tf.matMul(tf.ones([1, m]) as tf.Tensor2D, tf.reshape(x, [m, c]) as tf.Tensor2D), [c]), m);
}

/**
 * Training-mode BN as one differentiable op. Per-channel reductions over the batch and spatial axes go through
 * channelMean (avgPool + matMul, ~3–8× cheaper than Mean over axes [0,1,2] on wasm), and the op-by-op gradient of
 * tf.moments (broadcasts, Tile, Mean/Sum gradients) is replaced by the closed form. The variance is
 * two-pass (mean of (x − mean)²), as tf.moments. Backward, with x̂ = (x − μ)·r, r = 1/√(σ² + ε):
 *   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ·r·(dy − Σdy/M − x̂·Σ(dy·x̂)/M).
 */
function batchNormFused(x: tf.Tensor4D, bn: BatchNormWeights, opts: ForwardOptions): tf.Tensor4D {
  const shape = x.shape;
  const m = shape[0] * shape[1] * shape[2];
  const fn = tf.customGrad((...args: unknown[]) => {
    const [xi, gamma, beta, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const mean = channelMean(xi);
    const xc = channelAffine(xi, null, tf.neg(mean)); // x − μ
    const variance = channelMean(tf.square(xc));
    if (opts.updateBnStats) updateRunningStats(bn, mean, variance, m);
    const rstd = tf.rsqrt(tf.add(variance, BN_EPSILON));
    // β + 0: a [C] tensor of our own (β's data may have been assigned from any tensor; see channelAffine).
    const y = channelAffine(xc, tf.mul(rstd, gamma), tf.add(beta, 0));
    save([xc, rstd, gamma]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sxc, sr, sg] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
        const sumDy = tf.mul(channelMean(dy as tf.Tensor4D), m); // [C]
        const sumDyXc = tf.mul(channelMean(tf.mul(dy, sxc) as tf.Tensor4D), m); // [C] = Σ dy·(x − μ)
        const a = tf.mul(sr, sg); // γ·r
        // dx = a·dy + b·(x − μ) + k with b = −a·r²·Σ(dy·(x−μ))/M, k = −a·Σdy/M
        const b = tf.mul(a, tf.mul(tf.square(sr), tf.div(sumDyXc, -m)));
        const k = tf.mul(a, tf.div(sumDy, -m));
        const dx = tf.add(channelAffine(dy as tf.Tensor4D, a, k), channelAffine(sxc, b, null));
        return [dx, tf.mul(sumDyXc, sr), sumDy];
      },
    };
  });
  return fn(x, bn.gamma, bn.beta) as tf.Tensor4D;
}

let affineViaConv = true;
/** Benchmarks and tests only: channelAffine through broadcast ops on wasm too (false), to compare with the conv form. */
export function setChannelAffineViaConv(on: boolean): void {
  affineViaConv = on;
}

/**
 * x·scale + shift per channel (scale, shift: [C]; null = 1 or 0). On wasm one 1×1 depthwise convolution with bias
 * (XNNPACK), about half the time of a broadcast multiply and add there, same values (no FMA in wasm SIMD);
 * elsewhere the plain broadcast ops. Forward only (used inside custom-gradient ops). The wasm kernel checks the
 * rank of the bias's *data*, so `shift` must come from an op with a [C] output, not from a reshape of [1, C].
 */
function channelAffine(x: tf.Tensor4D, scale: tf.Tensor | null, shift: tf.Tensor | null): tf.Tensor4D {
  const c = x.shape[3];
  if (affineViaConv && tf.getBackend() === 'wasm') {
    const filter = (scale ? tf.reshape(scale, [1, 1, c, 1]) : tf.ones([1, 1, c, 1])) as tf.Tensor4D;
    return tf.fused.depthwiseConv2d({ x, filter, strides: 1, pad: 'valid', bias: shift ?? undefined });
  }
  let y: tf.Tensor = x;
  if (scale) y = tf.mul(y, tf.reshape(scale, [c]));
  if (shift) y = tf.add(y, tf.reshape(shift, [c]));
  return y as tf.Tensor4D;
}

/**
 * x·scale + shift with the cached inference affine. On wasm through channelAffine's depthwise conv, which has no
 * gradient kernel there, so as a custom-gradient op: dx = dy·scale (attacks differentiate eval-mode forwards with
 * respect to the input). scale and shift are cached constants, never differentiated (as before).
 */
function inferenceBatchNorm(x: tf.Tensor4D, scale: tf.Tensor1D, shift: tf.Tensor1D): tf.Tensor4D {
  if (!(affineViaConv && tf.getBackend() === 'wasm')) return tf.add(tf.mul(x, scale), shift);
  const fn = tf.customGrad((...args: unknown[]) => {
    const [xi, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
    save([scale]);
    return {
      value: channelAffine(xi, scale, shift),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => channelAffine(dy as tf.Tensor4D, saved[0], null),
    };
  });
  return fn(x) as tf.Tensor4D;
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

let nativeRelu = true;
/** Benchmarks and tests only: on tensorflow, ReLU's gradient through TensorFlow's ReluGrad (true) or tfjs's (false). */
export function setNativeRelu(on: boolean): void {
  nativeRelu = on;
}

/**
 * tf.relu; on the tensorflow backend under a gradient tape, with TensorFlow's one-call ReluGrad as its gradient
 * (see nativeOps.reluGrad). Same values and, for finite inputs, the same gradients.
 */
export function relu<T extends tf.Tensor>(x: T): T {
  if (!(nativeRelu && tf.engine().isTapeOn() && hasNativeOps())) return tf.relu(x);
  const fn = tf.customGrad((...args: unknown[]) => {
    const [xi, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const y = tf.relu(xi);
    save([y]);
    return { value: y, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => reluGrad(dy, saved[0]) };
  });
  return fn(x) as T;
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
