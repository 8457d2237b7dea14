/**
 * The Slurm executor (README "Sweeps"): one `sbatch --array` job per submission, task i running
 * `advmoe train <config of run i> --run-id <id of run i>` on the shared runs folder. A resubmission asks only for
 * the runs that are neither finished nor still queued or running, so a cancelled or preempted task (whose run
 * kept a checkpoint: the CLI stops cleanly on SIGTERM) resumes where it stopped.
 *
 * Task states come from `squeue` (queued and running tasks) and `scontrol show job` (also tasks that ended within
 * the controller's MinJobAge); `sacct` needs the accounting daemon, which many clusters and test set-ups lack, so
 * the runs' own state files are what say finished, interrupted or failed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AdvMoEError } from '../util/errors';
import { runConfigPath, writeManifest, type SweepManifest } from './folder';
import { cliScript, sweepRunStatus, type SweepRunStatus } from './runs';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started (not installed). */
  error?: string;
}

/** Runs a Slurm command; injectable so the parsing and planning are testable without a cluster. */
export type CommandRunner = (command: string, args: string[]) => CommandResult;

export const runCommand: CommandRunner = (command, args) => {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error ? (r.error as NodeJS.ErrnoException).code ?? r.error.message : undefined };
};

/** Splits `--slurm-args` like a shell: spaces separate, single or double quotes group, backslash escapes. */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: '"' | "'" | null = null;
  let has = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      has = true;
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
    }
  }
  if (quote) throw new AdvMoEError('INVALID_ARGUMENT', `--slurm-args: unclosed ${quote} quote in ${JSON.stringify(text)}`);
  if (has || cur) out.push(cur);
  return out;
}

