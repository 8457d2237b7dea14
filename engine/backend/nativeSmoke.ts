/**
 * The native backend's smoke test: a conv2d forward pass and both of its gradients (input and filter) on
 * 'tensorflow' against the engine's wasm kernels. The binding was written for libtensorflow 2.9.1; built against a
 * newer TensorFlow wheel it is an unofficial pairing, so a set-up only counts once this agrees (README, Backends).
 * It loads both backends, so it runs in a process of its own (`advmoe backend check tensorflow`).
 */
import * as tf from '@tensorflow/tfjs-core';
import '../util/registerGradients';
import { initBackend } from './select';

export const SMOKE_TOLERANCE = 1e-4;

export interface SmokeReport {
  ok: boolean;
  /** max|native − wasm| / max|wasm| per quantity. */
  errors: { forward: number; dInput: number; dFilter: number };
  tolerance: number;
  /** Why it failed when it failed, e.g. the backend did not load. */
  reason?: string;
}

type Arrays = { y: Float32Array; dx: Float32Array; df: Float32Array };

/** Values drawn from a fixed LCG, so both backends see identical inputs without relying on a backend's RNG. */
function fixedValues(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Strided, padded 3×3 conv with a random output weighting, so every gradient element is distinct. */
function convPass(): Arrays {
  return tf.tidy(() => {
    const x = tf.tensor4d(fixedValues(2 * 9 * 9 * 5, 1), [2, 9, 9, 5]);
    const f = tf.tensor4d(fixedValues(3 * 3 * 5 * 7, 2), [3, 3, 5, 7]);
    const r = tf.tensor4d(fixedValues(2 * 5 * 5 * 7, 3), [2, 5, 5, 7]);
    const conv = (a: tf.Tensor, b: tf.Tensor): tf.Tensor4D => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same');
    const y = conv(x, f);
    const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a, b), r)))([x, f]);
    return { y: y.dataSync() as Float32Array, dx: dx.dataSync() as Float32Array, df: df.dataSync() as Float32Array };
  });
}

function relErr(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= Infinity)) return Infinity; // NaN never passes
    m = Math.max(m, d);
    s = Math.max(s, Math.abs(b[i]));
  }
  return s === 0 ? m : m / s;
}

/** Runs the comparison in this process; must run before any other tfjs op (it selects the backends itself). */
export async function nativeSmokeTest(): Promise<SmokeReport> {
  const none = { forward: NaN, dInput: NaN, dFilter: NaN };
  try {
    await initBackend('tensorflow');
  } catch (e) {
    return { ok: false, errors: none, tolerance: SMOKE_TOLERANCE, reason: e instanceof Error ? e.message : String(e) };
  }
  const native = convPass();
  await initBackend('wasm', { threads: 1 });
  const ref = convPass();
  const errors = { forward: relErr(native.y, ref.y), dInput: relErr(native.dx, ref.dx), dFilter: relErr(native.df, ref.df) };
  const bad = Object.entries(errors).filter(([, v]) => !(v <= SMOKE_TOLERANCE));
  return {
    ok: bad.length === 0,
    errors,
    tolerance: SMOKE_TOLERANCE,
    ...(bad.length ? { reason: `tensorflow disagrees with wasm beyond ${SMOKE_TOLERANCE}: ${bad.map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}` } : {}),
  };
}
