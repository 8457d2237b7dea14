/**
 * Training-mode BatchNorm: the fused op (matMul reductions, closed-form backward via tf.customGrad) against the
 * op-by-op autodiff form and against a plain reference formula computed in float64 on the host: values, gradients
 * with respect to x, γ and β, the running-statistics update, and no leaked tensors.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '../../../engine/util/registerGradients';
import { BN_EPSILON, BN_MOMENTUM, batchNorm, getBatchNormImpl, setBatchNormImpl, setChannelAffineViaConv, type BatchNormImpl } from '../../../engine/models/layers';
import type { BatchNormWeights } from '../../../engine/models/params';
import { setupTestBackend, withBackend } from '../helpers';
import { makeBn } from './fixtures';

before(setupTestBackend);
after(() => setBatchNormImpl('fused'));

type Shape = [number, number, number, number];
/** 5×7 planes take channelMean's average-pool path, 3×3 planes its single-matMul path. */
const SHAPES: Shape[] = [
  [6, 5, 7, 4],
  [9, 3, 3, 4],
];
let SHAPE: Shape = SHAPES[0];


/** Inputs with a per-channel offset (means of 0, 3, −2, 10) and scale, so centring matters. */
function input(seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    const r = tf.randomNormal(SHAPE, 0, 1, 'float32', seed);
    return tf.add(tf.mul(r, tf.tensor1d([1, 0.5, 2, 0.1])), tf.tensor1d([0, 3, -2, 10])) as tf.Tensor4D;
  });
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-12);
}

interface Result {
  y: Float32Array;
  dx: Float32Array;
  dGamma: Float32Array;
  dBeta: Float32Array;
  movingMean: Float32Array;
  movingVar: Float32Array;
}

/** y, and the gradients of Σ w·y (w fixed random weights) with respect to x, γ, β; then the running stats. */
function run(impl: BatchNormImpl, x: tf.Tensor4D, w: tf.Tensor4D): Result {
  const prev = getBatchNormImpl();
  setBatchNormImpl(impl);
  const bn = makeBn(SHAPE[3]);
  try {
    const y = tf.tidy(() => batchNorm(x, bn, { training: true }));
    const g = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => {
      const b2: BatchNormWeights = { ...bn, gamma: gi as tf.Variable, beta: bi as tf.Variable };
      return tf.sum(tf.mul(batchNorm(xi as tf.Tensor4D, b2, { training: true }), w));
    });
    const [dx, dGamma, dBeta] = g([x, bn.gamma, bn.beta]);
    tf.tidy(() => {
      batchNorm(x, bn, { training: true, updateBnStats: true });
    });
    const out: Result = {
      y: y.dataSync() as Float32Array,
      dx: dx.dataSync() as Float32Array,
      dGamma: dGamma.dataSync() as Float32Array,
      dBeta: dBeta.dataSync() as Float32Array,
      movingMean: bn.movingMean.dataSync() as Float32Array,
      movingVar: bn.movingVar.dataSync() as Float32Array,
    };
    tf.dispose([y, dx, dGamma, dBeta]);
    return out;
  } finally {
    tf.dispose([bn.gamma, bn.beta, bn.movingMean, bn.movingVar]);
    setBatchNormImpl(prev);
  }
}

/** The textbook formulas in float64 on the host. */
function reference(xv: Float32Array, wv: Float32Array, bn: { gamma: number[]; beta: number[]; mm: number[]; mv: number[] }): Result {
  const [n, h, wd, c] = SHAPE;
  const m = n * h * wd;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let i = 0; i < m; i++) for (let j = 0; j < c; j++) mean[j] += xv[i * c + j] / m;
  for (let i = 0; i < m; i++) for (let j = 0; j < c; j++) variance[j] += (xv[i * c + j] - mean[j]) ** 2 / m;
  const r = Array.from(variance, (v) => 1 / Math.sqrt(v + BN_EPSILON));
  const y = new Float32Array(m * c);
  const xhat = new Float64Array(m * c);
  const dGamma = new Float32Array(c);
  const dBeta = new Float32Array(c);
  const sDy = new Float64Array(c);
  const sDyXhat = new Float64Array(c);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < c; j++) {
      const k = i * c + j;
      xhat[k] = (xv[k] - mean[j]) * r[j];
      y[k] = bn.gamma[j] * xhat[k] + bn.beta[j];
      sDy[j] += wv[k];
      sDyXhat[j] += wv[k] * xhat[k];
    }
  }
  const dx = new Float32Array(m * c);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < c; j++) {
      const k = i * c + j;
      dx[k] = bn.gamma[j] * r[j] * (wv[k] - sDy[j] / m - (xhat[k] * sDyXhat[j]) / m);
    }
  }
  for (let j = 0; j < c; j++) {
    dGamma[j] = sDyXhat[j];
    dBeta[j] = sDy[j];
  }
  const movingMean = Float32Array.from(bn.mm, (v, j) => (1 - BN_MOMENTUM) * v + BN_MOMENTUM * mean[j]);
  const movingVar = Float32Array.from(bn.mv, (v, j) => (1 - BN_MOMENTUM) * v + BN_MOMENTUM * variance[j] * (m / (m - 1)));
  return { y, dx, dGamma, dBeta, movingMean, movingVar };
}

