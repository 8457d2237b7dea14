import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ScheduleConfig } from '../../../engine/config/types';
import { attackAt, epsFactor, learningRate } from '../../../engine/training/schedule';
import { methodConfig } from './fixtures';

const base: ScheduleConfig = {
  epochs: 10,
  batchSize: 32,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 5e-4,
  lrSchedule: 'cosine',
  milestones: [],
  gamma: 0.1,
  warmupEpochs: 0,
};

const near = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe('learningRate', () => {
  it('cosine: full at the start, half at mid-training, per step, near 0 at the end', () => {
    near(learningRate(base, 0, 0, 100), 0.1);
    near(learningRate(base, 5, 0, 100), 0.05);
    // Per step, not per epoch: a quarter of the way is lr·½(1 + cos(π/4)).
    near(learningRate(base, 2, 50, 100), 0.05 * (1 + Math.cos(Math.PI / 4)));
    assert.ok(learningRate(base, 2, 51, 100) < learningRate(base, 2, 50, 100));
    near(learningRate(base, 9, 99, 100), 0.05 * (1 + Math.cos((Math.PI * 999) / 1000)));
  });

  it('step: multiplies by γ at each milestone epoch', () => {
    const s = { ...base, lrSchedule: 'step' as const, milestones: [5, 8] };
    near(learningRate(s, 4, 9, 10), 0.1);
    near(learningRate(s, 5, 0, 10), 0.01, 1e-15);
    near(learningRate(s, 7, 9, 10), 0.01, 1e-15);
    near(learningRate(s, 8, 0, 10), 0.001, 1e-15);
  });

  it('constant', () => {
    const s = { ...base, lrSchedule: 'constant' as const };
    near(learningRate(s, 0, 0, 10), 0.1);
    near(learningRate(s, 9, 9, 10), 0.1);
  });

  it('linear warm-up reaches the full lr at its last step, then the schedule runs on the remaining steps', () => {
    const s = { ...base, warmupEpochs: 1 };
    near(learningRate(s, 0, 0, 10), 0.01);
    near(learningRate(s, 0, 4, 10), 0.05);
    near(learningRate(s, 0, 9, 10), 0.1);
    near(learningRate(s, 1, 0, 10), 0.1);
    // Cosine over the 90 post-warm-up steps: half of it is step 10 + 45.
    near(learningRate(s, 5, 5, 10), 0.05);
    const c = { ...base, lrSchedule: 'constant' as const, warmupEpochs: 0.5 };
    near(learningRate(c, 0, 1, 10), 0.1 * (2 / 5));
    near(learningRate(c, 0, 7, 10), 0.1);
  });

  it('rejects positions outside the run', () => {
    assert.throws(() => learningRate(base, 0, 10, 10), RangeError);
    assert.throws(() => learningRate(base, -1, 0, 10), RangeError);
    assert.throws(() => learningRate(base, 0, 0, 0), RangeError);
  });
});

describe('ε warm-up', () => {
  it('ramps ε (and the step size with it) linearly over epsWarmupEpochs', () => {
    const m = methodConfig('pgd-at', { epsWarmupEpochs: 2, attack: { norm: 'linf', eps: 0.3, stepSize: 0.01, steps: 40, randomStart: true, restarts: 1 } });
    near(epsFactor(m, 0, 0, 10), 1 / 20);
    near(epsFactor(m, 0, 9, 10), 0.5);
    near(epsFactor(m, 1, 9, 10), 1);
    near(epsFactor(m, 3, 0, 10), 1);
    const a = attackAt(m, 0, 9, 10);
    near(a.eps, 0.15);
    near(a.stepSize, 0.005);
    assert.equal(a.steps, 40);
    assert.equal(attackAt(m, 5, 0, 10), m.attack, 'after the ramp the configured attack is used as is');
    near(epsFactor(methodConfig('pgd-at'), 0, 0, 10), 1);
  });
});
