/**
 * Routing: top-k masks, the straight-through gradient against its definition, masked channels, forced
 * and fixed routing.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../../../engine/config/types';
import { createModel } from '../../../engine/models/factory';
import { type ConvUnit, type DataSpec, type ForwardContext, Net } from '../../../engine/models/net';
import { hostTopKMask, straightThroughTopK, topKMask } from '../../../engine/models/routing';
import type { Model } from '../../../engine/models/types';
import { Rng } from '../../../engine/util/rng';
import { maxAbsDiff, setupTestBackend } from '../helpers';
import { assertStraightThrough, MNIST, images, modelConfig, moe } from './fixtures';

before(setupTestBackend);

describe('topKMask', () => {
  it('keeps exactly the k largest entries per row', () => {
    const rng = new Rng(3);
    const rows = 16;
    const n = 6;
    const values = Array.from({ length: rows * n }, () => rng.next());
    for (const k of [1, 2, 3, 5]) {
      const mask = tf.tidy(() => topKMask(tf.tensor2d(values, [rows, n]), k).arraySync());
      for (let r = 0; r < rows; r++) {
        const row = values.slice(r * n, (r + 1) * n);
        assert.equal(mask[r].filter((v) => v === 1).length, k, `row ${r}, k ${k}: ones`);
        assert.ok(mask[r].every((v) => v === 0 || v === 1), `row ${r}: 0/1 values`);
        const kept = row.filter((_, i) => mask[r][i] === 1);
        const dropped = row.filter((_, i) => mask[r][i] === 0);
        assert.ok(Math.min(...kept) > Math.max(...dropped), `row ${r}, k ${k}: a dropped entry beats a kept one`);
      }
    }
  });

  it('breaks ties towards the lower index', () => {
    const mask = tf.tidy(() =>
      topKMask(tf.tensor2d([[0.2, 0.7, 0.7, 0.1], [0.5, 0.5, 0.5, 0.5], [0.1, 0.3, 0.3, 0.3]]), 1).arraySync(),
    );
    assert.deepEqual(mask, [[0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]]);
    const two = tf.tidy(() => topKMask(tf.tensor2d([[0.1, 0.3, 0.3, 0.3]]), 2).arraySync());
    assert.deepEqual(two, [[0, 1, 1, 0]]);
  });

  it('the host top-k (sparse inference) equals the device one, ties included', () => {
    const rng = new Rng(5);
    // Values on a coarse grid, so that rows hold ties.
    const values = Array.from({ length: 40 * 5 }, () => Math.floor(rng.next() * 4) / 4);
    for (const k of [1, 2, 3, 5]) {
      const scores = tf.tensor2d(values, [40, 5]);
      const device = tf.tidy(() => topKMask(scores, k).arraySync());
      const host = tf.tidy(() => hostTopKMask(scores, k).arraySync());
      assert.deepEqual(host, device, `k ${k}`);
      scores.dispose();
    }
  });

  it('k = N keeps every expert, and the straight-through mask equals the plain one', () => {
    const probs = tf.tensor2d([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]);
    assert.deepEqual(tf.tidy(() => topKMask(probs, 3).arraySync()), [[1, 1, 1], [1, 1, 1]]);
    assert.deepEqual(tf.tidy(() => straightThroughTopK(probs, 2).arraySync()), tf.tidy(() => topKMask(probs, 2).arraySync()));
    probs.dispose();
  });

  it('passes the gradient straight through: d(sum(mask·w))/d probs = w', () => {
    const probs = tf.tensor2d([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]);
    const w = tf.tensor2d([[1, -2, 3], [0.5, 4, -1]]);
    const g = tf.grad((p: tf.Tensor) => tf.sum(tf.mul(straightThroughTopK(p as tf.Tensor2D, 1), w)))(probs);
    assert.deepEqual(g.arraySync(), w.arraySync());
    tf.dispose([probs, w, g]);
  });
});

/**
 * The definition: with hard mask M = topk(softmax(z)) in the forward pass and d M / d softmax = I,
 * d L / d z = J_softmax(p)ᵀ · d L / d M (`assertStraightThrough`), after checking the masks themselves.
 */
