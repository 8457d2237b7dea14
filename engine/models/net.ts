/**
 * Base of every backbone, dense or MoE. A backbone declares its convolutions through `convUnit`; the
 * experiment's MoE settings decide which of the *candidate* convs (those inside blocks — never the stem,
 * shortcuts or classifier) become MoE convs.
 *
 * MoE conv (README, introduction): a conv whose output channels form N disjoint expert blocks of c = round(expertWidth · denseWidth)
 * channels each (N·c channels in all; with the official N = 2, ratio 0.5 that is the dense width). Two layouts
 * (`model.moe.layout`):
 * - `blocks`: its output after BatchNorm is multiplied by the channel mask of the top-k experts, so inactive
 *   experts' channels are exactly zero — which is what lets sparse inference skip them without changing the result;
 *   BN and the next layer see all N·c channels.
 * - `gathered` (the reference code's MoEConv, top-1): the chosen expert's c channels are gathered (Σₑ maskₑ·blockₑ,
 *   which passes the mask's gradient straight on), so the layer's BN and the next conv have c channels, shared by
 *   every expert.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../util/registerGradients';
import type { ConvPadding, ModelConfig } from '../config/types';
import { AdvMoEError } from '../util/errors';
import type { Rng } from '../util/rng';
import { batchNorm, conv, conv2dPadded, globalAvgPool, inferenceAffine, linear, normalize, releaseInferenceCache, relu } from './layers';
import { type BatchNormWeights, type ConvWeights, type LinearWeights, ParamFactory } from './params';
import { applyExpertMask, forcedMask, gatherExperts, routerDecision, withRouterNoise } from './routing';
import type {
  ExpertTie,
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
  /** Sparse inference only: per MoE layer whose output was handed on compact (only the active experts'
   * channels, in expert order), each sample's sorted expert indices. Null in every other forward. */
  sparseSets: Map<number, number[][]> | null = null;
  /** The options a router's own BatchNorm layers run with: frozen routers keep their running statistics. */
  readonly routerOpts: ForwardOptions;
  constructor(
    readonly opts: ForwardOptions,
    readonly image: tf.Tensor4D,
    readonly batch: number,
  ) {
    this.routerOpts = opts.routersFrozen && opts.updateBnStats ? { ...opts, updateBnStats: false } : opts;
  }
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
  /** Sparse inference may hand this unit its input compact: `x` is exactly `inputFrom`'s output after
   * channel-wise ops that keep zeros (ReLU, max-pool), and nothing else reads that output. Then, when both
   * are MoE units, `inputFrom` passes on only its active experts' channels and this unit reads only the
   * matching weight rows. */
  sparseInput?: boolean;
}

/** What sparse inference needs of an MoE unit. */
interface MoeUnitSpec {
  name: string;
  layer: number;
  w: ConvWeights;
  bn: BatchNormWeights | null;
  stride: 1 | 2;
  expertChannels: number;
  /** MoE layer whose compact output this unit may receive (see ConvUnitOptions.sparseInput). */
  producer: number | null;
}

/** A cached slice of weights, valid while the variables it came from keep their data. */
interface SliceEntry {
  ids: object[];
  tensors: tf.Tensor[];
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
  /** Per-layer routers' input normalisation (`model.moe.routerNorm`), null where it is off. */
  private readonly routerNorms: Array<BatchNormWeights | null> = [];
  /** The image-level router of `shared` and `reference` routing (null for per-layer routers). */
  private imageRouter: ImageRouter | null = null;
  /** Each router's selection bias [N] (`method.routing.balanceBias`): index = router index (0 for an image router). */
  private readonly selectionBiases: tf.Variable[] = [];
  protected readonly padding: ConvPadding;
  private cachedFlops: FlopsReport | null = null;
  /** MoE layers whose output a sparse-aware consumer reads (handed on compact in sparse inference). */
  private readonly compactOut = new Set<number>();
  private readonly sliceCache = new Map<string, SliceEntry>();
  /** Every MoE unit, in forward order (expert tying reads their weights). */
  private readonly moeSpecs: MoeUnitSpec[] = [];
  /** Per unit name, the weight that alone reads that unit's output (a `sparseInput` conv's kernel [k, k, in, out] or
   * the classifier's kernel [in, classes]), where one does; its input rows are the unit's output channels. */
  private readonly soleReader = new Map<string, tf.Variable>();

