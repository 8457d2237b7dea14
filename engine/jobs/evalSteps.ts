/**
 * Evaluation inside the training job: a cheap SA/RA at epoch ends (its own small sample, so that it does
 * not dominate training time) and, at the end, the headline analysis: SA, RA, router and expert robustness.
 * The full analysis (per-expert, attack table, RA-vs-ε curve) is `advmoe eval` / the Evaluate command.
 */
import { analyzeRobustness, quickEval, type RobustnessReport } from '../analysis';
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

export async function periodicEval(model: Model, test: Dataset, cfg: ExperimentConfig, ctx: JobContext, runId: string): Promise<{ sa: number; ra: number }> {
  const { x, y, n } = evalArrays(test, Math.min(cfg.eval.samples || test.count, PERIODIC_EVAL_SAMPLES));
  ctx.reporter.progress({ runId, message: `evaluating SA/RA on ${n} test samples`, done: 0, total: n });
  return quickEval(model, x, y, cfg.eval.attack, { rng: new Rng(cfg.seed ^ 0xe7a1), batchSize: 128, signal: ctx.signal });
}

export async function finalAnalysis(model: Model, test: Dataset, cfg: ExperimentConfig, ctx: JobContext, runId: string): Promise<RobustnessReport> {
  const { x, y, n } = evalArrays(test, cfg.eval.samples);
  ctx.reporter.log('info', `final analysis on ${n} test samples: SA, RA (${cfg.eval.attack.norm} ε=${+cfg.eval.attack.eps.toFixed(4)}, PGD-${cfg.eval.attack.steps}), router and expert robustness`);
  const started = Date.now();
  return analyzeRobustness(model, { x, y }, cfg.eval, {
    rng: new Rng(cfg.seed ^ 0xf1a1),
    batchSize: 128,
    signal: ctx.signal,
    parts: { routing: true, perExpert: false, attackTable: false, curve: false, latency: false },
    onProgress: (done, total, message) =>
      ctx.reporter.progress({ runId, message: `final analysis: ${message}`, done, total, eta: done > 0 ? ((Date.now() - started) / 1000) * (total / done - 1) : undefined }),
  });
}
