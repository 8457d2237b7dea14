/**
 * Evaluation inside the training job: a cheap SA/RA at epoch ends (its own small sample, so that it does
 * not dominate training time) and, at the end, the headline analysis: SA, RA, router and expert robustness.
 * The full analysis (per-expert, attack table, RA-vs-ε curve) is `advmoe eval` / the Evaluate command.
 */
import { analyzeRobustness, quickEval, type BatchDetail, type QuickEvalResult, type RobustnessReport } from '../analysis';
import type { ExperimentConfig } from '../config/types';
import { type Dataset, gatherImages, gatherLabels } from '../data';
import type { Model } from '../models/types';
import { Rng } from '../util/rng';
import type { JobContext } from './context';

/** Samples of the periodic SA/RA check during training. */
export const PERIODIC_EVAL_SAMPLES = 256;

/** The first n test samples (the test subset is already a seeded draw) as host arrays. */
export function evalArrays(test: Dataset, n: number): { x: Float32Array; y: Int32Array; n: number } {
  const count = n > 0 ? Math.min(n, test.count) : test.count;
  const idx = Int32Array.from({ length: count }, (_, i) => i);
  return { x: gatherImages(test, idx), y: gatherLabels(test, idx), n: count };
}

export async function periodicEval(model: Model, test: Dataset, cfg: ExperimentConfig, ctx: JobContext, runId: string): Promise<QuickEvalResult> {
  const { x, y, n } = evalArrays(test, Math.min(cfg.eval.samples || test.count, PERIODIC_EVAL_SAMPLES));
  ctx.reporter.progress({ runId, message: `evaluating SA/RA on ${n} test samples`, done: 0, total: n });
  return quickEval(model, x, y, cfg.eval.attack, { rng: new Rng(cfg.seed ^ 0xe7a1), batchSize: 128, signal: ctx.signal });
}

/** Pixels in [0,1] → bytes (·255, rounded, clamped): how images are stored for the Inspector. */
export function toBytes(v: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(v[i] * 255)));
  return out;
}

/** Collects the full attack's inputs of an analysis (BatchDetail.xAdv) as bytes, sample i at i·H·W·C. */
export function adversarialRecorder(model: Model, n: number): { bytes: Uint8Array; onBatch: (d: BatchDetail) => void } {
  const [h, w, c] = model.inputShape;
  const per = h * w * c;
  const bytes = new Uint8Array(n * per);
  return { bytes, onBatch: (d) => bytes.set(toBytes(d.xAdv.dataSync()), d.ids[0] * per) };
}

/** The headline analysis at the end of training, with the adversarial inputs it attacked (for the Inspector). */
export async function finalAnalysis(model: Model, test: Dataset, cfg: ExperimentConfig, ctx: JobContext, runId: string): Promise<{ report: RobustnessReport; adversarial: Uint8Array }> {
  const { x, y, n } = evalArrays(test, cfg.eval.samples);
  const recorder = adversarialRecorder(model, n);
  ctx.reporter.log('info', `final analysis on ${n} test samples: SA, RA (${cfg.eval.attack.norm} ε=${+cfg.eval.attack.eps.toFixed(4)}, PGD-${cfg.eval.attack.steps}), router and expert robustness`);
  const started = Date.now();
  const report = await analyzeRobustness(model, { x, y }, cfg.eval, {
    rng: new Rng(cfg.seed ^ 0xf1a1),
    batchSize: 128,
    signal: ctx.signal,
    onBatch: recorder.onBatch,
    parts: { routing: true, perExpert: false, attackTable: false, curve: false, latency: false },
    onProgress: (done, total, message) =>
      ctx.reporter.progress({ runId, message: `final analysis: ${message}`, done, total, eta: done > 0 ? ((Date.now() - started) / 1000) * (total / done - 1) : undefined }),
  });
  return { report, adversarial: recorder.bytes };
}
