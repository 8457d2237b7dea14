/**
 * The training job: experiment file → run folder, with metrics streamed, checkpoints written atomically,
 * cancellation that keeps a resumable checkpoint, and a final robustness analysis.
 *
 * Reproducibility: data order is a function of (seed, epoch, batch) and the trainer's RNG state is in every
 * checkpoint, so a run resumed from a checkpoint continues as the uninterrupted run would.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { getBackendInfo, initBackend } from '../backend/select';
import { configWarnings, loadConfigFile } from '../config/load';
import type { ExperimentConfig } from '../config/types';
import { BatchIterator, type BatchPosition, type Dataset } from '../data';
import type { DataSpec } from '../models/net';
import type { Model } from '../models/types';
import type { TrainResult } from '../protocol';
import {
  appendMetrics,
  checkpointPath,
  checkRunsDir,
  createRun,
  readRunConfig,
  readState,
  removeStaleTemps,
  runDir,
  truncateMetricsAfter,
  writeAnalysis,
  writeAnalysisImages,
  writeState,
} from '../runs/store';
import { ownStartTime } from '../runs/owner';
import type { MetricsRecord, RunState } from '../runs/types';
import { ROUTING_SHARE_METRIC } from '../../contract/runFolder';
import { AdvMoEError, errorMessage, isAdvMoEError } from '../util/errors';
import type { JobContext, JobReporter } from './context';
import { finalAnalysis, periodicEval } from './evalSteps';
import { loadTrainingCheckpoint, saveTrainingCheckpoint, type TrainingCheckpointMeta } from './checkpoints';
import { buildModel, dataSpecFor, loadSplits } from './setup';
import { createTrainer, type Trainer } from './trainer';
import { COLLAPSE_REMEDY_HINT } from '../training/collapse';
import { firstDifference } from '../sweeps/spec';
import { RunEventLog } from '../tensorboard/runEvents';

export interface TrainJobParams {
  runsDir: string;
  configPath?: string;
  /** Already-resolved config (tests, library use); `configPath` is still recorded if given. */
  config?: ExperimentConfig;
  resumeRunId?: string;
  /**
   * Train the run with this id (sweeps, README "Sweeps"): created with exactly this id when absent, resumed when
   * interrupted, left alone when finished. Its experiment must equal the one the run was made with.
   */
  runId?: string;
  /** Resume even though state.json says another live process runs it (its pid was reused; README "CLI"). */
  force?: boolean;
}

/** The run being trained and what its steps share; built by trainJob, advanced by the functions below. */
interface Session {
  runsDir: string;
  cfg: ExperimentConfig;
  state: RunState;
  ctx: JobContext;
  model: Model;
  trainer: Trainer;
  spec: DataSpec;
  iterator: BatchIterator;
  test: Dataset;
  stepsPerEpoch: number;
  totalSteps: number;
  position: BatchPosition;
  step: number;
  /** Training seconds before this process took the run over (a resumed run). */
  elapsed: number;
  /** Records not yet appended to metrics.jsonl. */
  pending: MetricsRecord[];
  /** When this segment of training began (evaluation pauses move it forward). */
  segmentStart: number;
  /** The run's TensorBoard event file (README "TensorBoard"); undefined once writing it failed. */
  events?: RunEventLog;
}

/** A run to resume (`resumeRunId`, or an interrupted `runId`), checked before any data loads, or the config of a new
 * one; `finished` when `runId` names a run that is done. */
interface Opened {
  cfg: ExperimentConfig;
  resumed?: RunState;
  resumeFrom?: string;
  finished?: TrainResult;
}

