/**
 * Tied experts (`method.routing.tieExpertsEpochs`): copies of one expert compute the same function whatever the
 * routing, a tied step is the step of one shared expert, and a layout where a copy cannot stand in for another is
 * refused by name.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { createModel } from '../../../engine/models/factory';
import { copyFirstExpert, tiedValue } from '../../../engine/models/tying';
import type { Model } from '../../../engine/models/types';
import { crossEntropy } from '../../../engine/training/losses';
import { createOptimizers, trainStep } from '../../../engine/training/methods';
import { maxAbsDiff, setupTestBackend } from '../helpers';
import { methodConfig, testAdversary } from '../training/fixtures';
import { images, MNIST, modelConfig, moe, randomize } from './fixtures';

/** Logits of `model` on x with every MoE layer forced to `expert`, or routed by the routers. */
function logits(model: Model, x: tf.Tensor4D, expert: number | 'router', training = false): tf.Tensor2D {
  const routing = expert === 'router' ? { kind: 'router' as const } : { kind: 'force' as const, expert };
  return model.forward(x, { training, updateBnStats: false, routing }).logits;
}

/** Largest difference between forcing expert 0, expert 1 and the routers' own (mixed) decisions. */
function spreadOverRoutings(model: Model, x: tf.Tensor4D, training = false): number {
  return tf.tidy(() => {
    const base = logits(model, x, 0, training);
    return Math.max(maxAbsDiff(base, logits(model, x, 1, training)), maxAbsDiff(base, logits(model, x, 'router', training)));
  });
}

/** A model whose routers split the batch (so "the routers' decisions" mixes experts) and whose experts differ. */
function splitModel(layout: 'blocks' | 'gathered', backbone: 'vgg16' | 'resnet18' = 'vgg16', router: 'per-layer' | 'shared' = 'per-layer'): Model {
  // routerNorm centres the routers' pooled inputs, which otherwise send every image to one expert at initialisation.
  const model = createModel(modelConfig(backbone, moe({ layout, router, routerNorm: true }), 'tiny', 0.5), MNIST, 3);
  randomize(model, 5, { routerScale: 2 });
  return model;
}

