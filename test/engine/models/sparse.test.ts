/**
 * Sparse MoE inference: the same logits and routing as the masked dense forward (inactive experts multiplied
 * by zero), on every backbone, for k = 1 and k = 2, per-layer and shared routers, batch 1 and mixed routings;
 * weight slices follow weight updates; no tensor leaks. No timing is asserted anywhere.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { MoeConfig } from '../../../engine/config/types';
import { createModel } from '../../../engine/models/factory';
import { measureLatency, sparseForward } from '../../../engine/models/sparse';
import type { Model } from '../../../engine/models/types';
import { maxAbsDiff, setupTestBackend } from '../helpers';
import { CIFAR, DENSE, MNIST, images, modelConfig, moe, randomize } from './fixtures';

before(setupTestBackend);

const TOL = 1e-4;


/** Uniform noise with a different brightness and colour per sample: pooled features (what per-layer routers
 * read) differ between samples far more than with plain noise. */
function varied(batch: number, spec: typeof CIFAR, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    const c = spec.inputShape[2];
    const gain = tf.randomUniform([batch, 1, 1, c], 0, 1, 'float32', seed + 1);
    return tf.mul(images(batch, spec, seed), gain) as tf.Tensor4D;
  });
}

function compare(model: Model, x: tf.Tensor4D, opts: Parameters<typeof sparseForward>[2] = {}): { diff: number; scale: number; routings: Set<string> } {
  let result: { diff: number; scale: number; routings: Set<string> } | undefined;
  const out = tf.tidy(() => {
    const masked = model.forward(x, { ...opts, training: false });
    const sparse = sparseForward(model, x, opts);
    assert.equal(sparse.routing.length, masked.routing.length);
    const routings = new Set<string>();
    masked.routing.forEach((r, l) => {
      assert.deepEqual(sparse.routing[l].mask.arraySync(), r.mask.arraySync(), `layer ${l}: same routing`);
      for (const row of r.mask.arraySync()) routings.add(`${l}:${row.join('')}`);
    });
    result = { diff: maxAbsDiff(sparse.logits, masked.logits), scale: tf.max(tf.abs(masked.logits)).dataSync()[0], routings };
    return [];
  });
  void out;
  return result!;
}

const CASES: Array<{ label: string; moe: MoeConfig }> = [
  { label: 'k=1 of N=2', moe: moe() },
  { label: 'k=2 of N=4', moe: moe({ experts: 4, topK: 2, expertWidth: 0.25 }) },
  { label: 'k=1 of N=4', moe: moe({ experts: 4, topK: 1, expertWidth: 0.25 }) },
  { label: 'k=1 of N=2, shared router', moe: moe({ router: 'shared' }) },
  // Normalised router inputs have no zeros to skip: a compact input is put back at full width for the router.
  { label: 'k=2 of N=4, routerNorm', moe: moe({ experts: 4, topK: 2, expertWidth: 0.25, routerNorm: true }) },
  { label: 'k=1 of N=2, shared router, routerNorm', moe: moe({ router: 'shared', routerNorm: true }) },
];

