/**
 * Small models and data for attack/analysis tests. They implement the full `Model` contract with plain
 * matMuls, so that the cpu backend trains them in well under a second: the real ResNet needs ~1 s per
 * training step on cpu, too slow to train to a useful accuracy inside a unit test.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../../../engine/util/registerGradients';
import type { ModelConfig } from '../../../engine/config/types';
import { forcedMask, straightThroughTopK, expertToChannelMatrix } from '../../../engine/models/routing';
import type { FlopsReport, ForwardOptions, ForwardResult, LayerRouting, MoeLayerInfo, Model, Param } from '../../../engine/models/types';
import { Rng } from '../../../engine/util/rng';

const CONFIG: ModelConfig = {
  backbone: 'resnet18',
  preset: 'tiny',
  widthMultiplier: 1,
  moe: { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, router: 'per-layer', routerNorm: true, layers: 'all-blocks' },
};

function param(name: string, t: tf.Tensor, group: 'router' | 'expert' = 'expert'): Param {
  return { name, variable: tf.variable(t), group, trainable: true, decay: false };
}

abstract class FixtureModel implements Model {
  abstract readonly config: ModelConfig;
  abstract readonly numExperts: number;
  abstract readonly topK: number;
  abstract readonly moeLayers: readonly MoeLayerInfo[];
  readonly params: Param[] = [];
  constructor(
    readonly inputShape: [number, number, number],
    readonly numClasses: number,
  ) {}
  abstract forward(x: tf.Tensor4D, opts: ForwardOptions): ForwardResult;
  abstract flops(): FlopsReport;
  protected get inFeatures(): number {
    return this.inputShape[0] * this.inputShape[1] * this.inputShape[2];
  }
  trainableVariables(group?: 'router' | 'expert'): tf.Variable[] {
    return this.params.filter((p) => group === undefined || p.group === group).map((p) => p.variable);
  }
  dispose(): void {
    for (const p of this.params) p.variable.dispose();
  }
}

/** Dense linear classifier: logits = flatten(x)·W + b. For two classes the worst case in an L∞ (or L2)
 * ball is known in closed form, which is what the attack tests compare against. */
export class LinearModel extends FixtureModel {
  readonly config: ModelConfig = { ...CONFIG, moe: { ...CONFIG.moe, enabled: false } };
  readonly numExperts = 1;
  readonly topK = 1;
  readonly moeLayers: MoeLayerInfo[] = [];
  readonly w: tf.Variable;
  readonly b: tf.Variable;
  constructor(inputShape: [number, number, number], w: Float32Array, b: Float32Array) {
    super(inputShape, b.length);
    this.params.push(param('w', tf.tensor2d(w, [this.inFeatures, b.length])), param('b', tf.tensor1d(b)));
    this.w = this.params[0].variable;
    this.b = this.params[1].variable;
  }
  forward(x: tf.Tensor4D): ForwardResult {
    return tf.tidy(() => ({
      logits: tf.add(tf.matMul(tf.reshape(x, [x.shape[0], -1]), this.w as tf.Tensor2D), this.b) as tf.Tensor2D,
      routing: [],
    }));
  }
  flops(): FlopsReport {
    const f = 2 * this.inFeatures * this.numClasses;
    return { dense: f, active: f, router: 0 };
  }
}

/**
 * MLP with two MoE layers (N experts of `c` units each, top-k), per-layer routers (router 1 on the input,
 * router 2 on layer 1's output), straight-through top-k as the real models. Routing modes follow the
 * Model contract: router / fixed masks / forced expert.
 */
export class ToyMoe extends FixtureModel {
  readonly config: ModelConfig;
  readonly moeLayers: MoeLayerInfo[];
  private readonly expand: tf.Tensor2D;
  private readonly v: Record<string, tf.Variable> = {};

  constructor(
    inputShape: [number, number, number],
    numClasses: number,
    readonly numExperts: number,
    readonly topK: number,
    private readonly c: number,
    seed: number,
  ) {
    super(inputShape, numClasses);
    this.config = { ...CONFIG, moe: { ...CONFIG.moe, experts: numExperts, topK } };
    const rng = new Rng(seed);
    const D = this.inFeatures;
    const H = numExperts * c;
    const init = (name: string, shape: number[], fanIn: number, group: 'router' | 'expert' = 'expert') => {
      const p = param(name, tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn), 'float32', rng.seed()), group);
      this.params.push(p);
      this.v[name] = p.variable;
    };
    init('r1', [D, numExperts], D, 'router');
    init('r2', [H, numExperts], H, 'router');
    init('w1', [D, H], D);
    init('w2', [H, H], H);
    init('w3', [H, numClasses], H);
    this.params.push(param('b3', tf.zeros([numClasses])));
    this.v.b3 = this.params[this.params.length - 1].variable;
    this.moeLayers = [
      { name: 'moe1', router: 0, outChannels: H, expertChannels: c },
      { name: 'moe2', router: 1, outChannels: H, expertChannels: c },
    ];
    this.expand = tf.keep(expertToChannelMatrix(numExperts, c));
  }

  forward(x: tf.Tensor4D, opts: ForwardOptions): ForwardResult {
    const mode = opts.routing ?? { kind: 'router' };
    const B = x.shape[0];
    const routing: LayerRouting[] = [];
    const route = (l: number, input: tf.Tensor2D, r: tf.Variable): tf.Tensor2D => {
      const logits = tf.matMul(input, r as tf.Tensor2D) as tf.Tensor2D;
      const probs = tf.softmax(logits) as tf.Tensor2D;
      let mask: tf.Tensor2D;
      if (mode.kind === 'fixed') mask = mode.masks[l];
      else if (mode.kind === 'force') mask = forcedMask(B, this.numExperts, mode.expert);
      else mask = straightThroughTopK(probs, this.topK);
      routing.push({ logits, probs, mask });
      return tf.matMul(mask, this.expand) as tf.Tensor2D;
    };
    const flat = tf.reshape(x, [B, -1]) as tf.Tensor2D;
    const h1 = tf.mul(tf.relu(tf.matMul(flat, this.v.w1 as tf.Tensor2D)), route(0, flat, this.v.r1)) as tf.Tensor2D;
    const h2 = tf.mul(tf.relu(tf.matMul(h1, this.v.w2 as tf.Tensor2D)), route(1, h1, this.v.r2)) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(h2, this.v.w3 as tf.Tensor2D), this.v.b3) as tf.Tensor2D;
    return { logits, routing };
  }

  flops(): FlopsReport {
    const D = this.inFeatures;
    const H = this.numExperts * this.c;
    const f = this.topK / this.numExperts;
    const router = 2 * (D * this.numExperts + H * this.numExperts);
    return { dense: 2 * (D * H + H * H + H * this.numClasses), active: 2 * (D * H * f + H * H * f * f + H * f * this.numClasses) + router, router };
  }

  override dispose(): void {
    super.dispose();
    this.expand.dispose();
  }
}

