/**
 * Test fixtures for the training step: a tiny MoE MLP that fulfils the Model contract (fast enough on
 * the cpu backend for hundreds of steps — the ResNet presets take seconds per step there), a small PGD
 * adversary, and config helpers. Tests that need the real routing code also run the tiny ResNet.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MethodConfig, ModelConfig } from '../../../engine/config/types';
import { expertToChannelMatrix, routerDecision, withRouterNoise } from '../../../engine/models/routing';
import type { FlopsReport, ForwardOptions, ForwardResult, LayerRouting, MoeLayerInfo, Model, Param, ParamGroup } from '../../../engine/models/types';
import type { AdversaryFn, AdversaryLoss } from '../../../engine/training/methods';
import { Rng } from '../../../engine/util/rng';

/**
 * flatten → dense hidden (+ a running mean of it, standing in for BN statistics) → MoE layer of N experts
 * (per-layer router on the hidden features; hard top-k mask with straight-through gradient) → linear head.
 */
export class TinyMoe implements Model {
  readonly config: ModelConfig;
  readonly inputShape: [number, number, number];
  readonly numClasses: number;
  readonly numExperts: number;
  readonly topK: number;
  readonly moeLayers: MoeLayerInfo[];
  readonly params: Param[] = [];
  private readonly v: Record<string, tf.Variable> = {};
  private readonly expand: tf.Tensor2D | null;

  constructor(opts: { experts?: number; topK?: number; hidden?: number; expertWidth?: number; classes?: number; side?: number; seed?: number } = {}) {
    const experts = opts.experts ?? 2;
    const moe = experts > 1;
    const hidden = opts.hidden ?? 16;
    const width = opts.expertWidth ?? 8;
    const side = opts.side ?? 4;
    this.numClasses = opts.classes ?? 4;
    this.inputShape = [side, side, 1];
    this.numExperts = moe ? experts : 1;
    this.topK = moe ? (opts.topK ?? 1) : 1;
    this.config = {
      backbone: 'resnet18',
      preset: 'tiny',
      widthMultiplier: 1,
      moe: { enabled: moe, experts: this.numExperts, topK: this.topK, expertWidth: 0.5, router: 'per-layer', routerNorm: true, layers: 'all-blocks' },
    };
    const rng = new Rng(opts.seed ?? 1);
    const inF = side * side;
    const outF = this.numExperts * width;
    const add = (name: string, init: tf.Tensor, group: ParamGroup, trainable = true, decay = true) => {
      const variable = tf.variable(init, trainable);
      init.dispose();
      this.v[name] = variable;
      this.params.push({ name, variable, group, trainable, decay });
    };
    add('w1', tf.randomNormal([inF, hidden], 0, Math.sqrt(2 / inF), 'float32', rng.seed()), 'expert');
    add('b1', tf.zeros([hidden]), 'expert', true, false);
    add('runMean', tf.zeros([hidden]), 'expert', false, false);
    if (moe) add('router.w', tf.randomNormal([hidden, experts], 0, 1, 'float32', rng.seed()), 'router');
    if (moe) add('router.b', tf.zeros([experts]), 'router', true, false);
    if (moe) add('router.selectionBias', tf.zeros([experts]), 'router', false, false);
    add('w2', tf.randomNormal([hidden, outF], 0, Math.sqrt(2 / hidden), 'float32', rng.seed()), 'expert');
    add('w3', tf.randomNormal([outF, this.numClasses], 0, Math.sqrt(1 / outF), 'float32', rng.seed()), 'expert');
    add('b3', tf.zeros([this.numClasses]), 'expert', true, false);
    this.moeLayers = moe ? [{ name: 'moe', router: 0, outChannels: outF, expertChannels: width }] : [];
    this.expand = moe ? tf.keep(expertToChannelMatrix(experts, width)) : null;
  }

  forward(x: tf.Tensor4D, opts: ForwardOptions): ForwardResult {
    const flat = tf.reshape(x, [x.shape[0], -1]) as tf.Tensor2D;
    const h = tf.relu(tf.add(tf.matMul(flat, this.v.w1), this.v.b1)) as tf.Tensor2D;
    if (opts.training && opts.updateBnStats) {
      tf.tidy(() => this.v.runMean.assign(tf.add(tf.mul(this.v.runMean, 0.9), tf.mul(tf.mean(h, 0), 0.1))));
    }
    let e = tf.relu(tf.matMul(h, this.v.w2)) as tf.Tensor2D;
    const routing: LayerRouting[] = [];
    if (this.expand) {
      const logits = withRouterNoise(tf.add(tf.matMul(h, this.v['router.w']), this.v['router.b']) as tf.Tensor2D, opts, 0);
      const probs = tf.softmax(logits);
      const r = opts.routing ?? { kind: 'router' };
      const mask =
        r.kind === 'fixed'
          ? r.masks[0]
          : r.kind === 'force'
            ? (tf.cast(tf.oneHot(tf.fill([x.shape[0]], r.expert, 'int32') as tf.Tensor1D, this.numExperts), 'float32') as tf.Tensor2D)
            : routerDecision(logits, this.v['router.selectionBias'], this.topK, opts).mask;
      routing.push({ logits, probs, mask });
      e = tf.mul(e, tf.matMul(mask, this.expand)) as tf.Tensor2D;
    }
    return { logits: tf.add(tf.matMul(e, this.v.w3), this.v.b3) as tf.Tensor2D, routing };
  }

