/**
 * A/B of backend-specific fast paths on the tensorflow backend, in one process: one training step per
 * measurement, the variants alternating within every repetition (README "Benchmark"). Equal values are checked
 * by the unit tests (test/engine/models/nativeBatchNorm.test.ts), not here.
 *
 *   node out/bench/native_ab.js [--reps N] [--threads N] [--variants 'tfjs ops,native BN,native BN+ReLU'] [--models default,cifar-resnet] [--json FILE]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '../engine/util/registerGradients';
import { initBackend } from '../engine/backend/select';
import { createModel } from '../engine/models/factory';
import { setNativeBatchNorm, setNativeRelu } from '../engine/models/layers';
import { makeAdversary } from '../engine/training/adversary';
import { createOptimizers, trainStep } from '../engine/training/methods';
import { Rng } from '../engine/util/rng';
import { benchMethod, benchModels, type ModelKey, STEP } from './models';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The variants (--variants a,b,…; ratios are to the first): each sets the engine's switches before a step. */
const ALL_VARIANTS: Record<string, () => void> = {
  'tfjs ops': () => {
    setNativeBatchNorm(false);
    setNativeRelu(false);
  },
  'native BN': () => {
    setNativeBatchNorm(true);
    setNativeRelu(false);
  },
  'native BN+ReLU': () => {
    setNativeBatchNorm(true);
    setNativeRelu(true);
  },
};
const VARIANTS: Record<string, () => void> = Object.fromEntries(
  (arg('variants') ?? 'tfjs ops,native BN').split(',').map((v) => {
    if (!ALL_VARIANTS[v]) throw new Error(`--variants: unknown "${v}" (${Object.keys(ALL_VARIANTS).join(', ')})`);
    return [v, ALL_VARIANTS[v]];
  }),
);

async function main(): Promise<void> {
  const reps = Number(arg('reps') ?? 5);
  const threads = Number(arg('threads') ?? 1);
  await initBackend('tensorflow', { threads });
  const models = (arg('models') ?? 'default,cifar-resnet').split(',');
  const cases: Array<{ key: ModelKey; kind: 'pgd-at' | 'advmoe' }> = [
    { key: 'default' as ModelKey, kind: 'pgd-at' as const },
    { key: 'default' as ModelKey, kind: 'advmoe' as const },
    { key: 'cifar-resnet' as ModelKey, kind: 'pgd-at' as const },
  ].filter((c) => models.includes(c.key));
  const out: Record<string, unknown> = { threads, reps, variants: Object.keys(VARIANTS), loadavg: [os.loadavg()[0]] };
  for (const c of cases) {
    const m = benchModels()[c.key];
    const model = createModel(m.model, m.data, 0);
    const optimizers = createOptimizers(model, STEP);
    const x = tf.randomUniform([m.batch, ...m.data.inputShape], 0, 1, 'float32', 1) as tf.Tensor4D;
    const y = tf.cast(tf.floor(tf.randomUniform([m.batch], 0, m.data.numClasses, 'float32', 2)), 'int32') as tf.Tensor1D;
    const adversary = makeAdversary(model, m.attack, { rng: new Rng(2) });
    const method = benchMethod(c.kind, m.attack);
    let step = 0;
    // Wall and CPU time (all threads) per step: on a loaded shared machine the CPU time of a 1-thread run tracks
    // the work far more steadily than its wall time.
    const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(VARIANTS).map((v) => [v, []]));
    const one = async (v: string): Promise<number> => {
      VARIANTS[v]();
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await trainStep(method, { model, optimizers, x, y, lr: STEP.lr, step: step++, adversary });
      const c = process.cpuUsage(c0);
      cpu[v].push((c.user + c.system) / 1000);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    const names = Object.keys(VARIANTS);
    for (const v of names) await one(v); // warm-up
    for (const v of names) cpu[v].length = 0;
    const t: Record<string, number[]> = Object.fromEntries(names.map((v) => [v, []]));
    for (let r = 0; r < reps; r++) for (const v of r % 2 ? [...names].reverse() : names) t[v].push(await one(v));
    const label = `${c.key} ${c.kind} (batch ${m.batch}, PGD-${m.attack.steps})`;
    console.log(label);
    const line = (what: string, d: Record<string, number[]>): void => {
      for (const v of names) {
        const s = [...d[v]].sort((a, b) => a - b);
        console.log(`  ${what} ${v.padEnd(14)} ${median(s).toFixed(0)} ms (${s[0].toFixed(0)}–${s[s.length - 1].toFixed(0)})  ×${(median(s) / median(d[names[0]])).toFixed(3)} of ${names[0]}`);
      }
    };
    line('wall', t);
    line('CPU ', cpu);
    const last = names[names.length - 1];
    out[label] = { ms: t, cpuMs: cpu, ratio: median(t[last]) / median(t[names[0]]), cpuRatio: median(cpu[last]) / median(cpu[names[0]]) };
    model.dispose();
    tf.dispose([x, y]);
    (out.loadavg as number[]).push(os.loadavg()[0]);
  }
  if (arg('json')) fs.writeFileSync(arg('json')!, JSON.stringify(out, null, 1) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
