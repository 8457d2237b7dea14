/**
 * The tensorflow backend's native fast paths against the tfjs-op forms, in the same process. ReLU: values and
 * input gradient with TensorFlow's ReluGrad. Training-mode BatchNorm: TensorFlow's FusedBatchNormV3 and its gradient op
 * (engine/models/nativeOps.ts) against the tfjs-op form (batchNormFused) in the same process: values, gradients
 * with respect to x, γ and β, the running statistics, and no leaked tensors. Skipped without tfjs-node.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '../../../engine/util/registerGradients';
import { initBackend } from '../../../engine/backend/select';
import { batchNorm, relu, setNativeBatchNorm, setNativeRelu } from '../../../engine/models/layers';
import { hasNativeBatchNorm } from '../../../engine/models/nativeOps';
import { makeBn } from './fixtures';

const HAVE_NATIVE = ((): boolean => {
  try {
    require.resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
})();

before(async () => {
  if (HAVE_NATIVE) await initBackend('tensorflow', { threads: 1 });
});
after(() => {
  setNativeBatchNorm(true);
  setNativeRelu(true);
});

describe('native ReLU gradient (tensorflow backend)', { skip: !HAVE_NATIVE && 'tfjs-node is not installed' }, () => {
  it('gives the same values and input gradients as tf.relu, zeros included', () => {
    const x = tf.tensor4d([-2, -0.5, 0, 0, 0.25, 3, -1e-7, 1e-7], [1, 2, 2, 2]);
    const w = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
    const run = (native: boolean): Float32Array[] => {
      setNativeRelu(native);
      const { value, grad } = tf.valueAndGrad((xi: tf.Tensor) => tf.sum(tf.mul(relu(xi), w)))(x);
      const y = tf.tidy(() => relu(x));
      const out = [y, value, grad].map((t) => t.dataSync() as Float32Array);
      tf.dispose([y, value, grad]);
      return out;
    };
    const before = tf.memory().numTensors;
    const native = run(true);
    assert.equal(tf.memory().numTensors, before, 'native ReLU leaked tensors');
    assert.deepEqual(native, run(false));
    assert.deepEqual(Array.from(native[2]), [0, 0, 0, 0, 5, 6, 0, 8]);
    tf.dispose([x, w]);
  });
});


/** y, the gradients of Σ w·y with respect to x, γ, β, and the running statistics after one update. */
function run(native: boolean, x: tf.Tensor4D, w: tf.Tensor4D): Float32Array[] {
  setNativeBatchNorm(native);
  const bn = makeBn(x.shape[3]);
  try {
    const y = tf.tidy(() => batchNorm(x, bn, { training: true }));
    const [dx, dg, db] = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) =>
      tf.sum(tf.mul(batchNorm(xi as tf.Tensor4D, { ...bn, gamma: gi as tf.Variable, beta: bi as tf.Variable }, { training: true }), w)),
    )([x, bn.gamma, bn.beta]);
    tf.tidy(() => {
      batchNorm(x, bn, { training: true, updateBnStats: true });
    });
    const out = [y, dx, dg, db, bn.movingMean, bn.movingVar].map((t) => t.dataSync() as Float32Array);
    tf.dispose([y, dx, dg, db]);
    return out;
  } finally {
    tf.dispose([bn.gamma, bn.beta, bn.movingMean, bn.movingVar]);
  }
}

describe('native training BatchNorm (tensorflow backend)', { skip: !HAVE_NATIVE && 'tfjs-node is not installed' }, () => {
  it('is used on tensorflow', () => {
    assert.equal(tf.getBackend(), 'tensorflow');
    assert.ok(hasNativeBatchNorm());
  });

  for (const shape of [[6, 5, 7, 4], [9, 3, 3, 4], [16, 8, 8, 16]] as Array<[number, number, number, number]>) {
    it(`matches the tfjs-op form: values, gradients, running statistics (${shape.join('×')})`, () => {
      const x = tf.tidy(() => tf.add(tf.mul(tf.randomNormal(shape, 0, 1, 'float32', 3), 2), 5) as tf.Tensor4D);
      const w = tf.randomNormal(shape, 0, 1, 'float32', 4) as tf.Tensor4D;
      run(true, x, w); // the first call caches an empty input tensor for the op's unused slots
      const before = tf.memory().numTensors;
      const native = run(true, x, w);
      assert.equal(tf.memory().numTensors, before, 'native BN leaked tensors');
      const ops = run(false, x, w);
      const names = ['y', 'dx', 'dγ', 'dβ', 'running mean', 'running var'];
      native.forEach((a, i) => {
        const b = ops[i];
        let err = 0;
        let scale = 1e-6;
        for (let j = 0; j < a.length; j++) {
          err = Math.max(err, Math.abs(a[j] - b[j]));
          scale = Math.max(scale, Math.abs(b[j]));
        }
        assert.ok(err / scale < 1e-4, `${names[i]}: relative error ${err / scale}`);
      });
      tf.dispose([x, w]);
    });
  }
});