describe('sparse inference = masked dense inference', () => {
  for (const backbone of ['vgg16', 'resnet18'] as const) {
    for (const c of CASES) {
      it(`${backbone} ${c.label}: batch 1 and batch 12 with mixed routing`, () => {
        const model = createModel(modelConfig(backbone, c.moe, 'tiny', 0.5), CIFAR, 3);
        try {
          randomize(model, 1, { routerScale: 3 });
          const seen = new Set<string>();
          for (let i = 0; i < 3; i++) {
            const x1 = varied(1, CIFAR, 20 + i);
            const one = compare(model, x1);
            x1.dispose();
            assert.ok(one.diff <= TOL, `batch 1 #${i}: max |Δlogit| ${one.diff} (logits up to ${one.scale})`);
          }
          const x = varied(12, CIFAR, 5);
          const many = compare(model, x);
          x.dispose();
          many.routings.forEach((r) => seen.add(r));
          assert.ok(many.diff <= TOL, `batch 12: max |Δlogit| ${many.diff} (logits up to ${many.scale})`);
          // The test means something only if the batch really mixes routing choices in some layer.
          const perLayer = new Map<string, number>();
          for (const r of seen) perLayer.set(r.split(':')[0], (perLayer.get(r.split(':')[0]) ?? 0) + 1);
          assert.ok([...perLayer.values()].some((n) => n > 1), `some layer routes the batch in more than one way (${[...seen].join(' ')})`);
        } finally {
          model.dispose();
        }
      });
    }
  }

  // A router's selection bias (method.routing.balanceBias) decides the choice in both paths alike.
  for (const router of ['per-layer', 'shared'] as const) {
    it(`vgg16 k=1 of N=2, ${router} router with selection biases`, () => {
      const model = createModel(modelConfig('vgg16', moe({ router }), 'tiny', 0.5), CIFAR, 3);
      const x = varied(12, CIFAR, 5);
      try {
        randomize(model, 1, { routerScale: 3 });
        const biases = model.params.filter((p) => p.name.endsWith('selectionBias'));
        assert.ok(biases.length > 0 && biases.every((p) => !p.trainable), 'every router has a non-trainable selection bias');
        // Biases that centre each router's logits on this batch: about half of its decisions change.
        const unbiased = tf.tidy(() => {
          const routing = model.forward(x, { training: false }).routing;
          routing.forEach((r, l) => biases[model.moeLayers[l].router].variable.assign(tf.neg(tf.mean(r.logits, 0))));
          return routing.map((r) => r.mask.arraySync());
        });
        const r = compare(model, x);
        assert.ok(r.diff <= TOL, `max |Δlogit| ${r.diff}`);
        const biased = tf.tidy(() => model.forward(x, { training: false }).routing.map((m) => m.mask.arraySync()));
        assert.notDeepEqual(biased, unbiased, 'the biases change some routing decision');
      } finally {
        x.dispose();
        model.dispose();
      }
    });
  }

  for (const backbone of ['wrn28_10', 'densenet'] as const) {
    it(`${backbone} k=1 of N=2 and k=2 of N=4, mixed routing`, () => {
      for (const m of [moe(), moe({ experts: 4, topK: 2, expertWidth: 0.25 })]) {
        const model = createModel(modelConfig(backbone, m, 'tiny', 0.25), MNIST, 4);
        try {
          randomize(model, 2, { routerScale: 3 });
          const x = varied(6, MNIST, 9);
          const r = compare(model, x);
          x.dispose();
          assert.ok(r.diff <= TOL, `${m.topK}/${m.experts}: max |Δlogit| ${r.diff}`);
        } finally {
          model.dispose();
        }
      }
    });
  }

  it('fixed and forced routing give the masked result too', () => {
    const model = createModel(modelConfig('vgg16', moe({ experts: 4, topK: 2, expertWidth: 0.25 }), 'tiny', 0.5), MNIST, 6);
    try {
      randomize(model, 3, { routerScale: 3 });
      const x = images(5, MNIST, 2);
      const masks = model.moeLayers.map((_, l) =>
        tf.tensor2d(Array.from({ length: 5 }, (_, b) => [0, 1, 2, 3].map((e) => (e === (b + l) % 4 || e === (b + l + 1) % 4 ? 1 : 0)))),
      );
      // Per-sample sets {0,1}, {1,2}, {2,3}, {3,0}: non-contiguous blocks included.
      const fixed = compare(model, x, { routing: { kind: 'fixed', masks } });
      assert.ok(fixed.diff <= TOL, `fixed: ${fixed.diff}`);
      const forced = compare(model, x, { routing: { kind: 'force', expert: 2 } });
      assert.ok(forced.diff <= TOL, `forced: ${forced.diff}`);
      tf.dispose([x, ...masks]);
    } finally {
      model.dispose();
    }
  });

  it('follows weight updates (cached slices are rebuilt) and does not leak tensors', () => {
    const model = createModel(modelConfig('resnet18', moe(), 'tiny', 0.5), CIFAR, 8);
    try {
      randomize(model, 4, { routerScale: 3 });
      const x = images(4, CIFAR, 3);
      assert.ok(compare(model, x).diff <= TOL);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) tf.tidy(() => sparseForward(model, x).logits.dataSync());
      assert.equal(tf.memory().numTensors, before, 'repeated sparse forwards keep numTensors flat');
      randomize(model, 5, { routerScale: 3 }); // new data for every BN statistic and router kernel
      tf.tidy(() => {
        const k = model.params.find((p) => p.name.endsWith('conv1.kernel') && (p.variable.shape[3] ?? 0) > 1)!.variable;
        k.assign(tf.mul(k, -1.5));
      });
      assert.ok(compare(model, x).diff <= TOL, 'after assigning new weights');
      x.dispose();
    } finally {
      model.dispose();
    }
  });

  it('rejects sparse training forwards', () => {
    const model = createModel(modelConfig('vgg16', moe(), 'tiny', 0.5), MNIST, 1);
    try {
      const x = images(1, MNIST);
      assert.throws(() => model.forward(x, { training: true, sparse: true }), RangeError);
      x.dispose();
    } finally {
      model.dispose();
    }
  });
});

describe('measureLatency', () => {
  it('reports medians within [min, max] for masked, sparse and dense, and disposes what it made', () => {
    const model = createModel(modelConfig('vgg16', moe(), 'tiny', 0.5), MNIST, 1);
    const dense = createModel(modelConfig('vgg16', DENSE, 'tiny', 0.5), MNIST, 1);
    try {
      measureLatency(model, 2, 1, { dense }); // warms the weight-slice caches
      const before = tf.memory().numTensors;
      const r = measureLatency(model, 2, 3, { dense, warmup: 1 });
      assert.equal(tf.memory().numTensors, before);
      for (const s of [r.masked, r.sparse, r.dense!]) {
        assert.ok(s.min > 0 && s.min <= s.median && s.median <= s.max, JSON.stringify(s));
      }
      assert.equal(r.batch, 2);
      assert.ok(Number.isFinite(r.sparseVsMasked) && Number.isFinite(r.sparseVsDense!));
    } finally {
      model.dispose();
      dense.dispose();
    }
  });
});