function openRun(params: TrainJobParams, runsDir: string, reporter: JobReporter): Opened {
  let resumeRunId = params.resumeRunId;
  if (params.runId !== undefined && resumeRunId === undefined) {
    const existing = fs.existsSync(runDir(runsDir, params.runId)) ? readState(runsDir, params.runId) : null;
    if (existing) {
      const wanted = params.config ?? (params.configPath ? loadConfigFile(params.configPath) : undefined);
      const diff = wanted ? firstDifference(readRunConfig(runsDir, existing.id), wanted) : null;
      if (diff) {
        throw new AdvMoEError(
          'INVALID_ARGUMENT',
          `run "${existing.id}" exists with another experiment (${diff}); its sweep's base or axes changed since it ran — give the sweep another name, or delete the run`,
        );
      }
      if (existing.status === 'finished') {
        reporter.log('info', `run ${existing.id} has already finished; nothing to do`);
        return { cfg: readRunConfig(runsDir, existing.id), finished: { runId: existing.id, status: 'finished', headline: existing.headline } };
      }
      if (existing.status === 'running' && !params.force) {
        throw new AdvMoEError('RUN_BUSY', `run "${existing.id}" is already running (pid ${existing.pid})`);
      }
      resumeRunId = existing.id;
    }
  }
  if (!resumeRunId) {
    if (!params.config && !params.configPath) throw new AdvMoEError('INVALID_ARGUMENT', 'train needs an experiment file (configPath) or a run to resume');
    return { cfg: params.config ?? loadConfigFile(params.configPath!) };
  }
  const state = readState(runsDir, resumeRunId);
  if (state.status === 'running' && !params.force) {
    throw new AdvMoEError(
      'RUN_BUSY',
      `run "${state.id}" is already running (pid ${state.pid}); if that process is not this run (a reused pid), resume with --force`,
    );
  }
  if (state.status === 'finished') throw new AdvMoEError('INVALID_ARGUMENT', `run "${state.id}" has already finished`);
  const cfg = readRunConfig(runsDir, state.id);
  for (const f of removeStaleTemps(runsDir, state.id)) reporter.log('info', `removed ${f}, left by a process that was killed while writing it`);
  const resumeFrom = state.lastCheckpoint;
  // Checked before the data loads: a state.json naming a checkpoint that is gone cannot resume.
  if (resumeFrom && !fs.existsSync(checkpointPath(runsDir, state.id, resumeFrom))) {
    throw new AdvMoEError('CHECKPOINT_CORRUPT', `run "${state.id}" cannot resume: its state.json names checkpoint ${resumeFrom}, which is missing from checkpoints/`);
  }
  return { cfg, resumed: state, resumeFrom };
}

export async function trainJob(params: TrainJobParams, ctx: JobContext): Promise<TrainResult> {
  const { reporter, signal } = ctx;
  const runsDir = path.resolve(params.runsDir);
  checkRunsDir(runsDir); // before the data loads, not at createRun after it

  // 1. Config and run folder (new, or the one being resumed).
  const { cfg, resumed, resumeFrom, finished } = openRun(params, runsDir, reporter);
  if (finished) return finished;
  const baseDir = params.configPath ? path.dirname(params.configPath) : resumed?.configPath ? path.dirname(resumed.configPath) : process.cwd();
  if (cfg.backend !== 'auto' && getBackendInfo()?.name !== cfg.backend) await initBackend(cfg.backend);
  const backend = getBackendInfo()?.name ?? tf.getBackend();
  for (const w of configWarnings(cfg)) reporter.log('warn', w);

  // 2. Data and model.
  reporter.log('info', `loading ${cfg.data.dataset}…`);
  const { train, test } = await loadSplits(cfg, baseDir, { train: true });
  const spec: DataSpec = dataSpecFor(cfg, train!);
  const iterator = new BatchIterator(train!, { batchSize: cfg.schedule.batchSize, seed: cfg.seed, shuffle: true, augment: cfg.data.augment });
  const stepsPerEpoch = iterator.batchesPerEpoch;
  const totalSteps = Math.ceil(cfg.schedule.epochs * stepsPerEpoch);
  const model = buildModel(cfg, spec);
  // The job's signal reaches the attacks inside a step (see Trainer.step), so a stop does not wait for a long step.
  const trainer: Trainer = createTrainer(model, cfg, stepsPerEpoch, signal);
  let run: Session | undefined;
  try {
    const start = await startingPoint(runsDir, resumed, resumeFrom, model, trainer, cfg, totalSteps, reporter);
    // Created once the data is known to load (no empty run folders for typos). Failures before the run is marked
    // running (a corrupt checkpoint, say) leave its state.json untouched.
    const state = resumed ?? createRun(runsDir, { config: cfg, configPath: params.configPath, totalSteps, id: params.runId });
    Object.assign(state, { status: 'running', pid: process.pid, pidStart: ownStartTime(), backend, totalSteps, error: undefined, step: start.step });
    writeState(runsDir, state);
    run = { runsDir, cfg, state, ctx, model, trainer, spec, iterator, test, stepsPerEpoch, totalSteps, ...start, pending: [], segmentStart: Date.now() };
    run.events = openEvents(runsDir, state, reporter);
    reporter.runState(state);
    announce(run, train!.count);

    // 3. The loop; 4. the final analysis.
    if ((await trainSteps(run)) === 'stopped') return { runId: state.id, status: state.status, headline: state.headline };
    return await finishRun(run);
  } catch (e) {
    if (run) {
      const { state } = run;
      // A cancel during evaluation keeps the run resumable; NaN and other failures keep the last good
      // checkpoint (nothing is written after the failure).
      state.status = isAdvMoEError(e, 'CANCELLED') ? 'interrupted' : 'failed';
      state.error = isAdvMoEError(e, 'CANCELLED') ? undefined : errorMessage(e);
      if (state.status === 'failed') tensorboard(run, (log) => log.end('failure'));
      writeState(runsDir, state);
      reporter.runState(state);
      if (isAdvMoEError(e, 'CANCELLED')) return { runId: state.id, status: state.status, headline: state.headline };
    }
    throw e;
  } finally {
    trainer.dispose();
    model.dispose();
  }
}

