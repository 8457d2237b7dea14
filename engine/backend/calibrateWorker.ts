/**
 * Child process of the thread calibration (threadCalibration.ts): one backend at one thread count, fixed for the
 * life of the process. Sends {ready} once initialised and warmed up; each {op: 'round'} answers with the images/s
 * of a few training-like steps (an input-gradient step as in PGD, then a weight-gradient step) of the default
 * experiment's model (VGG-16 tiny ×0.5, MoE 1/2, MNIST 28×28) at batch 64.
 *
 *   node calibrateWorker.js --backend wasm|tensorflow --threads N
 */
import * as tf from '@tensorflow/tfjs-core';
import '../util/registerGradients';
import type { ModelConfig } from '../config/types';
import { createModel } from '../models/factory';
import { errorMessage } from '../util/errors';
import { initBackend } from './select';

const MODEL: ModelConfig = {
  backbone: 'vgg16',
  preset: 'tiny',
  widthMultiplier: 0.5,
  moe: { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, router: 'per-layer', routerNorm: false, layers: 'all-blocks' },
};
const BATCH = 64;
const STEPS_PER_ROUND = 2;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const backend = arg('backend') as 'wasm' | 'tensorflow';
  await initBackend(backend, { threads: Number(arg('threads')) });
  const model = createModel(MODEL, { inputShape: [28, 28, 1], numClasses: 10, mean: [0.1307], std: [0.3081] }, 0);
  const x = tf.randomUniform([BATCH, 28, 28, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: BATCH }, (_, i) => i % 10), 'int32'), 10);
  const vars = model.trainableVariables();
  const loss = (xi: tf.Tensor): tf.Scalar => tf.losses.softmaxCrossEntropy(labels, model.forward(xi as tf.Tensor4D, { training: true }).logits);
  const step = (): void => {
    const v = tf.tidy(() => {
      const gx = tf.grad(loss)(x);
      const xa = tf.clipByValue(tf.add(x, tf.mul(tf.sign(gx), 0.1)), 0, 1);
      const { value, grads } = tf.variableGrads(() => loss(xa), vars);
      return tf.addN([value, ...Object.values(grads).map((g) => tf.sum(g))]);
    });
    v.dataSync(); // one host read per step, as training does
    v.dispose();
  };
  step(); // warm-up: operator creation
  process.send!({ ready: true });
  process.on('message', () => {
    try {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < STEPS_PER_ROUND; i++) step();
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      process.send!({ imgPerS: (BATCH * STEPS_PER_ROUND) / s });
    } catch (e) {
      process.send!({ error: errorMessage(e) });
    }
  });
}

main().catch((e) => {
  process.send?.({ error: errorMessage(e) });
  process.exit(1);
});
