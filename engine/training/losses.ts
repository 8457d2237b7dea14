/**
 * Training losses. All are written with logSoftmax (never log of a softmax), so a confident prediction
 * gives a large finite number rather than log(0) = −∞, and gradients flow through both arguments
 * unless the caller stops them (TRADES differentiates through the clean side too).
 */
import * as tf from '@tensorflow/tfjs-core';
// The losses are differentiated: make sure the gradient functions are registered.
import '../util/registerGradients';
import type { LayerRouting, MoeLayerInfo } from '../models/types';

/** Mean softmax cross-entropy of logits [B, C] against integer labels [B]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    // int32 one-hot then cast: wasm's OneHot ignores a float32 dtype and returns int bits as floats.
    const onehot = tf.cast(tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]), 'float32');
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}

/**
 * TRADES' robust term: KL(softmax(p) ‖ softmax(q)) summed over classes and divided by the batch size
 * (PyTorch `KLDivLoss(reduction='batchmean')(log_softmax(q), softmax(p))`), p the clean logits, q the
 * adversarial ones. Zero exactly when the two distributions agree.
 */
export function tradesKl(cleanLogits: tf.Tensor2D, advLogits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const logP = tf.logSoftmax(cleanLogits);
    const logQ = tf.logSoftmax(advLogits);
    return tf.div(tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ))), cleanLogits.shape[0]) as tf.Scalar;
  });
}

/**
 * The distinct routers of a forward pass: a shared router reports the same logits in every MoE layer and
 * must count once, not once per layer (it would weigh the router term by the layer count).
 */
export function distinctRouters(routing: readonly LayerRouting[], layers: readonly MoeLayerInfo[]): LayerRouting[] {
  if (routing.length !== layers.length) throw new RangeError(`routing has ${routing.length} layers, the model ${layers.length}`);
  const seen = new Set<number>();
  const out: LayerRouting[] = [];
  routing.forEach((r, i) => {
    if (seen.has(layers[i].router)) return;
    seen.add(layers[i].router);
    out.push(r);
  });
  return out;
}

/**
 * The official preset's router target: CE of each router's logits against `y mod N`, averaged over the
 * distinct routers (per-layer routers: every MoE layer; shared router: once). It ties each class to a
 * fixed expert, which keeps routing from collapsing and makes it predictable from the label.
 */
export function routerCrossEntropy(
  routing: readonly LayerRouting[],
  layers: readonly MoeLayerInfo[],
  labels: tf.Tensor1D,
  numExperts: number,
): tf.Scalar {
  return tf.tidy(() => {
    const routers = distinctRouters(routing, layers);
    if (routers.length === 0) throw new RangeError('router cross-entropy needs an MoE model');
    const target = tf.mod(tf.cast(labels, 'int32'), numExperts) as tf.Tensor1D;
    return tf.div(tf.addN(routers.map((r) => crossEntropy(r.logits, target))), routers.length) as tf.Scalar;
  });
}

/** KL(router(x) ‖ router(x')) in TRADES form, averaged over the distinct routers. */
export function routerKl(
  clean: readonly LayerRouting[],
  adv: readonly LayerRouting[],
  layers: readonly MoeLayerInfo[],
): tf.Scalar {
  return tf.tidy(() => {
    const a = distinctRouters(clean, layers);
    const b = distinctRouters(adv, layers);
    if (a.length === 0) throw new RangeError('router KL needs an MoE model');
    return tf.div(tf.addN(a.map((r, i) => tradesKl(r.logits, b[i].logits))), a.length) as tf.Scalar;
  });
}

/** Fraction of correct argmax predictions (a scalar in [0, 1]). */
export function accuracy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(labels, 'int32')), 'float32')) as tf.Scalar);
}

/** Identity forward, zero gradient: the expert shares below are measured, not optimised. */
const stopGradient = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * Load-balancing loss (Switch Transformer): for each distinct router, N · Σ_e f_e · P_e with f_e the share
 * of the batch's selections that went to expert e (no gradient) and P_e the mean router probability of e;
 * averaged over routers. It is 1 when routing is balanced and approaches N when one expert takes every
 * input, so its gradient lowers the probability of overloaded experts. Counters the rich-get-richer
 * collapse of hard top-k routing, where an expert that is never chosen never trains.
 */
export function routerBalanceLoss(routing: readonly LayerRouting[], layers: readonly MoeLayerInfo[], numExperts: number, topK: number): tf.Scalar {
  return tf.tidy(() => {
    const routers = distinctRouters(routing, layers);
    if (routers.length === 0) throw new RangeError('the router balance loss needs an MoE model');
    const terms = routers.map((r) => {
      const share = tf.div(tf.mean(stopGradient(r.mask), 0), topK);
      const meanProb = tf.mean(r.probs, 0);
      return tf.mul(tf.sum(tf.mul(share, meanProb)), numExperts);
    });
    return tf.div(tf.addN(terms), routers.length) as tf.Scalar;
  });
}

/**
 * Entropy remedy: log N − H(p̄) per distinct router, p̄ the batch-average of its probabilities, averaged over
 * routers. Zero exactly when p̄ is uniform (the batch as a whole uses every expert equally), log N when every
 * input puts all its mass on one expert; unlike an entropy on each input's distribution, it lets each input
 * stay decided (Pavlitska et al., ICCVW 2025, report it keeps routing balanced where the switch loss collapses).
 */
export function routerEntropyLoss(routing: readonly LayerRouting[], layers: readonly MoeLayerInfo[], numExperts: number): tf.Scalar {
  return tf.tidy(() => {
    const routers = distinctRouters(routing, layers);
    if (routers.length === 0) throw new RangeError('the router entropy loss needs an MoE model');
    const terms = routers.map((r) => {
      const mean = tf.mean(r.probs, 0);
      const entropy = tf.neg(tf.sum(tf.mul(mean, tf.log(tf.maximum(mean, 1e-12)))));
      return tf.sub(Math.log(numExperts), entropy);
    });
    return tf.div(tf.addN(terms), routers.length) as tf.Scalar;
  });
}
