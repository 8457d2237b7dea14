/**
 * VGG-16-BN in the CIFAR form (as in the common CIFAR code bases): 13 conv3×3 + BN + ReLU in five stages
 * of [2, 2, 3, 3, 3] convs, a 2×2 max-pool after each stage, then a single linear classifier on the
 * 512 features (the ImageNet form's three 4096-wide FC layers would be 90 % of the parameters for a
 * 1×1 map). `full` has 14.7 M conv+BN parameters.
 *
 * Pooling uses 'same' padding, i.e. ceil(n / 2) like PyTorch's `ceil_mode=True`: 32 → 16 → 8 → 4 → 2 → 1
 * (identical to floor for powers of two) and 28 → 14 → 7 → 4 → 2 → 1, so MNIST-sized inputs also end at
 * 1×1 instead of 7 → 3 → 1 → 0. A pool whose input is already 1×1 is skipped (inputs smaller than
 * 2^5 pixels), so any input size ≥ 1 works; the classifier's global average pool then covers what is
 * left. Max-pooling keeps masked MoE channels at zero (max of zeros after ReLU), so the active-FLOP
 * credit of `inputFrom` survives a pool.
 *
 * MoE candidates: every conv except the first (which reads the raw image; the same rule as ResNet's stem),
 * i.e. 12 in VGG-16.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../config/types';
import type { Rng } from '../util/rng';
import { relu } from './layers';
import { type ConvUnit, type DataSpec, type ForwardContext, Net } from './net';

const PRESETS = {
  full: { widths: [64, 128, 256, 512, 512], convs: [2, 2, 3, 3, 3] },
  small: { widths: [32, 64, 128, 256, 256], convs: [2, 2, 3, 3, 3] },
  tiny: { widths: [16, 32, 64, 128, 128], convs: [1, 1, 1, 1, 1] },
} as const;

export class Vgg extends Net {
  /** Convs per stage; a max-pool follows each stage. */
  private readonly stages: ConvUnit[][] = [];
  private readonly head: (x: tf.Tensor4D, ctx: ForwardContext) => tf.Tensor2D;

  constructor(config: ModelConfig, data: DataSpec, rng: Rng) {
    super(config, data, rng);
    const preset = PRESETS[config.preset];
    const widths = preset.widths.map((w) => Math.max(1, Math.round(w * config.widthMultiplier)));
    let inChannels = data.inputShape[2];
    let previous: ConvUnit | undefined;
    let first = true;
    preset.convs.forEach((count, stage) => {
      const units: ConvUnit[] = [];
      for (let i = 0; i < count; i++) {
        const unit = this.convUnit(`features.${stage + 1}.${i}`, inChannels, widths[stage], {
          candidate: !first,
          inputFrom: previous,
          sparseInput: true, // its input is ReLU (+ max-pool) of `previous` alone
        });
        first = false;
        units.push(unit);
        previous = unit;
        inChannels = unit.outChannels;
      }
      this.stages.push(units);
    });
    this.head = this.classifier('fc', inChannels, previous);
  }

  protected body(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
    let h = x;
    for (const stage of this.stages) {
      for (const unit of stage) h = relu(unit.apply(h, ctx));
      if (h.shape[1] > 1 || h.shape[2] > 1) h = tf.maxPool(h, 2, 2, 'same');
    }
    return this.head(h, ctx);
  }
}
