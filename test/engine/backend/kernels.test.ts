/**
 * The wasm training kernels against the cpu backend (the reference), op by op and in a small conv net.
 * Losses weight the output by a fixed random tensor so every gradient element is distinct (a plain sum would make
 * dy all ones and hide index mistakes).
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../../../engine/util/registerGradients';
import { registerWasmTrainingKernels, wasmTrainingKernelsEnabled } from '../../../engine/backend/wasmKernels';
import { maxRelDiff, setupTestBackend, testBackendName, withBackend } from '../helpers';

const TOL = 1e-5;

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
interface ConvCase {
  n: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  k: number;
  s: number;
  pad: Pad;
}

function describeCase(c: ConvCase): string {
  return `x[${c.n},${c.h},${c.w},${c.ci}] k${c.k} s${c.s} co${c.co} pad ${JSON.stringify(c.pad)}`;
}

/** Gradients of sum(conv2d(x, f) · r) with respect to x and f, on the current backend. */
function convGrads(x: tf.Tensor4D, f: tf.Tensor4D, r: tf.Tensor4D, c: ConvCase): tf.Tensor[] {
  return tf.tidy(() =>
    tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), r)),
    )([x, f]),
  );
}

function convCases(): ConvCase[] {
  const out: ConvCase[] = [];
  // ci 1 and 3 take the patch-matrix path of BackpropFilter, 6 and 16 the swapped-convolution path.
  for (const [n, h, w] of [[1, 7, 7], [3, 8, 8], [2, 9, 6], [2, 5, 5]]) {
    for (const ci of [1, 3, 6]) {
      for (const k of [1, 3]) {
        for (const s of [1, 2]) {
          for (const pad of ['same', 'valid'] as Pad[]) out.push({ n, h, w, ci, co: 4, k, s, pad });
        }
      }
    }
  }
  // Explicit numeric paddings as tf.conv2d accepts them (symmetric number, and an uneven array), larger channels.
  out.push({ n: 2, h: 10, w: 10, ci: 16, co: 8, k: 3, s: 2, pad: 1 });
  out.push({ n: 2, h: 9, w: 9, ci: 3, co: 8, k: 3, s: 1, pad: 2 });
  out.push({ n: 2, h: 8, w: 7, ci: 5, co: 6, k: 3, s: 2, pad: [[0, 0], [1, 0], [0, 2], [0, 0]] });
  out.push({ n: 2, h: 8, w: 8, ci: 2, co: 3, k: 3, s: 1, pad: [[0, 0], [0, 1], [2, 0], [0, 0]] });
  out.push({ n: 4, h: 16, w: 16, ci: 16, co: 32, k: 3, s: 2, pad: 'same' });
  out.push({ n: 2, h: 6, w: 6, ci: 4, co: 5, k: 5, s: 2, pad: 'same' });
  return out;
}

/**
 * tfjs-backend-cpu's AvgPoolGrad divides by the full window at padded borders, where the forward pass (and
 * TensorFlow) divide by the cells inside: with 'same' padding the cpu reference is wrong and tensorflow, which
 * agrees with finite differences, differs from it. The engine pools with 'valid' only; on tensorflow those
 * cases are left out rather than compared with a wrong reference.
 */
const AVG_SAME_REF_WRONG = testBackendName() === 'tensorflow';

const OURS = ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad', 'UnsortedSegmentSum', 'BatchMatMul'];

before(async () => {
  const info = await setupTestBackend();
  assert.equal(info.name, testBackendName());
});

