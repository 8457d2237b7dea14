/**
 * Base of every backbone, dense or MoE. A backbone declares its convolutions through `convUnit`; the
 * experiment's MoE settings decide which of the *candidate* convs (those inside blocks — never the stem,
 * shortcuts or classifier) become MoE convs.
 *
 * MoE conv (DESIGN.md): a conv whose output channels form N disjoint expert blocks of
 * c = round(expertWidth · denseWidth) channels each (N·c channels in all; with the official N = 2,
 * ratio 0.5 that is the dense width). Its output after BatchNorm is multiplied by the channel mask of the
 * top-k experts, so inactive experts' channels are exactly zero — which is what lets sparse inference skip
 * them without changing the result.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../util/registerGradients';
import type { ModelConfig } from '../config/types';
import type { Rng } from '../util/rng';
import { batchNorm, conv, globalAvgPool, linear, normalize } from './layers';
import { type BatchNormWeights, type ConvWeights, type LinearWeights, ParamFactory } from './params';
import { expertToChannelMatrix, forcedMask, straightThroughTopK } from './routing';
import type {
  FlopsReport,
  ForwardOptions,
  ForwardResult,
  LayerRouting,
  MoeLayerInfo,
  Model,
  Param,
  ParamGroup,
} from './types';

/** What a model needs to know about its data. */
export interface DataSpec {
  inputShape: [number, number, number];
  numClasses: number;
  /** Per-channel normalisation applied inside the model. */
  mean: number[];
  std: number[];
}

/** A conv + BN (or a bare conv, see `ConvUnitOptions.bn`), dense or MoE. `apply` returns the
 * pre-activation output; for an MoE unit, the channels of inactive experts are exactly zero in it. */
export interface ConvUnit {
  readonly name: string;
  readonly outChannels: number;
  readonly moeIndex: number | null;
  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D;
}

/** Per-forward state: options, the routing decided so far, and (when counting) FLOPs. */
export class ForwardContext {
  readonly routing: LayerRouting[] = [];
  shared: LayerRouting | null = null;
  flops: { dense: number; active: number; router: number } | null = null;
  constructor(
    readonly opts: ForwardOptions,
    readonly image: tf.Tensor4D,
    readonly batch: number,
  ) {}
}

export interface ConvUnitOptions {
  stride?: 1 | 2;
  size?: number;
  /** A conv inside a block: may become an MoE conv. */
  candidate?: boolean;
  /** The unit whose (activated) output is this conv's input, when it is one: its masked channels are
   * zero, which the active-FLOP count credits. */
  inputFrom?: ConvUnit;
  /** Follow the conv by its own BatchNorm (default true). Pre-activation backbones (WRN, DenseNet) set
   * false where the next op is another layer's BN-ReLU or a residual sum: the unit is then the bare conv,
   * and an MoE mask multiplies the conv's output directly. */
  bn?: boolean;
}

export abstract class Net implements Model {
  readonly params: Param[];
  readonly moeLayers: MoeLayerInfo[] = [];
  readonly numExperts: number;
  readonly topK: number;
  readonly inputShape: [number, number, number];
  readonly numClasses: number;

  protected readonly factory: ParamFactory;
  private candidateCount = 0;
  private readonly perLayerRouters: LinearWeights[] = [];
  private sharedRouter: SharedRouter | null = null;
  private readonly expand = new Map<number, tf.Tensor2D>();
  private cachedFlops: FlopsReport | null = null;

  constructor(
    readonly config: ModelConfig,
    readonly data: DataSpec,
    rng: Rng,
  ) {
    this.factory = new ParamFactory(rng);
    this.params = this.factory.params;
    this.inputShape = data.inputShape;
    this.numClasses = data.numClasses;
    const moe = config.moe;
    this.numExperts = moe.enabled ? moe.experts : 1;
    this.topK = moe.enabled ? moe.topK : 1;
    if (moe.enabled) {
      if (!(moe.experts >= 1 && moe.topK >= 1 && moe.topK <= moe.experts)) {
        throw new RangeError(`MoE needs 1 ≤ topK (${moe.topK}) ≤ experts (${moe.experts})`);
      }
      if (moe.router === 'shared') this.sharedRouter = new SharedRouter(this.factory, data.inputShape[2], moe.experts);
    }
  }

