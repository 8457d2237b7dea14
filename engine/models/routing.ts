/**
 * Routing primitives: hard top-k masks with a straight-through gradient, the expert-to-channel mask product,
 * and forced masks.
 *
 * Straight-through estimator (the definition the tests check): forward, mask = topk01(probs) — exactly k
 * ones per row; backward, d mask / d probs = identity, so d loss / d probs = d loss / d mask and the
 * router logits receive it through the softmax. The mask is never differentiated itself: tfjs has no
 * gradient for comparisons inside a differentiated path.
 *
 * Cost. These layers are 4–64 channels wide, so at small batches a forward is dominated by the per-op cost of
 * the engine, not by arithmetic. So: k = 1 masks come from ArgMax → OneHot → Cast (no TopK, no Sum); the expert
 * mask multiplies the output viewed as [B, H, W, N, c] by broadcasting (no 0/1 expansion matMul, whose gradient
 * is a transposed matMul — slow on wasm); and outside a gradient tape the straight-through wrapper is skipped
 * (tf.customGrad's machinery costs about as much as a small kernel). Nothing here reads tensor data on the host
 * (training steps must not block on a sync read); sparse inference uses `hostTopK`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ForwardOptions, LayerRouting } from './types';

/**
 * Host top-k of each row of a [rows, n] array as a 0/1 Float32Array: the k largest entries, ties going to the
 * lower index (what tf.topk does). A NaN counts as larger than every number, as in tf.topk's comparison
 * (its sort puts NaN first); NaNs among themselves go by index.
 */
export function hostTopK(values: ArrayLike<number>, rows: number, n: number, k: number): Float32Array {
  const mask = new Float32Array(rows * n);
  if (k >= n) return mask.fill(1);
  // a beats b (a at the lower index, or equal index order handled by the caller): a > b, or a is NaN and b not.
  const beats = (a: number, b: number): boolean => a > b || (a !== a && b === b);
  if (k === 1) {
    for (let r = 0, o = 0; r < rows; r++, o += n) {
      let best = 0;
      for (let e = 1; e < n; e++) if (beats(values[o + e], values[o + best])) best = e;
      mask[o + best] = 1;
    }
    return mask;
  }
  const order = new Array<number>(n);
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    for (let e = 0; e < n; e++) order[e] = e;
    order.sort((a, b) => (beats(values[o + a], values[o + b]) ? -1 : beats(values[o + b], values[o + a]) ? 1 : a - b));
    for (let j = 0; j < k; j++) mask[o + order[j]] = 1;
  }
  return mask;
}

/** Hard 0/1 mask [B, N] of the k largest entries per row (ties go to the lower expert index). */
export function topKMask(scores: tf.Tensor2D, k: number): tf.Tensor2D {
  return tf.tidy(() => {
    const n = scores.shape[1];
    if (k >= n) return tf.onesLike(scores);
    // ArgMax returns the first maximum, the same entry tf.topk(…, 1) puts first.
    if (k === 1) return tf.cast(oneHot(tf.argMax(scores, 1), n), 'float32') as tf.Tensor2D;
    const { indices } = tf.topk(scores, k, true);
    return tf.cast(tf.sum(oneHot(indices as tf.Tensor2D, n), 1), 'float32') as tf.Tensor2D;
  });
}

/** Host version of `topKMask` on a [B, N] array (sparse inference, which reads the routing anyway). */
export function hostTopKMask(scores: tf.Tensor2D, k: number): tf.Tensor2D {
  const [rows, n] = scores.shape;
  return tf.tensor2d(hostTopK(scores.dataSync(), rows, n, k), [rows, n]);
}

/** Per k and gradient mode, the tf.customGrad op of a hard top-k mask (built once: customGrad is not free). */
const maskOps = new Map<string, (probs: tf.Tensor2D, select: tf.Tensor2D) => tf.Tensor2D>();

/**
 * Whether a gradient tape records the ops run now. When none does (inference, the forward of a PGD step's final
 * evaluation…), the masks below compute their value directly: tf.customGrad's kernel-function machinery costs
 * about as much as a small kernel.
 */