/** Where training starts: the resumed checkpoint's position, or the beginning (metrics past it dropped). */
async function startingPoint(
  runsDir: string,
  resumed: RunState | undefined,
  resumeFrom: string | undefined,
  model: Model,
  trainer: Trainer,
  cfg: ExperimentConfig,
  totalSteps: number,
  reporter: JobReporter,
): Promise<{ position: BatchPosition; step: number; elapsed: number }> {
  if (resumed && resumeFrom) {
    const meta = await loadTrainingCheckpoint(checkpointPath(runsDir, resumed.id, resumeFrom), model, trainer, cfg, totalSteps);
    truncateMetricsAfter(runsDir, resumed.id, meta.step);
    reporter.log('info', `resuming ${resumed.id} at step ${meta.step} (epoch ${meta.position.epoch}, batch ${meta.position.batch})`);
    return { position: meta.position, step: meta.step, elapsed: meta.elapsed };
  }
  if (resumed) {
    reporter.log('info', `run ${resumed.id} has no checkpoint yet; starting it from the beginning`);
    truncateMetricsAfter(runsDir, resumed.id, 0);
  }
  return { position: { epoch: 0, batch: 0 }, step: 0, elapsed: 0 };
}

/** The run's first log line and a first progress event: a large model's step can take minutes, and without it
 * the job looks hung until that step ends. */
function announce(run: Session, trainCount: number): void {
  const { cfg, state, model, totalSteps, step } = run;
  const flops = model.flops();
  const moe = cfg.model.moe;
  run.ctx.reporter.log(
    'info',
    `run ${state.id}: ${cfg.method.kind} on ${cfg.model.backbone}/${cfg.model.preset}${moe.enabled ? ` MoE N=${moe.experts} k=${moe.topK} (${moe.router} router)` : ' dense'}, ` +
      `${trainCount} train / ${run.test.count} test samples, ${totalSteps} steps, ${(flops.active / 1e6).toFixed(1)} active MFLOPs/image (dense ${(flops.dense / 1e6).toFixed(1)})`,
  );
  run.ctx.reporter.progress({ runId: state.id, message: `starting step ${step + 1}/${totalSteps}`, done: step, total: totalSteps });
}

/** Training seconds of the run so far. */
const trainingSeconds = (run: Session) => run.elapsed + (Date.now() - run.segmentStart) / 1000;

