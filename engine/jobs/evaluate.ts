/** Jobs on a trained run: full robustness analysis, a single attack, sample inspection, and loading a run. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeRobustness, atEps, evaluateAttack, inspectSamples } from '../analysis';
import { configWarnings } from '../config/load';
import type { ExperimentConfig } from '../config/types';
import { gatherImages, gatherLabels, type Dataset } from '../data';
import type { DataSpec } from '../models/net';
import type { Model } from '../models/types';
import type {
  AttackParams,
  AttackRunResult,
  EvaluateParams,
  EvaluateResult,
  DataSplit,
  InspectParams,
  InspectResult,
  SamplesParams,
  SamplesResult,
} from '../protocol';
import {
  checkpointPath,
  listCheckpoints,
  readRunConfig,
  analysisImagesPath,
  readAnalysisImages,
  readState,
  removeStaleTemps,
  writeAnalysis,
  writeAnalysisImages,
} from '../runs/store';
import { AdvMoEError } from '../util/errors';
import { Rng } from '../util/rng';
import { loadModelCheckpoint } from './checkpoints';
import type { JobContext } from './context';
import { adversarialRecorder, evalArrays, toBytes } from './evalSteps';
import { buildModel, loadSplits } from './setup';

interface LoadedRun {
  cfg: ExperimentConfig;
  model: Model;
  spec: DataSpec;
  /** The requested split (test unless asked otherwise). */
  data: Dataset;
  checkpoint: string;
}

