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

/**
 * The tiny MNIST presets: the demo's recipe (examples/mnist-advmoe.advmoe.json; README "Presets" gives what each
 * reached): one backbone and width, the same FGSM-RS examples (ε 0.3), data and budget, so that the MoE model and its
 * dense baseline compare like for like. AdvMoE takes PGD-AT's CE form: one epoch of 20,000 images with the TRADES form
 * (the default) left MNIST at ε 0.3 with RA ≈ 2% (README "Reproducing the paper's comparison").
 */
function mnistTiny(name: string, moe: ExperimentFile['model']['moe'], kind: 'advmoe' | 'pgd-at'): ExperimentFile {
  return {
    name,
    model: { backbone: 'vgg16', preset: 'tiny', widthMultiplier: 0.5, moe },
    method: {
      kind,
      attack: { norm: 'linf', eps: 0.3, steps: 1, stepSize: 0.375, randomStart: true },
      epsWarmupEpochs: 0.3,
      ...(kind === 'advmoe' ? { advmoe: { loss: 'ce' as const } } : {}),
    },
    data: { dataset: 'mnist' },
    schedule: { epochs: 3, batchSize: 128, lr: 0.05, lrSchedule: 'cosine' },
    eval: { samples: 1000, everyEpochs: 1 },
  };
}

/** The CIFAR-10 presets: full-width ResNet-18 with 2 experts of half width, top-1, 100 epochs of 128 images. */
function cifarResNet18(name: string, router: 'per-layer' | 'shared', method: ExperimentFile['method'], schedule: ExperimentFile['schedule'] = {}): ExperimentFile {
  return {
    name,
    model: { backbone: 'resnet18', preset: 'full', moe: { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, router } },
    method,
    data: { dataset: 'cifar10' },
    schedule: { epochs: 100, batchSize: 128, ...schedule },
  };
}

export const PRESETS: readonly Preset[] = [
  {
    id: 'mnist-tiny-advmoe',
    label: 'MNIST · tiny VGG-16 MoE · AdvMoE',
    detail: 'The demo: about 10 minutes on one CPU core (tensorflow backend). 2 experts of half width, top-1, alternating router/expert steps on FGSM-RS examples (ε 0.3), 3 epochs of MNIST.',
    config: mnistTiny('mnist-tiny-advmoe', { enabled: true, experts: 2, topK: 1, expertWidth: 0.5 }, 'advmoe'),
  },
  {
    id: 'mnist-tiny-dense-pgd-at',
    label: 'MNIST · tiny VGG-16 dense · PGD-AT baseline',
    detail: 'The dense baseline of the AdvMoE preset (same backbone and width, same examples and budget), Madry adversarial training: about 5 minutes on one CPU core.',
    config: mnistTiny('mnist-tiny-dense-pgd-at', { enabled: false }, 'pgd-at'),
  },
  {
    id: 'cifar10-resnet18-advmoe',
    label: 'CIFAR-10 · ResNet-18 MoE · AdvMoE (paper setting)',
    detail: 'Full-width ResNet-18 with 2 experts of half width, per-layer routers; needs a GPU backend for reasonable speed.',
    config: cifarResNet18('cifar10-resnet18-advmoe', 'per-layer', { kind: 'advmoe' }, { lr: 0.1, lrSchedule: 'cosine' }),
  },
  {
    id: 'cifar10-resnet18-official',
    label: 'CIFAR-10 · ResNet-18 MoE · official-code preset',
    detail: 'The reference PyTorch code\'s loop exactly: TRADES β=6, eval-mode PGD-2 at 5/255 on model and router KL, shared image-level router trained to y mod N.',
    config: cifarResNet18('cifar10-resnet18-official', 'shared', { kind: 'official' }),
  },
];