  constructor(
    readonly config: ModelConfig,
    readonly data: DataSpec,
    rng: Rng,
  ) {
    this.factory = new ParamFactory(rng);
    this.params = this.factory.params;
    this.inputShape = data.inputShape;
    this.numClasses = data.numClasses;
    this.padding = config.padding ?? 'same';
    const moe = config.moe;
    this.numExperts = moe.enabled ? moe.experts : 1;
    this.topK = moe.enabled ? moe.topK : 1;
    if (moe.enabled) {
      if (!(moe.experts >= 1 && moe.topK >= 1 && moe.topK <= moe.experts)) {
        throw new RangeError(`MoE needs 1 ≤ topK (${moe.topK}) ≤ experts (${moe.experts})`);
      }
      if ((moe.layout === 'gathered' || moe.router === 'reference') && moe.topK !== 1) {
        throw new RangeError(`the gathered layout and the reference router keep one expert (topK 1), got topK ${moe.topK}`);
      }
      if (moe.router === 'shared') this.imageRouter = new SharedRouter(this.factory, data.inputShape[2], moe.experts, moe.routerNorm, this.padding);
      if (moe.router === 'reference') this.imageRouter = new ReferenceRouter(this.factory, data.inputShape[2], moe.experts, this.padding);
      if (this.imageRouter) this.selectionBiases.push(this.factory.buffer('router.selectionBias', [moe.experts], 'router'));
    }
  }