function check(shape: Shape): void {
  SHAPE = shape;
  const x = input(11);
  const w = tf.randomNormal(SHAPE, 0, 1, 'float32', 12) as tf.Tensor4D;
  const bn0 = makeBn(SHAPE[3]);
  const ref = reference(x.dataSync() as Float32Array, w.dataSync() as Float32Array, {
    gamma: Array.from(bn0.gamma.dataSync()),
    beta: Array.from(bn0.beta.dataSync()),
    mm: Array.from(bn0.movingMean.dataSync()),
    mv: Array.from(bn0.movingVar.dataSync()),
  });
  tf.dispose([bn0.gamma, bn0.beta, bn0.movingMean, bn0.movingVar]);
  const fused = run('fused', x, w);
  const auto = run('autodiff', x, w);
  for (const key of ['y', 'dx', 'dGamma', 'dBeta', 'movingMean', 'movingVar'] as const) {
    const eRef = relErr(fused[key], ref[key]);
    const eAuto = relErr(fused[key], auto[key]);
    assert.ok(eRef < 1e-4, `${key}: fused vs reference rel. error ${eRef}`);
    assert.ok(eAuto < 1e-4, `${key}: fused vs autodiff rel. error ${eAuto}`);
    assert.ok(relErr(auto[key], ref[key]) < 1e-4, `${key}: autodiff vs reference`);
    if (process.env.ADVMOE_BN_VERBOSE) console.log(shape.join('×'), key, eRef.toExponential(2), eAuto.toExponential(2));
  }
  tf.dispose([x, w]);
  SHAPE = SHAPES[0];
  }

describe('training-mode batchNorm', () => {
  for (const shape of SHAPES) {
    it(`fused op matches the autodiff form and the float64 reference (values, grads w.r.t. x, γ, β, running stats), ${shape.join('×')}`, () => check(shape));
  }
  it('the same on the cpu backend (broadcast ops instead of the wasm depthwise-conv affine)', async () => {
    await withBackend('cpu', () => check(SHAPES[0]));
  });

  it('leaks no tensors (forward, gradient, running-stat update)', () => {
    const x = input(3);
    const w = tf.randomNormal(SHAPE, 0, 1, 'float32', 4) as tf.Tensor4D;
    run('fused', x, w); // first call: any one-time allocations
    const before = tf.memory().numTensors;
    run('fused', x, w);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, w]);
  });

  it('inference mode: values and the input gradient (dy·γ/√(var+ε)) match the broadcast form', () => {
    const x = input(8);
    const w = tf.randomNormal(SHAPE, 0, 1, 'float32', 9) as tf.Tensor4D;
    const bn = makeBn(SHAPE[3]);
    const f = (xi: tf.Tensor): tf.Scalar => tf.sum(tf.mul(batchNorm(xi as tf.Tensor4D, bn, { training: false }), w));
    const go = (viaConv: boolean): [Float32Array, Float32Array] => {
      setChannelAffineViaConv(viaConv);
      const y = tf.tidy(() => batchNorm(x, bn, { training: false }).dataSync() as Float32Array);
      const g = tf.tidy(() => tf.grad(f)(x).dataSync() as Float32Array);
      return [y, g];
    };
    const [yConv, gConv] = go(true);
    const [yB, gB] = go(false);
    setChannelAffineViaConv(true);
    assert.ok(relErr(yConv, yB) < 1e-6, 'values');
    assert.ok(relErr(gConv, gB) < 1e-6, 'input gradient');
    tf.dispose([x, w, bn.gamma, bn.beta, bn.movingMean, bn.movingVar]);
  });

  it('inference mode is unchanged by the switch (running statistics)', () => {
    const x = input(5);
    const bn = makeBn(SHAPE[3]);
    const a = tf.tidy(() => batchNorm(x, bn, { training: false }).dataSync());
    setBatchNormImpl('autodiff');
    const b = tf.tidy(() => batchNorm(x, bn, { training: false }).dataSync());
    setBatchNormImpl('fused');
    assert.deepEqual(Array.from(a), Array.from(b));
    tf.dispose([x, bn.gamma, bn.beta, bn.movingMean, bn.movingVar]);
  });
});