  /** Builds a conv + BN unit; candidates become MoE convs when the config says so. */
  protected convUnit(name: string, inChannels: number, denseOut: number, o: ConvUnitOptions = {}): ConvUnit {
    const size = o.size ?? 3;
    const stride = o.stride ?? 1;
    let moeIndex: number | null = null;
    if (o.candidate) {
      const index = this.candidateCount++;
      const m = this.config.moe;
      if (m.enabled && (m.layers === 'all-blocks' || m.layers.includes(index))) moeIndex = this.moeLayers.length;
    }
    const inputFrom = o.inputFrom;
    const withBn = o.bn ?? true;
    if (moeIndex === null) {
      const w = this.factory.conv(name, inChannels, denseOut, size);
      const bn = withBn ? this.factory.batchNorm(`${name}.bn`, denseOut) : null;
      return {
        name,
        outChannels: denseOut,
        moeIndex: null,
        apply: (x, ctx) => {
          const y = conv(x, w, stride);
          countConv(ctx, y, w, 1, this.liveInput(inputFrom));
          return bn ? batchNorm(y, bn, ctx.opts) : y;
        },
      };
    }
    const m = this.config.moe;
    const expertChannels = Math.max(1, Math.round(m.expertWidth * denseOut));
    const outChannels = m.experts * expertChannels;
    const w = this.factory.conv(name, inChannels, outChannels, size);
    const bn = withBn ? this.factory.batchNorm(`${name}.bn`, outChannels) : null;
    const routerIndex = m.router === 'shared' ? 0 : this.perLayerRouters.length;
    if (m.router === 'per-layer') this.perLayerRouters.push(this.factory.linear(`${name}.router`, inChannels, m.experts, 'router'));
    this.moeLayers.push({ name, router: routerIndex, outChannels, expertChannels });
    const layer = moeIndex;
    const unit: ConvUnit = {
      name,
      outChannels,
      moeIndex: layer,
      apply: (x, ctx) => {
        const routing = this.route(layer, x, ctx);
        const y = conv(x, w, stride);
        countConv(ctx, y, w, this.topK / this.numExperts, this.liveInput(inputFrom));
        const channelMask = tf.reshape(tf.matMul(routing.mask, this.expansion(expertChannels)), [ctx.batch, 1, 1, outChannels]);
        // The mask comes last (after BN when there is one): BN's shift would otherwise turn zeroed
        // channels non-zero, and sparse inference could no longer skip them.
        return tf.mul(bn ? batchNorm(y, bn, ctx.opts) : y, channelMask);
      },
    };
    return unit;
  }

  /** Global pooling + linear classifier head. */
  protected classifier(name: string, features: number): (x: tf.Tensor4D, ctx: ForwardContext) => tf.Tensor2D {
    const fc = this.factory.linear(name, features, this.numClasses);
    return (x, ctx) => {
      if (ctx.flops) {
        ctx.flops.dense += 2 * fc.inFeatures * fc.outFeatures;
        ctx.flops.active += 2 * fc.inFeatures * fc.outFeatures;
      }
      return linear(globalAvgPool(x), fc);
    };
  }

