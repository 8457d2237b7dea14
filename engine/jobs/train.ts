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
import { BatchIterator, type BatchPosition } from '../data';
import type { DataSpec } from '../models/net';
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
import { AdvMoEError, errorMessage, isAdvMoEError } from '../util/errors';
import type { JobContext } from './context';
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
  /** Stop (as if cancelled, status interrupted) after this many optimizer steps in this call — tests use it
   * to interrupt a run at a precise point. */
  stopAfterSteps?: number;
}

/** The run with this id, or null when the runs folder has none (its folder is missing). */
function existingRun(runsDir: string, runId: string): RunState | null {
  if (!fs.existsSync(runDir(runsDir, runId))) return null;
  return readState(runsDir, runId);
}

export async function trainJob(params: TrainJobParams, ctx: JobContext): Promise<TrainResult> {
  const { reporter, signal } = ctx;
  const runsDir = path.resolve(params.runsDir);
  checkRunsDir(runsDir); // before the data loads, not at createRun after it

  // 1. Config and run folder (new, or the one being resumed).
  let cfg: ExperimentConfig;
  let state: RunState;
  let resumeFrom: string | undefined;
  let resumeRunId = params.resumeRunId;
  if (params.runId !== undefined && resumeRunId === undefined) {
    const existing = existingRun(runsDir, params.runId);
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
        return { runId: existing.id, status: 'finished', headline: existing.headline };
      }
      if (existing.status === 'running' && !params.force) {
        throw new AdvMoEError('RUN_BUSY', `run "${existing.id}" is already running (pid ${existing.pid})`);
      }
      resumeRunId = existing.id;
    }
  }
  if (resumeRunId) {
    state = readState(runsDir, resumeRunId);
    if (state.status === 'running' && !params.force) {
      throw new AdvMoEError(
        'RUN_BUSY',
        `run "${state.id}" is already running (pid ${state.pid}); if that process is not this run (a reused pid), resume with --force`,
      );
    }
    if (state.status === 'finished') throw new AdvMoEError('INVALID_ARGUMENT', `run "${state.id}" has already finished`);
    cfg = readRunConfig(runsDir, state.id);
    for (const f of removeStaleTemps(runsDir, state.id)) reporter.log('info', `removed ${f}, left by a process that was killed while writing it`);
    resumeFrom = state.lastCheckpoint;
    // Checked before the data loads: a state.json naming a checkpoint that is gone cannot resume.
    if (resumeFrom && !fs.existsSync(checkpointPath(runsDir, state.id, resumeFrom))) {
      throw new AdvMoEError('CHECKPOINT_CORRUPT', `run "${state.id}" cannot resume: its state.json names checkpoint ${resumeFrom}, which is missing from checkpoints/`);
    }
  } else {
    if (!params.config && !params.configPath) throw new AdvMoEError('INVALID_ARGUMENT', 'train needs an experiment file (configPath) or a run to resume');
    cfg = params.config ?? loadConfigFile(params.configPath!);
    state = null as unknown as RunState; // created once the data is known to load (no empty run folders for typos)
  }
  const baseDir = params.configPath ? path.dirname(params.configPath) : state?.configPath ? path.dirname(state.configPath) : process.cwd();

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
  const trainer: Trainer = createTrainer(model, cfg, stepsPerEpoch);
  let position: BatchPosition = { epoch: 0, batch: 0 };
  let step = 0;
  let elapsed = 0;
  // Failures before the run is marked running (a corrupt checkpoint, say) leave its state.json untouched.
  let started = false;
  let endEvents: (status: 'success' | 'failure') => void = () => undefined;

  try {
    if (resumeFrom) {
      const meta = await loadTrainingCheckpoint(checkpointPath(runsDir, state.id, resumeFrom), model, trainer, cfg, totalSteps);
      position = meta.position;
      step = meta.step;
      elapsed = meta.elapsed;
      truncateMetricsAfter(runsDir, state.id, step);
      reporter.log('info', `resuming ${state.id} at step ${step} (epoch ${position.epoch}, batch ${position.batch})`);
    } else if (resumeRunId) {
      reporter.log('info', `run ${state.id} has no checkpoint yet; starting it from the beginning`);
      truncateMetricsAfter(runsDir, state.id, 0);
    }
    if (!state) state = createRun(runsDir, { config: cfg, configPath: params.configPath, totalSteps, id: params.runId });
    Object.assign(state, { status: 'running', pid: process.pid, pidStart: ownStartTime(), backend, totalSteps, error: undefined, step });
    writeState(runsDir, state);
    started = true;
    reporter.runState(state);
    // TensorBoard events (README "TensorBoard") are a copy of what the run folder holds: a failure to write
    // them is reported once and never stops training.
    let events: RunEventLog | undefined;
    const tensorboard = (what: (log: RunEventLog) => void) => {
      if (!events) return;
      try {
        what(events);
      } catch (e) {
        events = undefined;
        reporter.log('warn', `TensorBoard events of ${state.id} are no longer written (${errorMessage(e)}); \`advmoe tensorboard\` rebuilds them`);
      }
    };
    try {
      events = RunEventLog.open(runsDir, state);
    } catch (e) {
      reporter.log('warn', `TensorBoard events of ${state.id} are not written (${errorMessage(e)})`);
    }
    endEvents = (status) => tensorboard((log) => log.end(status));
    const flops = model.flops();
    reporter.log(
      'info',
      `run ${state.id}: ${cfg.method.kind} on ${cfg.model.backbone}/${cfg.model.preset}${cfg.model.moe.enabled ? ` MoE N=${cfg.model.moe.experts} k=${cfg.model.moe.topK} (${cfg.model.moe.router} router)` : ' dense'}, ` +
        `${train!.count} train / ${test.count} test samples, ${totalSteps} steps, ${(flops.active / 1e6).toFixed(1)} active MFLOPs/image (dense ${(flops.dense / 1e6).toFixed(1)})`,
    );

    // A first progress event before the first step: a large model's step can take minutes, and without it
    // the job looks hung until that step ends.
    reporter.progress({ runId: state.id, message: `starting step ${step + 1}/${totalSteps}`, done: step, total: totalSteps });

    // 3. The loop.
    const pending: MetricsRecord[] = [];
    const flush = () => {
      if (!pending.length) return;
      appendMetrics(runsDir, state.id, pending);
      tensorboard((log) => log.append(pending));
      reporter.metrics(state.id, pending.splice(0));
    };
    let segmentStart = Date.now();
    const now = () => elapsed + (Date.now() - segmentStart) / 1000;
    const stepsAtStart = step;
    const checkpoint = async (name: string) => {
      const meta: TrainingCheckpointMeta = { position, step, elapsed: now(), epoch: step / stepsPerEpoch };
      await saveTrainingCheckpoint(checkpointPath(runsDir, state.id, name), model, trainer, cfg, spec, meta);
      state.lastCheckpoint = name;
    };

    while (step < totalSteps) {
      if (signal.aborted || (params.stopAfterSteps !== undefined && step - stepsAtStart >= params.stopAfterSteps)) {
        await checkpoint(`step-${String(step).padStart(7, '0')}.ckpt`);
        flush();
        state.step = step;
        state.status = 'interrupted';
        writeState(runsDir, state);
        reporter.runState(state);
        reporter.log('info', `run ${state.id} stopped at step ${step}; resume it to continue`);
        return { runId: state.id, status: state.status, headline: state.headline };
      }
      const batch = iterator.batch(position.epoch, position.batch);
      let values: Record<string, number>;
      try {
        values = await trainer.step(batch.x, batch.y, step);
      } finally {
        batch.x.dispose();
        batch.y.dispose();
      }
      step++;
      position = iterator.advance(position);
      const epoch = step / stepsPerEpoch;
      if (step % cfg.logEverySteps === 0 || step === totalSteps) {
        pending.push({ kind: 'train', step, epoch, time: now(), metrics: values });
        flush();
        // Readers of state.json (the Runs view, `advmoe runs`) see progress at the logging rate.
        state.step = step;
        state.epoch = Math.floor(epoch);
        writeState(runsDir, state);
      }
      const rate = (step - stepsAtStart) / Math.max(1e-3, (Date.now() - segmentStart) / 1000);
      reporter.progress({
        runId: state.id,
        message: `epoch ${Math.min(Math.floor(epoch) + 1, Math.ceil(cfg.schedule.epochs))}/${Math.ceil(cfg.schedule.epochs)} step ${step}/${totalSteps}`,
        done: step,
        total: totalSteps,
        eta: (totalSteps - step) / rate,
      });
      for (const w of trainer.takeWarnings()) {
        if (!state.warnings.includes(w)) state.warnings.push(w);
        reporter.log('warn', w);
      }

      const epochEnded = position.batch === 0 || step === totalSteps;
      if (!epochEnded) continue;
      const done = step === totalSteps;
      const epochsDone = Math.round(step / stepsPerEpoch * 1e6) / 1e6;
      state.epoch = Math.floor(epochsDone);
      state.step = step;
      if (!done && cfg.eval.everyEpochs > 0 && state.epoch % cfg.eval.everyEpochs === 0) {
        const pausedAt = Date.now();
        const r = await periodicEval(model, test, cfg, ctx, state.id);
        segmentStart += Date.now() - pausedAt; // evaluation time is not training time
        state.headline = { ...state.headline, sa: r.sa, ra: r.ra };
        pending.push({ kind: 'eval', step, epoch, time: now(), metrics: { sa: r.sa, ra: r.ra } });
        flush();
      }
      if (done || state.epoch % cfg.checkpointEveryEpochs === 0) await checkpoint(`epoch-${String(state.epoch).padStart(4, '0')}.ckpt`);
      writeState(runsDir, state);
      reporter.runState(state);
    }

    // 4. Final analysis: SA, RA, router and expert robustness on eval.samples.
    const { report, adversarial } = await finalAnalysis(model, test, cfg, ctx, state.id);
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
    pending.push({
      kind: 'eval',
      step,
      epoch: step / stepsPerEpoch,
      time: now(),
      metrics: Object.fromEntries(Object.entries(state.headline).filter(([, v]) => v !== undefined)) as Record<string, number>,
    });
    flush();
    tensorboard((log) => log.routing(step, report.layers));
    endEvents('success');
    state.status = 'finished';
    state.pid = undefined;
    state.pidStart = undefined;
    writeState(runsDir, state);
    reporter.runState(state);
    const routing = report.layers.map((l) => ({
      layer: l.layer,
      decisionShare: l.decisionShare ?? NaN,
      decisionEntropy: l.decisionEntropy ?? NaN,
      collapsed: l.collapsed,
    }));
    return { runId: state.id, status: state.status, headline: state.headline, routing };
  } catch (e) {
    if (state && started) {
      // A cancel during evaluation keeps the run resumable; NaN and other failures keep the last good
      // checkpoint (nothing is written after the failure).
      state.status = isAdvMoEError(e, 'CANCELLED') ? 'interrupted' : 'failed';
      state.error = isAdvMoEError(e, 'CANCELLED') ? undefined : errorMessage(e);
      if (state.status === 'failed') endEvents('failure');
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
