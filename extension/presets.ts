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
    label: 'MNIST · tiny VGG-16 MoE · AdvMoE',
    detail: 'A few minutes on a laptop CPU: 2 experts of half width, top-1, alternating router/expert steps on FGSM-RS examples (ε 0.3), 20,000 images for one epoch.',
    config: {
      name: 'mnist-tiny-advmoe',
      model: { backbone: 'vgg16', preset: 'tiny', widthMultiplier: 0.5, moe: { enabled: true, experts: 2, topK: 1, expertWidth: 0.5 } },
      method: { kind: 'advmoe', attack: { norm: 'linf', eps: 0.3, steps: 1, stepSize: 0.375, randomStart: true }, epsWarmupEpochs: 0.3 },
      data: { dataset: 'mnist', trainSamples: 20000 },
      schedule: { epochs: 1, batchSize: 128, lr: 0.05, lrSchedule: 'cosine' },
      eval: { samples: 500 },
    },
  },
  {
    id: 'mnist-tiny-dense-pgd-at',
    label: 'MNIST · tiny VGG-16 dense · PGD-AT baseline',
    detail: 'The dense baseline of the AdvMoE preset (same backbone and width, same examples and budget), Madry adversarial training.',
    config: {
      name: 'mnist-tiny-dense-pgd-at',
      model: { backbone: 'vgg16', preset: 'tiny', widthMultiplier: 0.5, moe: { enabled: false } },
      method: { kind: 'pgd-at', attack: { norm: 'linf', eps: 0.3, steps: 1, stepSize: 0.375, randomStart: true }, epsWarmupEpochs: 0.3 },
      data: { dataset: 'mnist', trainSamples: 20000 },
      schedule: { epochs: 1, batchSize: 128, lr: 0.05, lrSchedule: 'cosine' },
      eval: { samples: 500 },
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
    detail: 'The reference PyTorch code\'s loop exactly: TRADES β=6, eval-mode PGD-2 at 5/255 on model and router KL, shared image-level router trained to y mod N.',
    config: {
      name: 'cifar10-resnet18-official',
      model: { backbone: 'resnet18', preset: 'full', moe: { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, router: 'shared' } },
      method: { kind: 'official' },
      data: { dataset: 'cifar10' },
      schedule: { epochs: 100, batchSize: 128 },
    },
  },
];
