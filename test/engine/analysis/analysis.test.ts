import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { fgsm, routingMasks } from '../../../engine/attacks';
import { analyzeRobustness, type BatchDetail, evaluateAttack, fgsmSettings, inspectSamples, quickEval, type RobustnessReport } from '../../../engine/analysis';
import type { EvalConfig } from '../../../engine/config/types';
import { createModel } from '../../../engine/models/factory';
import type { ForwardOptions, Model } from '../../../engine/models/types';
import { isAdvMoEError } from '../../../engine/util/errors';
import { Rng } from '../../../engine/util/rng';
import { setupTestBackend } from '../helpers';
import { type Dataset, experts, norms, synthetic, tensors, ToyMoe, train } from '../attacks/fixtures';

const SHAPE: [number, number, number] = [6, 6, 1];
const CFG: EvalConfig = {
  attack: { norm: 'linf', eps: 0.1, stepSize: 0.025, steps: 4, randomStart: true, restarts: 1 },
  samples: 40,
  epsCurve: [0, 0.05, 0.1],
  everyEpochs: 0,
};

/** Direct predictions (one forward). */
function preds(model: Model, x: tf.Tensor4D, opts: ForwardOptions = { training: false }): number[] {
  return tf.tidy(() => Array.from(tf.argMax(model.forward(x, opts).logits, 1).dataSync()));
}
function probs(model: Model, x: tf.Tensor4D): number[][][] {
  return tf.tidy(() => model.forward(x, { training: false }).routing.map((r) => r.probs.arraySync()));
}
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: report ${a}, direct ${b}`);

/** Keeps copies of what onBatch shows (its tensors die after the call). */
function recorder() {
  const kept: { ids: number[]; x: tf.Tensor4D; y: tf.Tensor1D; xAdv: tf.Tensor4D; xRouter?: tf.Tensor4D; xExpert?: tf.Tensor4D; xPerExpert?: tf.Tensor4D[] }[] = [];
  const onBatch = (d: BatchDetail) =>
    kept.push({
      ids: d.ids,
      x: d.x.clone(),
      y: d.y.clone(),
      xAdv: d.xAdv.clone(),
      xRouter: d.xRouter?.clone(),
      xExpert: d.xExpert?.clone(),
      xPerExpert: d.xPerExpert?.map((t) => t.clone()),
    });
  const dispose = () => kept.forEach((k) => tf.dispose([k.x, k.y, k.xAdv, k.xRouter, k.xExpert, ...(k.xPerExpert ?? [])].filter((t) => t !== undefined) as tf.Tensor[]));
  return { kept, onBatch, dispose };
}

describe('robustness analysis', () => {
  let toy: ToyMoe;
  let data: Dataset;

  before(async () => {
    await setupTestBackend();
    data = synthetic(64, 4, SHAPE, 1, 0.15);
    // N = 3, k = 2: loads sum to 2 and "changed" means a different expert *set*.
    toy = new ToyMoe(SHAPE, 4, 3, 2, 12, 5);
    train(toy, data, 120, 0.1, 'expert');
  });

  it('every figure equals a direct computation from the model and the attacked inputs', async () => {
    const rec = recorder();
    const progress: [number, number][] = [];
    const partials: { report: RobustnessReport; done: number; total: number }[] = [];
    const report = await analyzeRobustness(toy, { x: data.x, y: data.y }, CFG, {
      rng: new Rng(1),
      batchSize: 16,
      onBatch: rec.onBatch,
      onProgress: (d, t) => progress.push([d, t]),
      onPartial: (r, done, total) => partials.push({ report: structuredClone(r), done, total }),
    });
    const n = 40;
    assert.equal(report.samples, n);
    assert.deepEqual(rec.kept.flatMap((k) => k.ids), Array.from({ length: n }, (_, i) => i), 'batches cover the first `samples` ids in order');
    assert.deepEqual(rec.kept.map((k) => k.ids.length), [16, 16, 8]);

    const L = 2;
    let saC = 0, raC = 0, routerC = 0, expertC = 0, fgsmC = 0, kept = 0;
    const changed = [0, 0];
    const load = () => Array.from({ length: L }, () => [0, 0, 0]);
    const [lc, la] = [load(), load()];
    const pc = Array.from({ length: L }, () => Array.from({ length: 4 }, () => [0, 0, 0]));
    const pa = Array.from({ length: L }, () => Array.from({ length: 4 }, () => [0, 0, 0]));
    const top1 = Array.from({ length: L }, () => [0, 0, 0]);
    const sets = Array.from({ length: L }, () => new Map<string, number>());
    const cells = { keptRight: [] as number[], keptWrong: [] as number[], changedRight: [] as number[], changedWrong: [] as number[] };
    const per = { labels: [] as number[], predClean: [] as number[], predAdv: [] as number[], routeClean: [[], []] as number[][], routeAdv: [[], []] as number[][] };
    const correctAfter: number[] = [];
    for (const k of rec.kept) {
      const y = Array.from(k.y.dataSync());
      const clean = routingMasks(toy, k.x);
      const eClean = experts(clean);
      const adv = routingMasks(toy, k.xAdv);
      const eAdv = experts(adv);
      const eRouter = experts(routingMasks(toy, k.xRouter!));
      const pClean = preds(toy, k.x), pAdv = preds(toy, k.xAdv), pRouter = preds(toy, k.xRouter!);
      const pExpert = preds(toy, k.xExpert!, { training: false, routing: { kind: 'fixed', masks: clean } });
      const prob = probs(toy, k.x);
      const f = await fgsm(toy, k.x, k.y, fgsmSettings(CFG.attack), { rng: new Rng(0) });
      const pF = preds(toy, f.xAdv);
      assert.equal(k.xPerExpert, undefined, 'no per-expert attack on a k = 2 model');
      y.forEach((label, i) => {
        per.labels.push(label);
        per.predClean.push(pClean[i]);
        per.predAdv.push(pAdv[i]);
        for (let l = 0; l < L; l++) {
          per.routeClean[l].push(...eClean[l][i]);
          per.routeAdv[l].push(...eAdv[l][i]);
        }
        saC += +(pClean[i] === label);
        raC += +(pAdv[i] === label);
        routerC += +(pRouter[i] === label);
        expertC += +(pExpert[i] === label);
        fgsmC += +(pF[i] === label);
        let any = false;
        for (let l = 0; l < L; l++) {
          const same = eClean[l][i].join() === eAdv[l][i].join();
          if (!same) {
            changed[l]++;
            any = true;
          }
          kept += +(eClean[l][i].join() === eRouter[l][i].join());
          for (const e of eClean[l][i]) {
            lc[l][e]++;
            pc[l][label][e]++;
          }
          sets[l].set(eClean[l][i].join(), (sets[l].get(eClean[l][i].join()) ?? 0) + 1);
          for (const e of eAdv[l][i]) {
            la[l][e]++;
            pa[l][label][e]++;
          }
          const p = prob[l][i];
          top1[l][p.indexOf(Math.max(...p))]++;
        }
        const right = pAdv[i] === label;
        (any ? (right ? cells.changedRight : cells.changedWrong) : right ? cells.keptRight : cells.keptWrong).push(k.ids[i]);
      });
      tf.dispose([...clean, ...adv, f.xAdv]);
      correctAfter.push(saC);
    }
    close(report.sa, saC / n, 'SA');
    close(report.ra, raC / n, 'RA');
    close(report.routerRobustness!.decisionsKept, kept / (n * L), 'decisions kept');
    close(report.routerRobustness!.accuracy, routerC / n, 'router accuracy');
    close(report.expertRobustness!.accuracy, expertC / n, 'expert accuracy');
    // k = 2: one expert alone is not a configuration this model was trained for (see the k = 1 test below).
    assert.deepEqual(report.perExpert, []);
    assert.match(report.perExpertNote!, /n\/a: the model routes each input to k = 2 experts/);
    assert.deepEqual(report.attacks.map((a) => a.name), ['fgsm', 'pgd', 'apgd-ce', 'router', 'expert']);
    close(report.attacks[0].accuracy, fgsmC / n, 'FGSM (deterministic) accuracy');
    close(report.attacks[1].accuracy, report.ra, 'PGD row = RA');
    close(report.attacks[3].accuracy, report.routerRobustness!.accuracy, 'router row');
    close(report.attacks[4].accuracy, report.expertRobustness!.accuracy, 'expert row');
    assert.deepEqual(report.raCurve.map((c) => c.eps), CFG.epsCurve);
    close(report.raCurve[0].ra, report.sa, 'curve at ε=0');
    close(report.raCurve[2].ra, report.ra, 'curve at the RA ε');
    assert.equal(report.mismatch!.keptRight.length + report.mismatch!.keptWrong.length + report.mismatch!.changedRight.length + report.mismatch!.changedWrong.length, n);
    assert.deepEqual(report.mismatch, cells);
    assert.deepEqual([...Object.values(cells).flat()].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i), 'cells partition the samples');
    const classCounts = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) classCounts[data.y[i]]++;
    report.layers.forEach((layer, l) => {
      assert.equal(layer.layer, toy.moeLayers[l].name);
      close(layer.changeRate, changed[l] / n, `${layer.layer} change rate`);
      layer.loadClean.forEach((v, e) => close(v, lc[l][e] / n, `${layer.layer} clean load ${e}`));
      layer.loadAdv.forEach((v, e) => close(v, la[l][e] / n, `${layer.layer} adv load ${e}`));
      assert.ok(Math.abs(layer.loadClean.reduce((s, v) => s + v) - toy.topK) < 1e-9, 'clean load sums to k');
      assert.ok(Math.abs(layer.loadAdv.reduce((s, v) => s + v) - toy.topK) < 1e-9, 'adversarial load sums to k');
      assert.deepEqual(layer.perClassClean, pc[l]);
      assert.deepEqual(layer.perClassAdv, pa[l]);
      layer.perClassClean.forEach((row, c) => assert.equal(row.reduce((s, v) => s + v), classCounts[c] * toy.topK));
      close(layer.top1Share!, Math.max(...top1[l]) / n, `${layer.layer} top-1 share`);
      const decisionShare = Math.max(...sets[l].values()) / n;
      close(layer.decisionShare!, decisionShare, `${layer.layer} decision share`);
      assert.equal(layer.collapsed, decisionShare > 0.9, 'collapsed = the same expert set for > 90% of inputs');
    });
    assert.ok(report.layers.some((l) => l.changeRate > 0), 'the attack changed some routing: the check above is not vacuous');
    // Per-sample columns: the same predictions and expert sets, consistent with the cells.
    const ps = report.perSample!;
    assert.deepEqual(ps.ids, Array.from({ length: n }, (_, i) => i));
    assert.equal(ps.k, 2);
    assert.deepEqual([ps.labels, ps.predClean, ps.predAdv], [per.labels, per.predClean, per.predAdv]);
    assert.deepEqual([ps.routeClean, ps.routeAdv], [per.routeClean, per.routeAdv]);
    for (const c of [ps.confClean, ps.confAdv]) assert.ok(c.length === n && c.every((v) => v >= 1 / 4 - 1e-6 && v <= 1), 'confidences are max softmax probabilities');
    // Partial reports after each batch but the last: the figures over the samples done so far.
    assert.deepEqual(partials.map((p) => [p.done, p.total]), [[16, n], [32, n]]);
    partials.forEach((p, b) => {
      assert.equal(p.report.samples, p.done);
      close(p.report.sa, correctAfter[b] / p.done, `partial SA after batch ${b + 1}`);
      assert.equal(p.report.perSample, undefined, 'per-sample columns come with the final report only');
      const m = p.report.mismatch!;
      assert.equal(m.keptRight.length + m.keptWrong.length + m.changedRight.length + m.changedWrong.length, p.done);
    });
    const f = toy.flops();
    assert.deepEqual([report.cost.denseFlops, report.cost.activeFlops], [f.dense, f.active]);
    close(report.cost.reduction, 1 - f.active / f.dense, 'FLOP reduction');
    assert.ok(report.cost.latencyMs!.moe! > 0 && report.cost.latencyMs!.batch === 16);
    // Progress: non-decreasing, fixed total, ends at the total.
    assert.ok(progress.length > 5);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] >= progress[i - 1][0] && progress[i][1] === progress[0][1]);
    assert.deepEqual(progress[progress.length - 1], [progress[0][1], progress[0][1]]);
    rec.dispose();
  });

  it('parts can be switched off, and a leak-free report is reproducible from its seed', async () => {
    const cfg = { ...CFG, samples: 24 };
    const parts = { perExpert: false, attackTable: false, curve: false, routing: false, latency: false };
    const start = tf.memory().numTensors;
    const a = await analyzeRobustness(toy, { x: data.x, y: data.y }, cfg, { rng: new Rng(3), batchSize: 10, parts });
    assert.equal(tf.memory().numTensors, start, 'analysis leaked tensors');
    const b = await analyzeRobustness(toy, { x: data.x, y: data.y }, cfg, { rng: new Rng(3), batchSize: 10, parts });
    assert.deepEqual({ ...a, seconds: 0 }, { ...b, seconds: 0 });
    assert.deepEqual([a.perExpert, a.attacks, a.raCurve], [[], [], []]);
    assert.equal(a.routerRobustness, null);
    assert.equal(a.expertRobustness, null);
    assert.equal(a.cost.latencyMs, undefined);
    // quickEval uses the analysis' PGD stream, so it gives the same RA when everything fits one batch.
    const { x, y } = tensors(data, 0, 24);
    const full = await analyzeRobustness(toy, { x, y }, { ...cfg, samples: 0 }, { rng: new Rng(4), batchSize: 64, parts });
    const q = await quickEval(toy, x, y, cfg.attack, { rng: new Rng(4) });
    assert.deepEqual({ sa: q.sa, ra: q.ra }, { sa: full.sa, ra: full.ra });
    // Its routing balance is the analysis' decision share of the clean inputs, per layer, over batches of any size.
    const routed = await analyzeRobustness(toy, { x, y }, { ...cfg, samples: 0 }, { rng: new Rng(4), batchSize: 64, parts: { ...parts, routing: true } });
    const inBatches = await quickEval(toy, x, y, cfg.attack, { rng: new Rng(4), batchSize: 5 });
    assert.equal(q.routingShares.length, toy.moeLayers.length);
    assert.deepEqual(q.routingShares, routed.layers!.map((l) => l.decisionShare));
    assert.deepEqual(inBatches.routingShares, q.routingShares);
    const e = await evaluateAttack(toy, x, y, 'fgsm', fgsmSettings(cfg.attack));
    assert.equal(e.samples, 24);
    assert.ok(e.accuracy <= full.sa);
    tf.dispose([x, y]);
  });

  it('each metric has its own random stream: the same seed gives the same figures whichever other parts run', async () => {
    const cfg = { ...CFG, samples: 24 };
    // What train's final analysis computes, and what `advmoe eval` computes (everything).
    const finalParts = { perExpert: false, attackTable: false, curve: false, routing: true, latency: false };
    const evalParts = { perExpert: true, attackTable: true, curve: true, routing: true, latency: false };
    const a = await analyzeRobustness(toy, { x: data.x, y: data.y }, cfg, { rng: new Rng(9), batchSize: 10, parts: finalParts });
    const b = await analyzeRobustness(toy, { x: data.x, y: data.y }, cfg, { rng: new Rng(9), batchSize: 10, parts: evalParts });
    const headline = (r: RobustnessReport) => ({ sa: r.sa, ra: r.ra, router: r.routerRobustness, expert: r.expertRobustness, mismatch: r.mismatch, layers: r.layers });
    assert.deepEqual(headline(a), headline(b));
    // The random starts matter (another seed moves some figure), so the equality above is not vacuous.
    const c = await analyzeRobustness(toy, { x: data.x, y: data.y }, cfg, { rng: new Rng(10), batchSize: 10, parts: finalParts });
    assert.notDeepEqual({ ...headline(a), layers: null, mismatch: null }, { ...headline(c), layers: null, mismatch: null }, 'seed 10 gave the very same figures as seed 9');
  });

  it('per-expert robustness of a k = 1 model equals forced routing, computed directly', async () => {
    const m = new ToyMoe(SHAPE, 4, 2, 1, 8, 9);
    train(m, data, 60, 0.1, 'expert');
    const rec = recorder();
    const cfg = { ...CFG, samples: 20 };
    const report = await analyzeRobustness(m, { x: data.x, y: data.y }, cfg, { rng: new Rng(2), batchSize: 10, onBatch: rec.onBatch, parts: { attackTable: false, curve: false, latency: false } });
    assert.equal(report.perExpertNote, undefined);
    const sa = [0, 0];
    const ra = [0, 0];
    for (const k of rec.kept) {
      const y = Array.from(k.y.dataSync());
      for (let ex = 0; ex < 2; ex++) {
        const force = { training: false, routing: { kind: 'force' as const, expert: ex } };
        sa[ex] += preds(m, k.x, force).filter((p, i) => p === y[i]).length;
        ra[ex] += preds(m, k.xPerExpert![ex], force).filter((p, i) => p === y[i]).length;
      }
    }
    assert.equal(report.perExpert.length, 2);
    report.perExpert.forEach((p, e) => {
      close(p.sa, sa[e] / 20, `expert ${e} SA`);
      close(p.ra, ra[e] / 20, `expert ${e} RA`);
    });
    rec.dispose();
    m.dispose();
  });

  it('flags a collapsed router (one expert for all inputs) and a NaN router', async () => {
    const m = new ToyMoe(SHAPE, 4, 2, 1, 8, 9);
    // Zero router-1 weights: equal scores, ties go to expert 0 for every input.
    const r1 = m.params.find((p) => p.name === 'r1')!.variable;
    r1.assign(tf.zerosLike(r1));
    const fast = { perExpert: false, attackTable: false, curve: false, routing: false, latency: false };
    const cfg = { ...CFG, samples: 16, attack: { ...CFG.attack, steps: 1 } };
    let report = await analyzeRobustness(m, { x: data.x, y: data.y }, cfg, { rng: new Rng(1), parts: fast });
    assert.deepEqual([report.layers[0].collapsed, report.layers[0].loadClean], [true, [1, 0]]);
    assert.equal(report.layers[1].collapsed, report.layers[1].decisionShare! > 0.9);
    const r2 = m.params.find((p) => p.name === 'r2')!.variable;
    r2.assign(tf.fill(r2.shape, NaN));
    report = await analyzeRobustness(m, { x: data.x, y: data.y }, cfg, { rng: new Rng(1), parts: fast });
    assert.equal(report.layers[1].nonFinite, 16);
    assert.equal(report.layers[1].collapsed, true);
    m.dispose();
  });

  it('cancellation stops the analysis with CANCELLED and releases every tensor', async () => {
    const start = tf.memory().numTensors;
    const ctl = new AbortController();
    let calls = 0;
    await assert.rejects(
      analyzeRobustness(toy, { x: data.x, y: data.y }, CFG, {
        rng: new Rng(1),
        batchSize: 8,
        signal: ctl.signal,
        onProgress: () => {
          if (++calls === 3) ctl.abort();
        },
      }),
      (e) => isAdvMoEError(e, 'CANCELLED'),
    );
    assert.equal(calls, 3, 'no progress after cancellation');
    assert.equal(tf.memory().numTensors, start);
  });

  it('inspectSamples: clean/adversarial images, predictions and routing match direct computation', async () => {
    const ids = [5, 0, 17];
    const { x: all, y: ally } = tensors(data);
    for (const freezeRouting of [false, true]) {
      const out = await inspectSamples(toy, data.x, data.y, ids, { attack: 'pgd', config: CFG.attack, eps: 0.2, freezeRouting, rng: new Rng(2) });
      assert.equal(out.length, 3);
      const sel = tf.tidy(() => tf.gather(all, tf.tensor1d(ids, 'int32')) as tf.Tensor4D);
      const adv = tf.tensor4d(out.flatMap((s) => s.adversarial), [3, ...SHAPE]);
      const n = norms(adv, sel);
      assert.ok(Math.max(...n.linf) <= 0.2 + 1e-6 && Math.max(...n.linf) > 0.1, `ε override: L∞ ${Math.max(...n.linf)}`);
      const cleanMasks = routingMasks(toy, sel);
      const eClean = experts(cleanMasks);
      const eAdv = experts(routingMasks(toy, adv));
      const pClean = preds(toy, sel);
      const pAdv = preds(toy, adv, freezeRouting ? { training: false, routing: { kind: 'fixed', masks: cleanMasks } } : { training: false });
      const conf = tf.tidy(() => Array.from(tf.max(tf.softmax(toy.forward(sel, { training: false }).logits), 1).dataSync()));
      out.forEach((s, i) => {
        assert.equal(s.id, ids[i]);
        assert.equal(s.label, data.y[ids[i]]);
        assert.deepEqual(s.clean, Array.from(data.x.subarray(ids[i] * 36, ids[i] * 36 + 36)));
        assert.equal(s.predClean, pClean[i]);
        assert.ok(Math.abs(s.confClean - conf[i]) < 1e-6);
        assert.equal(s.predAdv, pAdv[i]);
        assert.equal(s.frozenRouting, freezeRouting);
        assert.equal(s.eps, 0.2);
        s.routing.forEach((r, l) => {
          assert.deepEqual(r.expertsClean, eClean[l][i]);
          assert.deepEqual(r.expertsAdv, eAdv[l][i]);
          assert.equal(r.changed, eClean[l][i].join() !== eAdv[l][i].join());
          assert.ok(Math.abs(r.probsClean.reduce((a, b) => a + b) - 1) < 1e-5);
        });
      });
      tf.dispose([sel, adv, ...cleanMasks]);
    }
    await assert.rejects(inspectSamples(toy, data.x, data.y, [0], { attack: 'router', config: CFG.attack, freezeRouting: true }), (e) => isAdvMoEError(e, 'INVALID_ARGUMENT'));
    await assert.rejects(inspectSamples(toy, data.x, data.y, [64], { attack: 'pgd', config: CFG.attack }), (e) => isAdvMoEError(e, 'INVALID_ARGUMENT'));
    tf.dispose([all, ally]);
  });

  describe('real ResNet-18 (tiny)', () => {
    const shape: [number, number, number] = [12, 12, 1];
    const spec = { inputShape: shape, numClasses: 4, mean: [0.5], std: [0.25] };
    const moe = { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, router: 'shared' as const, routerNorm: true, layers: 'all-blocks' as const };
    const cfg: EvalConfig = { attack: { ...CFG.attack, steps: 1 }, samples: 0, epsCurve: [0.05], everyEpochs: 0 };

    it('dense model: null router/expert robustness, no layers, no mismatch', async () => {
      const dense = createModel({ backbone: 'resnet18', preset: 'tiny', widthMultiplier: 0.25, moe: { ...moe, enabled: false } }, spec, 1);
      const d = synthetic(8, 4, shape, 2);
      const r = await analyzeRobustness(dense, { x: d.x, y: d.y }, cfg, { rng: new Rng(1), batchSize: 8 });
      assert.equal(r.routerRobustness, null);
      assert.equal(r.expertRobustness, null);
      assert.deepEqual([r.layers, r.perExpert, r.mismatch], [[], [], null]);
      assert.deepEqual(r.attacks.map((a) => a.name), ['fgsm', 'pgd', 'apgd-ce']);
      assert.equal(r.cost.reduction, 0);
      assert.ok(r.cost.latencyMs!.dense! > 0);
      const ins = await inspectSamples(dense, d.x, d.y, [1], { attack: 'fgsm', config: cfg.attack });
      assert.deepEqual(ins[0].routing, []);
      await assert.rejects(inspectSamples(dense, d.x, d.y, [1], { attack: 'pgd', config: cfg.attack, freezeRouting: true }), (e) => isAdvMoEError(e, 'INVALID_ARGUMENT'));
      dense.dispose();
    });

    it('MoE model with a shared router: per-layer figures are consistent', async () => {
      const net = createModel({ backbone: 'resnet18', preset: 'tiny', widthMultiplier: 0.25, moe }, spec, 1);
      const d = synthetic(8, 4, shape, 2);
      const r = await analyzeRobustness(net, { x: d.x, y: d.y }, cfg, { rng: new Rng(1), batchSize: 8, parts: { perExpert: false } });
      assert.equal(r.layers.length, net.moeLayers.length);
      // One shared router: every layer reports the same decision, so the same statistics.
      for (const layer of r.layers) {
        assert.deepEqual(layer.loadClean, r.layers[0].loadClean);
        assert.equal(layer.changeRate, r.layers[0].changeRate);
        assert.ok(Math.abs(layer.loadAdv.reduce((s, v) => s + v) - 1) < 1e-9);
      }
      const changedIds = [...r.mismatch!.changedRight, ...r.mismatch!.changedWrong].length;
      close(changedIds / 8, r.layers[0].changeRate, 'changed cells vs change rate (shared router)');
      // One router decides for every layer, so a sample keeps all L decisions or none: kept · 8 samples is whole.
      const keptSamples = r.routerRobustness!.decisionsKept * 8;
      close(keptSamples, Math.round(keptSamples), 'decisions kept per sample: all layers or none');
      // At this width the shared router CNN costs more than the backbone it saves: the reduction can be
      // negative, and the report must say so rather than clamp it.
      const f = net.flops();
      assert.deepEqual([r.cost.denseFlops, r.cost.activeFlops], [f.dense, f.active]);
      close(r.cost.reduction, 1 - f.active / f.dense, 'FLOP reduction');
      net.dispose();
    });
  });
});
