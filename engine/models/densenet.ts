/**
 * DenseNet-BC (Huang et al. 2017) in the CIFAR form: a 3×3 stem conv to 2·growth channels (no 7×7 stem,
 * no max-pool), dense blocks, transitions BN-ReLU-conv1×1 (compression 0.5) + 2×2 average pool, final
 * BN-ReLU, global average pool, linear. `full` = DenseNet-121's blocks [6, 12, 24, 16] with growth 32
 * (≈ 7.0 M parameters with a 10-class head).
 *
 * Dense layer:  x → BN1 → ReLU → conv1×1 (4·growth) → BN2 → ReLU → conv3×3 (growth), concatenated to x.
 * As in wrn.ts the layer is regrouped into [conv1×1 + BN2] (mask after BN2) and a bare [conv3×3]
 * (`bn: false`, mask on the conv's output); the dense computation is unchanged. Inactive experts of the
 * 3×3 conv are therefore exactly-zero channels of the concatenated feature map. Later layers' BN1 shifts
 * them, so their 1×1 convs see all input channels live (no `inputFrom` credit) — the FLOP count says so.
 *
 * MoE candidates: both convs of every dense layer (116 in DenseNet-121); never the stem, transitions or
 * classifier. Average pools floor (PyTorch's default), and one is skipped when the map is already
 * smaller than 2×2 — 28×28 inputs go 28 → 14 → 7 → 3.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../config/types';
import type { Rng } from '../util/rng';
import { batchNorm, relu } from './layers';
import { type ConvUnit, type DataSpec, type ForwardContext, Net } from './net';
import type { BatchNormWeights } from './params';

const PRESETS = {
  /** DenseNet-121 (BC, k = 32). */
  full: { growth: 32, blocks: [6, 12, 24, 16] },
  /** DenseNet-121's depth at k = 12. */
  small: { growth: 12, blocks: [6, 12, 24, 16] },
  /** Three blocks of three layers, k = 8: about ResNet-18 `tiny`'s FLOPs (k = 12 was 2×). */
  tiny: { growth: 8, blocks: [3, 3, 3] },
} as const;

const COMPRESSION = 0.5;
const BOTTLENECK = 4;

interface DenseLayer {
  bn1: BatchNormWeights;
  conv1: ConvUnit;
  conv2: ConvUnit;
}

interface Transition {
  bn: BatchNormWeights;
  conv: ConvUnit;
}

export class DenseNet extends Net {
  private readonly stem: ConvUnit;
  private readonly stages: { layers: DenseLayer[]; transition: Transition | null }[] = [];
  private readonly bnFinal: BatchNormWeights;
  private readonly head: (x: tf.Tensor4D, ctx: ForwardContext) => tf.Tensor2D;

  constructor(config: ModelConfig, data: DataSpec, rng: Rng) {
    super(config, data, rng);
    const preset = PRESETS[config.preset];
    const growth = Math.max(1, Math.round(preset.growth * config.widthMultiplier));
    this.stem = this.convUnit('stem', data.inputShape[2], 2 * growth, { bn: false });
    let channels = this.stem.outChannels;
    preset.blocks.forEach((count, stage) => {
      const layers: DenseLayer[] = [];
      for (let l = 0; l < count; l++) {
        const name = `dense${stage + 1}.${l}`;
        const bn1 = this.factory.batchNorm(`${name}.bn1`, channels);
        const conv1 = this.convUnit(`${name}.conv1`, channels, BOTTLENECK * growth, { size: 1, candidate: true });
        const conv2 = this.convUnit(`${name}.conv2`, conv1.outChannels, growth, {
          candidate: true,
          inputFrom: conv1,
          sparseInput: true,
          bn: false,
        });
        layers.push({ bn1, conv1, conv2 });
        channels += conv2.outChannels;
      }
      let transition: Transition | null = null;
      if (stage < preset.blocks.length - 1) {
        const name = `transition${stage + 1}`;
        const bn = this.factory.batchNorm(`${name}.bn`, channels);
        const conv = this.convUnit(`${name}.conv`, channels, Math.max(1, Math.floor(channels * COMPRESSION)), {
          size: 1,
          bn: false,
        });
        transition = { bn, conv };
        channels = conv.outChannels;
      }
      this.stages.push({ layers, transition });
    });
    this.bnFinal = this.factory.batchNorm('bn', channels);
    this.head = this.classifier('fc', channels);
  }

  protected body(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
    let h = this.stem.apply(x, ctx);
    for (const { layers, transition } of this.stages) {
      for (const layer of layers) {
        const a = relu(batchNorm(h, layer.bn1, ctx.opts));
        const y = layer.conv2.apply(relu(layer.conv1.apply(a, ctx)), ctx);
        h = tf.concat([h, y], 3);
      }
      if (transition) {
        h = transition.conv.apply(relu(batchNorm(h, transition.bn, ctx.opts)), ctx);
        if (h.shape[1] >= 2 && h.shape[2] >= 2) h = tf.avgPool(h, 2, 2, 'valid');
      }
    }
    return this.head(relu(batchNorm(h, this.bnFinal, ctx.opts)), ctx);
  }
}
