/** Jobs on a trained run: full robustness analysis, a single attack, sample inspection, and loading a run. */
import * as path from 'node:path';
import { analyzeRobustness, atEps, evaluateAttack, inspectSamples } from '../analysis';
import type { ExperimentConfig } from '../config/types';
import type { Dataset } from '../data';
import type { Model } from '../models/types';
import type {
  AttackParams,
  AttackRunResult,
  EvaluateParams,
  EvaluateResult,
  InspectParams,
  InspectResult,
  LoadRunResult,
} from '../protocol';
import {
  checkpointPath,
  listAnalyses,
  listCheckpoints,
  readMetrics,
  readRunConfig,
  readState,
  writeAnalysis,
} from '../runs/store';
import { AdvMoEError } from '../util/errors';
import { Rng } from '../util/rng';
import { loadModelCheckpoint } from './checkpoints';
import type { JobContext } from './context';
import { evalArrays } from './evalSteps';
import { buildModel, loadSplits } from './setup';

interface LoadedRun {
  cfg: ExperimentConfig;
  model: Model;
  test: Dataset;
  checkpoint: string;
}

/** The run's model at a checkpoint (default: the last one written) and its test split. */
async function openRun(runsDir: string, runId: string, checkpoint: string | undefined, ctx: JobContext): Promise<LoadedRun> {
  const state = readState(runsDir, runId);
  const available = listCheckpoints(runsDir, runId);
  const name = checkpoint ?? state.lastCheckpoint ?? available[available.length - 1];
  if (!name) throw new AdvMoEError('RUN_NOT_FOUND', `run "${runId}" has no checkpoint yet; train it first`);
  if (!available.includes(name)) {
    throw new AdvMoEError('RUN_NOT_FOUND', `run "${runId}" has no checkpoint "${name}" (available: ${available.join(', ') || 'none'})`);
  }
  ctx.reporter.log('info', `loading ${runId}/${name}…`);
  const { model, cfg } = await loadModelCheckpoint(checkpointPath(runsDir, runId, name), (spec, c) => buildModel(c, spec));
  try {
    const baseDir = state.configPath ? path.dirname(state.configPath) : process.cwd();
    // The checkpoint holds the run's resolved config (data.root already absolute).
    const { test } = await loadSplits(cfg, baseDir, { train: false });
    return { cfg, model, test, checkpoint: name };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

function sampleCount(requested: number | undefined, cfg: ExperimentConfig): number {
  if (requested !== undefined && !(Number.isInteger(requested) && requested >= 0)) {
    throw new AdvMoEError('INVALID_ARGUMENT', `samples must be a non-negative integer, got ${requested}`);
  }
  return requested ?? cfg.eval.samples;
}

export async function evaluateJob(p: EvaluateParams, ctx: JobContext): Promise<EvaluateResult> {
  const run = await openRun(p.runsDir, p.runId, p.checkpoint, ctx);
  try {
    const { x, y, n } = evalArrays(run.test, sampleCount(p.samples, run.cfg));
    const started = Date.now();
    const report = await analyzeRobustness(run.model, { x, y }, run.cfg.eval, {
      rng: new Rng(run.cfg.seed ^ 0xf1a1),
      batchSize: 128,
      signal: ctx.signal,
      onProgress: (done, total, message) =>
        ctx.reporter.progress({
          runId: p.runId,
          message,
          done,
          total,
          eta: done > 0 ? ((Date.now() - started) / 1000) * (total / done - 1) : undefined,
        }),
    });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const savedTo = writeAnalysis(p.runsDir, p.runId, `eval-${run.checkpoint.replace(/\.ckpt$/, '')}-${n}-${stamp}.json`, {
      checkpoint: run.checkpoint,
      ...report,
    });
    return { runId: p.runId, report, savedTo };
  } finally {
    run.model.dispose();
  }
}

export async function attackJob(p: AttackParams, ctx: JobContext): Promise<AttackRunResult> {
  const run = await openRun(p.runsDir, p.runId, p.checkpoint, ctx);
  try {
    let cfg = p.eps === undefined ? run.cfg.eval.attack : atEps(run.cfg.eval.attack, p.eps);
    if (p.steps !== undefined) {
      if (!(Number.isInteger(p.steps) && p.steps >= 1)) throw new AdvMoEError('INVALID_ARGUMENT', `steps must be a positive integer, got ${p.steps}`);
      cfg = { ...cfg, steps: p.steps };
    }
    const { x, y, n } = evalArrays(run.test, sampleCount(p.samples, run.cfg));
    ctx.reporter.progress({ runId: p.runId, message: `${p.attack} ε=${cfg.eps} on ${n} samples`, done: 0, total: n });
    const r = await evaluateAttack(run.model, x, y, p.attack, cfg, { rng: new Rng(run.cfg.seed ^ 0xa77a), batchSize: 128, signal: ctx.signal });
    ctx.reporter.progress({ runId: p.runId, message: `${p.attack} done`, done: n, total: n });
    return { runId: p.runId, attack: p.attack, eps: cfg.eps, accuracy: r.accuracy, samples: r.samples };
  } finally {
    run.model.dispose();
  }
}

export async function inspectJob(p: InspectParams, ctx: JobContext): Promise<InspectResult> {
  if (!Array.isArray(p.sampleIds) || p.sampleIds.some((i) => !Number.isInteger(i) || i < 0)) {
    throw new AdvMoEError('INVALID_ARGUMENT', 'sampleIds must be a list of non-negative integers');
  }
  const run = await openRun(p.runsDir, p.runId, p.checkpoint, ctx);
  try {
    const bad = p.sampleIds.filter((i) => i >= run.test.count);
    if (bad.length) throw new AdvMoEError('INVALID_ARGUMENT', `sample ids ${bad.join(', ')} are outside the ${run.test.count} test samples of this run`);
    const { x, y } = evalArrays(run.test, run.test.count);
    const samples = await inspectSamples(run.model, x, y, p.sampleIds, {
      attack: p.attack ?? 'pgd',
      config: run.cfg.eval.attack,
      eps: p.eps,
      freezeRouting: p.freezeRouting,
      rng: new Rng(run.cfg.seed ^ 0x1a5c),
      signal: ctx.signal,
    });
    return { runId: p.runId, samples };
  } finally {
    run.model.dispose();
  }
}

export function loadRunJob(runsDir: string, runId: string): LoadRunResult {
  const state = readState(runsDir, runId);
  return {
    state,
    config: readRunConfig(runsDir, runId),
    metrics: readMetrics(runsDir, runId).records,
    analyses: listAnalyses(runsDir, runId),
    checkpoints: listCheckpoints(runsDir, runId),
  };
}
