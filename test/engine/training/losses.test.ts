import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { LayerRouting, MoeLayerInfo } from '../../../engine/models/types';
import { accuracy, crossEntropy, routerBalanceLoss, routerCrossEntropy, routerKl, tradesKl } from '../../../engine/training/losses';
import { setupTestBackend } from '../helpers';

const softmax = (z: number[]) => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const near = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

function routing(logits: number[][]): LayerRouting {
  const l = tf.tensor2d(logits);
  return { logits: l, probs: tf.softmax(l), mask: tf.cast(tf.oneHot(tf.argMax(l, 1), logits[0].length), 'float32') as tf.Tensor2D };
}

describe('losses', () => {
  before(setupTestBackend);

  const A = [
    [1, 2, 0.5],
    [-1, 0, 3],
  ];
  const B = [
    [0, 0, 0],
    [2, -2, 1],
  ];

  it('cross-entropy is the mean of −log softmax at the label', () => {
    const labels = [1, 0];
    const expected = -(Math.log(softmax(A[0])[1]) + Math.log(softmax(A[1])[0])) / 2;
    near(crossEntropy(tf.tensor2d(A), tf.tensor1d(labels, 'int32')).dataSync()[0], expected);
    near(accuracy(tf.tensor2d(A), tf.tensor1d(labels, 'int32')).dataSync()[0], 0.5);
  });

  it('TRADES KL equals Σ p·log(p/q) / B and is 0 for identical inputs', () => {
    let expected = 0;
    for (let i = 0; i < 2; i++) {
      const p = softmax(A[i]);
      const q = softmax(B[i]);
      expected += p.reduce((s, pi, c) => s + pi * Math.log(pi / q[c]), 0);
    }
    expected /= 2;
    const kl = tradesKl(tf.tensor2d(A), tf.tensor2d(B)).dataSync()[0];
    near(kl, expected);
    assert.ok(kl > 0.1, 'the test inputs really differ');
    assert.equal(tradesKl(tf.tensor2d(A), tf.tensor2d(A)).dataSync()[0], 0);
    // Not symmetric: the clean distribution weighs the log-ratio.
    assert.ok(Math.abs(tradesKl(tf.tensor2d(B), tf.tensor2d(A)).dataSync()[0] - kl) > 1e-3);
  });

  it('TRADES KL is differentiable w.r.t. both sides', () => {
    const a = tf.tensor2d(A);
    const b = tf.tensor2d(B);
    const [ga, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tradesKl(p as tf.Tensor2D, q as tf.Tensor2D))([a, b]);
    assert.ok(tf.sum(tf.abs(ga)).dataSync()[0] > 0);
    assert.ok(tf.sum(tf.abs(gb)).dataSync()[0] > 0);
  });

  it('router CE targets y mod N and counts a shared router once', () => {
    const r0 = routing([
      [2, 0],
      [0, 1],
      [1, 1],
    ]);
    const r1 = routing([
      [0, 3],
      [1, 0],
      [2, -1],
    ]);
    const labels = tf.tensor1d([4, 7, 2], 'int32'); // targets 0, 1, 0 with N = 2
    const ce = (z: number[][], t: number[]) => -t.reduce((s, ti, i) => s + Math.log(softmax(z[i])[ti]), 0) / t.length;
    const perLayer: MoeLayerInfo[] = [
      { name: 'a', router: 0, outChannels: 4, expertChannels: 2 },
      { name: 'b', router: 1, outChannels: 4, expertChannels: 2 },
    ];
    const expectedPerLayer =
      (ce([[2, 0], [0, 1], [1, 1]], [0, 1, 0]) + ce([[0, 3], [1, 0], [2, -1]], [0, 1, 0])) / 2;
    near(routerCrossEntropy([r0, r1], perLayer, labels, 2).dataSync()[0], expectedPerLayer);
    // Shared router: both layers report the same logits; the loss is that router's CE, not twice it.
    const shared = perLayer.map((l) => ({ ...l, router: 0 }));
    near(routerCrossEntropy([r0, r0], shared, labels, 2).dataSync()[0], ce([[2, 0], [0, 1], [1, 1]], [0, 1, 0]));
  });

  it('router KL averages TRADES KL over routers and is 0 when routing logits agree', () => {
    const layers: MoeLayerInfo[] = [
      { name: 'a', router: 0, outChannels: 4, expertChannels: 2 },
      { name: 'b', router: 1, outChannels: 4, expertChannels: 2 },
    ];
    const c0 = routing([[2, 0], [0, 1]]);
    const c1 = routing([[1, 1], [3, 0]]);
    const a0 = routing([[0, 2], [0, 1]]);
    const a1 = routing([[1, 1], [3, 0]]);
    assert.equal(routerKl([c0, c1], [c0, c1], layers).dataSync()[0], 0);
    const expected = (tradesKl(c0.logits, a0.logits).dataSync()[0] + 0) / 2;
    assert.ok(expected > 0.1);
    near(routerKl([c0, c1], [a0, a1], layers).dataSync()[0], expected);
  });
});

describe('routerBalanceLoss', () => {
  const layers: MoeLayerInfo[] = [{ name: 'a', router: 0, outChannels: 4, expertChannels: 2 }];
  const routingOf = (logits: tf.Tensor2D, mask: number[][]): LayerRouting[] => [
    { logits, probs: tf.softmax(logits) as tf.Tensor2D, mask: tf.tensor2d(mask) },
  ];

  it('is 1 for balanced routing and N·max-probability-mean for a collapsed router (hand computation)', () => {
    const balanced = routingOf(tf.tensor2d([[0, 0], [0, 0], [0, 0], [0, 0]]), [[1, 0], [0, 1], [1, 0], [0, 1]]);
    assert.ok(Math.abs(routerBalanceLoss(balanced, layers, 2, 1).dataSync()[0] - 1) < 1e-6);
    const logits = tf.tensor2d([[2, 0], [3, 0], [1, 0], [4, 0]]);
    const collapsed = routingOf(logits, [[1, 0], [1, 0], [1, 0], [1, 0]]);
    const p0 = tf.mean(tf.softmax(logits), 0).dataSync()[0];
    assert.ok(Math.abs(routerBalanceLoss(collapsed, layers, 2, 1).dataSync()[0] - 2 * p0) < 1e-6);
  });

  it('pushes the overloaded expert down: gradient on its logit is positive, none reaches the mask', () => {
    const mask = tf.tensor2d([[1, 0], [1, 0], [1, 0], [0, 1]]);
    const g = tf.grads((lg: tf.Tensor, m: tf.Tensor) =>
      routerBalanceLoss([{ logits: lg as tf.Tensor2D, probs: tf.softmax(lg) as tf.Tensor2D, mask: m as tf.Tensor2D }], layers, 2, 1),
    )([tf.zeros([4, 2]), mask]);
    const dl = g[0].arraySync() as number[][];
    for (const row of dl) assert.ok(row[0] > 0 && row[1] < 0, `overloaded expert 0 must be pushed down: ${row}`);
    assert.equal(tf.abs(g[1]).sum().dataSync()[0], 0);
  });
});