/** The run's model at a checkpoint (default: the last one written) and one data split (default: test). */
async function openRun(runsDir: string, runId: string, checkpoint: string | undefined, ctx: JobContext, split: DataSplit = 'test'): Promise<LoadedRun> {
  const state = readState(runsDir, runId);
  for (const f of removeStaleTemps(runsDir, runId)) ctx.reporter.log('info', `removed ${f}, left by a process that was killed while writing it`);
  const available = listCheckpoints(runsDir, runId);
  const name = checkpoint ?? state.lastCheckpoint ?? available[available.length - 1];
  if (!name) throw new AdvMoEError('RUN_NOT_FOUND', `run "${runId}" has no checkpoint yet; train it first`);
  if (!available.includes(name)) {
    throw new AdvMoEError('RUN_NOT_FOUND', `run "${runId}" has no checkpoint "${name}" (available: ${available.join(', ') || 'none'})`);
  }
  ctx.reporter.log('info', `loading ${runId}/${name}…`);
  const { model, cfg, spec } = await loadModelCheckpoint(checkpointPath(runsDir, runId, name), (spec, c) => buildModel(c, spec));
  try {
    const baseDir = state.configPath ? path.dirname(state.configPath) : process.cwd();
    // The checkpoint holds the run's resolved config (data.root already absolute).
    return { cfg, model, spec, data: await loadSplitData(cfg, baseDir, split), checkpoint: name };
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
  let dense: Model | undefined;
  try {
    const { x, y, n } = evalArrays(run.data, sampleCount(p.samples, run.cfg));
    for (const w of configWarnings(run.cfg)) if (w.startsWith('eval.')) ctx.reporter.log('warn', w);
    const started = Date.now();
    // The full attack's inputs, as bytes, for the Inspector's gallery.
    const recorder = adversarialRecorder(run.model, n);
    // Timed beside the MoE model for the latency part of the inference cost (its weights do not matter).
    const moe = run.cfg.model.moe;
    dense = moe.enabled ? buildModel({ ...run.cfg, model: { ...run.cfg.model, moe: { ...moe, enabled: false } } }, run.spec) : undefined;
    // `samples` overrides eval.samples (evalArrays took that many), so the analysis limit must follow it.
    const report = await analyzeRobustness(run.model, { x, y }, { ...run.cfg.eval, samples: n }, {
      rng: new Rng(run.cfg.seed ^ 0xf1a1),
      batchSize: 128,
      signal: ctx.signal,
      onBatch: recorder.onBatch,
      denseCounterpart: dense,
      onPartial: (partial, samplesDone, samplesTotal) => ctx.reporter.analysis?.({ runId: p.runId, report: partial, samplesDone, samplesTotal, final: false }),
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
    const name = `eval-${run.checkpoint.replace(/\.ckpt$/, '')}-${n}-${stamp}.json`;
    // The images first: a reader that sees the report can rely on its images being there.
    writeAnalysisImages(p.runsDir, p.runId, name, recorder.bytes);
    const savedTo = writeAnalysis(p.runsDir, p.runId, name, { checkpoint: run.checkpoint, ...report });
    ctx.reporter.analysis?.({ runId: p.runId, report, samplesDone: n, samplesTotal: n, final: true });
    return { runId: p.runId, report, savedTo };
  } finally {
    run.model.dispose();
    dense?.dispose();
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
    const { x, y, n } = evalArrays(run.data, sampleCount(p.samples, run.cfg));
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
  const split = checkSplit(p.split);
  if (p.steps !== undefined && !(Number.isInteger(p.steps) && p.steps >= 1)) throw new AdvMoEError('INVALID_ARGUMENT', `steps must be a positive integer, got ${p.steps}`);
  const run = await openRun(p.runsDir, p.runId, p.checkpoint, ctx, split);
  try {
    const bad = p.sampleIds.filter((i) => i >= run.data.count);
    if (bad.length) throw new AdvMoEError('INVALID_ARGUMENT', `sample ids ${bad.join(', ')} are outside the ${run.data.count} ${split} samples of this run`);
    const idx = Int32Array.from(p.sampleIds);
    const x = gatherImages(run.data, idx);
    const y = gatherLabels(run.data, idx);
    const attackCfg = p.steps === undefined ? run.cfg.eval.attack : { ...run.cfg.eval.attack, steps: p.steps };
    // Samples are gathered in request order, so the ids inspectSamples sees are 0..n-1; the real ids are put back below.
    const inspected = await inspectSamples(run.model, x, y, p.sampleIds.map((_, i) => i), {
      attack: p.attack ?? 'pgd',
      config: attackCfg,
      eps: p.eps,
      freezeRouting: p.freezeRouting,
      rng: new Rng(run.cfg.seed ^ 0x1a5c),
      signal: ctx.signal,
    });
    return { runId: p.runId, samples: inspected.map((s, i) => ({ ...s, id: p.sampleIds[i] })) };
  } finally {
    run.model.dispose();
  }
}

function checkSplit(split: unknown): DataSplit {
  if (split === undefined) return 'test';
  if (split !== 'test' && split !== 'train') throw new AdvMoEError('INVALID_ARGUMENT', `split must be "test" or "train", got ${JSON.stringify(split)}`);
  return split;
}

async function loadSplitData(cfg: ExperimentConfig, baseDir: string, split: DataSplit): Promise<Dataset> {
  const { train, test } = await loadSplits(cfg, baseDir, { train: split === 'train' });
  return split === 'train' && train ? train : test;
}

/** The last dataset `samplesJob` loaded: a gallery asks for page after page of the same run. */
let samplesCache: { key: string; data: Dataset } | undefined;
/** The last analysis images `samplesJob` read (the whole file; every gallery page wants the same one). */
let imagesCache: { file: string; mtimeMs: number; size: number; bytes: Uint8Array | null } | undefined;

/** readAnalysisImages, read again only when the file changed (path, modification time, size). */
function cachedAnalysisImages(runsDir: string, runId: string, name: string): Uint8Array | null {
  const file = analysisImagesPath(runsDir, runId, name);
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(file);
  } catch {
    st = undefined; // missing: readAnalysisImages says so
  }
  const hit = st && imagesCache && imagesCache.file === file && imagesCache.mtimeMs === st.mtimeMs && imagesCache.size === st.size;
  if (hit) return imagesCache!.bytes;
  const bytes = readAnalysisImages(runsDir, runId, name);
  imagesCache = st ? { file, mtimeMs: st.mtimeMs, size: st.size, bytes } : undefined;
  return bytes;
}

/**
 * Images of samples by id, as bytes (no model is loaded): the clean inputs from the run's data, and with
 * `analysis`, the adversarial inputs that analysis stored.
 */
export async function samplesJob(p: SamplesParams): Promise<SamplesResult> {
  if (!Array.isArray(p.ids) || p.ids.some((i) => !Number.isInteger(i) || i < 0)) {
    throw new AdvMoEError('INVALID_ARGUMENT', 'ids must be a list of non-negative integers');
  }
  if (p.ids.length > 4096) throw new AdvMoEError('INVALID_ARGUMENT', `at most 4096 ids per request, got ${p.ids.length}`);
  const split = checkSplit(p.split);
  if (p.analysis !== undefined && split !== 'test') throw new AdvMoEError('INVALID_ARGUMENT', 'analyses are computed on the test split');
  const state = readState(p.runsDir, p.runId);
  const cfg = readRunConfig(p.runsDir, p.runId);
  const key = `${path.resolve(p.runsDir)}\0${p.runId}\0${split}`;
  if (samplesCache?.key !== key) {
    samplesCache = undefined;
    const baseDir = state.configPath ? path.dirname(state.configPath) : process.cwd();
    samplesCache = { key, data: await loadSplitData(cfg, baseDir, split) };
  }
  const data = samplesCache.data;
  const bad = p.ids.filter((i) => i >= data.count);
  if (bad.length) throw new AdvMoEError('INVALID_ARGUMENT', `sample ids ${bad.slice(0, 5).join(', ')}${bad.length > 5 ? '…' : ''} are outside the ${data.count} ${split} samples of this run`);
  const [h, w, c] = data.shape;
  const per = h * w * c;
  const idx = Int32Array.from(p.ids);
  const x = gatherImages(data, idx);
  const labels = Array.from(gatherLabels(data, idx));
  const clean = p.ids.map((_, i) => Buffer.from(toBytes(x.subarray(i * per, (i + 1) * per))).toString('base64'));
  const result: SamplesResult = { shape: [h, w, c], labels, clean, count: data.count };
  if (p.analysis !== undefined) {
    const bytes = cachedAnalysisImages(p.runsDir, p.runId, p.analysis);
    if (!bytes) throw new AdvMoEError('DATA_NOT_FOUND', `analysis "${p.analysis}" of run "${p.runId}" has no stored adversarial images (evaluate the run again to get them)`);
    if (bytes.length % per !== 0) throw new AdvMoEError('DATA_CORRUPT', `the adversarial images of "${p.analysis}" do not match the ${h}×${w}×${c} input shape`);
    const stored = bytes.length / per;
    // Analyses evaluate the first n test samples, so sample id i is image i.
    result.adversarial = p.ids.map((id) => (id < stored ? Buffer.from(bytes.subarray(id * per, (id + 1) * per)).toString('base64') : null));
  }
  return result;
}
