/**
 * Every backbone × {dense, MoE per-layer, MoE shared}: forward shape, a gradient for every trainable
 * variable of both groups, BN running statistics, leaks. The `tiny` preset at half width on 12×12 inputs:
 * the cpu backend is ~100× slower than wasm, and at 28×28 full `tiny` width this file took two minutes.
 * (VGG's pool skipping and DenseNet's flooring transitions are both exercised at 12×12.)
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { MoeConfig } from '../../../engine/config/types';
import { createModel } from '../../../engine/models/factory';
import type { DataSpec } from '../../../engine/models/net';
import type { Model } from '../../../engine/models/types';
import { setupTestBackend } from '../helpers';
import { BACKBONES, DENSE, MNIST, bytesOf, images, modelConfig, moe } from './fixtures';

const SMALL: DataSpec = { inputShape: [12, 12, 1], numClasses: 10, mean: [0.1307], std: [0.3081] };
const WIDTH = 0.5;

before(setupTestBackend);

const MODES: [string, MoeConfig][] = [
  ['dense', DENSE],
  ['MoE per-layer', moe({ experts: 2, topK: 1, router: 'per-layer' })],
  ['MoE shared', moe({ experts: 3, topK: 2, expertWidth: 0.34, router: 'shared' })],
];

function loss(model: Model, x: tf.Tensor4D, opts: Parameters<Model['forward']>[1]): tf.Scalar {
  const { logits } = model.forward(x, opts);
  const labels = tf.oneHot(tf.tensor1d([3, 7], 'int32'), model.numClasses);
  return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

/** The BN running statistics (non-trainable, but not the optional selection-bias buffers, which only
 * `method.routing.balanceBias` moves). */
function snapshot(model: Model): Map<string, Buffer> {
  return new Map(model.params.filter((p) => !p.trainable && !p.optional).map((p) => [p.name, bytesOf(p.variable)]));
}

for (const backbone of BACKBONES) {
  describe(backbone, () => {
    for (const [label, m] of MODES) {
      it(`${label}: forward, gradients of both groups, BN statistics`, () => {
        const model = createModel(modelConfig(backbone, m, 'tiny', WIDTH), SMALL, 4);
        try {
          assert.equal(model.numExperts, m.enabled ? m.experts : 1);
          assert.equal(model.moeLayers.length > 0, m.enabled);
          if (m.enabled && m.router === 'per-layer') assert.deepEqual(model.moeLayers.map((l) => l.router), model.moeLayers.map((_, i) => i));
          if (m.enabled && m.router === 'shared') assert.ok(model.moeLayers.every((l) => l.router === 0));
          tf.tidy(() => {
            const x = images(2, SMALL);
            const before = snapshot(model);
            const out = model.forward(x, { training: true });
            assert.deepEqual(out.logits.shape, [2, 10]);
            assert.ok((out.logits.dataSync() as Float32Array).every(Number.isFinite), 'non-finite logits');
            assert.equal(out.routing.length, model.moeLayers.length);
            for (const r of out.routing) {
              assert.deepEqual(r.mask.shape, [2, model.numExperts]);
              for (const row of r.mask.arraySync()) assert.equal(row.reduce((a, b) => a + b, 0), model.topK);
            }
            assert.deepEqual(model.forward(x, { training: false }).logits.shape, [2, 10]);

            // BN statistics: untouched by evaluation and by training passes without updateBnStats…
            for (const [name, bytes] of snapshot(model)) assert.ok(bytes.equals(before.get(name)!), `${name} changed without updateBnStats`);

            // …and every trainable variable of both groups gets a finite gradient in a training pass.
            const vars = model.trainableVariables();
            assert.equal(vars.length, model.trainableVariables('router').length + model.trainableVariables('expert').length);
            assert.equal(model.trainableVariables('router').length > 0, m.enabled);
            const { grads } = tf.variableGrads(() => loss(model, x, { training: true }), vars);
            let expertNorm = 0;
            for (const p of model.params.filter((q) => q.trainable)) {
              const g = grads[p.variable.name];
              assert.ok(g, `no gradient for ${p.name}`);
              assert.deepEqual(g.shape, p.variable.shape);
              const v = g.dataSync() as Float32Array;
              assert.ok(v.every(Number.isFinite), `non-finite gradient for ${p.name}`);
              const norm = v.reduce((a, b) => a + Math.abs(b), 0);
              if (p.group === 'router') assert.ok(norm > 0, `router gradient of ${p.name} is zero`);
              else expertNorm += norm;
            }
            assert.ok(expertNorm > 0);

            model.forward(x, { training: true, updateBnStats: true });
            for (const [name, bytes] of snapshot(model)) assert.ok(!bytes.equals(before.get(name)!), `${name} did not change with updateBnStats`);
          });
        } finally {
          model.dispose();
        }
      });
    }
  });
}

describe('input sizes', () => {
  // VGG pools five times: 28 → 14 → 7 → 4 → 2 → 1 (ceil), 8 → 4 → 2 → 1 (then skipped).
  // DenseNet transitions floor: 28 → 14 → 7; 5 → 2 → 1.
  for (const [backbone, size] of [['vgg16', 28], ['vgg16', 8], ['vgg16', 32], ['densenet', 5], ['wrn28_10', 9]] as const) {
    it(`${backbone} on ${size}×${size}×3 gives [B, classes]`, () => {
      const data: DataSpec = { inputShape: [size, size, 3], numClasses: 4, mean: [0, 0, 0], std: [1, 1, 1] };
      const model = createModel(modelConfig(backbone, moe()), data, 1);
      try {
        tf.tidy(() => assert.deepEqual(model.forward(images(2, data), { training: true }).logits.shape, [2, 4]));
        assert.ok(model.flops().active < model.flops().dense);
      } finally {
        model.dispose();
      }
    });
  }

  it('rejects an input of the wrong shape', () => {
    const model = createModel(modelConfig('vgg16'), MNIST, 1);
    try {
      assert.throws(
        () => tf.tidy(() => {
          model.forward(tf.zeros([1, 32, 32, 1]) as tf.Tensor4D, { training: false });
        }),
        /expects input \[B, 28, 28, 1\]/,
      );
    } finally {
      model.dispose();
    }
  });
});

describe('memory', () => {
  for (const backbone of BACKBONES) {
    it(`${backbone} MoE: tf.memory().numTensors is flat across forward + gradient steps`, () => {
      const start = tf.memory().numTensors;
      const model = createModel(modelConfig(backbone, moe({ router: backbone === 'vgg16' ? 'shared' : 'per-layer' }), 'tiny', WIDTH), SMALL, 4);
      const x = images(2, SMALL);
      const step = () =>
        tf.tidy(() => {
          const { grads } = tf.variableGrads(() => loss(model, x, { training: true, updateBnStats: true }), model.trainableVariables());
          for (const g of Object.values(grads)) g.dataSync();
          model.forward(x, { training: false, routing: { kind: 'force', expert: 1 } });
        });
      try {
        step(); // first call may cache constants (expert→channel matrices)
        const count = tf.memory().numTensors;
        for (let i = 0; i < 2; i++) step();
        assert.equal(tf.memory().numTensors, count);
      } finally {
        x.dispose();
        model.dispose();
      }
      assert.equal(tf.memory().numTensors, start, 'dispose() left tensors behind');
    });
  }
});