/** The run's TensorBoard event file, rebuilt from the run folder on resume; undefined when it cannot be written. */
function openEvents(runsDir: string, state: RunState, reporter: JobReporter): RunEventLog | undefined {
  try {
    return RunEventLog.open(runsDir, state);
  } catch (e) {
    reporter.log('warn', `TensorBoard events of ${state.id} are not written (${errorMessage(e)})`);
    return undefined;
  }
}

/** TensorBoard events are a copy of what the run folder holds: a failure to write them is reported once and never
 * stops training (`advmoe tensorboard` rebuilds them). */
function tensorboard(run: Session, what: (log: RunEventLog) => void): void {
  if (!run.events) return;
  try {
    what(run.events);
  } catch (e) {
    run.events = undefined;
    run.ctx.reporter.log('warn', `TensorBoard events of ${run.state.id} are no longer written (${errorMessage(e)}); \`advmoe tensorboard\` rebuilds them`);
  }
}

/** Appends the pending records to metrics.jsonl (and the event file) and reports them. */
function flush(run: Session): void {
  if (!run.pending.length) return;
  appendMetrics(run.runsDir, run.state.id, run.pending);
  tensorboard(run, (log) => log.append(run.pending));
  run.ctx.reporter.metrics(run.state.id, run.pending.splice(0));
}

async function writeCheckpoint(run: Session, name: string): Promise<void> {
  const meta: TrainingCheckpointMeta = { position: run.position, step: run.step, elapsed: trainingSeconds(run), epoch: run.step / run.stepsPerEpoch };
  await saveTrainingCheckpoint(checkpointPath(run.runsDir, run.state.id, name), run.model, run.trainer, run.cfg, run.spec, meta);
  run.state.lastCheckpoint = name;
}

/**
 * Optimizer steps until the end, or until a cancel: then a checkpoint at the current step, the run marked
 * interrupted, and 'stopped'.
 */
async function trainSteps(run: Session): Promise<'done' | 'stopped'> {
  const { state, runsDir, ctx } = run;
  const stepsAtStart = run.step;
  while (run.step < run.totalSteps) {
    if (ctx.signal.aborted) {
      await writeCheckpoint(run, `step-${String(run.step).padStart(7, '0')}.ckpt`);
      flush(run);
      state.step = run.step;
      state.status = 'interrupted';
      writeState(runsDir, state);
      ctx.reporter.runState(state);
      ctx.reporter.log('info', `run ${state.id} stopped at step ${run.step}; resume it to continue`);
      return 'stopped';
    }
    const values = await oneStep(run);
    if (!values) continue; // a cancel abandoned the step before it changed anything: stop at the top of the loop
    afterStep(run, values, stepsAtStart);
    if (run.position.batch === 0 || run.step === run.totalSteps) await endOfEpoch(run);
  }
  return 'done';
}

/** One optimizer step; undefined when a cancel abandoned it (model, optimizers and RNG as before it). */
async function oneStep(run: Session): Promise<Record<string, number> | undefined> {
  const batch = run.iterator.batch(run.position.epoch, run.position.batch);
  try {
    return await run.trainer.step(batch.x, batch.y, run.step);
  } catch (e) {
    if (isAdvMoEError(e, 'CANCELLED') && run.ctx.signal.aborted) return undefined;
    throw e;
  } finally {
    batch.x.dispose();
    batch.y.dispose();
  }
}

