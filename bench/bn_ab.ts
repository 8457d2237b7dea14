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
import { type BatchNormImpl, setBatchNormImpl, setChannelAffineViaConv } from '../engine/models/layers';
import { loadConfigFile } from '../engine/config/load';
import { abTrainStep, median, stat } from './abStep';
import { benchModels, DEFAULT_EXPERIMENT, type ModelKey } from './models';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
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
    type Side = BatchNormImpl | 'fused-broadcast';
    // 'fused-broadcast': the fused op with its per-channel affine maps as broadcast mul/add instead of 1×1 depthwise convs.
    const sides: Side[] = ['autodiff', 'fused-broadcast', 'fused'];
    const use = (impl: string) => {
      setBatchNormImpl(impl === 'fused-broadcast' ? 'fused' : (impl as BatchNormImpl));
      setChannelAffineViaConv(impl !== 'fused-broadcast');
    };
    const { wall: t } = await abTrainStep({ model: benchModels()[c.key], kind: c.kind, attack: c.attack, batch: c.batch }, sides, use, reps);
    const ratios = Object.fromEntries(sides.map((sd) => [sd, median(t[sd]) / median(t.autodiff)]));
    console.log(c.label);
    for (const sd of sides) console.log(`  ${sd.padEnd(16)} ${stat(t[sd]).padEnd(28)} ×${ratios[sd].toFixed(3)} of autodiff`);
    out[c.label] = { ms: t, ratioToAutodiff: ratios };
  }
  if (arg('json')) fs.writeFileSync(arg('json')!, JSON.stringify(out, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