function checkStraightThrough(config: ModelConfig, routerBias: string): void {
  const model = createModel(config, MNIST, 11);
  try {
    tf.tidy(() => {
      const routed = model.forward(images(3, MNIST), { training: true });
      assert.equal(routed.routing.length, model.moeLayers.length);
      const mask = routed.routing[0].mask;
      // Every layer of a shared router (and the single layer here otherwise) uses one decision.
      for (const r of routed.routing) assert.equal(maxAbsDiff(r.mask, mask), 0);
      for (const row of mask.arraySync()) assert.equal(row.filter((v) => v === 1).length, model.topK, `hard mask row ${row}`);
    });
    assertStraightThrough(model, routerBias, 3, 'softmax');
  } finally {
    model.dispose();
  }
}

describe('straight-through gradient', () => {
  it('shared router (official code): bias gradient = softmax Jacobian applied to dL/dmask', () => {
    checkStraightThrough(modelConfig('resnet18', moe({ experts: 4, topK: 2, expertWidth: 0.25, router: 'shared' })), 'router.fc.bias');
  });

  it('per-layer router on one MoE layer: bias gradient = softmax Jacobian applied to dL/dmask', () => {
    // One MoE layer only: with several per-layer routers, d L / d mask_l also flows through the later
    // routers' inputs, which a fixed-mask forward deliberately cuts.
    checkStraightThrough(modelConfig('resnet18', moe({ experts: 3, topK: 1, expertWidth: 0.5, layers: [1] })), 'layer1.0.conv2.router.bias');
  });
});

/** Two MoE candidate units, one conv+BN and one bare conv (the pre-activation form), exposing their outputs. */
class Probe extends Net {
  readonly a: ConvUnit;
  readonly b: ConvUnit;
  private readonly head: (x: tf.Tensor4D, ctx: ForwardContext) => tf.Tensor2D;
  outputs: tf.Tensor4D[] = [];

  constructor(config: ModelConfig, data: DataSpec) {
    super(config, data, new Rng(1));
    this.a = this.convUnit('a', data.inputShape[2], 12, { candidate: true });
    this.b = this.convUnit('b', this.a.outChannels, 12, { candidate: true, inputFrom: this.a, bn: false });
    this.head = this.classifier('fc', this.b.outChannels);
  }

  protected body(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
    const ya = this.a.apply(x, ctx);
    const yb = this.b.apply(tf.relu(ya), ctx);
    this.outputs = [ya, yb];
    return this.head(yb, ctx);
  }
}

/** Per sample, per channel: is the channel exactly zero everywhere? */
function zeroChannels(t: tf.Tensor4D): boolean[][] {
  const [b, h, w, c] = t.shape;
  const v = t.dataSync();
  const out: boolean[][] = [];
  for (let s = 0; s < b; s++) {
    const row = new Array<boolean>(c).fill(true);
    for (let i = 0; i < h * w; i++) for (let ch = 0; ch < c; ch++) if (v[(s * h * w + i) * c + ch] !== 0) row[ch] = false;
    out.push(row);
  }
  return out;
}

