/**
 * The models, data shapes and training settings the benchmark measures, shared by our worker and (as JSON) by the
 * PyTorch reference script, so that both sides build exactly the same thing.
 */
import * as path from 'node:path';
import { loadConfigFile } from '../engine/config/load';
import type { AttackConfig, MethodConfig, ModelConfig } from '../engine/config/types';
import type { DataSpec } from '../engine/models/net';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DEFAULT_EXPERIMENT = path.join(ROOT, 'examples', 'mnist-advmoe.advmoe.json');

export type ModelKey = 'default' | 'cifar-resnet' | 'cifar-resnet-small';

export interface BenchModel {
  key: ModelKey;
  label: string;
  model: ModelConfig;
  data: DataSpec;
  /** PGD-10 of the dataset's usual ε. */
  attack: AttackConfig;
  batch: number;
}

const MNIST: DataSpec = { inputShape: [28, 28, 1], numClasses: 10, mean: [0.1307], std: [0.3081] };
const CIFAR: DataSpec = { inputShape: [32, 32, 3], numClasses: 10, mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };

/** A CIFAR-sized MoE-ResNet-18 (2 experts of half width, top-1) of this preset, under PGD-10 at 8/255. */
function cifarResNet18(key: ModelKey, preset: 'tiny' | 'small'): BenchModel {
  return {
    key,
    label: `resnet18 ${preset} ×1 MoE 1/2, CIFAR 32×32×3`,
    model: {
      backbone: 'resnet18',
      preset,
      widthMultiplier: 1,
      moe: { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, router: 'per-layer', routerNorm: false, layers: 'all-blocks' },
    },
    data: CIFAR,
    attack: { norm: 'linf', eps: 8 / 255, stepSize: 2 / 255, steps: 10, randomStart: true, restarts: 1 },
    batch: 64,
  };
}

/** The embedded default (examples/mnist-advmoe.advmoe.json) and a CIFAR-sized MoE-ResNet-18 preset. */
export function benchModels(): Record<ModelKey, BenchModel> {
  const cfg = loadConfigFile(DEFAULT_EXPERIMENT);
  return {
    default: {
      key: 'default',
      label: `default: ${cfg.model.backbone} ${cfg.model.preset} ×${cfg.model.widthMultiplier} MoE ${cfg.model.moe.topK}/${cfg.model.moe.experts}, MNIST`,
      model: cfg.model,
      data: MNIST,
      attack: { norm: 'linf', eps: 0.3, stepSize: 0.075, steps: 10, randomStart: true, restarts: 1 },
      batch: cfg.schedule.batchSize,
    },
    'cifar-resnet': cifarResNet18('cifar-resnet', 'tiny'),
    // Wider layers (32–256 channels, 2 blocks per stage), where convolutions rather than per-op overhead dominate:
    // the sparse section's check of whether skipping experts pays off once layers are wide.
    'cifar-resnet-small': cifarResNet18('cifar-resnet-small', 'small'),
  };
}

/** Method settings of the measured steps (the default experiment's, with the bench's attack). */
export function benchMethod(kind: 'pgd-at' | 'advmoe', attack: AttackConfig): MethodConfig {
  const cfg = loadConfigFile(DEFAULT_EXPERIMENT);
  return { ...cfg.method, kind, attack, epsWarmupEpochs: 0,
    // The PyTorch peer implements the PGD-AT form of both steps with no collapse remedy: measure the same work.
    routing: { classTarget: 0, balance: 0, entropy: 0, noise: 0, balanceBias: 0, balanceBiasOn: 'update-passes', tieExpertsEpochs: 0, freezeRoutersAfterEpochs: 0, straightThrough: 'every-pass' },
    advmoe: { period: 1, order: 'router-first', routerLrScale: 1, loss: 'ce' },
  };
}

/** The schedule numbers a step needs. */
export const STEP = { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 };