// On tensorflow (`npm run test:unit:native`) the same comparisons check tfjs-node's kernels against cpu.
describe('wasm training kernels', () => {
  test('are registered on wasm once the backend is set up', { skip: testBackendName() !== 'wasm' && 'wasm is not the test backend' }, () => {
    assert.ok(wasmTrainingKernelsEnabled());
    for (const name of OURS) assert.ok(tf.getKernel(name, 'wasm'), name);
  });

  test('are registered for wasm only: the native backend keeps its own kernels', { skip: testBackendName() !== 'tensorflow' && 'tensorflow is not the test backend' }, () => {
    const native = OURS.map((name) => tf.getKernel(name, 'tensorflow'));
    registerWasmTrainingKernels(true);
    OURS.forEach((name, i) => {
      assert.ok(native[i], `tfjs-node has a ${name} kernel`);
      assert.equal(tf.getKernel(name, 'tensorflow'), native[i], name);
      assert.notEqual(tf.getKernel(name, 'wasm')?.kernelFunc, native[i]?.kernelFunc, name);
    });
  });

  test('conv2d gradients (BackpropFilter and BackpropInput) match cpu on many shapes', async () => {
    const failures: string[] = [];
    // tfjs-node's conv2d takes only 'same' and 'valid' (it throws on explicit paddings, naming them); the engine
    // uses only those two.
    const cases = convCases().filter((c) => testBackendName() !== 'tensorflow' || typeof c.pad === 'string');
    for (const c of cases) {
      const x = tf.randomNormal([c.n, c.h, c.w, c.ci], 0, 1, 'float32', 1) as tf.Tensor4D;
      const f = tf.randomNormal([c.k, c.k, c.ci, c.co], 0, 1, 'float32', 2) as tf.Tensor4D;
      const yShape = tf.tidy(() => tf.conv2d(x, f, c.s, c.pad).shape);
      const r = tf.randomNormal(yShape, 0, 1, 'float32', 3) as tf.Tensor4D;
      const [dx, df] = convGrads(x, f, r, c);
      const [dxRef, dfRef] = await withBackend('cpu', () => convGrads(x, f, r, c));
      const ex = maxRelDiff(dx, dxRef);
      const ef = maxRelDiff(df, dfRef);
      if (!(ex <= TOL && ef <= TOL)) failures.push(`${describeCase(c)}: dx ${ex}, dW ${ef}`);
      tf.dispose([x, f, r, dx, df, dxRef, dfRef]);
    }
    assert.deepEqual(failures, []);
  });

  test('the conv gradient kernels leave no tensors behind', () => {
    const c: ConvCase = { n: 2, h: 9, w: 9, ci: 3, co: 4, k: 3, s: 2, pad: 'same' };
    const x = tf.randomNormal([2, 9, 9, 3]) as tf.Tensor4D;
    const f = tf.randomNormal([3, 3, 3, 4]) as tf.Tensor4D;
    const r = tf.ones([2, 5, 5, 4]) as tf.Tensor4D;
    for (const ci of [3, 8]) {
      const xx = ci === 3 ? x : (tf.randomNormal([2, 9, 9, 8]) as tf.Tensor4D);
      const ff = ci === 3 ? f : (tf.randomNormal([3, 3, 8, 4]) as tf.Tensor4D);
      tf.dispose(convGrads(xx, ff, r, c)); // warm-up: first calls may create cached state
      const before = tf.memory().numTensors;
      tf.dispose(convGrads(xx, ff, r, c));
      assert.equal(tf.memory().numTensors, before, `ci=${ci}`);
      if (ci !== 3) tf.dispose([xx, ff]);
    }
    tf.dispose([x, f, r]);
  });

  test('UnsortedSegmentSum and the gradient of gather match cpu', async () => {
    const x = tf.randomNormal([7, 3, 2], 0, 1, 'float32', 4);
    const ids = tf.tensor1d([2, 0, 2, 4, 1, 0, 2], 'int32');
    const direct = tf.unsortedSegmentSum(x, ids, 5);
    const directRef = await withBackend('cpu', () => tf.unsortedSegmentSum(x, ids, 5));
    assert.ok(maxRelDiff(direct, directRef) <= TOL);

    const table = tf.randomNormal([6, 4], 0, 1, 'float32', 5);
    const idx = tf.tensor1d([5, 0, 3, 3, 1, 5, 5], 'int32');
    const w = tf.randomNormal([7, 4], 0, 1, 'float32', 6);
    const g = () => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), w)))(table);
    const got = g();
    const ref = await withBackend('cpu', g);
    assert.ok(maxRelDiff(got, ref) <= TOL);
    tf.dispose([x, ids, direct, directRef, table, idx, w, got, ref]);
  });

  test('matMul with transposed operands matches cpu (2-D and batched)', async () => {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      // Small products stay on the stock kernel; the large ones (>1M multiply-adds) take the explicit transposes.
      for (const [batch, m, k, n] of [[0, 5, 9, 7], [3, 5, 9, 7], [0, 96, 130, 100], [2, 64, 100, 90]]) {
        const sa = ta ? [k, m] : [m, k];
        const sb = tb ? [n, k] : [k, n];
        const a = tf.randomNormal(batch ? [batch, ...sa] : sa, 0, 1, 'float32', 7);
        const b = tf.randomNormal(batch ? [batch, ...sb] : sb, 0, 1, 'float32', 8);
        const got = tf.matMul(a, b, ta, tb);
        const ref = await withBackend('cpu', () => tf.matMul(a, b, ta, tb));
        assert.ok(maxRelDiff(got, ref) <= TOL, `ta=${ta} tb=${tb} batch=${batch} m=${m}`);
        tf.dispose([a, b, got, ref]);
      }
    }
  });

  test('pooling gradients (our MaxPoolGrad, stock AvgPoolGrad) match cpu', async () => {
    const x = tf.randomNormal([2, 9, 9, 5], 0, 1, 'float32', 9) as tf.Tensor4D;
    const ops: [string, (t: tf.Tensor4D) => tf.Tensor4D][] = [
      ['maxPool 3x3/2 same', (t) => tf.maxPool(t, 3, 2, 'same')],
      ['maxPool 2x2/2 valid', (t) => tf.maxPool(t, 2, 2, 'valid')],
      ['avgPool 3x3/2 same', (t) => tf.avgPool(t, 3, 2, 'same')],
      ['avgPool 2x2/2 valid', (t) => tf.avgPool(t, 2, 2, 'valid')],
      ['avgPool 3x3/1 same', (t) => tf.avgPool(t, 3, 1, 'same')],
      ['maxPool 3x3/1 same', (t) => tf.maxPool(t, 3, 1, 'same')],
      ['maxPool 2x2/1 valid', (t) => tf.maxPool(t, 2, 1, 'valid')],
    ];
    for (const [name, op] of ops.filter(([n]) => !(AVG_SAME_REF_WRONG && /avgPool.*same/.test(n)))) {
      const r = tf.randomNormal(tf.tidy(() => op(x).shape), 0, 1, 'float32', 10);
      const g = () => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(op(t as tf.Tensor4D), r)))(x);
      const got = g();
      const ref = await withBackend('cpu', g);
      assert.ok(maxRelDiff(got, ref) <= TOL, name);
      tf.dispose([r, got, ref]);
    }
    x.dispose();
  });

  test('a small conv net (hand-written BN, relu, pools, GAP, dense, softmax CE): loss and all gradients match cpu', async () => {
    const seed = (i: number) => 100 + i;
    const params = {
      w1: tf.mul(tf.randomNormal([3, 3, 3, 8], 0, 1, 'float32', seed(1)), 0.3),
      g1: tf.add(tf.randomNormal([8], 0, 0.1, 'float32', seed(2)), 1),
      b1: tf.randomNormal([8], 0, 0.1, 'float32', seed(3)),
      w2: tf.mul(tf.randomNormal([3, 3, 8, 16], 0, 1, 'float32', seed(4)), 0.15),
      g2: tf.add(tf.randomNormal([16], 0, 0.1, 'float32', seed(5)), 1),
      b2: tf.randomNormal([16], 0, 0.1, 'float32', seed(6)),
      ws: tf.mul(tf.randomNormal([1, 1, 8, 16], 0, 1, 'float32', seed(7)), 0.3),
      w3: tf.mul(tf.randomNormal([3, 3, 16, 16], 0, 1, 'float32', seed(8)), 0.1),
      fc: tf.mul(tf.randomNormal([16, 10], 0, 1, 'float32', seed(9)), 0.3),
      fb: tf.zeros([10]),
    };
    const names = Object.keys(params) as (keyof typeof params)[];
    const x = tf.randomUniform([4, 15, 15, 3], 0, 1, 'float32', seed(10)) as tf.Tensor4D;
    const labels = tf.oneHot(tf.tensor1d([1, 7, 3, 3], 'int32'), 10);

    const bn = (t: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor): tf.Tensor4D => {
      const mean = tf.mean(t, [0, 1, 2]);
      const c = tf.sub(t, mean);
      const v = tf.mean(tf.square(c), [0, 1, 2]);
      return tf.add(tf.mul(c, tf.mul(tf.rsqrt(tf.add(v, 1e-5)), g)), b);
    };
    const loss = (...ps: tf.Tensor[]): tf.Scalar => {
      const p = Object.fromEntries(names.map((n, i) => [n, ps[i]])) as Record<keyof typeof params, tf.Tensor>;
      const h1 = tf.relu(bn(tf.conv2d(x, p.w1 as tf.Tensor4D, 1, 'same'), p.g1, p.b1));
      const h2 = tf.relu(bn(tf.conv2d(h1, p.w2 as tf.Tensor4D, 2, 'same'), p.g2, p.b2));
      const res: tf.Tensor4D = tf.add(h2, tf.conv2d(h1, p.ws as tf.Tensor4D, 2, 'same'));
      const h3 = tf.relu(tf.conv2d(tf.maxPool(res, 2, 2, 'same'), p.w3 as tf.Tensor4D, 1, 'valid'));
      const pooled = tf.avgPool(h3, 2, 1, AVG_SAME_REF_WRONG ? 'valid' : 'same');
      const gap = tf.mean(pooled as tf.Tensor4D, [1, 2]) as tf.Tensor2D;
      const logits = tf.add(tf.matMul(gap, p.fc as tf.Tensor2D), p.fb);
      return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1))) as tf.Scalar;
    };
    const run = () => tf.tidy(() => {
      const { value, grads } = tf.valueAndGrads(loss)(names.map((n) => params[n]));
      return [value, ...grads];
    });
    const got = run();
    const ref = await withBackend('cpu', run);
    assert.ok(Number.isFinite(got[0].dataSync()[0]));
    // Errors compound through BN and several layers; 1e-4 still catches any indexing or padding mistake.
    const errs = got.map((t, i) => maxRelDiff(t, ref[i]));
    errs.forEach((e, i) => assert.ok(e <= 1e-4, `${i === 0 ? 'loss' : names[i - 1]}: ${e}`));

    const before = tf.memory().numTensors;
    tf.dispose(run());
    assert.equal(tf.memory().numTensors, before, 'a training step leaks tensors');
    tf.dispose([...got, ...ref, x, labels, ...Object.values(params)]);
  });

  test('turning the kernels off restores the stock wasm kernels', () => {
    const ours = tf.getKernel('Conv2DBackpropInput', 'wasm');
    registerWasmTrainingKernels(false);
    try {
      assert.equal(tf.getKernel('Conv2DBackpropFilter', 'wasm'), undefined);
      assert.notEqual(tf.getKernel('Conv2DBackpropInput', 'wasm'), ours);
    } finally {
      registerWasmTrainingKernels(true);
    }
    assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'));
  });
});
