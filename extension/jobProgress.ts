/**
 * What a job is doing, in one place, so that the Runs tree, its hover, the status bar and the progress
 * notification say the same thing: waiting for the engine, training at epoch e/E step s/S, evaluating, stopping.
 * Free of `vscode` (unit-tested in test/engine/extension/jobProgress.test.ts).
 */
import type { ProgressNotification } from '../engine/protocol';
import { duration, pct } from '../webview/shared/format';

export type JobKind = 'train' | 'evaluate' | 'inspect';
/**
 * waiting: sent to the engine, nothing heard back yet (the engine runs one computation at a time, so a second job
 * waits for the first one's current step or batch); running: the engine reported progress; stopping: the user
 * asked to stop it and the engine is finishing the current step (training saves a checkpoint there).
 */
export type JobPhase = 'waiting' | 'running' | 'stopping';

export interface JobProgress {
  kind: JobKind;
  label: string;
  phase: JobPhase;
  /** The last progress notification of this job. */
  progress?: ProgressNotification;
  /** Training position (train jobs): from the progress notifications that report optimizer steps. */
  step?: { done: number; total: number; epoch?: number; epochs?: number };
  sa?: number;
  ra?: number;
}

const EPOCH = /\bepoch (\d+)\/(\d+)/;

/**
 * Folds a progress notification into the job. A train job also reports sub-tasks (the periodic evaluation counts
 * samples, not steps); those leave the training position as it is, so the tree does not fall back to 0%.
 */
export function applyProgress(job: JobProgress, p: ProgressNotification, runTotalSteps?: number): void {
  job.progress = p;
  if (job.phase === 'waiting') job.phase = 'running';
  if (job.kind !== 'train') return;
  const isStep = (runTotalSteps !== undefined && p.total === runTotalSteps) || /^(epoch \d+\/\d+ step|starting step)/.test(p.message);
  if (!isStep) return;
  const m = EPOCH.exec(p.message);
  job.step = { done: p.done, total: p.total, ...(m ? { epoch: Number(m[1]), epochs: Number(m[2]) } : {}) };
}

/** "epoch 2/4 · step 23/48 (47%)", or "step 23/48 (47%)" before the epoch is known. */
export function stepText(step: NonNullable<JobProgress['step']>): string {
  const share = step.total > 0 ? ` (${Math.floor((100 * step.done) / step.total)}%)` : '';
  return `${step.epoch !== undefined ? `epoch ${step.epoch}/${step.epochs} · ` : ''}step ${step.done}/${step.total}${share}`;
}

/** The engine's message with done/total unless it already says it, e.g. "evaluating SA/RA on 256 test samples (0/256)". */
export function progressText(p: ProgressNotification): string {
  return p.message.includes(`${p.done}/${p.total}`) ? p.message : `${p.message} (${p.done}/${p.total})`;
}

/** What the job is doing now, without its label: the text of the notification and of the status bar. */
export function jobActivity(job: JobProgress, othersAhead = 0): string {
  if (job.phase === 'stopping') return job.kind === 'train' ? 'stopping… (finishing the current step, then saving a checkpoint)' : 'stopping…';
  if (job.phase === 'waiting') {
    return othersAhead > 0 ? `waiting for the engine (${othersAhead} other job${othersAhead > 1 ? 's' : ''} running)` : 'starting the engine…';
  }
  const parts: string[] = [];
  const p = job.progress;
  if (job.step) parts.push(stepText(job.step));
  // A sub-task of a training job (its periodic evaluation), or an evaluation's own progress.
  if (p && !(job.step && p.done === job.step.done && p.total === job.step.total)) parts.push(progressText(p));
  if (p?.eta !== undefined) parts.push(`ETA ${duration(p.eta)}`);
  if (job.sa !== undefined || job.ra !== undefined) parts.push(`SA ${pct(job.sa)} RA ${pct(job.ra)}`);
  return parts.join(' · ');
}

/** The Runs tree's description of a run that a job of this window trains: "running · epoch 2/4 · step 23/48 (47%)". */
export function liveRunDescription(job: JobProgress): string {
  if (job.phase === 'stopping') return 'stopping…';
  if (job.phase === 'waiting') return 'waiting for the engine';
  return job.step ? `running · ${stepText(job.step)}` : 'running';
}

/** The status bar: one job → its activity; several → how many, with each one's phase in the tooltip. */
export function statusBarText(jobs: readonly JobProgress[]): { text: string; tooltip: string } | undefined {
  if (jobs.length === 0) return undefined;
  const lines = jobs.map((j, i) => `${j.label} (${j.kind}): ${jobActivity(j, waitingAhead(jobs, i))}`);
  if (jobs.length === 1) {
    const j = jobs[0];
    const icon = j.phase === 'stopping' ? '$(debug-stop)' : j.phase === 'waiting' ? '$(watch)' : '$(sync~spin)';
    return { text: `${icon} AdvMoE ${j.label} · ${jobActivity(j)}`, tooltip: lines[0] };
  }
  const running = jobs.filter((j) => j.phase !== 'waiting').length;
  const waiting = jobs.length - running;
  const text = `$(sync~spin) AdvMoE ${jobs.length} jobs: ${running} running${waiting ? `, ${waiting} waiting` : ''}`;
  return { text, tooltip: lines.join('\n') };
}

/** Jobs before this one that the engine is busy with (a waiting job waits for them). */
export function waitingAhead(jobs: readonly JobProgress[], index: number): number {
  return jobs.slice(0, index).filter((j) => j.phase !== 'waiting').length;
}
