/**
 * Side-by-side timing of the two training-mode BatchNorm forms (engine/models/layers.ts setBatchNormImpl) in one
 * process: one training step per measurement, the forms alternating within every repetition.
 *
 *   node out/bench/bn_ab.js [--reps N] [--threads N]
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '../engine/util/registerGradients';
import { initBackend } from '../engine/backend/select';
import type { AttackConfig } from '../engine/config/types';
import { createModel } from '../engine/models/factory';
import { type BatchNormImpl, setBatchNormImpl, setChannelAffineViaConv } from '../engine/models/layers';
import { makeAdversary } from '../engine/training/adversary';
import { createOptimizers, trainStep } from '../engine/training/methods';
import { loadConfigFile } from '../engine/config/load';
import { Rng } from '../engine/util/rng';
import { benchMethod, benchModels, DEFAULT_EXPERIMENT, type ModelKey, STEP } from './models';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function stat(v: number[]): string {
  const s = [...v].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return `${med.toFixed(1)} ms (${s[0].toFixed(1)}–${s[s.length - 1].toFixed(1)})`;
}
function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const reps = Number(arg('reps') ?? 9);
  const threads = arg('threads') ? Number(arg('threads')) : undefined;
  await initBackend('wasm', { threads });
  await tf.ready();
  const cfg = loadConfigFile(DEFAULT_EXPERIMENT);
  const cases: Array<{ label: string; key: ModelKey; kind: 'pgd-at' | 'advmoe'; attack: AttackConfig; batch: number }> = [
    { label: 'default AdvMoE step, FGSM-RS (experiment attack), batch 128', key: 'default', kind: 'advmoe', attack: cfg.method.attack, batch: 128 },
    { label: 'MoE-ResNet-18 tiny PGD-AT step, PGD-10, batch 64', key: 'cifar-resnet', kind: 'pgd-at', attack: benchModels()['cifar-resnet'].attack, batch: 64 },
  ];
  const out: Record<string, unknown> = {};
  for (const c of cases) {
    const m = benchModels()[c.key];
    const model = createModel(m.model, m.data, 0);
    const optimizers = createOptimizers(model, STEP);
    const x = tf.randomUniform([c.batch, ...m.data.inputShape], 0, 1, 'float32', 1) as tf.Tensor4D;
    const y = tf.cast(tf.floor(tf.randomUniform([c.batch], 0, m.data.numClasses, 'float32', 2)), 'int32') as tf.Tensor1D;
    const adversary = makeAdversary(model, c.attack, { rng: new Rng(2) });
    const method = benchMethod(c.kind, c.attack);
    let step = 0;
    type Side = BatchNormImpl | 'fused-broadcast';
    const one = async (impl: Side): Promise<number> => {
      setBatchNormImpl(impl === 'fused-broadcast' ? 'fused' : impl);
      setChannelAffineViaConv(impl !== 'fused-broadcast');
      const t0 = process.hrtime.bigint();
      await trainStep(method, { model, optimizers, x, y, lr: STEP.lr, step: step++, adversary });
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    // 'fused-broadcast': the fused op with its per-channel affine maps as broadcast mul/add instead of 1×1 depthwise convs.
    const sides: Side[] = ['autodiff', 'fused-broadcast', 'fused'];
    for (const sd of sides) await one(sd);
    const t: Record<string, number[]> = Object.fromEntries(sides.map((sd) => [sd, []]));
    for (let r = 0; r < reps; r++) {
      for (const sd of r % 2 ? [...sides].reverse() : sides) t[sd].push(await one(sd));
    }
    const ratios = Object.fromEntries(sides.map((sd) => [sd, median(t[sd]) / median(t.autodiff)]));
    console.log(c.label);
    for (const sd of sides) console.log(`  ${sd.padEnd(16)} ${stat(t[sd]).padEnd(28)} ×${ratios[sd].toFixed(3)} of autodiff`);
    out[c.label] = { ms: t, ratioToAutodiff: ratios };
    model.dispose();
    tf.dispose([x, y]);
  }
  if (arg('json')) fs.writeFileSync(arg('json')!, JSON.stringify(out, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
