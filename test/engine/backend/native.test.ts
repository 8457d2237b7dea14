/**
 * The native backend against wasm on every backbone (README, Backends): logits and input gradients of each
 * `tiny` MoE model (per-layer routers, N = 2, top-1) agree between tensorflow and wasm, in inference mode and
 * with batch statistics, and so do the routing decisions. This is what guards the unofficial pairing of
 * tfjs-node's binding with a newer TensorFlow C library. Skipped, with the reason, where tensorflow cannot be
 * initialised; it runs in the wasm pass of the suite only (it selects both backends itself).
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../../../engine/util/registerGradients';
import { initBackend } from '../../../engine/backend/select';
import { createModel } from '../../../engine/models/factory';
import type { Model } from '../../../engine/models/types';
import { errorMessage } from '../../../engine/util/errors';
import { maxRelDiff, testBackendName } from '../helpers';
import { BACKBONES, CIFAR, images, modelConfig, moe, randomize } from '../models/fixtures';

/** max|tensorflow − wasm| / max|wasm|, for logits and for input gradients. */
const TOL = 1e-4;

let skip: string | false = testBackendName() !== 'wasm' && 'runs once, in the wasm pass of the suite';

before(async () => {
  if (skip) return;
  try {
    await initBackend('tensorflow');
  } catch (e) {
    skip = `tensorflow not available: ${errorMessage(e)}`;
  }
});


interface Outputs {
  logits: Float32Array;
  grad: Float32Array;
  masks: number[][][];
}

/** Logits, d(weighted logit sum)/dx and routing masks on the current backend, copied out as plain arrays. */
function run(model: Model, x: tf.Tensor4D, r: tf.Tensor2D, training: boolean): Outputs {
  return tf.tidy(() => {
    const out = model.forward(x, { training });
    const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(model.forward(t as tf.Tensor4D, { training }).logits, r)))(x);
    return {
      logits: out.logits.dataSync() as Float32Array,
      grad: grad.dataSync() as Float32Array,
      masks: out.routing.map((l) => l.mask.arraySync()),
    };
  });
}

async function onBackend(name: 'tensorflow' | 'wasm', fn: () => Outputs): Promise<Outputs> {
  await initBackend(name, { threads: 1 });
  assert.equal(tf.getBackend(), name);
  return fn();
}

describe('tensorflow vs wasm on every backbone (tiny preset, MoE on)', () => {
  for (const backbone of BACKBONES) {
    for (const training of [false, true]) {
      test(`${backbone}, BN ${training ? 'batch statistics' : 'running statistics'}: logits and input gradients agree to ${TOL}`, async (t) => {
        if (skip) return t.skip(skip);
        await initBackend('tensorflow');
        const model = createModel(modelConfig(backbone, moe(), 'tiny'), CIFAR, 11);
        randomize(model, 3);
        const x = images(4, CIFAR, 5);
        const r = tf.randomNormal([4, CIFAR.numClasses], 0, 1, 'float32', 9) as tf.Tensor2D;
        try {
          const native = await onBackend('tensorflow', () => run(model, x, r, training));
          const ref = await onBackend('wasm', () => run(model, x, r, training));
          assert.deepEqual(native.masks, ref.masks, 'same routing decisions');
          const shape = (a: Float32Array, s: number[]) => tf.tensor(a, s);
          const errs = tf.tidy(() => ({
            logits: maxRelDiff(shape(native.logits, [4, CIFAR.numClasses]), shape(ref.logits, [4, CIFAR.numClasses])),
            grad: maxRelDiff(shape(native.grad, x.shape), shape(ref.grad, x.shape)),
          }));
          t.diagnostic(`${backbone} training=${training}: logits ${errs.logits.toExponential(2)}, input gradient ${errs.grad.toExponential(2)}`);
          assert.ok(errs.logits <= TOL, `logits: ${errs.logits}`);
          assert.ok(errs.grad <= TOL, `input gradient: ${errs.grad}`);
        } finally {
          tf.dispose([x, r]);
          model.dispose();
        }
      });
    }
  }
});