function taping(): boolean {
  return tf.engine().isTapeOn();
}

/**
 * Hard top-k mask of `select` as one tf.customGrad op, which keeps the ArgMax (no gradient in tfjs) out of the tape.
 * Its gradient goes straight through to `probs` (`straight`), or nowhere; `select` never takes one.
 */
function hardTopK(probs: tf.Tensor2D, k: number, select: tf.Tensor2D, straight: boolean): tf.Tensor2D {
  if (!taping()) return topKMask(select, k);
  const key = `${k}:${straight}`;
  let f = maskOps.get(key);
  if (!f) {
    f = tf.customGrad(((p: tf.Tensor, s: tf.Tensor) => ({
      value: topKMask(s as tf.Tensor2D, k),
      gradFunc: (dy: tf.Tensor) => [straight ? dy : tf.zerosLike(dy), tf.zerosLike(dy)], // select has the shape of probs
    })) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (probs: tf.Tensor2D, select: tf.Tensor2D) => tf.Tensor2D;
    maskOps.set(key, f);
  }
  return f(probs, select);
}

/**
 * Hard top-k mask whose gradient passes straight through to `probs`. The choice is the top-k of `select`
 * (default `probs`; a router with a selection bias passes its biased scores): the bias decides which experts
 * run but takes no gradient, so the router learns from the task loss alone.
 */
export function straightThroughTopK(probs: tf.Tensor2D, k: number, select: tf.Tensor2D = probs): tf.Tensor2D {
  return hardTopK(probs, k, select, true);
}

/**
 * Hard top-k mask of `select` that passes no gradient on: the routing is a constant of the pass, which is the true
 * derivative of a piecewise-constant choice (`ForwardOptions.routingGradient: 'none'`).
 */
export function detachedTopK(select: tf.Tensor2D, k: number): tf.Tensor2D {
  return hardTopK(select, k, select, false);
}

/**
 * A router's routing from its logits [B, N] and selection bias [N]: softmax probabilities, and the hard top-k
 * mask of logits + bias (= top-k of softmax(logits + bias)) with the gradient straight through to the unbiased
 * probabilities (to the logits with `straightToScores`, as the reference router), or no gradient at all with
 * `opts.routingGradient: 'none'`. `hostMask` (sparse inference)
 * takes the top-k on the host. With `opts.selectionBiasRate`, the bias then moves toward equal load
 * (`updateSelectionBias`).
 */
export function routerDecision(
  logits: tf.Tensor2D,
  bias: tf.Variable,
  k: number,
  opts: ForwardOptions,
  how: { hostMask?: boolean; straightToScores?: boolean } = {},
): LayerRouting {
  const probs = tf.softmax(logits);
  const select = tf.add(logits, bias) as tf.Tensor2D;
  const mask = how.hostMask
    ? hostTopKMask(select, k)
    : opts.routingGradient === 'none'
      ? detachedTopK(select, k)
      : straightThroughTopK(how.straightToScores ? logits : probs, k, select);
  const rate = opts.selectionBiasRate ?? 0;
  if (rate > 0) {
    if (opts.sparse) throw new RangeError('selection-bias updates are for training passes and the inference-mode balancing pass only');
    updateSelectionBias(bias, mask, k, rate);
  }
  return { logits, probs, mask };
}

/**
 * Auxiliary-loss-free balancing (Wang et al. 2024): moves a router's selection bias [N] toward equal load
 * after a pass routed with `mask` [B, N]: bias += rate · N · (k/N − load), load the share of the batch each
 * expert got. Proportional, so a collapsed router's bias moves fast and a balanced one's barely moves.
 */
export function updateSelectionBias(bias: tf.Variable, mask: tf.Tensor2D, k: number, rate: number): void {
  tf.tidy(() => {
    const n = mask.shape[1];
    const load = tf.mean(mask, 0);
    bias.assign(tf.add(bias, tf.mul(tf.sub(k / n, load), rate * n)));
  });
}

/**
 * int32 one-hot. tfjs-backend-wasm 4.22's OneHot kernel ignores the requested dtype and writes int32 bits,
 * so `tf.oneHot(…, 'float32')` there yields 1.4e-45 (the float whose bits are int 1) instead of 1: masks
 * made that way were all ~0 on wasm. Asking for int32 and casting is right on every backend.
 */
function oneHot(indices: tf.Tensor, depth: number): tf.Tensor {
  return tf.oneHot(indices, depth, 1, 0, 'int32');
}

/** One-hot mask [B, N] selecting `expert` in every row. */
export function forcedMask(batch: number, numExperts: number, expert: number): tf.Tensor2D {
  if (!Number.isInteger(expert) || expert < 0 || expert >= numExperts) {
    throw new RangeError(`forced expert ${expert} is outside 0..${numExperts - 1}`);
  }
  const data = new Float32Array(batch * numExperts);
  for (let b = 0; b < batch; b++) data[b * numExperts + expert] = 1;
  return tf.tensor2d(data, [batch, numExperts]);
}

/**
 * y [B, H, W, N·c] times the expert mask [B, N] expanded to channels (expert e owns channels e·c … e·c + c − 1):
 * the same value as y · reshape(mask · E, [B, 1, 1, N·c]) with E the 0/1 expansion matrix, computed as one
 * broadcast multiply of y viewed as [B, H, W, N, c] by the mask viewed as [B, 1, 1, N, 1]. Gradients:
 * d/dy = dy · mask, d/d mask[b, e] = Σ over h, w and e's channels of dy · y (one Sum instead of a transposed matMul).
 */
export function applyExpertMask(y: tf.Tensor4D, mask: tf.Tensor2D, expertChannels: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, channels] = y.shape;
    const n = channels / expertChannels;
    const m = tf.reshape(mask, [b, 1, 1, n, 1]);
    return tf.reshape(tf.mul(tf.reshape(y, [b, h, w, n, expertChannels]), m), [b, h, w, channels]) as tf.Tensor4D;
  });
}