describe('MoE units', () => {
  const data: DataSpec = { inputShape: [6, 6, 2], numClasses: 3, mean: [0.5, 0.5], std: [0.5, 0.5] };
  const config: ModelConfig = { backbone: 'resnet18', preset: 'tiny', widthMultiplier: 1, moe: moe({ experts: 3, topK: 1, expertWidth: 1 / 3 }) };

  for (const training of [true, false]) {
    it(`inactive experts' channels are exactly zero at the unit output, active ones are not (training ${training})`, () => {
      const probe = new Probe(config, data);
      try {
        tf.tidy(() => {
          const { routing } = probe.forward(images(4, data), { training });
          probe.outputs.forEach((out, layer) => {
            const masks = routing[layer].mask.arraySync();
            const zero = zeroChannels(out);
            const c = probe.moeLayers[layer].expertChannels;
            assert.equal(c, 4);
            masks.forEach((m, s) => {
              for (let ch = 0; ch < out.shape[3]; ch++) {
                const expert = Math.floor(ch / c);
                assert.equal(zero[s][ch], m[expert] === 0, `layer ${layer} sample ${s} channel ${ch} (expert ${expert}, mask ${m})`);
              }
            });
          });
        });
      } finally {
        probe.dispose();
      }
    });
  }

  it('force routing uses one expert in every layer', () => {
    const probe = new Probe(config, data);
    try {
      tf.tidy(() => {
        for (let e = 0; e < 3; e++) {
          const { routing } = probe.forward(images(2, data), { training: false, routing: { kind: 'force', expert: e } });
          for (const r of routing) assert.deepEqual(r.mask.arraySync(), [0, 1].map(() => [0, 1, 2].map((i) => (i === e ? 1 : 0))));
          for (const out of probe.outputs) {
            for (const row of zeroChannels(out)) row.forEach((z, ch) => assert.equal(z, Math.floor(ch / 4) !== e, `expert ${e}, channel ${ch}`));
          }
        }
        assert.throws(() => probe.forward(images(2, data), { training: false, routing: { kind: 'force', expert: 3 } }), RangeError);
      });
    } finally {
      probe.dispose();
    }
  });

  it('force routing of a backbone equals fixed routing with one-hot masks', () => {
    const model: Model = createModel(modelConfig('wrn28_10', moe({ experts: 2, topK: 1 })), MNIST, 2);
    try {
      tf.tidy(() => {
        const x = images(2, MNIST);
        const forced = model.forward(x, { training: false, routing: { kind: 'force', expert: 1 } });
        const oneHot = tf.tensor2d([[0, 1], [0, 1]]);
        const fixed = model.forward(x, { training: false, routing: { kind: 'fixed', masks: model.moeLayers.map(() => oneHot) } });
        assert.equal(forced.routing.length, model.moeLayers.length);
        assert.equal(maxAbsDiff(forced.logits, fixed.logits), 0);
      });
    } finally {
      model.dispose();
    }
  });

  it('fixed routing with the wrong number of masks is an error', () => {
    const model = createModel(modelConfig('resnet18', moe()), MNIST, 2);
    try {
      tf.tidy(() => {
        const mask = tf.tensor2d([[1, 0]]);
        assert.equal(model.moeLayers.length, 8);
        assert.throws(
          () => model.forward(images(1, MNIST), { training: false, routing: { kind: 'fixed', masks: [mask, mask] } }),
          /fixed routing needs 8 masks, got 2/,
        );
      });
    } finally {
      model.dispose();
    }
  });
});

describe('router input normalisation and router noise', () => {
  it('routerNorm: at initialisation, routers with normalised inputs route inputs apart; without it they agree', () => {
    // Pooled post-ReLU features share a large positive mean: a linear router on them gives every input the same
    // decision before any training. Batch statistics (training mode) centre them.
    const share = (routerNorm: boolean): number[] => {
      const model = createModel(modelConfig('vgg16', moe({ routerNorm })), MNIST, 5);
      try {
        return tf.tidy(() => model.forward(images(64, MNIST), { training: true }).routing.map((r) => tf.max(tf.mean(r.mask, 0)).dataSync()[0]));
      } finally {
        model.dispose();
      }
    };
    const plain = share(false);
    const normed = share(true);
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    assert.equal(Math.max(...plain), 1, `plain ${plain}: some router sends every input to one expert`);
    assert.ok(Math.max(...normed) < 0.8 && mean(normed) < mean(plain) - 0.1, `normalised ${normed}, plain ${plain}`);
  });

  it('router noise: seeded, training passes only, and the reported routing carries the noisy logits', () => {
    const model = createModel(modelConfig('resnet18', moe()), MNIST, 2);
    try {
      tf.tidy(() => {
        const x = images(8, MNIST);
        const plain = model.forward(x, { training: true }).routing[0].logits;
        const a = model.forward(x, { training: true, routerNoise: { std: 1, seed: 7 } }).routing[0].logits;
        const b = model.forward(x, { training: true, routerNoise: { std: 1, seed: 7 } }).routing[0].logits;
        const c = model.forward(x, { training: true, routerNoise: { std: 1, seed: 8 } }).routing[0].logits;
        assert.equal(maxAbsDiff(a, b), 0, 'same seed, same noise');
        assert.ok(maxAbsDiff(a, c) > 0.1, 'another seed, other noise');
        const noise = tf.sub(a, plain);
        const sd = Math.sqrt(tf.mean(tf.square(noise)).dataSync()[0]);
        assert.ok(sd > 0.5 && sd < 1.6, `noise standard deviation ${sd}`);
        assert.throws(() => model.forward(x, { training: false, routerNoise: { std: 1, seed: 7 } }), /training passes only/);
      });
    } finally {
      model.dispose();
    }
  });
});
