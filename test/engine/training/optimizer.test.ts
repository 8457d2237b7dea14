import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { Param } from '../../../engine/models/types';
import { SgdMomentum } from '../../../engine/training/optimizer';
import { isAdvMoEError } from '../../../engine/util/errors';
import { setupTestBackend } from '../helpers';

function param(name: string, values: number[], decay: boolean): Param {
  return { name, variable: tf.variable(tf.tensor1d(values), true), group: 'expert', trainable: true, decay };
}

function vals(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

function close(actual: number[], expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) <= tol, `index ${i}: ${a} vs ${expected[i]} (all: ${actual} vs ${expected})`));
}

describe('SgdMomentum', () => {
  before(setupTestBackend);
  const disposables: Array<{ dispose(): void }> = [];
  after(() => disposables.forEach((d) => d.dispose()));

  it('matches a hand-computed PyTorch update (momentum, weight decay on decayed params only)', () => {
    const w = param('w', [1, -2], true);
    const b = param('b', [1], false);
    const frozen: Param = { name: 'stat', variable: tf.variable(tf.tensor1d([5]), false), group: 'expert', trainable: false, decay: false };
    const opt = new SgdMomentum('expert', [w, b, frozen], { momentum: 0.9, weightDecay: 0.1 });
    disposables.push(opt, w.variable, b.variable, frozen.variable);
    assert.deepEqual(opt.params.map((p) => p.name), ['w', 'b'], 'non-trainable params are not optimised');

    tf.tidy(() => opt.applyGradients({ [w.variable.name]: tf.tensor1d([0.5, 0.5]), [b.variable.name]: tf.tensor1d([1]) }, 0.1));
    // d = g + 0.1·w = [0.6, 0.3]; v = d; w = w − 0.1·v. Bias: no decay: v = 1, b = 1 − 0.1.
    close(vals(w.variable), [0.94, -2.03]);
    close(vals(b.variable), [0.9]);

    tf.tidy(() => opt.applyGradients({ [w.variable.name]: tf.tensor1d([1, 0]), [b.variable.name]: tf.tensor1d([-1]) }, 0.1));
    // d = [1 + 0.094, −0.203]; v = 0.9·[0.6, 0.3] + d = [1.634, 0.067]; w = [0.94 − 0.1634, −2.03 − 0.0067].
    close(vals(w.variable), [0.7766, -2.0367]);
    // v = 0.9·1 − 1 = −0.1; b = 0.9 + 0.01.
    close(vals(b.variable), [0.91]);
    close(vals(frozen.variable), [5]);
  });

  it('is plain SGD with momentum 0, and skips params without a gradient', () => {
    const w = param('w', [2, 4], true);
    const b = param('b', [3], false);
    const opt = new SgdMomentum('x', [w, b], { momentum: 0, weightDecay: 0.5 });
    disposables.push(opt, w.variable, b.variable);
    tf.tidy(() => opt.applyGradients({ [w.variable.name]: tf.tensor1d([1, 1]) }, 0.5));
    // w − 0.5·(g + 0.5·w) = [2 − 0.5·2, 4 − 0.5·3]
    close(vals(w.variable), [1, 2.5]);
    close(vals(b.variable), [3], 0);
    assert.deepEqual(Object.keys(opt.getState()), [], 'plain SGD has no state');
  });

  it('leaves weights and momentum untouched when the guard is false', () => {
    const w = param('w', [1, 1], true);
    const opt = new SgdMomentum('g', [w], { momentum: 0.9, weightDecay: 0 });
    disposables.push(opt, w.variable);
    tf.tidy(() => opt.applyGradients({ [w.variable.name]: tf.tensor1d([1, 2]) }, 0.1));
    const before = vals(w.variable);
    tf.tidy(() => opt.applyGradients({ [w.variable.name]: tf.tensor1d([NaN, 1]) }, 0.1, tf.scalar(false, 'bool') as tf.Scalar));
    assert.deepEqual(vals(w.variable), before);
    // The momentum buffer is unchanged too: the next good step behaves as if the bad one never happened.
    tf.tidy(() => opt.applyGradients({ [w.variable.name]: tf.tensor1d([0, 0]) }, 0.1, tf.scalar(true, 'bool') as tf.Scalar));
    close(vals(w.variable), [before[0] - 0.1 * 0.9 * 1, before[1] - 0.1 * 0.9 * 2]);
  });

  it('continues bit-identically after a state round trip', () => {
    const make = (init: number[][]) => init.map((v, i) => param(`p${i}`, v, i === 0));
    const grads = (k: number) => [tf.tensor1d([Math.sin(k), Math.cos(k), 0.3]), tf.tensor1d([k / 7, -k / 3])];
    const a = make([[0.1, 0.2, 0.3], [1, -1]]);
    const optA = new SgdMomentum('expert', a, { momentum: 0.9, weightDecay: 5e-4 });
    disposables.push(optA, ...a.map((p) => p.variable));
    const step = (opt: SgdMomentum, ps: Param[], k: number) =>
      tf.tidy(() => {
        const g = grads(k);
        opt.applyGradients({ [ps[0].variable.name]: g[0], [ps[1].variable.name]: g[1] }, 0.05 + k / 100);
      });
    for (let k = 0; k < 3; k++) step(optA, a, k);

    // "Resume": fresh params loaded with A's values, fresh optimizer loaded with A's state.
    const b = make(a.map((p) => vals(p.variable)));
    const optB = new SgdMomentum('expert', b, { momentum: 0.9, weightDecay: 5e-4 });
    disposables.push(optB, ...b.map((p) => p.variable));
    const state = optA.getState();
    assert.deepEqual(Object.keys(state).sort(), ['optim/expert/p0/momentum', 'optim/expert/p1/momentum']);
    optB.setState(state);
    Object.values(state).forEach((t) => t.dispose());

    // Control: the same values without the momentum state (what a resume that lost it would do).
    const c = make(a.map((p) => vals(p.variable)));
    const optC = new SgdMomentum('expert', c, { momentum: 0.9, weightDecay: 5e-4 });
    disposables.push(optC, ...c.map((p) => p.variable));

    for (let k = 3; k < 8; k++) {
      step(optA, a, k);
      step(optB, b, k);
      step(optC, c, k);
    }
    a.forEach((p, i) => assert.deepEqual(vals(b[i].variable), vals(p.variable), `param ${p.name} diverged after resume`));
    assert.notDeepEqual(vals(c[0].variable), vals(a[0].variable), 'the momentum state matters (else this test proves nothing)');
  });

  it('rejects state of another model, ignores other optimizers\' state', () => {
    const w = param('w', [1, 2], true);
    const opt = new SgdMomentum('router', [w], { momentum: 0.9, weightDecay: 0 });
    disposables.push(opt, w.variable);
    const other = { 'optim/expert/w/momentum': tf.tensor1d([9, 9]), 'stem.kernel': tf.zeros([1]) };
    disposables.push(...Object.values(other));
    assert.throws(() => opt.setState(other), (e) => isAdvMoEError(e, 'CHECKPOINT_MISMATCH') && /missing optim\/router\/w\/momentum/.test(e.message));
    const wrongShape = { ...other, 'optim/router/w/momentum': tf.tensor1d([1, 2, 3]) };
    disposables.push(wrongShape['optim/router/w/momentum']);
    assert.throws(() => opt.setState(wrongShape), (e) => isAdvMoEError(e, 'CHECKPOINT_MISMATCH') && /shape \[3\]/.test(e.message));
    const unknown = { 'optim/router/w/momentum': tf.tensor1d([1, 2]), 'optim/router/zzz/momentum': tf.tensor1d([1]) };
    disposables.push(...Object.values(unknown));
    assert.throws(() => opt.setState(unknown), (e) => isAdvMoEError(e, 'CHECKPOINT_MISMATCH') && /unknown optim\/router\/zzz/.test(e.message));
  });
});
