/** Shared set-up for engine unit tests. */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '../../engine/backend/select';
import type { BackendInfo } from '../../engine/protocol';

export type TestBackend = 'wasm' | 'cpu' | 'tensorflow';

/** The backend the unit tests run on: ADVMOE_TEST_BACKEND (wasm, cpu or tensorflow), default wasm. */
export function testBackendName(): TestBackend {
  const v = process.env.ADVMOE_TEST_BACKEND;
  if (v === undefined || v === '' || v === 'wasm') return 'wasm';
  if (v === 'cpu' || v === 'tensorflow') return v;
  throw new Error(`ADVMOE_TEST_BACKEND="${v}" is not one of wasm, cpu, tensorflow`);
}

/**
 * Select the backend the unit tests run on: wasm with the engine's training kernels (what users get without a
 * native TensorFlow), so tests exercise the kernels the engine really uses. Must be awaited before any tfjs op.
 * The cpu backend stays registered for reference comparisons (see withBackend). ADVMOE_TEST_BACKEND=cpu switches
 * to the reference backend, e.g. to tell a wasm kernel problem from a model problem; =tensorflow runs the suite
 * on the native backend (`npm run test:unit:native`, README Backends), failing if it cannot be initialised.
 */
export async function setupTestBackend(): Promise<BackendInfo> {
  const info = await initBackend(testBackendName());
  await tf.ready();
  return info;
}

/**
 * Runs `fn` with `name` as the current backend and restores the previous one afterwards. Tensors created on the
 * other backend are moved on first use, so results can be compared across backends directly.
 */
export async function withBackend<T>(name: TestBackend, fn: () => T | Promise<T>): Promise<T> {
  const prev = tf.getBackend();
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} failed to initialise`);
  try {
    return await fn();
  } finally {
    await tf.setBackend(prev);
  }
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

/**
 * max|a-b| / max|b|: the error relative to the reference's scale (elementwise relative error is meaningless for
 * sums that cancel to ~0). NaN anywhere gives Infinity, so a comparison never passes by accident.
 */
export function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  if (a.shape.join(',') !== b.shape.join(',')) throw new Error(`shape mismatch [${a.shape}] vs [${b.shape}]`);
  const x = a.dataSync();
  const y = b.dataSync();
  let m = 0;
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= Infinity)) return Infinity;
    m = Math.max(m, d);
    s = Math.max(s, Math.abs(y[i]));
  }
  return s === 0 ? m : m / s;
}
