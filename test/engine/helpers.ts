/** Shared set-up for engine unit tests. */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

/** Select the backend the unit tests run on. Must be awaited before any tfjs op. */
export async function setupTestBackend(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
}

/** Max |a-b| over two tensors' values. */
export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  if (x.length !== y.length) throw new Error(`size mismatch ${x.length} vs ${y.length}`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}