  trainableVariables(group?: ParamGroup): tf.Variable[] {
    return this.params.filter((p) => p.trainable && (group === undefined || p.group === group)).map((p) => p.variable);
  }

  flops(): FlopsReport {
    return { dense: 0, active: 0, router: 0 };
  }

  dispose(): void {
    for (const p of this.params) p.variable.dispose();
    this.expand?.dispose();
  }
}

/** A small L∞ PGD (random start, batch-stat BN, running stats untouched) for the step tests. */
export function testAdversary(model: Model, opts: { eps?: number; steps?: number; seed?: number } = {}): AdversaryFn & { calls: number } {
  const eps = opts.eps ?? 0.1;
  const steps = opts.steps ?? 2;
  const alpha = (2.5 * eps) / steps;
  let seed = opts.seed ?? 7;
  const fwd: ForwardOptions = { training: true, updateBnStats: false };
  const fn = async (x: tf.Tensor4D, y: tf.Tensor1D, loss: AdversaryLoss): Promise<tf.Tensor4D> => {
    fn.calls++;
    return tf.tidy(() => {
      const cleanLogP = loss !== 'ce' ? tf.logSoftmax(model.forward(x, fwd).logits) : null;
      const objective = (xa: tf.Tensor): tf.Scalar => {
        const logits = model.forward(xa as tf.Tensor4D, fwd).logits;
        if (cleanLogP) return tf.sum(tf.mul(tf.exp(cleanLogP), tf.sub(cleanLogP, tf.logSoftmax(logits))));
        return tf.sum(tf.neg(tf.mul(tf.cast(tf.oneHot(tf.cast(y, 'int32'), logits.shape[1]), 'float32'), tf.logSoftmax(logits))));
      };
      let xa = tf.clipByValue(tf.add(x, tf.randomUniform(x.shape, -eps, eps, 'float32', seed++)), 0, 1) as tf.Tensor4D;
      const grad = tf.grad(objective);
      for (let i = 0; i < steps; i++) {
        const g = grad(xa);
        const stepped = tf.add(xa, tf.mul(tf.sign(g), alpha));
        xa = tf.clipByValue(tf.minimum(tf.maximum(stepped, tf.sub(x, eps)), tf.add(x, eps)), 0, 1) as tf.Tensor4D;
      }
      return xa;
    });
  };
  fn.calls = 0;
  return fn;
}

export function methodConfig(kind: MethodConfig['kind'], over: Partial<MethodConfig> = {}): MethodConfig {
  return {
    kind,
    tradesBeta: 6,
    advmoe: { period: 1, order: 'router-first', routerLrScale: 1, loss: 'ce' },
    officialRouterAlpha: 6,
    routing: { classTarget: 0, balance: 0, entropy: 0, noise: 0, balanceBias: 0, balanceBiasOn: 'update-passes', tieExpertsEpochs: 0, freezeRoutersAfterEpochs: 0, straightThrough: 'every-pass' },
    attack: { norm: 'linf', eps: 0.1, stepSize: 0.05, steps: 2, randomStart: true, restarts: 1 },
    epsWarmupEpochs: 0,
    ...over,
  };
}

/**
 * A learnable synthetic task for TinyMoe: class c lights up quadrant c of a side×side image (plus noise).
 */
export function quadrantBatch(n: number, side: number, seed: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const rng = new Rng(seed);
  const data = new Float32Array(n * side * side);
  const labels = new Int32Array(n);
  const half = side / 2;
  for (let i = 0; i < n; i++) {
    const c = rng.int(4);
    labels[i] = c;
    for (let r = 0; r < side; r++) {
      for (let q = 0; q < side; q++) {
        const quadrant = (r >= half ? 2 : 0) + (q >= half ? 1 : 0);
        data[i * side * side + r * side + q] = Math.min(1, Math.max(0, (quadrant === c ? 0.7 : 0.2) + 0.3 * (rng.next() - 0.5)));
      }
    }
  }
  return { x: tf.tensor4d(data, [n, side, side, 1]), y: tf.tensor1d(labels, 'int32') };
}

/** Values of every variable, by param name (copies, for before/after comparisons). */
export function paramValues(model: Model): Map<string, Float32Array> {
  return new Map(model.params.map((p) => [p.name, Float32Array.from(p.variable.dataSync() as Float32Array)]));
}

/** Names of params whose values differ between two snapshots. */
export function changed(a: Map<string, Float32Array>, b: Map<string, Float32Array>): string[] {
  const out: string[] = [];
  for (const [name, va] of a) {
    const vb = b.get(name)!;
    if (va.some((v, i) => !Object.is(v, vb[i]))) out.push(name);
  }
  return out;
}