  /**
   * Called once the backbone is built, when its block convs are counted: an index past them would silently
   * leave the model dense while the config says MoE (README "Config format": `layers` indexes block convs).
   */
  checkMoeLayers(): void {
    const m = this.config.moe;
    if (!m.enabled || m.layers === 'all-blocks') return;
    const n = this.candidateCount;
    const bad = m.layers.filter((i) => !(Number.isInteger(i) && i >= 0 && i < n));
    if (bad.length) {
      throw new AdvMoEError(
        'CONFIG_INVALID',
        `model.moe.layers: ${bad.join(', ')} out of range; ${this.config.backbone} (${this.config.preset}) has ${n} block convs, valid indices 0–${n - 1}`,
      );
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
    const readsAlone = (w: ConvWeights) => {
      if (inputFrom && o.sparseInput) this.soleReader.set(inputFrom.name, w.kernel);
    };
    if (moeIndex === null) {
      const w = this.factory.conv(name, inChannels, denseOut, size);
      readsAlone(w);
      const bn = withBn ? this.factory.batchNorm(`${name}.bn`, denseOut) : null;
      return {
        name,
        outChannels: denseOut,
        moeIndex: null,
        apply: (x, ctx) => {
          const y = conv(x, w, stride, this.padding);
          countConv(ctx, y, w, 1, this.liveInput(inputFrom));
          return bn ? batchNorm(y, bn, ctx.opts) : y;
        },
      };
    }
    const m = this.config.moe;
    const gathered = (m.layout ?? 'blocks') === 'gathered';
    const expertChannels = Math.max(1, Math.round(m.expertWidth * denseOut));
    const convChannels = m.experts * expertChannels;
    const outChannels = gathered ? expertChannels : convChannels;
    const w = this.factory.conv(name, inChannels, convChannels, size);
    readsAlone(w);
    const bn = withBn ? this.factory.batchNorm(`${name}.bn`, outChannels) : null;
    const routerIndex = m.router === 'per-layer' ? this.perLayerRouters.length : 0;
    if (m.router === 'per-layer') {
      this.routerNorms.push(m.routerNorm ? this.factory.batchNorm(`${name}.router.norm`, inChannels, 'router') : null);
      this.perLayerRouters.push(this.factory.linear(`${name}.router`, inChannels, m.experts, 'router'));
      this.selectionBiases.push(this.factory.buffer(`${name}.router.selectionBias`, [m.experts], 'router'));
    }
    this.moeLayers.push({ name, router: routerIndex, outChannels, expertChannels });
    const layer = moeIndex;
    // A gathered unit's input is c channels, every one live: there is no compact hand-over to make.
    const producer = !gathered && o.sparseInput && inputFrom && inputFrom.moeIndex !== null ? inputFrom.moeIndex : null;
    if (producer !== null) this.compactOut.add(producer);
    const spec: MoeUnitSpec = { name, layer, w, bn, stride, expertChannels, producer };
    this.moeSpecs.push(spec);
    const unit: ConvUnit = {
      name,
      outChannels,
      moeIndex: layer,
      apply: (x, ctx) => {
        if (ctx.sparseSets) return gathered ? this.sparseGathered(spec, x, ctx) : this.sparseMoe(spec, x, ctx);
        const routing = this.route(layer, x, ctx);
        const y = conv(x, w, stride, this.padding);
        countConv(ctx, y, w, this.topK / this.numExperts, this.liveInput(inputFrom));
        if (gathered) {
          const g = gatherExperts(y, routing.mask, expertChannels);
          return bn ? batchNorm(g, bn, ctx.opts) : g;
        }
        // The mask comes last (after BN when there is one): BN's shift would otherwise turn zeroed
        // channels non-zero, and sparse inference could no longer skip them.
        return applyExpertMask(bn ? batchNorm(y, bn, ctx.opts) : y, routing.mask, expertChannels);
      },
    };
    return unit;
  }

  /** Global pooling + linear classifier head; `inputFrom`: the unit whose (activated, pooled) output alone it reads. */
  protected classifier(name: string, features: number, inputFrom?: ConvUnit): (x: tf.Tensor4D, ctx: ForwardContext) => tf.Tensor2D {
    const fc = this.factory.linear(name, features, this.numClasses);
    if (inputFrom) this.soleReader.set(inputFrom.name, fc.kernel);
    return (x, ctx) => {
      if (ctx.flops) {
        ctx.flops.dense += 2 * fc.inFeatures * fc.outFeatures;
        ctx.flops.active += 2 * fc.inFeatures * fc.outFeatures;
      }
      return linear(globalAvgPool(x), fc);
    };
  }

  /**
   * The parameters tied training keeps equal across experts (ExpertTie). In the gathered layout an expert is only
   * its block of the MoE conv's output channels (BN and the next layer are shared). In the blocks layout expert e
   * also owns its BN channels and the input rows of the layer that reads its output; where more than that layer
   * reads it (a residual sum, a concatenation), copies of one expert would not compute the same function, and
   * this throws CONFIG_INVALID naming the layer.
   */
  expertTies(): ExpertTie[] {
    const n = this.numExperts;
    const gathered = (this.config.moe.layout ?? 'blocks') === 'gathered';
    const ties: ExpertTie[] = [];
    for (const s of this.moeSpecs) {
      ties.push({ name: `${s.name}.kernel`, variable: s.w.kernel, axis: 3, blocks: n, combine: 'sum' });
      if (gathered) continue;
      if (s.bn) {
        for (const key of ['gamma', 'beta'] as const) ties.push({ name: `${s.name}.bn.${key}`, variable: s.bn[key], axis: 0, blocks: n, combine: 'sum' });
        for (const key of ['movingMean', 'movingVar'] as const) ties.push({ name: `${s.name}.bn.${key}`, variable: s.bn[key], axis: 0, blocks: n, combine: 'mean' });
      }
      const reader = this.soleReader.get(s.name);
      if (!reader) {
        throw new AdvMoEError(
          'CONFIG_INVALID',
          `method.routing.tieExpertsEpochs: in the blocks layout, the output of ${s.name} is read by more than one layer (a residual sum or a concatenation), so copies of one expert would not compute the same function there; use model.moe.layout "gathered", or MoE layers whose output one layer reads alone (model.moe.layers)`,
        );
      }
      ties.push({ name: `${s.name} reader rows`, variable: reader, axis: reader.shape.length === 4 ? 2 : 0, blocks: n, combine: 'sum' });
    }
    return ties;
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
    if (opts.sparse && opts.training) throw new RangeError('sparse forward is inference only (training: false)');
    const image = normalize(x, this.data.mean, this.data.std);
    const ctx = new ForwardContext(opts, image, x.shape[0]);
    ctx.flops = flops;
    if (opts.sparse && !flops && this.moeLayers.length > 0) ctx.sparseSets = new Map();
    const logits = this.body(image, ctx);
    return { logits, routing: ctx.routing };
  }

  /**
   * Routing of one MoE layer. In sparse inference the top-k is taken on the host (the host needs the choice
   * anyway to group the samples), and `compactIn` describes an input that holds only its producer's active
   * channels: the router then reads the matching rows of its weights.
   */
  private route(
    layer: number,
    input: tf.Tensor4D,
    ctx: ForwardContext,
    compactIn: { sets: number[][]; channels: number } | null = null,
  ): LayerRouting {
    const mode = ctx.opts.routing ?? { kind: 'router' };
    // Fixed or forced routing replaces the mask below; the router's own decision is only made when it is used.
    // The reference router's gradient goes straight through to its scores (the same top-1 as of the probabilities).
    const decide = (routerIndex: number, logits: tf.Tensor2D, straightToScores = false): LayerRouting => {
      if (mode.kind === 'router') {
        return routerDecision(logits, this.selectionBiases[routerIndex], this.topK, ctx.opts, { hostMask: ctx.sparseSets !== null, straightToScores });
      }
      const probs = tf.softmax(logits);
      return { logits, probs, mask: probs };
    };
    let decided: LayerRouting;
    if (this.imageRouter) {
      const router = this.imageRouter;
      ctx.shared ??= decide(0, withRouterNoise(router.apply(ctx.image, ctx), ctx.opts, 0), router.straightToScores);
      decided = ctx.shared;
    } else {
      const index = this.moeLayers[layer].router;
      const router = this.perLayerRouters[index];
      const norm = this.routerNorms[index];
      const pooled = globalAvgPool(input);
      let scores: tf.Tensor2D;
      if (norm) {
        // Normalised features have no zero to skip: a compact input is put back at full width first.
        const full = compactIn ? this.expandCompact(`router${layer}`, pooled, router.inFeatures, compactIn) : pooled;
        scores = linear(normalizeFeatures(full, norm, ctx.routerOpts), router);
      } else {
        scores = compactIn ? this.compactLinear(`router${layer}`, pooled, router, compactIn) : linear(pooled, router);
      }
      if (ctx.flops) ctx.flops.router += 2 * router.inFeatures * router.outFeatures + input.shape[1]! * input.shape[2]! * router.inFeatures;
      decided = decide(index, withRouterNoise(scores, ctx.opts, index));
    }
    let mask = decided.mask;
    if (mode.kind === 'fixed') mask = mode.masks[layer];
    else if (mode.kind === 'force') mask = forcedMask(ctx.batch, this.numExperts, mode.expert);
    const result = mask === decided.mask ? decided : { ...decided, mask };
    ctx.routing.push(result);
    return result;
  }

  /**
   * An MoE conv in sparse inference. Samples are grouped by (input expert set, output expert set); each group
   * runs one conv with the pre-sliced weights of its active input rows and output columns, and the groups are
   * put back in batch order. The output is compact (active channels only, see `ForwardContext.sparseSets`)
   * when a sparse-aware MoE unit consumes it, else dense with the inactive channels zero.
   */
  private sparseMoe(u: MoeUnitSpec, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    const sets = ctx.sparseSets!;
    const n = this.numExperts;
    const c = u.expertChannels;
    const compactIn =
      u.producer !== null && x.shape[3] !== u.w.inChannels
        ? { sets: sets.get(u.producer)!, channels: this.moeLayers[u.producer].expertChannels }
        : null;
    if (x.shape[3] !== u.w.inChannels && !compactIn) throw new Error(`${u.name}: unexpected compact input`);
    const routing = this.route(u.layer, x, ctx, compactIn);
    const outSets = expertSets(routing.mask, u.name);
    // Compact hand-over needs one width for every sample (fixed/forced masks may select other than k experts).
    const compactOut = this.compactOut.has(u.layer) && outSets.every((s) => s.length === outSets[0].length && s.length > 0);
    const groups = groupBy(ctx.batch, (b) => `${compactIn ? compactIn.sets[b].join(',') : '*'}/${outSets[b].join(',')}`);
    const outs: tf.Tensor4D[] = [];
    const rows = groups.length > 1 ? new RowGather(x) : null;
    for (const g of groups) {
      const b0 = g.indices[0];
      const inSet = compactIn ? compactIn.sets[b0] : null;
      const outSet = outSets[b0];
      const [kernel, scale, shift] = outSet.length === 0 ? [] : this.sliced(`${u.name}|${g.key}`, u.bn ? [u.w.kernel, u.bn.gamma, u.bn.beta, u.bn.movingMean, u.bn.movingVar] : [u.w.kernel], () => {
        let k: tf.Tensor = blocks(u.w.kernel, 3, outSet, c);
        if (inSet) k = blocks(k, 2, inSet, compactIn!.channels);
        if (!u.bn) return [k];
        const { scale: sc, shift: sh } = inferenceAffine(u.bn);
        return [k, blocks(sc, 0, outSet, c), blocks(sh, 0, outSet, c)];
      });
      if (outSet.length === 0) {
        const [, h, w] = x.shape;
        outs.push(tf.zeros([g.indices.length, Math.ceil(h / u.stride), Math.ceil(w / u.stride), n * c]));
        continue;
      }
      const xg = rows ? rows.take(g.indices) : x;
      let y = conv2dPadded(xg, kernel as tf.Tensor4D, u.stride, this.padding);
      if (scale) y = tf.add(tf.mul(y, scale), shift!);
      if (!compactOut) y = expandBlocks(y, outSet, c, n);
      outs.push(y);
    }
    if (compactOut) sets.set(u.layer, outSets);
    return ungroup(outs, groups);
  }

  /**
   * A gathered MoE conv in sparse inference: samples grouped by their expert; each group's conv computes only that
   * expert's c output channels (a fixed mask with several ones sums their blocks, as the dense form does), then the
   * layer's BN, which is shared by every expert, on all c channels.
   */
  private sparseGathered(u: MoeUnitSpec, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    const c = u.expertChannels;
    const routing = this.route(u.layer, x, ctx);
    const outSets = expertSets(routing.mask, u.name);
    const groups = groupBy(ctx.batch, (b) => outSets[b].join(','));
    const rows = groups.length > 1 ? new RowGather(x) : null;
    const outs = groups.map((g) => {
      const set = outSets[g.indices[0]];
      const xg = rows ? rows.take(g.indices) : x;
      if (set.length === 0) {
        const [, h, w] = x.shape;
        return tf.zeros([g.indices.length, Math.ceil(h / u.stride), Math.ceil(w / u.stride), c]) as tf.Tensor4D;
      }
      const [kernel] = this.sliced(`${u.name}|${g.key}`, [u.w.kernel], () => [blocks(u.w.kernel, 3, set, c)]);
      const y = conv2dPadded(xg, kernel as tf.Tensor4D, u.stride, this.padding);
      if (set.length === 1) return y;
      const [gb, h, w] = y.shape;
      return tf.sum(tf.reshape(y, [gb, h, w, set.length, c]), 3) as tf.Tensor4D;
    });
    const y = ungroup(outs, groups);
    if (!u.bn) return y;
    const { scale, shift } = inferenceAffine(u.bn);
    return tf.add(tf.mul(y, scale), shift) as tf.Tensor4D;
  }

  /** `linear` on a compact input: per group of equal input sets, the matching rows of the weights. */
  private compactLinear(key: string, x: tf.Tensor2D, w: LinearWeights, compactIn: { sets: number[][]; channels: number }): tf.Tensor2D {
    const groups = groupBy(x.shape[0], (b) => compactIn.sets[b].join(','));
    const outs = groups.map((g) => {
      const [rows] = this.sliced(`${key}|${g.key}`, [w.kernel], () => [blocks(w.kernel, 0, compactIn.sets[g.indices[0]], compactIn.channels)]);
      const xg = groups.length === 1 ? x : new RowGather(x).take(g.indices);
      return tf.add(tf.matMul(xg, rows as tf.Tensor2D), w.bias) as tf.Tensor2D;
    });
    return ungroup(outs, groups);
  }

  /** A compact [B, k·c] feature row put back at its experts' places in a [B, width] row (zeros elsewhere). */
  private expandCompact(key: string, x: tf.Tensor2D, width: number, compactIn: { sets: number[][]; channels: number }): tf.Tensor2D {
    const groups = groupBy(x.shape[0], (b) => compactIn.sets[b].join(','));
    const outs = groups.map((g) => {
      const set = compactIn.sets[g.indices[0]];
      const [expand] = this.sliced(`${key}|expand|${g.key}`, [], () => [placementMatrix(set, compactIn.channels, width)]);
      const xg = groups.length === 1 ? x : new RowGather(x).take(g.indices);
      return tf.matMul(xg, expand as tf.Tensor2D) as tf.Tensor2D;
    });
    return ungroup(outs, groups);
  }

  /** Weight slices made by `make` from `sources`, cached until one of the sources is assigned new data. */
  private sliced(key: string, sources: tf.Variable[], make: () => tf.Tensor[]): tf.Tensor[] {
    const ids = sources.map((v) => v.dataId);
    const hit = this.sliceCache.get(key);
    if (hit && hit.ids.length === ids.length && hit.ids.every((id, i) => id === ids[i])) return hit.tensors;
    hit?.tensors.forEach((t) => t.dispose());
    const tensors = tf.tidy(() => make().map((t) => tf.keep(t.clone())));
    this.sliceCache.set(key, { ids, tensors });
    return tensors;
  }

  /** Live fraction of a unit's input channels: k/N straight after a `blocks` MoE unit, else 1 (a gathered unit's
   * output is all live). */
  private liveInput(inputFrom: ConvUnit | undefined): number {
    return inputFrom && inputFrom.moeIndex !== null && this.config.moe.layout !== 'gathered' ? this.topK / this.numExperts : 1;
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
    for (const e of this.sliceCache.values()) e.tensors.forEach((t) => t.dispose());
    this.sliceCache.clear();
    for (const p of this.params) releaseInferenceCache(p.variable);
  }
}

interface Group {
  key: string;
  indices: number[];
}

/** Samples 0..batch−1 grouped by key, in order of first appearance. */
function groupBy(batch: number, keyOf: (b: number) => string): Group[] {
  const map = new Map<string, Group>();
  for (let b = 0; b < batch; b++) {
    const key = keyOf(b);
    let g = map.get(key);
    if (!g) map.set(key, (g = { key, indices: [] }));
    g.indices.push(b);
  }
  return [...map.values()];
}

/**
 * Rows (samples) of a tensor gathered on the host. tfjs-backend-wasm's GatherV2 on a 4-D tensor took ~5× the time
 * of the convolutions it fed (measured with tf.profile at batch 64), while copying whole rows of a typed array
 * is a memcpy. Sparse inference is inference only, so leaving the backend costs no gradient.
 */
class RowGather {
  private values: Float32Array | null = null;
  constructor(private readonly x: tf.Tensor) {}

