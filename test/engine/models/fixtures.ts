/** Configs and small helpers shared by the model tests. */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { BackboneName, BackbonePreset, ModelConfig, MoeConfig } from '../../../engine/config/types';
import type { DataSpec } from '../../../engine/models/net';
import type { BatchNormWeights } from '../../../engine/models/params';
import type { Model } from '../../../engine/models/types';
import { maxAbsDiff } from '../helpers';

export const MNIST: DataSpec = { inputShape: [28, 28, 1], numClasses: 10, mean: [0.1307], std: [0.3081] };
export const CIFAR: DataSpec = { inputShape: [32, 32, 3], numClasses: 10, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] };

export const DENSE: MoeConfig = { enabled: false, experts: 2, topK: 1, expertWidth: 0.5, router: 'per-layer', routerNorm: false, layers: 'all-blocks' };

export function moe(overrides: Partial<MoeConfig> = {}): MoeConfig {
  return { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, router: 'per-layer', routerNorm: false, layers: 'all-blocks', ...overrides };
}

export function modelConfig(backbone: BackboneName, m: MoeConfig = DENSE, preset: BackbonePreset = 'tiny', widthMultiplier = 1): ModelConfig {
  return { backbone, preset, widthMultiplier, moe: m };
}

/** A seeded uniform [0,1) batch. */
export function images(batch: number, spec: DataSpec, seed = 7): tf.Tensor4D {
  return tf.randomUniform([batch, ...spec.inputShape], 0, 1, 'float32', seed) as tf.Tensor4D;
}

/** The raw bytes of a tensor's values (bit-exact comparisons, NaN payloads and -0 included). */
export function bytesOf(t: tf.Tensor): Buffer {
  const v = t.dataSync() as Float32Array | Int32Array;
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

export const BACKBONES: BackboneName[] = ['resnet18', 'vgg16', 'wrn28_10', 'densenet'];

/**
 * Non-trivial BN statistics and affine parameters, so both BN modes are exercised; with `routerScale`, router
 * kernels drawn N(0, routerScale²) too, so that the samples of a batch are routed differently.
 */
export function randomize(model: Model, seed: number, opts: { routerScale?: number } = {}): void {
  tf.tidy(() => {
    // Optional buffers (routers' selection biases) stay zero and do not shift the other parameters' seeds.
    model.params.filter((p) => !p.optional).forEach((p, i) => {
      const s = seed * 1000 + i;
      const shape = p.variable.shape;
      if (p.name.endsWith('.movingMean') || p.name.endsWith('.beta')) p.variable.assign(tf.randomNormal(shape, 0, 0.2, 'float32', s));
      else if (p.name.endsWith('.movingVar') || p.name.endsWith('.gamma')) p.variable.assign(tf.randomUniform(shape, 0.5, 1.5, 'float32', s));
      else if (opts.routerScale && p.group === 'router' && p.name.endsWith('.kernel')) p.variable.assign(tf.randomNormal(shape, 0, opts.routerScale, 'float32', s));
    });
  });
}

/** BatchNorm weights of `c` channels with distinct, non-trivial values per channel (γ, β, running statistics). */
export function makeBn(c: number): BatchNormWeights {
  // tidy: the initial-value tensors are released, the variables keep their data.
  return tf.tidy(() => ({
    gamma: tf.variable(tf.tensor1d(Array.from({ length: c }, (_, i) => 0.5 + 0.3 * i))),
    beta: tf.variable(tf.tensor1d(Array.from({ length: c }, (_, i) => -0.2 + 0.1 * i))),
    movingMean: tf.variable(tf.tensor1d(Array.from({ length: c }, (_, i) => 0.05 * i)), false),
    movingVar: tf.variable(tf.tensor1d(Array.from({ length: c }, (_, i) => 1 + 0.1 * i)), false),
    channels: c,
  }));
}

/**
 * The straight-through gradient as defined: with M the hard top-k mask of the forward pass, d L / d M is measured
 * independently by feeding M as every MoE layer's fixed mask (`routing: fixed`) and differentiating with respect to
 * it. The router's scores receive d L / d M unchanged (`to: 'scores'`, the reference router) or through the softmax
 * Jacobian (`to: 'softmax'`: J(p)ᵀ · d L / d M); the router bias gradient is their sum over the batch.
 */
export function assertStraightThrough(model: Model, routerBias: string, batch: number, to: 'scores' | 'softmax'): void {
  tf.tidy(() => {
    const x = images(batch, MNIST);
    const weights = tf.randomNormal([batch, MNIST.numClasses], 0, 1, 'float32', 5);
    const loss = (logits: tf.Tensor2D) => tf.sum(tf.mul(logits, weights)) as tf.Scalar;
    const opts = { training: true } as const;
    const routed = model.forward(x, opts);
    const { mask, probs } = routed.routing[0];
    const fixed = model.forward(x, { ...opts, routing: { kind: 'fixed', masks: model.moeLayers.map(() => mask) } }).logits;
    assert.equal(maxAbsDiff(routed.logits, fixed), 0, 'router forward = hard-mask forward');
    const dMask = tf.grad((m: tf.Tensor) => loss(model.forward(x, { ...opts, routing: { kind: 'fixed', masks: model.moeLayers.map(() => m as tf.Tensor2D) } }).logits))(mask);
    let dScores: tf.Tensor = dMask;
    if (to === 'softmax') {
      const pg = tf.mul(probs, dMask);
      dScores = tf.sub(pg, tf.mul(probs, tf.sum(pg, 1, true)));
    }
    const expected = tf.sum(dScores, 0);
    const bias = model.params.find((p) => p.name === routerBias);
    assert.ok(bias, `no parameter ${routerBias}`);
    const { grads } = tf.variableGrads(() => loss(model.forward(x, opts).logits), [bias.variable]);
    const actual = grads[bias.variable.name];
    const scale = Math.max(...(expected.dataSync() as Float32Array).map(Math.abs));
    assert.ok(scale > 1e-4, 'the check is vacuous: d L / d scores is ~0');
    assert.ok(maxAbsDiff(actual, expected) <= 1e-4 * scale + 1e-6, `router bias gradient ${actual.dataSync()} vs ${expected.dataSync()}`);
  });
}