/** "1-3,7,9-10%2" (an array spec as scontrol prints it) → [1, 2, 3, 7, 9, 10]. */
export function parseArrayIndices(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.replace(/%\d+$/, '').split(',')) {
    const m = /^(\d+)(?:-(\d+))?(?::(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    const step = m[3] !== undefined ? Math.max(1, Number(m[3])) : 1;
    for (let i = a; i <= b; i += step) out.push(i);
  }
  return out;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The array job's script: task $SLURM_ARRAY_TASK_ID trains the run with that index. */
export function jobScript(dir: string, manifest: SweepManifest, opts: { node?: string; cli?: string; backend?: string; threads?: number } = {}): string {
  const ids = [...manifest.runs].sort((a, b) => a.index - b.index);
  if (ids.some((r, i) => r.index !== i)) throw new AdvMoEError('DATA_CORRUPT', `${dir}: the manifest's run indices are not 0…${ids.length - 1}`);
  const configs = path.dirname(runConfigPath(dir, 'x'));
  const threads = opts.threads !== undefined ? String(opts.threads) : '"${SLURM_CPUS_PER_TASK:-1}"';
  return [
    '#!/bin/bash',
    `# Written by \`advmoe sweep --executor slurm\` for sweep ${manifest.name}${manifest.source ? ` (${manifest.source})` : ''}.`,
    '# Array task i trains run IDS[i]; a run that is interrupted resumes from its last checkpoint, a finished one is left alone.',
    `IDS=(${ids.map((r) => r.id).join(' ')})`,
    'ID="${IDS[$SLURM_ARRAY_TASK_ID]}"',
    `exec ${shellQuote(opts.node ?? process.execPath)} ${shellQuote(opts.cli ?? cliScript())} train ${shellQuote(configs + '/')}"$ID.advmoe.json" --run-id "$ID" ` +
      `--runs-dir ${shellQuote(manifest.runsDir)} --threads ${threads}${opts.backend ? ` --backend ${shellQuote(opts.backend)}` : ''}`,
    '',
  ].join('\n');
}

/** One array task as Slurm reports it. */
export interface SlurmTask {
  jobId: string;
  index: number;
  state: string;
  reason?: string;
}

const ACTIVE = new Set(['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'SUSPENDED', 'REQUEUED', 'RESIZING', 'SIGNALING', 'STAGE_OUT', 'REQUEUE_HOLD', 'REQUEUE_FED']);

export function isActive(state: string): boolean {
  return ACTIVE.has(state.replace(/\+$/, ''));
}

function missingSlurm(command: string, r: CommandResult): AdvMoEError {
  return new AdvMoEError('INVALID_ARGUMENT', `cannot run ${command}: ${r.error}; the Slurm executor needs Slurm's commands (sbatch, squeue, scontrol) on the PATH`);
}

/** A job id Slurm no longer knows (it ended more than MinJobAge ago) gives no tasks, not an error. */
function unknownJob(r: CommandResult): boolean {
  return /invalid job id/i.test(r.stderr);
}

/** Queued and running tasks of these array jobs (`squeue -r`: one line per task). */
export function activeTasks(jobIds: string[], run: CommandRunner = runCommand): SlurmTask[] {
  const out: SlurmTask[] = [];
  for (const jobId of jobIds) {
    const r = run('squeue', ['-h', '-r', '-j', jobId, '-o', '%F|%K|%T|%r']);
    if (r.error) throw missingSlurm('squeue', r);
    if (r.code !== 0) {
      if (unknownJob(r)) continue;
      throw new AdvMoEError('INVALID_ARGUMENT', `squeue -j ${jobId} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
    for (const line of r.stdout.split('\n')) {
      const [job, idx, state, reason] = line.trim().split('|');
      if (!job || !/^\d+$/.test(idx ?? '')) continue;
      out.push({ jobId: job, index: Number(idx), state, reason: reason && reason !== 'None' ? reason : undefined });
    }
  }
  return out;
}

/** Every task `scontrol show job` still knows for these array jobs (queued, running, and recently ended). */
export function knownTasks(jobIds: string[], run: CommandRunner = runCommand): SlurmTask[] {
  const out: SlurmTask[] = [];
  for (const jobId of jobIds) {
    const r = run('scontrol', ['-o', 'show', 'job', jobId]);
    if (r.error) throw missingSlurm('scontrol', r);
    if (r.code !== 0) {
      if (unknownJob(r)) continue;
      throw new AdvMoEError('INVALID_ARGUMENT', `scontrol show job ${jobId} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
    out.push(...parseScontrol(r.stdout));
  }
  return out;
}

/** `scontrol -o show job` output (one job record a line, `Key=Value` pairs) → array tasks. */
export function parseScontrol(text: string): SlurmTask[] {
  const out: SlurmTask[] = [];
  for (const line of text.split('\n')) {
    const fields = new Map<string, string>();
    for (const m of line.matchAll(/(\w+)=(\S*)/g)) if (!fields.has(m[1])) fields.set(m[1], m[2]);
    const jobId = fields.get('ArrayJobId') ?? fields.get('JobId');
    const taskSpec = fields.get('ArrayTaskId');
    const state = fields.get('JobState');
    if (!jobId || taskSpec === undefined || !state) continue;
    const reason = fields.get('Reason');
    for (const index of parseArrayIndices(taskSpec)) out.push({ jobId, index, state, reason: reason && reason !== 'None' ? reason : undefined });
  }
  return out;
}

export interface SubmitOptions {
  dir: string;
  manifest: SweepManifest;
  /** Extra sbatch options (partition, time, GPUs, …), as given to --slurm-args. */
  slurmArgs?: string[];
  /** At most this many tasks at a time (sbatch's `--array=…%N`). */
  maxRunning?: number;
  threads?: number;
  backend?: string;
  retryFailed?: boolean;
  run?: CommandRunner;
}

export interface SubmitOutcome {
  jobId?: string;
  /** Run indices submitted. */
  indices: number[];
  alreadyFinished: string[];
  /** Runs whose task is still queued or running in an earlier job. */
  queued: { id: string; jobId: string; state: string }[];
  skipped: { id: string; why: string }[];
  sbatch?: string[];
}

/** Submits the sweep's missing runs as one array job and records it in the manifest. */
export function submitSweep(opts: SubmitOptions): SubmitOutcome {
  const { dir, manifest } = opts;
  const run = opts.run ?? runCommand;
  const jobIds = manifest.slurm?.jobs.map((j) => j.jobId) ?? [];
  const active = activeTasks(jobIds, run).filter((t) => isActive(t.state));
  const outcome: SubmitOutcome = { indices: [], alreadyFinished: [], queued: [], skipped: [] };
  for (const r of manifest.runs) {
    const task = active.find((t) => t.index === r.index);
    const s = sweepRunStatus(manifest.runsDir, r.id);
    if (s.status === 'finished') outcome.alreadyFinished.push(r.id);
    else if (task) outcome.queued.push({ id: r.id, jobId: task.jobId, state: task.state });
    else if (s.status === 'failed' && !opts.retryFailed) outcome.skipped.push({ id: r.id, why: `failed earlier (${s.error ?? 'see its state.json'}); --retry-failed resumes it` });
    else if (s.status === 'unreadable') outcome.skipped.push({ id: r.id, why: s.error ?? 'its run folder is unreadable' });
    // Running on this machine in a process that is not one of our tasks (the local executor, say). A run on another
    // node reads as interrupted from here: its task is queued again, and refuses while that process still lives.
    else if (s.status === 'running') outcome.skipped.push({ id: r.id, why: `running in process ${s.state?.pid} on this machine` });
    else outcome.indices.push(r.index);
  }
  if (outcome.indices.length === 0) return outcome;

  const slurmDir = path.join(dir, 'slurm');
  fs.mkdirSync(slurmDir, { recursive: true });
  const script = path.join(slurmDir, 'job.sh');
  fs.writeFileSync(script, jobScript(dir, manifest, { threads: opts.threads, backend: opts.backend }), { mode: 0o755 });
  const array = `${compactIndices(outcome.indices)}${opts.maxRunning ? `%${opts.maxRunning}` : ''}`;
  const args = ['--parsable', `--array=${array}`, `--job-name=advmoe-${manifest.name}`, `--output=${path.join(slurmDir, '%A_%a.out')}`, ...(opts.slurmArgs ?? []), script];
  outcome.sbatch = args;
  const r = run('sbatch', args);
  if (r.error) throw missingSlurm('sbatch', r);
  if (r.code !== 0) throw new AdvMoEError('INVALID_ARGUMENT', `sbatch failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  const jobId = r.stdout.trim().split(/[;\n]/)[0];
  if (!/^\d+$/.test(jobId)) throw new AdvMoEError('INVALID_ARGUMENT', `sbatch printed no job id (got ${JSON.stringify(r.stdout.trim())})`);
  outcome.jobId = jobId;
  manifest.slurm = { jobs: [...(manifest.slurm?.jobs ?? []), { jobId, submittedAt: new Date().toISOString(), indices: outcome.indices }] };
  writeManifest(dir, manifest);
  return outcome;
}

/** [0, 1, 2, 5] → "0-2,5". */
export function compactIndices(indices: number[]): string {
  const s = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    parts.push(j > i ? `${s[i]}-${s[j]}` : String(s[i]));
    i = j + 1;
  }
  return parts.join(',');
}

export interface SweepRunStatusRow {
  index: number;
  id: string;
  values: Record<string, unknown>;
  status: SweepRunStatus;
  step?: number;
  totalSteps?: number;
  error?: string;
  /** The newest Slurm task that ran or runs it, while Slurm still knows it. */
  slurm?: SlurmTask;
}

/** Each run's status from its state file, with its Slurm task's state where the sweep was submitted to Slurm. */
export function sweepStatus(manifest: SweepManifest, run: CommandRunner = runCommand): SweepRunStatusRow[] {
  const jobs = manifest.slurm?.jobs ?? [];
  const tasks = jobs.length ? knownTasks(jobs.map((j) => j.jobId), run) : [];
  // Newest submission first: a resubmitted run's current task is the one that counts.
  const order = new Map(jobs.map((j, i) => [j.jobId, i]));
  return manifest.runs.map((r) => {
    const s = sweepRunStatus(manifest.runsDir, r.id);
    const slurm = tasks.filter((t) => t.index === r.index && order.has(t.jobId)).sort((a, b) => order.get(b.jobId)! - order.get(a.jobId)!)[0];
    // A run on another node reads as dead from here (its pid is not ours to see); Slurm knows better.
    const status: SweepRunStatus = slurm?.state === 'RUNNING' && s.status === 'interrupted' ? 'running' : s.status;
    return { index: r.index, id: r.id, values: r.values, status, step: s.state?.step, totalSteps: s.state?.totalSteps, error: s.error, slurm };
  });
}
