import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { MethodConfig, MethodName, ModelConfig } from '../../../engine/config/types';
import { createModel } from '../../../engine/models/factory';
import type { Model } from '../../../engine/models/types';
import { CollapseDetector } from '../../../engine/training/collapse';
import { crossEntropy } from '../../../engine/training/losses';
import { type AdversaryFn, type AdversaryLoss, checkMethodSupported, createOptimizers, type Optimizers, trainStep } from '../../../engine/training/methods';
import { isAdvMoEError } from '../../../engine/util/errors';
import { setupTestBackend } from '../helpers';
import { changed, methodConfig, paramValues, quadrantBatch, TinyMoe, testAdversary } from './fixtures';

const SCHEDULE = { momentum: 0.9, weightDecay: 5e-4 };

function names(model: Model, pred: (p: Model['params'][number]) => boolean): Set<string> {
  return new Set(model.params.filter(pred).map((p) => p.name));
}

function resnet(moe: Partial<ModelConfig['moe']> | null, side = 8): Model {
  const config: ModelConfig = {
    backbone: 'resnet18',
    preset: 'tiny',
    widthMultiplier: 0.5,
    moe: { enabled: moe !== null, experts: 2, topK: 1, expertWidth: 0.5, router: 'per-layer', routerNorm: true, layers: 'all-blocks', ...moe },
  };
  return createModel(config, { inputShape: [side, side, 1], numClasses: 4, mean: [0.5], std: [0.25] }, 3);
}

/** Wraps an adversary so that every call first records the model's values (the state before each sub-step). */
function recording(model: Model, inner: AdversaryFn): AdversaryFn & { snapshots: Array<Map<string, Float32Array>> } {
  const fn = async (x: tf.Tensor4D, y: tf.Tensor1D, loss: AdversaryLoss) => {
    fn.snapshots.push(paramValues(model));
    return inner(x, y, loss);
  };
  fn.snapshots = [] as Array<Map<string, Float32Array>>;
  return fn;
}

