/**
 * Side-by-side A/B timing of one training step in one process (bench/bn_ab.ts, bench/native_ab.ts): the same model,
 * batch and adversary for every side; before its step each side sets the engine's switches (`use`); one warm-up
 * step per side, then `reps` rounds with the sides alternating (reversed every other round), so drifting machine
 * load falls on every side alike. Wall and CPU time (all threads) per step, in ms.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AttackConfig } from '../engine/config/types';
import { createModel } from '../engine/models/factory';
import { makeAdversary } from '../engine/training/adversary';
import { createOptimizers, trainStep } from '../engine/training/methods';
import { Rng } from '../engine/util/rng';
import { benchMethod, type BenchModel, STEP } from './models';

export interface AbTimes {
  wall: Record<string, number[]>;
  cpu: Record<string, number[]>;
}

export interface AbCase {
  model: BenchModel;
  kind: 'pgd-at' | 'advmoe';
  attack: AttackConfig;
  batch: number;
}

export async function abTrainStep(c: AbCase, sides: readonly string[], use: (side: string) => void, reps: number): Promise<AbTimes> {
  const m = c.model;
  const model = createModel(m.model, m.data, 0);
  const optimizers = createOptimizers(model, STEP);
  const x = tf.randomUniform([c.batch, ...m.data.inputShape], 0, 1, 'float32', 1) as tf.Tensor4D;
  const y = tf.cast(tf.floor(tf.randomUniform([c.batch], 0, m.data.numClasses, 'float32', 2)), 'int32') as tf.Tensor1D;
  const adversary = makeAdversary(model, c.attack, { rng: new Rng(2) });
  const method = benchMethod(c.kind, c.attack);
  let step = 0;
  const times: AbTimes = { wall: {}, cpu: {} };
  for (const s of sides) [times.wall[s], times.cpu[s]] = [[], []];
  const one = async (side: string, record: boolean): Promise<void> => {
    use(side);
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await trainStep(method, { model, optimizers, x, y, lr: STEP.lr, step: step++, adversary });
    const cpu = process.cpuUsage(c0);
    if (!record) return;
    times.wall[side].push(Number(process.hrtime.bigint() - t0) / 1e6);
    times.cpu[side].push((cpu.user + cpu.system) / 1000);
  };
  try {
    for (const s of sides) await one(s, false);
    for (let r = 0; r < reps; r++) for (const s of r % 2 ? [...sides].reverse() : sides) await one(s, true);
    return times;
  } finally {
    optimizers.router.dispose();
    optimizers.expert.dispose();
    model.dispose();
    tf.dispose([x, y]);
  }
}

export function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** "median ms (min–max)". */
export function stat(v: readonly number[], digits = 1): string {
  const s = [...v].sort((a, b) => a - b);
  return `${median(s).toFixed(digits)} ms (${s[0].toFixed(digits)}–${s[s.length - 1].toFixed(digits)})`;
}
