/**
 * The reference code's network options: PyTorch padding (`model.padding: symmetric`), the gathered MoE layout and
 * the reference router. Each is checked against an independent form: padding against a convolution written out in
 * loops; a gathered MoE under one expert against the dense backbone holding that expert's kernels; sparse inference
 * against the masked dense forward; FLOPs against the dense model of the gathered widths; the router's gradient
 * against the straight-through definition measured through fixed routing.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { BackboneName, ModelConfig, MoeConfig } from '../../../engine/config/types';
import { createModel } from '../../../engine/models/factory';
import { conv2dPadded } from '../../../engine/models/layers';
import { sparseForward } from '../../../engine/models/sparse';
import type { Model } from '../../../engine/models/types';
import { maxAbsDiff, setupTestBackend } from '../helpers';
import { assertStraightThrough, CIFAR, DENSE, MNIST, images, modelConfig, moe, randomize } from './fixtures';

before(setupTestBackend);

const TOL = 1e-4;

function gathered(overrides: Partial<MoeConfig> = {}): MoeConfig {
  return moe({ layout: 'gathered', ...overrides });
}

function withModel<T>(config: ModelConfig, spec: typeof MNIST, seed: number, fn: (m: Model) => T): T {
  const m = createModel(config, spec, seed);
  try {
    return fn(m);
  } finally {
    m.dispose();
  }
}

/** Cross-correlation with `pad` zeros on every side (PyTorch's Conv2d), written out: x [H, W, Cin], k [kh, kw, Cin, Cout]. */
function naiveConv(x: number[][][], k: number[][][][], stride: number, pad: number): number[][][] {
  const [h, w, cin] = [x.length, x[0].length, x[0][0].length];
  const [kh, kw, , cout] = [k.length, k[0].length, k[0][0].length, k[0][0][0].length];
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
  const out: number[][][] = [];
  for (let i = 0; i < oh; i++) {
    const row: number[][] = [];
    for (let j = 0; j < ow; j++) {
      const px = new Array<number>(cout).fill(0);
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) {
          const r = i * stride + a - pad;
          const c = j * stride + b - pad;
          if (r < 0 || r >= h || c < 0 || c >= w) continue;
          for (let ci = 0; ci < cin; ci++) for (let co = 0; co < cout; co++) px[co] += x[r][c][ci] * k[a][b][ci][co];
        }
      }
      row.push(px);
    }
    out.push(row);
  }
  return out;
}