describe('trainStep', () => {
  before(setupTestBackend);
  const owned: Array<{ dispose(): void }> = [];
  after(() => owned.forEach((d) => d.dispose()));

  function setup(model: Model): Optimizers {
    const o = createOptimizers(model, SCHEDULE);
    owned.push(model, o.router, o.expert);
    return o;
  }

  it('standard training reduces the loss on a small synthetic task', async () => {
    const model = new TinyMoe({ seed: 2 });
    const optimizers = setup(model);
    const losses: number[] = [];
    let acc = 0;
    for (let step = 0; step < 300; step++) {
      const { x, y } = quadrantBatch(32, 4, 1000 + step);
      const r = await trainStep(methodConfig('standard'), { model, optimizers, x, y, lr: 0.05, step });
      x.dispose();
      y.dispose();
      losses.push(r.metrics.loss);
      acc = r.metrics.trainAcc;
      assert.equal(r.metrics.lr, 0.05);
    }
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const first = mean(losses.slice(0, 20));
    const last = mean(losses.slice(-20));
    assert.ok(last < 0.3 * first, `loss went from ${first.toFixed(3)} to ${last.toFixed(3)}`);
    assert.ok(acc > 0.9, `final train accuracy ${acc}`);
  });

  it('reports loss and trainAcc of the adversarial batch for AT methods', async () => {
    for (const kind of ['pgd-at', 'trades'] as const) {
      const model = new TinyMoe({ seed: 4 });
      const optimizers = setup(model);
      const { x, y } = quadrantBatch(16, 4, 5);
      // A deterministic "attack": the inverted image, on which the model's accuracy is known beforehand.
      const xAdv = tf.sub(1, x) as tf.Tensor4D;
      const expected = tf.tidy(() => {
        const adv = model.forward(xAdv, { training: true }).logits;
        const acc = tf.mean(tf.cast(tf.equal(tf.argMax(adv, 1), y), 'float32')).dataSync()[0];
        let loss = crossEntropy(adv, y).dataSync()[0];
        if (kind === 'trades') {
          const clean = model.forward(x, { training: true }).logits;
          const p = tf.softmax(clean);
          const kl = tf.sum(tf.mul(p, tf.sub(tf.logSoftmax(clean), tf.logSoftmax(adv)))).dataSync()[0] / 16;
          loss = crossEntropy(clean, y).dataSync()[0] + 6 * kl;
        }
        return { acc, loss };
      });
      const kinds: string[] = [];
      const adversary: AdversaryFn = async (_x, _y, l) => {
        kinds.push(l);
        return tf.clone(xAdv);
      };
      const r = await trainStep(methodConfig(kind), { model, optimizers, x, y, lr: 0.1, step: 0, adversary });
      assert.deepEqual(kinds, [kind === 'trades' ? 'trades-kl' : 'ce']);
      assert.ok(Math.abs(r.metrics.trainAcc - expected.acc) < 1e-6, `${kind}: trainAcc ${r.metrics.trainAcc} vs ${expected.acc}`);
      assert.ok(Math.abs(r.metrics.loss - expected.loss) < 1e-4, `${kind}: loss ${r.metrics.loss} vs ${expected.loss}`);
      tf.dispose([x, y, xAdv]);
    }
  });

  it('advmoe: the router step moves only router params, the expert step only expert params (TinyMoe, both orders)', async () => {
    for (const order of ['router-first', 'expert-first'] as const) {
      const model = new TinyMoe({ seed: 5 });
      const optimizers = setup(model);
      const adversary = recording(model, testAdversary(model));
      const { x, y } = quadrantBatch(16, 4, 6);
      const r = await trainStep(methodConfig('advmoe', { advmoe: { period: 1, order, routerLrScale: 2, loss: 'ce' } }), { model, optimizers, x, y, lr: 0.1, step: 0, adversary });
      const end = paramValues(model);
      assert.equal(adversary.snapshots.length, 2, 'fresh adversarial examples for each sub-step');
      const routerSet = names(model, (p) => p.group === 'router' && p.trainable);
      const expertSet = names(model, (p) => p.group === 'expert');
      const [s0, s1] = adversary.snapshots;
      const first = changed(s0, s1);
      const second = changed(s1, end);
      const [routerChanges, expertChanges] = order === 'router-first' ? [first, second] : [second, first];
      assert.deepEqual(new Set(routerChanges), routerSet, `${order}: router step changed ${routerChanges}`);
      assert.ok(expertChanges.length > 0 && expertChanges.every((n) => expertSet.has(n)), `${order}: expert step changed ${expertChanges}`);
      assert.ok(expertChanges.includes('runMean'), 'the expert step folds the batch statistics in');
      assert.ok(Number.isFinite(r.metrics.routerLoss) && Number.isFinite(r.metrics.expertLoss));
      assert.equal(r.metrics.loss, r.metrics.expertLoss);
      assert.equal(r.metrics.routerLr, 0.2);
      tf.dispose([x, y]);
    }
  });

  it('advmoe with loss trades: both steps on TRADES-KL examples, each minimising CE(f(x)) + β·KL(f(x) ‖ f(x′)) over its own group', async () => {
    const model = new TinyMoe({ seed: 25 });
    const optimizers = setup(model);
    const { x, y } = quadrantBatch(16, 4, 26);
    // A deterministic "attack" (the inverted image), so the losses can be computed beforehand.
    const xAdv = tf.sub(1, x) as tf.Tensor4D;
    const tradesLoss = () =>
      tf.tidy(() => {
        const clean = model.forward(x, { training: true }).logits;
        const adv = model.forward(xAdv, { training: true }).logits;
        const p = tf.softmax(clean);
        const kl = tf.sum(tf.mul(p, tf.sub(tf.logSoftmax(clean), tf.logSoftmax(adv)))).dataSync()[0] / 16;
        return crossEntropy(clean, y).dataSync()[0] + 6 * kl;
      });
    const expectedRouterLoss = tradesLoss();
    const kinds: string[] = [];
    const adversary = recording(model, async (_x, _y, l) => {
      kinds.push(l);
      return tf.clone(xAdv);
    });
    const r = await trainStep(methodConfig('advmoe', { advmoe: { period: 1, order: 'router-first', routerLrScale: 1, loss: 'trades' } }), {
      model, optimizers, x, y, lr: 0.1, step: 0, adversary,
    });
    assert.deepEqual(kinds, ['trades-kl', 'trades-kl']);
    const [s0, s1] = adversary.snapshots;
    assert.deepEqual(new Set(changed(s0, s1)), names(model, (p) => p.group === 'router' && p.trainable), 'the router step moves the routers only');
    assert.ok(changed(s1, paramValues(model)).every((n) => model.params.find((p) => p.name === n)!.group === 'expert'));
    assert.ok(Math.abs(r.metrics.routerLoss - expectedRouterLoss) < 1e-4, `router loss ${r.metrics.routerLoss} vs ${expectedRouterLoss}`);
    tf.dispose([x, y, xAdv]);
  });

  it('advmoe period p: router step on every p-th batch only', async () => {
    const model = new TinyMoe({ seed: 6 });
    const optimizers = setup(model);
    const adversary = recording(model, testAdversary(model));
    const { x, y } = quadrantBatch(16, 4, 7);
    const m = methodConfig('advmoe', { advmoe: { period: 3, order: 'router-first', routerLrScale: 1, loss: 'ce' } });
    const routerSet = names(model, (p) => p.group === 'router' && p.trainable);
    for (let step = 1; step <= 3; step++) {
      adversary.snapshots.length = 0;
      const before = paramValues(model);
      const r = await trainStep(m, { model, optimizers, x, y, lr: 0.1, step, adversary });
      const moved = changed(before, paramValues(model));
      if (step % 3 === 0) {
        assert.equal(adversary.snapshots.length, 2);
        assert.ok(moved.some((n) => routerSet.has(n)));
        assert.ok(Number.isFinite(r.metrics.routerLoss));
      } else {
        assert.equal(adversary.snapshots.length, 1, `step ${step}: expert step only`);
        assert.ok(!moved.some((n) => routerSet.has(n)), `step ${step}: routers must not move`);
        assert.equal(r.metrics.routerLoss, undefined);
      }
    }
    tf.dispose([x, y]);
  });

  it('official: expert update (routers frozen), then a fresh reference attack, then router update (experts frozen)', async () => {
    const model = new TinyMoe({ seed: 8 });
    const optimizers = setup(model);
    const kinds: string[] = [];
    const inner = testAdversary(model);
    const adversary = recording(model, async (x, y, l) => {
      kinds.push(l);
      return inner(x, y, l);
    });
    const { x, y } = quadrantBatch(16, 4, 9);
    const r = await trainStep(methodConfig('official'), { model, optimizers, x, y, lr: 0.1, step: 0, adversary });
    const [s0, s1] = adversary.snapshots;
    const expertChanges = changed(s0, s1);
    const routerChanges = changed(s1, paramValues(model));
    assert.deepEqual(kinds, ['reference-trades', 'reference-trades']);
    assert.ok(expertChanges.length > 0 && expertChanges.every((n) => model.params.find((p) => p.name === n)!.group === 'expert'), `${expertChanges}`);
    assert.deepEqual(new Set(routerChanges), names(model, (p) => p.group === 'router' && p.trainable));
    assert.ok(r.metrics.routerLoss > 0 && r.metrics.expertLoss > 0);
    tf.dispose([x, y]);
  });

  it('group isolation holds on the real tiny ResNet-18 MoE (per-layer and shared routers, real PGD)', async () => {
    const { makeAdversary } = await import('../../../engine/training/adversary');
    const { Rng } = await import('../../../engine/util/rng');
    for (const router of ['per-layer', 'shared'] as const) {
      const model = resnet({ router });
      const optimizers = setup(model);
      const { x, y } = quadrantBatch(8, 8, 10);
      const attack = { norm: 'linf' as const, eps: 0.1, stepSize: 0.05, steps: 1, randomStart: true, restarts: 1 };
      for (const kind of ['advmoe', 'official'] as const) {
        const adversary = recording(model, makeAdversary(model, attack, { rng: new Rng(1) }));
        const m = methodConfig(kind, { attack });
        const r = await trainStep(m, { model, optimizers, x, y, lr: 0.05, step: 0, adversary });
        const [s0, s1] = adversary.snapshots;
        const s2 = paramValues(model);
        const [routerChanges, expertChanges] = kind === 'advmoe' ? [changed(s0, s1), changed(s1, s2)] : [changed(s1, s2), changed(s0, s1)];
        const routerTrainable = names(model, (p) => p.group === 'router' && p.trainable);
        assert.ok(routerChanges.length > 0 && routerChanges.every((n) => routerTrainable.has(n)), `${router}/${kind}: router step changed ${routerChanges}`);
        assert.ok(expertChanges.length > 0, `${router}/${kind}: expert step changed nothing`);
        // A shared router's BN statistics (router group, not trainable) are folded in by the expert step.
        const expertOk = (n: string) => {
          const p = model.params.find((q) => q.name === n)!;
          return p.group === 'expert' || !p.trainable;
        };
        assert.ok(expertChanges.every(expertOk), `${router}/${kind}: expert step changed ${expertChanges.filter((n) => !expertOk(n))}`);
        assert.ok(Number.isFinite(r.metrics.loss) && Number.isFinite(r.metrics.routerLoss));
        assert.equal(r.expertLoad.length, model.moeLayers.length);
        for (const row of r.expertLoad) assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      }
      tf.dispose([x, y]);
    }
  });

  it('refuses advmoe and official on a dense model with a clear error', async () => {
    const model = resnet(null);
    const optimizers = setup(model);
    const { x, y } = quadrantBatch(4, 8, 11);
    for (const kind of ['advmoe', 'official'] as const) {
      assert.throws(() => checkMethodSupported(kind, model), (e) => isAdvMoEError(e, 'CONFIG_INVALID') && /dense/.test(e.message) && /nothing to route/.test(e.message));
      const adversary = testAdversary(model);
      await assert.rejects(trainStep(methodConfig(kind), { model, optimizers, x, y, lr: 0.1, step: 0, adversary }), (e) =>
        isAdvMoEError(e, 'CONFIG_INVALID') && e.message.includes(`"${kind}"`),
      );
      assert.equal(adversary.calls, 0, 'refused before any work');
    }
    // The joint methods are fine on a dense model.
    assert.doesNotThrow(() => checkMethodSupported('pgd-at', model));
    tf.dispose([x, y]);
  });

  it('NaN guard: a NaN loss raises NAN_LOSS naming step and loss, and leaves params, BN statistics and momentum unchanged', async () => {
    const model = new TinyMoe({ seed: 12 });
    const optimizers = setup(model);
    const twin = new TinyMoe({ seed: 12 });
    const twinOpt = setup(twin);
    const good = quadrantBatch(16, 4, 13);
    const good2 = quadrantBatch(16, 4, 14);
    await trainStep(methodConfig('standard'), { model, optimizers, ...good, lr: 0.1, step: 0 });
    await trainStep(methodConfig('standard'), { model: twin, optimizers: twinOpt, ...good, lr: 0.1, step: 0 });
    const before = paramValues(model);
    const bad = tf.tidy(() => tf.where(tf.equal(tf.range(0, 16 * 16).reshape([16, 4, 4, 1]), 5), tf.fill([16, 4, 4, 1], NaN), good.x) as tf.Tensor4D);
    await assert.rejects(trainStep(methodConfig('standard'), { model, optimizers, x: bad, y: good.y, lr: 0.1, step: 7 }), (e) =>
      isAdvMoEError(e, 'NAN_LOSS') && /step 7/.test(e.message) && /loss is NaN/.test(e.message),
    );
    assert.deepEqual(changed(before, paramValues(model)), [], 'parameters and statistics are those from before the step');
    // Momentum too: the next good step gives exactly what a run that never saw the bad batch gives.
    await trainStep(methodConfig('standard'), { model, optimizers, ...good2, lr: 0.1, step: 8 });
    await trainStep(methodConfig('standard'), { model: twin, optimizers: twinOpt, ...good2, lr: 0.1, step: 1 });
    assert.deepEqual(changed(paramValues(twin), paramValues(model)), []);
    tf.dispose([bad, good.x, good.y, good2.x, good2.y]);
  });

  it('NaN guard: a failing expert step also undoes the same step\'s router update (atomic step)', async () => {
    const model = new TinyMoe({ seed: 15 });
    const optimizers = setup(model);
    const { x, y } = quadrantBatch(16, 4, 16);
    const inner = testAdversary(model);
    let calls = 0;
    const adversary: AdversaryFn = async (xx, yy, l) => (++calls === 2 ? (tf.fill(xx.shape, NaN) as tf.Tensor4D) : inner(xx, yy, l));
    const before = paramValues(model);
    await assert.rejects(trainStep(methodConfig('advmoe'), { model, optimizers, x, y, lr: 0.1, step: 3, adversary }), (e) =>
      isAdvMoEError(e, 'NAN_LOSS') && /step 3/.test(e.message) && /expert loss is NaN/.test(e.message),
    );
    assert.equal(calls, 2);
    assert.deepEqual(changed(before, paramValues(model)), []);
    tf.dispose([x, y]);
  });

  it('reads the step\'s metrics with a single data() call and no dataSync', async () => {
    const model = new TinyMoe({ seed: 17 });
    const optimizers = setup(model);
    const { x, y } = quadrantBatch(16, 4, 18);
    const adversary = testAdversary(model);
    const proto = tf.Tensor.prototype as unknown as { data: (...a: unknown[]) => Promise<unknown>; dataSync: (...a: unknown[]) => unknown };
    const { data, dataSync } = proto;
    let reads = 0;
    let syncReads = 0;
    proto.data = function (this: tf.Tensor, ...a: unknown[]) {
      reads++;
      return data.apply(this, a);
    };
    proto.dataSync = function (this: tf.Tensor, ...a: unknown[]) {
      syncReads++;
      return dataSync.apply(this, a);
    };
    try {
      for (const kind of ['standard', 'pgd-at', 'trades', 'advmoe', 'official'] as const) {
        reads = syncReads = 0;
        await trainStep(methodConfig(kind), { model, optimizers, x, y, lr: 0.1, step: 0, adversary });
        assert.equal(reads, 1, `${kind}: data() calls`);
        assert.equal(syncReads, 0, `${kind}: dataSync() calls`);
      }
    } finally {
      proto.data = data;
      proto.dataSync = dataSync;
    }
    tf.dispose([x, y]);
  });

  it('leaks no tensors over many steps of every method', async () => {
    const kinds: MethodName[] = ['standard', 'pgd-at', 'trades', 'advmoe', 'official'];
    for (const kind of kinds) {
      const model = new TinyMoe({ seed: 19 });
      const optimizers = setup(model);
      const adversary = testAdversary(model);
      const collapse = new CollapseDetector(model.moeLayers, model.topK, model.numExperts, { window: 5 });
      const { x, y } = quadrantBatch(16, 4, 20);
      const m: MethodConfig = methodConfig(kind, { advmoe: { period: 2, order: 'expert-first', routerLrScale: 0.5, loss: 'ce' } });
      await trainStep(m, { model, optimizers, x, y, lr: 0.1, step: 0, adversary, collapse });
      const start = tf.memory().numTensors;
      for (let step = 1; step <= 40; step++) await trainStep(m, { model, optimizers, x, y, lr: 0.1, step, adversary, collapse });
      assert.equal(tf.memory().numTensors, start, `${kind}: tensor count grew`);
      tf.dispose([x, y]);
    }
  });

  it('leaks no tensors with the real ResNet and the real PGD (advmoe, official)', async () => {
    const { makeAdversary } = await import('../../../engine/training/adversary');
    const { Rng } = await import('../../../engine/util/rng');
    const model = resnet({ router: 'shared' });
    const optimizers = setup(model);
    const { x, y } = quadrantBatch(8, 8, 21);
    const attack = { norm: 'linf' as const, eps: 0.1, stepSize: 0.05, steps: 1, randomStart: true, restarts: 1 };
    const adversary = makeAdversary(model, attack, { rng: new Rng(2) });
    for (const kind of ['advmoe', 'official'] as const) {
      await trainStep(methodConfig(kind, { attack }), { model, optimizers, x, y, lr: 0.05, step: 0, adversary });
      const start = tf.memory().numTensors;
      for (let step = 1; step <= 3; step++) await trainStep(methodConfig(kind, { attack }), { model, optimizers, x, y, lr: 0.05, step, adversary });
      assert.equal(tf.memory().numTensors, start, `${kind}: tensor count grew`);
    }
    tf.dispose([x, y]);
  });

  it('reports router collapse through the detector', async () => {
    const model = new TinyMoe({ seed: 22 });
    const optimizers = setup(model);
    // Push every input to expert 1: a large router bias.
    model.params.find((p) => p.name === 'router.b')!.variable.assign(tf.tensor1d([-50, 50]));
    const collapse = new CollapseDetector(model.moeLayers, model.topK, model.numExperts, { window: 4 });
    const { x, y } = quadrantBatch(16, 4, 23);
    const warnings: string[][] = [];
    for (let step = 0; step < 6; step++) warnings.push((await trainStep(methodConfig('standard'), { model, optimizers, x, y, lr: 0.01, step, collapse })).warnings);
    assert.deepEqual(warnings.map((w) => w.length), [0, 0, 0, 1, 0, 0]);
    assert.match(warnings[3][0], /step 3: the router of moe sent 100\.0% of its inputs to expert 1/);
    tf.dispose([x, y]);
  });
});