  take(indices: number[]): tf.Tensor4D & tf.Tensor2D {
    const v = (this.values ??= this.x.dataSync() as Float32Array);
    const row = this.x.size / this.x.shape[0];
    const out = new Float32Array(indices.length * row);
    indices.forEach((b, i) => out.set(v.subarray(b * row, (b + 1) * row), i * row));
    return tf.tensor(out, [indices.length, ...this.x.shape.slice(1)]) as unknown as tf.Tensor4D & tf.Tensor2D;
  }
}

/** Puts per-group results (rows in group order) back in batch order (host copy, see RowGather). */
function ungroup<T extends tf.Tensor>(outs: T[], groups: Group[]): T {
  if (groups.length === 1) return outs[0];
  const [first] = outs;
  const row = first.size / first.shape[0];
  const batch = groups.reduce((n, g) => n + g.indices.length, 0);
  const out = new Float32Array(batch * row);
  outs.forEach((t, gi) => {
    const v = t.dataSync() as Float32Array;
    groups[gi].indices.forEach((b, i) => out.set(v.subarray(i * row, (i + 1) * row), b * row));
  });
  return tf.tensor(out, [batch, ...first.shape.slice(1)]) as T;
}

/** The channel blocks `set` (each `c` wide, in set order) of `t` along `axis`. */
/** [set.length·c, width] 0/1 matrix moving the channels of experts `set` (c each, in order) to their places. */
function placementMatrix(set: number[], c: number, width: number): tf.Tensor2D {
  const data = new Float32Array(set.length * c * width);
  set.forEach((e, j) => {
    for (let i = 0; i < c; i++) data[(j * c + i) * width + e * c + i] = 1;
  });
  return tf.tensor2d(data, [set.length * c, width]);
}

/** Each sample's chosen experts, read from a 0/1 routing mask [B, N] (sparse inference groups samples by them). */
function expertSets(mask: tf.Tensor2D, layerName: string): number[][] {
  const [batch, n] = mask.shape;
  const values = mask.dataSync();
  const sets: number[][] = [];
  for (let b = 0; b < batch; b++) {
    const set: number[] = [];
    for (let e = 0; e < n; e++) {
      const m = values[b * n + e];
      if (m === 1) set.push(e);
      else if (m !== 0) throw new RangeError(`sparse forward needs 0/1 routing masks; ${layerName} got ${m}`);
    }
    sets.push(set);
  }
  return sets;
}

/**
 * A router's pooled input features [B, C], batch-normalised (`model.moe.routerNorm`). Pooled post-ReLU features
 * share a large positive mean, so a linear router on them gives (nearly) every input the same decision from the
 * first step on — collapsed before training starts (README "Routing that does not collapse"). Centring and
 * scaling each feature makes the scores depend on how inputs differ.
 */
function normalizeFeatures(x: tf.Tensor2D, bn: BatchNormWeights, opts: ForwardOptions): tf.Tensor2D {
  const [b, c] = x.shape;
  return tf.reshape(batchNorm(tf.reshape(x, [b, 1, 1, c]) as tf.Tensor4D, bn, opts), [b, c]) as tf.Tensor2D;
}

function blocks(t: tf.Tensor, axis: number, set: number[], c: number): tf.Tensor {
  const parts: tf.Tensor[] = [];
  let i = 0;
  while (i < set.length) {
    let j = i;
    while (j + 1 < set.length && set[j + 1] === set[j] + 1) j++; // contiguous run set[i..j]
    const begin = t.shape.map(() => 0);
    const size = [...t.shape];
    begin[axis] = set[i] * c;
    size[axis] = (j - i + 1) * c;
    parts.push(tf.slice(t, begin, size));
    i = j + 1;
  }
  return parts.length === 1 ? parts[0] : tf.concat(parts, axis);
}

/** A compact [B, H, W, |set|·c] tensor laid out as the dense [B, H, W, n·c] one, inactive channels zero. */
function expandBlocks(y: tf.Tensor4D, set: number[], c: number, n: number): tf.Tensor4D {
  if (set.length === n) return y;
  const contiguous = set.every((e, i) => i === 0 || e === set[i - 1] + 1);
  if (contiguous) return tf.pad(y, [[0, 0], [0, 0], [0, 0], [set[0] * c, (n - 1 - set[set.length - 1]) * c]]);
  const [b, h, w] = y.shape;
  const parts: tf.Tensor4D[] = [];
  for (let e = 0, j = 0; e < n; e++) {
    if (set[j] === e) parts.push(tf.slice(y, [0, 0, 0, j++ * c], [b, h, w, c]));
    else parts.push(tf.zeros([b, h, w, c]));
  }
  return tf.concat(parts, 3);
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

/** An image-level router: its scores [B, N] on the (normalised) image decide every MoE layer. */
interface ImageRouter {
  /** The mask's straight-through gradient goes to the scores (reference) rather than to the softmax probabilities. */
  readonly straightToScores: boolean;
  apply(image: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D;
}

/** `shared` routing: a small CNN (two convs) on the image whose choice every MoE layer uses. */
class SharedRouter implements ImageRouter {
  readonly straightToScores = false;
  private readonly c1: ConvWeights;
  private readonly b1: BatchNormWeights;
  private readonly c2: ConvWeights;
  private readonly b2: BatchNormWeights;
  private readonly fc: LinearWeights;

  private readonly norm: BatchNormWeights | null;

  constructor(f: ParamFactory, inChannels: number, experts: number, normalise: boolean, private readonly padding: ConvPadding) {
    this.c1 = f.conv('router.conv1', inChannels, 16, 3, 'router');
    this.b1 = f.batchNorm('router.conv1.bn', 16, 'router');
    this.c2 = f.conv('router.conv2', 16, 32, 3, 'router');
    this.b2 = f.batchNorm('router.conv2.bn', 32, 'router');
    this.norm = normalise ? f.batchNorm('router.norm', 32, 'router') : null;
    this.fc = f.linear('router.fc', 32, experts, 'router');
  }

  apply(image: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
    const h1 = relu(batchNorm(conv(image, this.c1, 1, this.padding), this.b1, ctx.routerOpts));
    const h2 = relu(batchNorm(conv(h1, this.c2, 2, this.padding), this.b2, ctx.routerOpts));
    if (ctx.flops) {
      const hw = image.shape[1] * image.shape[2];
      ctx.flops.router += 2 * (hw * 9 * this.c1.inChannels * 16 + (hw / 4) * 9 * 16 * 32 + 32 * this.fc.outFeatures);
    }
    const pooled = globalAvgPool(h2);
    return linear(this.norm ? normalizeFeatures(pooled, this.norm, ctx.routerOpts) : pooled, this.fc);
  }
}

interface RouterBlock {
  conv1: ConvWeights;
  bn1: BatchNormWeights;
  conv2: ConvWeights;
  bn2: BatchNormWeights;
  stride: 1 | 2;
  /** Option-A shortcut: channels added by zero padding (before, after); null for the identity. */
  padChannels: [number, number] | null;
}

/**
 * `reference` routing: the reference code's image-level router, a ResNet-20-like CNN — 3×3 conv to 16 channels,
 * three stages of three basic blocks (16, 32, 64 channels; stride 2 at the start of stages 2 and 3), option-A
 * shortcuts (the input subsampled by 2 with zero channels padded on both sides), global average pool, linear to N.
 * Parameter names follow the reference's module names (`router.layer2.0.conv1`, `router.bn1`, `router.fc`).
 */
class ReferenceRouter implements ImageRouter {
  readonly straightToScores = true;
  private readonly conv1: ConvWeights;
  private readonly bn1: BatchNormWeights;
  private readonly blocks: RouterBlock[] = [];
  private readonly fc: LinearWeights;

  constructor(f: ParamFactory, inChannels: number, experts: number, private readonly padding: ConvPadding) {
    this.conv1 = f.conv('router.conv1', inChannels, 16, 3, 'router');
    this.bn1 = f.batchNorm('router.bn1', 16, 'router');
    let planesIn = 16;
    [16, 32, 64].forEach((planes, stage) => {
      for (let b = 0; b < 3; b++) {
        const stride: 1 | 2 = stage > 0 && b === 0 ? 2 : 1;
        const name = `router.layer${stage + 1}.${b}`;
        const diff = planes - planesIn;
        this.blocks.push({
          conv1: f.conv(`${name}.conv1`, planesIn, planes, 3, 'router'),
          bn1: f.batchNorm(`${name}.bn1`, planes, 'router'),
          conv2: f.conv(`${name}.conv2`, planes, planes, 3, 'router'),
          bn2: f.batchNorm(`${name}.bn2`, planes, 'router'),
          stride,
          padChannels: stride !== 1 || diff !== 0 ? [Math.floor(diff / 2), Math.floor((diff + 1) / 2)] : null,
        });
        planesIn = planes;
      }
    });
    this.fc = f.linear('router.fc', 64, experts, 'router');
  }

  apply(image: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
    const unit = (x: tf.Tensor4D, w: ConvWeights, bn: BatchNormWeights, stride: 1 | 2): tf.Tensor4D => {
      const y = conv(x, w, stride, this.padding);
      if (ctx.flops) ctx.flops.router += 2 * y.shape[1] * y.shape[2] * w.size * w.size * w.inChannels * w.outChannels;
      return batchNorm(y, bn, ctx.routerOpts);
    };
    let h = relu(unit(image, this.conv1, this.bn1, 1));
    for (const b of this.blocks) {
      const out = unit(relu(unit(h, b.conv1, b.bn1, b.stride)), b.conv2, b.bn2, 1);
      h = relu(tf.add(out, b.padChannels ? optionAShortcut(h, b.padChannels) : h) as tf.Tensor4D);
    }
    if (ctx.flops) ctx.flops.router += 2 * this.fc.inFeatures * this.fc.outFeatures;
    return linear(globalAvgPool(h), this.fc);
  }
}

/** x[:, ::2, ::2, :] with zero channels padded before and after. The subsampling is a 1×1 stride-2 average pool
 * (tfjs has no StridedSlice gradient; this pool's gradient kernels exist on every backend). */
function optionAShortcut(x: tf.Tensor4D, [before, after]: [number, number]): tf.Tensor4D {
  const sub = tf.avgPool(x, 1, 2, 'valid') as tf.Tensor4D;
  return tf.pad(sub, [[0, 0], [0, 0], [0, 0], [before, after]]);
}