export interface Dataset {
  x: Float32Array;
  y: Int32Array;
  n: number;
  shape: [number, number, number];
}

/** Noisy class templates: class c = clip(template_c + N(0, noise)) with templates uniform in [0.2, 0.8]. */
export function synthetic(n: number, classes: number, shape: [number, number, number], seed: number, noise = 0.12): Dataset {
  const rng = new Rng(seed);
  const d = shape[0] * shape[1] * shape[2];
  const templates = Array.from({ length: classes }, () => Float32Array.from({ length: d }, () => 0.2 + 0.6 * rng.next()));
  const x = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % classes;
    for (let j = 0; j < d; j++) {
      // Box–Muller normal noise from the seeded stream.
      const g = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
      x[i * d + j] = Math.min(1, Math.max(0, templates[y[i]][j] + noise * g));
    }
  }
  return { x, y, n, shape };
}

export function tensors(data: Dataset, from = 0, to = data.n): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const d = data.shape[0] * data.shape[1] * data.shape[2];
  return {
    x: tf.tensor4d(data.x.subarray(from * d, to * d), [to - from, ...data.shape]),
    y: tf.tensor1d(data.y.subarray(from, to), 'int32'),
  };
}

/** Full-batch SGD on the clean CE: a few hundred steps take well under a second for the fixtures. */
export function train(model: Model, data: Dataset, steps: number, lr = 0.3, group?: 'router' | 'expert'): void {
  const { x, y } = tensors(data);
  const target = tf.cast(tf.oneHot(y, model.numClasses), 'float32');
  const opt = tf.train.momentum(lr, 0.9);
  for (let s = 0; s < steps; s++) {
    tf.tidy(() => {
      opt.minimize(() => tf.losses.softmaxCrossEntropy(target, model.forward(x, { training: true }).logits) as tf.Scalar, false, model.trainableVariables(group));
    });
  }
  opt.dispose();
  tf.dispose([x, y, target]);
}

export function accuracy(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, opts: ForwardOptions = { training: false }): number {
  return tf.tidy(() => {
    const pred = tf.argMax(model.forward(x, opts).logits, 1);
    return tf.mean(tf.cast(tf.equal(pred, y), 'float32')).dataSync()[0];
  });
}

/** Per-sample CE loss at x under the given forward options. */
export function ceLosses(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, opts: ForwardOptions = { training: false }): Float32Array {
  return tf.tidy(() => {
    const logits = model.forward(x, opts).logits;
    const t = tf.cast(tf.oneHot(y, model.numClasses), 'float32');
    return tf.neg(tf.sum(tf.mul(t, tf.logSoftmax(logits)), 1)).dataSync() as Float32Array;
  });
}

/** Per-sample L∞ and L2 norms of a − b. */
export function norms(a: tf.Tensor4D, b: tf.Tensor4D): { linf: number[]; l2: number[] } {
  const av = a.dataSync();
  const bv = b.dataSync();
  const B = a.shape[0];
  const d = av.length / B;
  const linf: number[] = [];
  const l2: number[] = [];
  for (let i = 0; i < B; i++) {
    let m = 0;
    let s = 0;
    for (let j = 0; j < d; j++) {
      const v = av[i * d + j] - bv[i * d + j];
      m = Math.max(m, Math.abs(v));
      s += v * v;
    }
    linf.push(m);
    l2.push(Math.sqrt(s));
  }
  return { linf, l2 };
}

export function minMax(t: tf.Tensor): [number, number] {
  const v = t.dataSync();
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of v) {
    lo = Math.min(lo, a);
    hi = Math.max(hi, a);
  }
  return [lo, hi];
}

/** Hard routing masks per layer as arrays of expert-index lists (one per sample). */
export function experts(masks: tf.Tensor2D[]): number[][][] {
  return masks.map((m) => {
    const v = m.arraySync();
    return v.map((row) => row.flatMap((e, i) => (e > 0.5 ? [i] : [])));
  });
}