/**
 * The gathered layout's expert output: y [B, H, W, N·c] → Σₑ mask[b, e] · y[b, :, :, e·c … e·c + c − 1], i.e. for a
 * one-hot mask the chosen expert's c channels (the reference code's MoEConv gathers them). Gradients: d/dy = dy
 * broadcast to the masked blocks, d/d mask[b, e] = Σ over h, w, c of dy · block e — which the straight-through mask
 * hands on to the router.
 */
export function gatherExperts(y: tf.Tensor4D, mask: tf.Tensor2D, expertChannels: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, channels] = y.shape;
    const n = channels / expertChannels;
    const m = tf.reshape(mask, [b, 1, 1, n, 1]);
    return tf.sum(tf.mul(tf.reshape(y, [b, h, w, n, expertChannels]), m), 3) as tf.Tensor4D;
  });
}

/**
 * [N, N·c] 0/1 matrix that expands an expert mask [B, N] to a channel mask [B, N·c] by one matMul
 * (expert e owns channels e·c … e·c + c − 1). Kept as the reference form of `applyExpertMask`.
 */
export function expertToChannelMatrix(numExperts: number, expertChannels: number): tf.Tensor2D {
  const data = new Float32Array(numExperts * numExperts * expertChannels);
  const width = numExperts * expertChannels;
  for (let e = 0; e < numExperts; e++) {
    for (let c = 0; c < expertChannels; c++) data[e * width + e * expertChannels + c] = 1;
  }
  return tf.tensor2d(data, [numExperts, width]);
}

/**
 * Noisy top-k gating: the router's logits plus N(0, std²) noise drawn from the pass's seed (offset by the router's
 * index, so routers draw independent streams). Training only: sparse inference has no `routerNoise`.
 */
export function withRouterNoise(logits: tf.Tensor2D, opts: ForwardOptions, router: number): tf.Tensor2D {
  const noise = opts.routerNoise;
  if (!noise || !(noise.std > 0)) return logits;
  if (!opts.training) throw new RangeError('router noise is for training passes only');
  const seed = (noise.seed + Math.imul(router + 1, 0x9e3779b1)) >>> 0;
  return tf.add(logits, tf.randomNormal(logits.shape, 0, noise.std, 'float32', seed)) as tf.Tensor2D;
}
