/** Experiment presets offered by "AdvMoE: New Experiment…" (the file format is engine/config/types.ts). */
import type { ExperimentConfig } from '../engine/config/types';

/** What a user writes: every field optional except model.backbone (deep partial of the resolved config). */
type DeepPartial<T> = { [K in keyof T]?: T[K] extends (infer U)[] ? U[] : T[K] extends object ? DeepPartial<T[K]> : T[K] };
export type ExperimentFile = DeepPartial<ExperimentConfig> & { model: { backbone: ExperimentConfig['model']['backbone'] } };

export interface Preset {
  id: string;
  label: string;
  detail: string;
  config: ExperimentFile;
}

export const PRESETS: readonly Preset[] = [
  {
    id: 'mnist-tiny-advmoe',
    label: 'MNIST · tiny ResNet-18 MoE · AdvMoE',
    detail: 'Trains in minutes on a laptop CPU: 2 experts, top-1, alternating router/expert adversarial steps.',
    config: {
      name: 'mnist-tiny-advmoe',
      model: { backbone: 'resnet18', preset: 'tiny', moe: { enabled: true, experts: 2, topK: 1 } },
      method: { kind: 'advmoe' },
      data: { dataset: 'mnist', trainSamples: 4096, testSamples: 512 },
      schedule: { epochs: 3, batchSize: 64 },
    },
  },
  {
    id: 'mnist-tiny-dense-pgd-at',
    label: 'MNIST · tiny ResNet-18 dense · PGD-AT baseline',
    detail: 'The dense baseline to compare an MoE run against (Madry adversarial training).',
    config: {
      name: 'mnist-tiny-dense-pgd-at',
      model: { backbone: 'resnet18', preset: 'tiny', moe: { enabled: false } },
      method: { kind: 'pgd-at' },
      data: { dataset: 'mnist', trainSamples: 4096, testSamples: 512 },
      schedule: { epochs: 3, batchSize: 64 },
    },
  },
  {
    id: 'cifar10-resnet18-advmoe',
    label: 'CIFAR-10 · ResNet-18 MoE · AdvMoE (paper setting)',
    detail: 'Full-width ResNet-18 with 2 experts of half width, per-layer routers; needs a GPU backend for reasonable speed.',
    config: {
      name: 'cifar10-resnet18-advmoe',
      model: { backbone: 'resnet18', preset: 'full', moe: { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, router: 'per-layer' } },
      method: { kind: 'advmoe' },
      data: { dataset: 'cifar10' },
      schedule: { epochs: 100, batchSize: 128, lr: 0.1, lrSchedule: 'cosine' },
    },
  },
  {
    id: 'cifar10-resnet18-official',
    label: 'CIFAR-10 · ResNet-18 MoE · official-code preset',
    detail: 'As the reference PyTorch code: TRADES β=6, PGD-2 at 5/255, shared image-level router trained to y mod N.',
    config: {
      name: 'cifar10-resnet18-official',
      model: { backbone: 'resnet18', preset: 'full', moe: { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, router: 'shared' } },
      method: { kind: 'official' },
      data: { dataset: 'cifar10' },
      schedule: { epochs: 100, batchSize: 128 },
    },
  },
];