describe('tied experts', () => {
  before(async () => {
    await setupTestBackend();
  });

  it('tiedValue: before + the sum of the copies\' updates in every block; the mean for statistics', () => {
    tf.tidy(() => {
      const before = tf.tensor2d([[1, 2, 1, 2]]); // 2 blocks of 2 along axis 1, equal
      const after = tf.tensor2d([[1.5, 2, 0, 3]]); // block 0 moved by (0.5, 0), block 1 by (-1, 1)
      assert.deepEqual(Array.from(tiedValue(before, after, { axis: 1, blocks: 2, combine: 'sum' }).dataSync()), [0.5, 3, 0.5, 3]);
      assert.deepEqual(Array.from(tiedValue(before, after, { axis: 1, blocks: 2, combine: 'mean' }).dataSync()), [0.75, 2.5, 0.75, 2.5]);
      assert.throws(() => tiedValue(tf.zeros([3]), tf.zeros([3]), { axis: 0, blocks: 2, combine: 'sum' }), /does not split into 2 blocks/);
    });
  });

  for (const layout of ['blocks', 'gathered'] as const) {
    it(`${layout} layout: after copyFirstExpert every routing gives the same logits (evaluation and training BN)`, () => {
      const model = splitModel(layout);
      const x = images(32, MNIST, 11);
      const split = tf.tidy(() => tf.max(tf.mean(model.forward(x, { training: false }).routing[0].mask, 0)).dataSync()[0]);
      assert.ok(split < 0.95, `the routers must split the batch for this test (largest share ${split})`);
      assert.ok(spreadOverRoutings(model, x) > 1e-2, 'untied experts differ');
      copyFirstExpert(model.expertTies!());
      assert.ok(spreadOverRoutings(model, x) < 1e-4, `eval: ${spreadOverRoutings(model, x)}`);
      assert.ok(spreadOverRoutings(model, x, true) < 1e-4, `train: ${spreadOverRoutings(model, x, true)}`);
      x.dispose();
      model.dispose();
    });
  }

  // The image-level router: per-layer routers read the experts' features, and in the blocks layout the straight-through
  // estimator hands them a gradient even from tied experts (the ReLU after an unchosen expert's zeroed channels stops
  // its share), which flows on into the layers below them; forced routing has no such path.
  it('a tied step equals the step of one shared expert: every input forced through expert 0 (SGD, weight decay 0)', async () => {
    const model = splitModel('blocks', 'vgg16', 'shared');
    const ties = model.expertTies!();
    copyFirstExpert(ties);
    const x = images(32, MNIST, 12);
    const y = tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 10), 'int32');
    const lr = 0.05;
    // The expected values: one SGD step (momentum buffers start at zero, so the first step is w − lr·g) on the loss
    // of the network whose every input goes through expert 0.
    // Under forced routing expert 1's copies get no gradient; the shared expert is expert 0's block, in every copy.
    const experts = model.trainableVariables('expert');
    const start = experts.map((v) => tf.clone(v));
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => tf.mean(crossEntropy(logits(model, x, 0, true), y)) as tf.Scalar, experts);
      experts.forEach((v) => v.assign(tf.sub(v, tf.mul(grads[v.name], lr))));
    });
    copyFirstExpert(ties);
    const expected = experts.map((v) => tf.clone(v));
    experts.forEach((v, i) => v.assign(start[i]));
    const split = tf.tidy(() => tf.max(tf.mean(model.forward(x, { training: true, updateBnStats: false }).routing[0].mask, 0)).dataSync()[0]);
    assert.ok(split < 0.95, `the routers must split the batch for this test (largest share ${split})`);
    const optimizers = createOptimizers(model, { momentum: 0.9, weightDecay: 0 });
    await trainStep(methodConfig('standard'), { model, optimizers, x, y, lr, step: 0, tiedExperts: ties });
    const worst = Math.max(...experts.map((v, i) => maxAbsDiff(v, expected[i])));
    assert.ok(worst < 1e-5, `largest difference from the shared-expert step: ${worst}`);
    assert.ok(spreadOverRoutings(model, x) < 1e-4, 'the experts are still interchangeable after the step');
    tf.dispose([x, y, ...expected, ...start]);
    optimizers.router.dispose();
    optimizers.expert.dispose();
    model.dispose();
  });

  it('advmoe skips its router steps while tied (the routers get nothing to learn) and trains them after', async () => {
    const model = splitModel('gathered');
    const ties = model.expertTies!();
    copyFirstExpert(ties);
    const optimizers = createOptimizers(model, { momentum: 0.9, weightDecay: 5e-4 });
    const x = images(16, MNIST, 13);
    const y = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 10), 'int32');
    const method = methodConfig('advmoe');
    const tied = await trainStep(method, { model, optimizers, x, y, lr: 0.05, step: 0, adversary: testAdversary(model), tiedExperts: ties });
    assert.equal(tied.metrics.routerLoss, undefined, 'no router step while tied');
    const untied = await trainStep(method, { model, optimizers, x, y, lr: 0.05, step: 1, adversary: testAdversary(model) });
    assert.equal(typeof untied.metrics.routerLoss, 'number', 'a router step once untied');
    assert.ok(spreadOverRoutings(model, x) > 1e-6, 'untied, the copies move apart');
    tf.dispose([x, y]);
    optimizers.router.dispose();
    optimizers.expert.dispose();
    model.dispose();
  });

  it('refuses, naming the layer, a blocks-layout MoE conv whose output a residual sum also reads', () => {
    const model = splitModel('blocks', 'resnet18');
    assert.throws(() => model.expertTies!(), (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && /layer1\.0\.conv2/.test(e.message) && /gathered/.test(e.message));
    model.dispose();
    const gathered = splitModel('gathered', 'resnet18');
    assert.ok(gathered.expertTies!().length > 0, 'the gathered layout ties any backbone');
    gathered.dispose();
  });
});
