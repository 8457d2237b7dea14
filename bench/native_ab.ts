/**
 * A/B of backend-specific fast paths on the tensorflow backend, in one process: one training step per
 * measurement, the variants alternating within every repetition (README "Benchmark"). Equal values are checked
 * by the unit tests (test/engine/models/nativeBatchNorm.test.ts), not here.
 *
 *   node out/bench/native_ab.js [--reps N] [--threads N] [--variants 'tfjs ops,native BN,native BN+ReLU'] [--models default,cifar-resnet] [--json FILE]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import '../engine/util/registerGradients';
import { initBackend } from '../engine/backend/select';
import { setNativeBatchNorm, setNativeRelu } from '../engine/models/layers';
import { abTrainStep, median, stat } from './abStep';
import { benchModels, type ModelKey } from './models';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
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
    const names = Object.keys(VARIANTS);
    // Wall and CPU time (all threads) per step: on a loaded shared machine the CPU time of a 1-thread run tracks
    // the work far more steadily than its wall time.
    const { wall: t, cpu } = await abTrainStep({ model: m, kind: c.kind, attack: m.attack, batch: m.batch }, names, (v: string) => VARIANTS[v](), reps);
    const label = `${c.key} ${c.kind} (batch ${m.batch}, PGD-${m.attack.steps})`;
    console.log(label);
    const line = (what: string, d: Record<string, number[]>): void => {
      for (const v of names) console.log(`  ${what} ${v.padEnd(14)} ${stat(d[v], 0)}  ×${(median(d[v]) / median(d[names[0]])).toFixed(3)} of ${names[0]}`);
    };
    line('wall', t);
    line('CPU ', cpu);
    const last = names[names.length - 1];
    out[label] = { ms: t, cpuMs: cpu, ratio: median(t[last]) / median(t[names[0]]), cpuRatio: median(cpu[last]) / median(cpu[names[0]]) };
    (out.loadavg as number[]).push(os.loadavg()[0]);
  }
  if (arg('json')) fs.writeFileSync(arg('json')!, JSON.stringify(out, null, 1) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