/** Logging, progress and warnings after a step. */
function afterStep(run: Session, values: Record<string, number>, stepsAtStart: number): void {
  const { state, cfg, totalSteps, ctx } = run;
  run.step++;
  run.position = run.iterator.advance(run.position);
  const step = run.step;
  const epoch = step / run.stepsPerEpoch;
  if (step % cfg.logEverySteps === 0 || step === totalSteps) {
    run.pending.push({ kind: 'train', step, epoch, time: trainingSeconds(run), metrics: values });
    flush(run);
    // Readers of state.json (the Runs view, `advmoe runs`) see progress at the logging rate.
    state.step = step;
    state.epoch = Math.floor(epoch);
    writeState(run.runsDir, state);
  }
  const rate = (step - stepsAtStart) / Math.max(1e-3, (Date.now() - run.segmentStart) / 1000);
  const epochs = Math.ceil(cfg.schedule.epochs);
  ctx.reporter.progress({
    runId: state.id,
    message: `epoch ${Math.min(Math.floor(epoch) + 1, epochs)}/${epochs} step ${step}/${totalSteps}`,
    done: step,
    total: totalSteps,
    eta: (totalSteps - step) / rate,
  });
  for (const w of run.trainer.takeWarnings()) {
    if (!state.warnings.includes(w)) state.warnings.push(w);
    ctx.reporter.log('warn', w);
  }
}

/** At the end of an epoch: the periodic evaluation (not on the last) and the epoch checkpoint when due. */
async function endOfEpoch(run: Session): Promise<void> {
  const { state, cfg, step } = run;
  const done = step === run.totalSteps;
  const epochsDone = Math.round((step / run.stepsPerEpoch) * 1e6) / 1e6;
  state.epoch = Math.floor(epochsDone);
  state.step = step;
  if (!done && cfg.eval.everyEpochs > 0 && state.epoch % cfg.eval.everyEpochs === 0) {
    const pausedAt = Date.now();
    const r = await periodicEval(run.model, run.test, cfg, run.ctx, state.id);
    run.segmentStart += Date.now() - pausedAt; // evaluation time is not training time
    state.headline = { ...state.headline, sa: r.sa, ra: r.ra };
    const shares = Object.fromEntries(run.model.moeLayers.map((layer, l) => [`${ROUTING_SHARE_METRIC}${layer.name}`, r.routingShares[l]]));
    run.pending.push({ kind: 'eval', step, epoch: step / run.stepsPerEpoch, time: trainingSeconds(run), metrics: { sa: r.sa, ra: r.ra, ...shares } });
    flush(run);
  }
  if (done || state.epoch % cfg.checkpointEveryEpochs === 0) await writeCheckpoint(run, `epoch-${String(state.epoch).padStart(4, '0')}.ckpt`);
  writeState(run.runsDir, state);
  run.ctx.reporter.runState(state);
}

/** The final analysis (SA, RA, router and expert robustness on eval.samples), its files, and the run finished. */
async function finishRun(run: Session): Promise<TrainResult> {
  const { state, runsDir, step, cfg } = run;
  const { report, adversarial } = await finalAnalysis(run.model, run.test, cfg, run.ctx, state.id);
  writeAnalysisImages(runsDir, state.id, `final-step-${step}.json`, adversarial);
  writeAnalysis(runsDir, state.id, `final-step-${step}.json`, report);
  state.headline = {
    sa: report.sa,
    ra: report.ra,
    routerRobustness: report.routerRobustness?.decisionsKept,
    expertRobustness: report.expertRobustness?.accuracy,
  };
  for (const l of report.layers) {
    if (l.collapsed) {
      const w = `router collapse in ${l.layer}: over 90% of test inputs get the same routing decision; ${COLLAPSE_REMEDY_HINT}`;
      if (!state.warnings.includes(w)) state.warnings.push(w);
    }
  }
  run.pending.push({
    kind: 'eval',
    step,
    epoch: step / run.stepsPerEpoch,
    time: trainingSeconds(run),
    metrics: Object.fromEntries(Object.entries(state.headline).filter(([, v]) => v !== undefined)) as Record<string, number>,
  });
  flush(run);
  tensorboard(run, (log) => log.routing(step, report.layers));
  tensorboard(run, (log) => log.end('success'));
  state.status = 'finished';
  state.pid = undefined;
  state.pidStart = undefined;
  writeState(runsDir, state);
  run.ctx.reporter.runState(state);
  const routing = report.layers.map((l) => ({
    layer: l.layer,
    decisionShare: l.decisionShare ?? NaN,
    decisionEntropy: l.decisionEntropy ?? NaN,
    collapsed: l.collapsed,
  }));
  return { runId: state.id, status: state.status, headline: state.headline, routing };
}