  /** The backbone's computation on the normalised image; returns logits. */
  protected abstract body(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D;

  forward(x: tf.Tensor4D, opts: ForwardOptions): ForwardResult {
    return this.run(x, opts, null);
  }

  private run(x: tf.Tensor4D, opts: ForwardOptions, flops: ForwardContext['flops']): ForwardResult {
    const [h, w, c] = this.inputShape;
    if (x.rank !== 4 || x.shape[1] !== h || x.shape[2] !== w || x.shape[3] !== c) {
      throw new RangeError(`model expects input [B, ${h}, ${w}, ${c}], got [${x.shape.join(', ')}]`);
    }
    const routing = opts.routing ?? { kind: 'router' };
    if (routing.kind === 'fixed' && routing.masks.length !== this.moeLayers.length) {
      throw new RangeError(`fixed routing needs ${this.moeLayers.length} masks, got ${routing.masks.length}`);
    }
    const image = normalize(x, this.data.mean, this.data.std);
    const ctx = new ForwardContext(opts, image, x.shape[0]);
    ctx.flops = flops;
    const logits = this.body(image, ctx);
    return { logits, routing: ctx.routing };
  }

  private route(layer: number, input: tf.Tensor4D, ctx: ForwardContext): LayerRouting {
    const mode = ctx.opts.routing ?? { kind: 'router' };
    let decided: LayerRouting;
    if (this.sharedRouter) {
      if (!ctx.shared) {
        const logits = this.sharedRouter.apply(ctx.image, ctx);
        const probs = tf.softmax(logits);
        ctx.shared = { logits, probs, mask: mode.kind === 'router' ? straightThroughTopK(probs, this.topK) : probs };
      }
      decided = ctx.shared;
    } else {
      const router = this.perLayerRouters[this.moeLayers[layer].router];
      const logits = linear(globalAvgPool(input), router);
      if (ctx.flops) ctx.flops.router += 2 * router.inFeatures * router.outFeatures + input.shape[1]! * input.shape[2]! * router.inFeatures;
      const probs = tf.softmax(logits);
      decided = { logits, probs, mask: mode.kind === 'router' ? straightThroughTopK(probs, this.topK) : probs };
    }
    let mask = decided.mask;
    if (mode.kind === 'fixed') mask = mode.masks[layer];
    else if (mode.kind === 'force') mask = forcedMask(ctx.batch, this.numExperts, mode.expert);
    const result = mask === decided.mask ? decided : { ...decided, mask };
    ctx.routing.push(result);
    return result;
  }

  /** Live fraction of a unit's input channels: k/N straight after an MoE unit, else 1. */
  private liveInput(inputFrom: ConvUnit | undefined): number {
    return inputFrom && inputFrom.moeIndex !== null ? this.topK / this.numExperts : 1;
  }

  private expansion(expertChannels: number): tf.Tensor2D {
    let e = this.expand.get(expertChannels);
    if (!e) {
      e = tf.keep(expertToChannelMatrix(this.numExperts, expertChannels));
      this.expand.set(expertChannels, e);
    }
    return e;
  }

  trainableVariables(group?: ParamGroup): tf.Variable[] {
    return this.params.filter((p) => p.trainable && (group === undefined || p.group === group)).map((p) => p.variable);
  }

  /** FLOPs per image, counted from the real layer shapes by one forward pass on a single input. */
  flops(): FlopsReport {
    if (!this.cachedFlops) {
      const counter = { dense: 0, active: 0, router: 0 };
      tf.tidy(() => {
        this.run(tf.zeros([1, ...this.inputShape]) as tf.Tensor4D, { training: false }, counter);
      });
      this.cachedFlops = { dense: counter.dense, active: counter.active + counter.router, router: counter.router };
    }
    return this.cachedFlops;
  }

  dispose(): void {
    for (const p of this.params) p.variable.dispose();
    for (const e of this.expand.values()) e.dispose();
    this.expand.clear();
  }
}

/**
 * Adds a conv's FLOPs (2 × MACs). Dense: all channels. Active: the live fraction of output channels
 * (k/N for an MoE conv) times the live fraction of input channels (k/N when the input comes straight from
 * another MoE unit's masked output, 1 otherwise — e.g. after a residual sum).
 */
function countConv(ctx: ForwardContext, y: tf.Tensor4D, w: ConvWeights, outLive: number, inLive: number): void {
  if (!ctx.flops) return;
  const macs = y.shape[1] * y.shape[2] * w.size * w.size * w.inChannels * w.outChannels;
  ctx.flops.dense += 2 * macs;
  ctx.flops.active += 2 * macs * outLive * inLive;
}

/** The official code's image-level router: a small CNN on the (normalised) image whose choice every MoE layer uses. */
class SharedRouter {
  private readonly c1: ConvWeights;
  private readonly b1: BatchNormWeights;
  private readonly c2: ConvWeights;
  private readonly b2: BatchNormWeights;
  private readonly fc: LinearWeights;

  constructor(f: ParamFactory, inChannels: number, experts: number) {
    this.c1 = f.conv('router.conv1', inChannels, 16, 3, 'router');
    this.b1 = f.batchNorm('router.conv1.bn', 16, 'router');
    this.c2 = f.conv('router.conv2', 16, 32, 3, 'router');
    this.b2 = f.batchNorm('router.conv2.bn', 32, 'router');
    this.fc = f.linear('router.fc', 32, experts, 'router');
  }

  apply(image: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
    const h1 = tf.relu(batchNorm(conv(image, this.c1, 1), this.b1, ctx.opts));
    const h2 = tf.relu(batchNorm(conv(h1, this.c2, 2), this.b2, ctx.opts));
    if (ctx.flops) {
      const hw = image.shape[1] * image.shape[2];
      ctx.flops.router += 2 * (hw * 9 * this.c1.inChannels * 16 + (hw / 4) * 9 * 16 * 32 + 32 * this.fc.outFeatures);
    }
    return linear(globalAvgPool(h2), this.fc);
  }
}