describe('model.padding', () => {
  for (const [size, stride] of [[6, 2], [7, 2], [6, 1], [8, 2]] as const) {
    it(`symmetric = PyTorch's padding 1 for a 3×3 conv, ${size}×${size} input, stride ${stride}; same differs only on even stride-2`, () => {
      tf.tidy(() => {
        const x = tf.randomNormal([1, size, size, 2], 0, 1, 'float32', 3) as tf.Tensor4D;
        const k = tf.randomNormal([3, 3, 2, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
        const expected = tf.tensor4d([naiveConv((x.arraySync() as number[][][][])[0], k.arraySync() as number[][][][], stride, 1)]);
        const sym = conv2dPadded(x, k, stride, 'symmetric');
        assert.deepEqual(sym.shape, expected.shape);
        assert.ok(maxAbsDiff(sym, expected) < 1e-5, `symmetric vs loops: ${maxAbsDiff(sym, expected)}`);
        const same = conv2dPadded(x, k, stride, 'same');
        assert.deepEqual(same.shape, expected.shape);
        const differs = maxAbsDiff(same, expected) > 1e-3;
        assert.equal(differs, stride === 2 && size % 2 === 0, `same differs from PyTorch: ${differs}`);
      });
    });
  }

  it('a model with symmetric padding gives other logits than with same, and its router convs follow it', () => {
    const config = (padding: 'same' | 'symmetric'): ModelConfig => ({ ...modelConfig('resnet18', gathered({ router: 'reference' })), padding });
    const logits = (padding: 'same' | 'symmetric') =>
      withModel(config(padding), CIFAR, 5, (m) => tf.tidy(() => {
        randomize(m, 1);
        const out = m.forward(images(2, CIFAR), { training: false });
        return { logits: out.logits.arraySync(), scores: out.routing[0].logits.arraySync() };
      }));
    const a = logits('same');
    const b = logits('symmetric');
    assert.notDeepEqual(a.logits, b.logits);
    assert.notDeepEqual(a.scores, b.scores);
  });
});

/** Copies every parameter of `moeModel` into `dense` (same names), MoE conv kernels reduced to expert `e`'s block. */
function copyExpert(moeModel: Model, dense: Model, e: number): void {
  const byName = new Map(moeModel.params.map((p) => [p.name, p.variable]));
  tf.tidy(() => {
    for (const p of dense.params) {
      const src = byName.get(p.name);
      assert.ok(src, `no ${p.name} in the MoE model`);
      const want = p.variable.shape;
      if (src.shape.join() === want.join()) p.variable.assign(src);
      else {
        const c = want[3]!;
        assert.equal(src.shape[3], 2 * c, `${p.name}: ${src.shape} vs ${want}`);
        p.variable.assign(tf.slice(src, [0, 0, 0, e * c], [...want.slice(0, 3), c] as number[]));
      }
    }
  });
}

describe('gathered layout', () => {
  const BACKBONES: BackboneName[] = ['resnet18', 'vgg16', 'wrn28_10', 'densenet'];

  for (const backbone of BACKBONES) {
    it(`${backbone}: with one expert chosen, the network is the dense backbone holding that expert's kernels (BN of c channels)`, () => {
      // expertWidth 1: each of the N = 2 experts has the dense width, so the dense backbone has the gathered widths.
      const cfg = modelConfig(backbone, gathered({ expertWidth: 1, router: 'reference' }), 'tiny', 0.5);
      const moeModel = createModel(cfg, MNIST, 2);
      const dense = createModel(modelConfig(backbone, DENSE, 'tiny', 0.5), MNIST, 3);
      try {
        randomize(moeModel, 4, { routerScale: 3 });
        const x = images(6, MNIST, 8);
        for (const e of [0, 1]) {
          copyExpert(moeModel, dense, e);
          for (const training of [false, true]) {
            tf.tidy(() => {
              const forced = moeModel.forward(x, { training, routing: { kind: 'force', expert: e } }).logits;
              const ref = dense.forward(x, { training }).logits;
              assert.ok(maxAbsDiff(forced, ref) <= TOL, `expert ${e}, training ${training}: ${maxAbsDiff(forced, ref)}`);
            });
          }
          // Router routing: the samples the router sends to e give the dense model's logits (inference BN, per sample).
          tf.tidy(() => {
            const out = moeModel.forward(x, { training: false });
            const chosen = out.routing[0].mask.arraySync().map((row) => row.indexOf(1));
            const ref = dense.forward(x, { training: false }).logits.arraySync();
            const got = out.logits.arraySync();
            chosen.forEach((c, b) => {
              if (c !== e) return;
              const d = Math.max(...got[b].map((v, i) => Math.abs(v - ref[b][i])));
              assert.ok(d <= TOL, `sample ${b} routed to ${e}: ${d}`);
            });
          });
        }
        x.dispose();
      } finally {
        moeModel.dispose();
        dense.dispose();
      }
    });
  }

  it('BN after a gathered MoE conv has c channels and the next conv reads c channels', () => {
    withModel(modelConfig('resnet18', gathered(), 'tiny'), CIFAR, 1, (m) => {
      const shape = (name: string) => m.params.find((p) => p.name === name)!.variable.shape;
      const c = m.moeLayers[0].expertChannels;
      assert.equal(m.moeLayers[0].outChannels, c);
      assert.deepEqual(shape('layer1.0.conv1.kernel'), [3, 3, 16, 2 * c]);
      assert.deepEqual(shape('layer1.0.conv1.bn.gamma'), [c]);
      assert.deepEqual(shape('layer1.0.conv2.kernel'), [3, 3, c, 2 * c]);
      assert.deepEqual(shape('fc.kernel'), [m.moeLayers.at(-1)!.expertChannels, 10]);
    });
  });

  it('refuses topK > 1', () => {
    assert.throws(() => createModel(modelConfig('resnet18', gathered({ experts: 4, topK: 2, expertWidth: 0.25 })), MNIST, 1), /topK/);
  });
});

/** Uniform noise with a per-sample colour gain: routers see inputs that differ. */
function varied(batch: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => tf.mul(images(batch, CIFAR, seed), tf.randomUniform([batch, 1, 1, 3], 0, 1, 'float32', seed + 1)) as tf.Tensor4D);
}

describe('gathered layout: sparse inference = masked dense inference', () => {
  const cases: Array<{ backbone: BackboneName; m: MoeConfig; padding?: 'symmetric' }> = [
    { backbone: 'resnet18', m: gathered() },
    { backbone: 'resnet18', m: gathered({ experts: 4, expertWidth: 0.25 }) },
    { backbone: 'resnet18', m: gathered({ router: 'shared' }) },
    { backbone: 'resnet18', m: gathered({ router: 'reference' }), padding: 'symmetric' },
    { backbone: 'vgg16', m: gathered({ experts: 3, expertWidth: 0.5 }) },
    { backbone: 'wrn28_10', m: gathered() },
    { backbone: 'densenet', m: gathered() },
  ];
  for (const c of cases) {
    it(`${c.backbone} N=${c.m.experts}, ${c.m.router} router${c.padding ? ', symmetric padding' : ''}: same logits and routing, mixed routing`, () => {
      const config: ModelConfig = { ...modelConfig(c.backbone, c.m, 'tiny', 0.5), padding: c.padding };
      withModel(config, CIFAR, 3, (model) => {
        randomize(model, 1, { routerScale: 3 });
        const x = varied(10, 5);
        tf.tidy(() => {
          const masked = model.forward(x, { training: false });
          const sparse = sparseForward(model, x);
          const kinds = new Set<string>();
          masked.routing.forEach((r, l) => {
            const rows = r.mask.arraySync();
            assert.deepEqual(sparse.routing[l].mask.arraySync(), rows, `layer ${l}`);
            rows.forEach((row) => kinds.add(`${l}:${row.join('')}`));
          });
          const d = maxAbsDiff(sparse.logits, masked.logits);
          assert.ok(d <= TOL, `max |Δlogit| ${d}`);
          assert.ok(kinds.size > masked.routing.length, `the batch mixes routing choices (${[...kinds].join(' ')})`);
          // Forced routing too (a fixed one-hot mask in every layer).
          const forced = maxAbsDiff(sparseForward(model, x, { routing: { kind: 'force', expert: 1 } }).logits, model.forward(x, { training: false, routing: { kind: 'force', expert: 1 } }).logits);
          assert.ok(forced <= TOL, `forced: ${forced}`);
        });
        x.dispose();
      });
    });
  }
});

describe('gathered layout: FLOPs', () => {
  for (const backbone of ['resnet18', 'vgg16', 'wrn28_10', 'densenet'] as const) {
    it(`${backbone}: active (routers aside) = the dense model of the gathered widths; dense counts every expert`, () => {
      const d = withModel(modelConfig(backbone, DENSE, 'tiny'), MNIST, 1, (m) => m.flops());
      const g = withModel(modelConfig(backbone, gathered({ expertWidth: 1 })), MNIST, 1, (m) => m.flops());
      const g4 = withModel(modelConfig(backbone, gathered({ experts: 4, expertWidth: 1 })), MNIST, 1, (m) => m.flops());
      assert.ok(g.router > 0);
      assert.equal(g.active - g.router, d.dense);
      assert.equal(g4.active - g4.router, d.dense);
      // The masked forward computes all N experts of every MoE conv: dense grows with N.
      assert.ok(g.dense > d.dense && g4.dense > g.dense, `${d.dense} < ${g.dense} < ${g4.dense}`);
      // N = 4 adds 2 more experts' worth over N = 2: dense(N) = d + (N − 1)·moe.
      assert.ok(Math.abs(g4.dense - d.dense - 3 * (g.dense - d.dense)) < 1e-6 * g4.dense);
    });
  }

  it('the reference router counts its convs: a CIFAR ResNet-20 body on 32×32, ≈ 41 M MACs (82 MFLOPs)', () => {
    const f = withModel(modelConfig('resnet18', gathered({ router: 'reference' })), CIFAR, 1, (m) => m.flops());
    // 19 convs (16-32-64 channels, 3 blocks per stage) and the linear layer; FLOPs = 2 × MACs.
    assert.ok(f.router > 70e6 && f.router < 90e6, `router FLOPs ${f.router}`);
  });
});

/** The straight-through gradient of a randomised model (`assertStraightThrough`). */
function checkStraightThrough(config: ModelConfig, routerBias: string, toScores: boolean): void {
  withModel(config, MNIST, 11, (model) => {
    randomize(model, 2, { routerScale: 1 });
    assertStraightThrough(model, routerBias, 4, toScores ? 'scores' : 'softmax');
  });
}

describe('gathered layout and reference router: gradients to the routers', () => {
  it('reference router: the bias gradient is d L / d mask itself (straight through to the scores)', () => {
    checkStraightThrough(modelConfig('resnet18', gathered({ router: 'reference' })), 'router.fc.bias', true);
  });
  it('shared router, gathered layout: the softmax Jacobian applied to d L / d mask', () => {
    checkStraightThrough(modelConfig('resnet18', gathered({ experts: 3, expertWidth: 0.5, router: 'shared' })), 'router.fc.bias', false);
  });
  it('per-layer router on one gathered MoE layer: the softmax Jacobian applied to d L / d mask', () => {
    checkStraightThrough(modelConfig('resnet18', gathered({ experts: 3, expertWidth: 0.5, layers: [1] })), 'layer1.0.conv2.router.bias', false);
  });

  it('every trainable variable of both groups gets a finite gradient, router and expert ones non-zero', () => {
    withModel({ ...modelConfig('resnet18', gathered({ router: 'reference' })), padding: 'symmetric' }, CIFAR, 4, (model) => {
      tf.tidy(() => {
        const x = varied(4, 2);
        const y = tf.oneHot(tf.tensor1d([1, 2, 3, 4], 'int32'), 10).toFloat();
        const vars = model.trainableVariables();
        const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.forward(x, { training: true }).logits) as tf.Scalar, vars);
        for (const group of ['router', 'expert'] as const) {
          const names = model.params.filter((p) => p.trainable && p.group === group);
          assert.ok(names.length > 0);
          let nonzero = 0;
          for (const p of names) {
            const g = grads[p.variable.name].dataSync();
            assert.ok(g.every(Number.isFinite), `${p.name}: non-finite gradient`);
            if (g.some((v) => v !== 0)) nonzero++;
          }
          assert.ok(nonzero > names.length / 2, `${group}: ${nonzero} of ${names.length} parameters have a non-zero gradient`);
        }
      });
    });
  });
});
