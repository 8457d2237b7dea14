/**
 * ResNet-18 (basic blocks [2,2,2,2]) in the CIFAR form: 3×3 stem, no max-pool. Every conv inside a basic
 * block is an MoE candidate (16 in ResNet-18, as the official code). Presets shrink it for a laptop CPU.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../config/types';
import type { Rng } from '../util/rng';
import { relu } from './layers';
import { type ConvUnit, type DataSpec, type ForwardContext, Net } from './net';

const PRESETS = {
  full: { widths: [64, 128, 256, 512], blocks: [2, 2, 2, 2] },
  small: { widths: [32, 64, 128, 256], blocks: [2, 2, 2, 2] },
  tiny: { widths: [16, 32, 64, 128], blocks: [1, 1, 1, 1] },
} as const;

interface BasicBlock {
  conv1: ConvUnit;
  conv2: ConvUnit;
  shortcut: ConvUnit | null;
  stride: 1 | 2;
}

export class ResNet extends Net {
  private readonly stem: ConvUnit;
  private readonly blocks: BasicBlock[] = [];
  private readonly head: (x: tf.Tensor4D, ctx: ForwardContext) => tf.Tensor2D;

  constructor(config: ModelConfig, data: DataSpec, rng: Rng) {
    super(config, data, rng);
    const preset = PRESETS[config.preset];
    const widths = preset.widths.map((w) => Math.max(1, Math.round(w * config.widthMultiplier)));
    this.stem = this.convUnit('stem', data.inputShape[2], widths[0]);
    let inChannels = this.stem.outChannels;
    preset.blocks.forEach((count, stage) => {
      for (let b = 0; b < count; b++) {
        const stride: 1 | 2 = stage > 0 && b === 0 ? 2 : 1;
        const name = `layer${stage + 1}.${b}`;
        const conv1 = this.convUnit(`${name}.conv1`, inChannels, widths[stage], { stride, candidate: true });
        const conv2 = this.convUnit(`${name}.conv2`, conv1.outChannels, widths[stage], { candidate: true, inputFrom: conv1, sparseInput: true });
        const shortcut =
          stride !== 1 || inChannels !== conv2.outChannels
            ? this.convUnit(`${name}.shortcut`, inChannels, conv2.outChannels, { size: 1, stride })
            : null;
        this.blocks.push({ conv1, conv2, shortcut, stride });
        inChannels = conv2.outChannels;
      }
    });
    this.head = this.classifier('fc', inChannels);
  }

  protected body(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
    let h = relu(this.stem.apply(x, ctx));
    for (const block of this.blocks) {
      const out = block.conv2.apply(relu(block.conv1.apply(h, ctx)), ctx);
      const skip = block.shortcut ? block.shortcut.apply(h, ctx) : h;
      h = relu(tf.add(out, skip) as tf.Tensor4D);
    }
    return this.head(h, ctx);
  }
}
