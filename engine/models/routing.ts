/**
 * Routing primitives: hard top-k masks with a straight-through gradient, and the two router topologies.
 *
 * Straight-through estimator (the definition the tests check): forward, mask = topk01(probs) — exactly k
 * ones per row; backward, d mask / d probs = identity, so d loss / d probs = d loss / d mask and the
 * router logits receive it through the softmax. The mask is computed from values (tf.topk + oneHot),
 * never differentiated itself: tfjs has no gradient for comparisons inside a differentiated path.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Hard 0/1 mask [B, N] of the k largest entries per row (ties go to the lower expert index). */
export function topKMask(scores: tf.Tensor2D, k: number): tf.Tensor2D {
  return tf.tidy(() => {
    const n = scores.shape[1];
    if (k >= n) return tf.onesLike(scores);
    const { indices } = tf.topk(scores, k, true);
    return tf.cast(tf.sum(oneHot(indices as tf.Tensor2D, n), 1), 'float32') as tf.Tensor2D;
  });
}

const steByK = new Map<number, (probs: tf.Tensor2D) => tf.Tensor2D>();

/** Hard top-k mask of `probs` whose gradient passes straight through to `probs`. */
export function straightThroughTopK(probs: tf.Tensor2D, k: number): tf.Tensor2D {
  let f = steByK.get(k);
  if (!f) {
    f = tf.customGrad(((p: tf.Tensor) => ({
      value: topKMask(p as tf.Tensor2D, k),
      gradFunc: (dy: tf.Tensor) => dy,
    })) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (probs: tf.Tensor2D) => tf.Tensor2D;
    steByK.set(k, f);
  }
  return f(probs);
}

/** One-hot mask [B, N] selecting `expert` in every row. */
export function forcedMask(batch: number, numExperts: number, expert: number): tf.Tensor2D {
  if (!Number.isInteger(expert) || expert < 0 || expert >= numExperts) {
    throw new RangeError(`forced expert ${expert} is outside 0..${numExperts - 1}`);
  }
  return tf.tidy(() => tf.cast(tf.tile(oneHot(tf.tensor1d([expert], 'int32'), numExperts), [batch, 1]), 'float32') as tf.Tensor2D);
}

/**
 * int32 one-hot. tfjs-backend-wasm 4.22's OneHot kernel ignores the requested dtype and writes int32 bits,
 * so `tf.oneHot(…, 'float32')` there yields 1.4e-45 (the float whose bits are int 1) instead of 1: masks
 * made that way were all ~0 on wasm. Asking for int32 and casting is right on every backend.
 */
function oneHot(indices: tf.Tensor, depth: number): tf.Tensor {
  return tf.oneHot(indices, depth, 1, 0, 'int32');
}

/**
 * [N, N·c] 0/1 matrix that expands an expert mask [B, N] to a channel mask [B, N·c] by one matMul
 * (expert e owns channels e·c … e·c + c − 1). matMul is cheap and differentiable on every backend,
 * unlike tile/gather on wasm.
 */
export function expertToChannelMatrix(numExperts: number, expertChannels: number): tf.Tensor2D {
  const data = new Float32Array(numExperts * numExperts * expertChannels);
  const width = numExperts * expertChannels;
  for (let e = 0; e < numExperts; e++) {
    for (let c = 0; c < expertChannels; c++) data[e * width + e * expertChannels + c] = 1;
  }
  return tf.tensor2d(data, [numExperts, width]);
}
