/**
 * Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016) in the CIFAR form: 3×3 stem (16 channels), three
 * stages of n = (d − 4) / 6 pre-activation wide basic blocks of widths 16k, 32k, 64k (strides 1, 2, 2),
 * final BN-ReLU, global average pool, linear. No dropout (the robust-training literature trains
 * WRN-28-10 without it). `full` = WRN-28-10, 36.5 M parameters.
 *
 * Pre-activation block:  x → BN1 → ReLU → conv1 → BN2 → ReLU → conv2 → (+ shortcut).
 * Where the MoE mask goes: the block is regrouped into two units,
 *   [conv1 + BN2]  — an ordinary conv+BN unit (the mask multiplies BN2's output), then ReLU, and
 *   [conv2]        — a bare conv unit (`bn: false`; the mask multiplies the conv's output directly).
 * For the dense model this is exactly the pre-activation computation (BN2 is merely named
 * `…conv1.bn`). For an MoE unit, inactive experts' channels are exactly zero at the unit output: for
 * conv2 that is the conv's output itself, which is added to the shortcut (so on those channels the block
 * passes its input through, as a ResNet MoE block does); for conv1 it is after BN2 — BN2 is per-channel,
 * so conv1's inactive channels never need computing either, and masking after BN2 (not before) keeps
 * BN2's shift from turning the zeros non-zero before conv2, which therefore sees zero inputs on those
 * channels (credited to its active FLOPs through `inputFrom`). Masking conv1's raw output instead would
 * need a second mask after BN2 to keep that property.
 *
 * The shortcut is a bare 1×1 conv of the activated input when the shape changes (as the reference code),
 * the identity otherwise. MoE candidates: conv1 and conv2 of every block (24 in WRN-28-10).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../config/types';
import type { Rng } from '../util/rng';
import { batchNorm, relu } from './layers';
import { type ConvUnit, type DataSpec, type ForwardContext, Net } from './net';
import type { BatchNormWeights } from './params';

const PRESETS = {
  /** WRN-28-10. */
  full: { depth: 28, widen: 10 },
  /** WRN-16-4. */
  small: { depth: 16, widen: 4 },
  /** WRN-10-1.5 (widths 24, 48, 96): about 1.5× ResNet-18 `tiny`'s FLOPs; at widen 2 it was 2.75×. */
  tiny: { depth: 10, widen: 1.5 },
} as const;

interface WideBlock {
  bn1: BatchNormWeights;
  conv1: ConvUnit;
  conv2: ConvUnit;
  shortcut: ConvUnit | null;
}

export class WideResNet extends Net {
  private readonly stem: ConvUnit;
  private readonly blocks: WideBlock[] = [];
  private readonly bnFinal: BatchNormWeights;
  private readonly head: (x: tf.Tensor4D, ctx: ForwardContext) => tf.Tensor2D;

  constructor(config: ModelConfig, data: DataSpec, rng: Rng) {
    super(config, data, rng);
    const { depth, widen } = PRESETS[config.preset];
    const n = (depth - 4) / 6;
    const scale = (w: number) => Math.max(1, Math.round(w * config.widthMultiplier));
    const widths = [16 * widen, 32 * widen, 64 * widen].map(scale);
    this.stem = this.convUnit('stem', data.inputShape[2], scale(16), { bn: false });
    let inChannels = this.stem.outChannels;
    widths.forEach((width, stage) => {
      for (let b = 0; b < n; b++) {
        const stride: 1 | 2 = stage > 0 && b === 0 ? 2 : 1;
        const name = `block${stage + 1}.${b}`;
        const bn1 = this.factory.batchNorm(`${name}.bn1`, inChannels);
        const conv1 = this.convUnit(`${name}.conv1`, inChannels, width, { stride, candidate: true });
        const conv2 = this.convUnit(`${name}.conv2`, conv1.outChannels, width, {
          candidate: true,
          inputFrom: conv1,
          sparseInput: true,
          bn: false,
        });
        const shortcut =
          stride !== 1 || inChannels !== conv2.outChannels
            ? this.convUnit(`${name}.shortcut`, inChannels, conv2.outChannels, { size: 1, stride, bn: false })
            : null;
        this.blocks.push({ bn1, conv1, conv2, shortcut });
        inChannels = conv2.outChannels;
      }
    });
    this.bnFinal = this.factory.batchNorm('bn', inChannels);
    this.head = this.classifier('fc', inChannels);
  }

  protected body(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
    let h = this.stem.apply(x, ctx);
    for (const block of this.blocks) {
      const a = relu(batchNorm(h, block.bn1, ctx.opts));
      const out = block.conv2.apply(relu(block.conv1.apply(a, ctx)), ctx);
      // As the reference implementation: a projection shortcut reads the activated input, the identity
      // shortcut the raw one.
      const skip = block.shortcut ? block.shortcut.apply(a, ctx) : h;
      h = tf.add(out, skip);
    }
    return this.head(relu(batchNorm(h, this.bnFinal, ctx.opts)), ctx);
  }
}
