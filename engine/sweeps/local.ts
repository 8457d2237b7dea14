/**
 * The local executor (README "Sweeps"): the sweep's runs that are not finished, N at a time, each in its own
 * `advmoe train <config> --run-id <id>` process, which resumes an interrupted run from its checkpoint. N comes from
 * the cores and the free memory unless given.
 *
 * Ctrl-C: the children run in their own process groups, so a terminal's Ctrl-C reaches only the sweep, which
 * sends each child one SIGINT (the CLI's clean stop: checkpoint at the current step, run marked interrupted),
 * starts nothing more and waits for them. A second Ctrl-C sends the second SIGINT (the CLI quits at once).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cliScript, sweepRunStatus } from './runs';
import { runLogPath, type SweepManifest } from './folder';
import { valuesLabel } from './spec';

/** Memory one training process may take (measured RSS: 0.3–0.8 GB on wasm, 1.1 GB on tensorflow, default model). */
export const RUN_MEMORY_BYTES = 1.5 * 1024 ** 3;

/** Runs at a time: no more than the cores, the free memory allows and there are runs; at least 1. */
export function chooseParallelism(opts: { cores: number; freeBytes: number; runs: number }): number {
  return Math.max(1, Math.min(opts.runs, opts.cores, Math.floor(opts.freeBytes / RUN_MEMORY_BYTES)));
}

export interface LocalSweepOptions {
  dir: string;
  manifest: SweepManifest;
  /** Runs at a time (default: chooseParallelism). */
  parallel?: number;
  /** Threads per run (default: the cores divided among the runs at a time). */
  threads?: number;
  backend?: string;
  /** Resume failed runs too (by default they are reported, not retried: a NaN loss fails the same way again). */
  retryFailed?: boolean;
  signal: AbortSignal;
  log(level: 'info' | 'warn', message: string): void;
  progress?(p: { done: number; total: number; running: number; message: string }): void;
  /** Receives the second interrupt: children are told to quit at once. */
  onSecondInterrupt?: (handler: () => void) => void;
}

export interface SweepOutcome {
  /** Runs finished by this call. */
  finished: string[];
  /** Runs finished before it (skipped). */
  alreadyFinished: string[];
  interrupted: string[];
  failed: { id: string; reason: string }[];
  /** Runs not started: failed earlier (without retryFailed), or running in another process. */
  skipped: { id: string; why: string }[];
  parallel: number;
  threads: number;
}

/** Which runs a (re)run of the sweep trains: neither finished, nor failed (unless asked), nor running elsewhere. */
export function planLocal(manifest: SweepManifest, retryFailed: boolean): { todo: string[]; alreadyFinished: string[]; skipped: { id: string; why: string }[] } {
  const todo: string[] = [];
  const alreadyFinished: string[] = [];
  const skipped: { id: string; why: string }[] = [];
  for (const r of manifest.runs) {
    const s = sweepRunStatus(manifest.runsDir, r.id);
    if (s.status === 'finished') alreadyFinished.push(r.id);
    else if (s.status === 'running') skipped.push({ id: r.id, why: 'running in another process' });
    else if (s.status === 'failed' && !retryFailed) skipped.push({ id: r.id, why: `failed earlier (${s.error ?? 'see its state.json'}); --retry-failed resumes it` });
    else if (s.status === 'unreadable') skipped.push({ id: r.id, why: s.error ?? 'its run folder is unreadable' });
    else todo.push(r.id);
  }
  return { todo, alreadyFinished, skipped };
}

export async function runSweepLocally(opts: LocalSweepOptions): Promise<SweepOutcome> {
  const { manifest, dir } = opts;
  const plan = planLocal(manifest, !!opts.retryFailed);
  const cores = os.availableParallelism();
  const parallel = opts.parallel ?? chooseParallelism({ cores, freeBytes: os.freemem(), runs: plan.todo.length });
  const threads = opts.threads ?? Math.max(1, Math.floor(cores / parallel));
  const outcome: SweepOutcome = { finished: [], alreadyFinished: plan.alreadyFinished, interrupted: [], failed: [], skipped: plan.skipped, parallel, threads };
  for (const s of plan.skipped) opts.log('warn', `skipped ${s.id}: ${s.why}`);
  if (plan.todo.length === 0) return outcome;
  opts.log('info', `sweep ${manifest.name}: ${plan.todo.length} run(s) to train (${plan.alreadyFinished.length} already finished), ${parallel} at a time, ${threads} thread(s) each`);

  const cli = cliScript();
  const children = new Map<string, ChildProcess>();
  const queue = [...plan.todo];
  let done = 0;
  let interrupted = opts.signal.aborted;
  const total = plan.todo.length;
  const report = () => opts.progress?.({ done, total, running: children.size, message: `sweep ${manifest.name}: ${done}/${total} run(s) done, ${children.size} running` });
  const signalAll = () => {
    for (const c of children.values()) if (c.pid) tryKill(c.pid, 'SIGINT');
  };
  const onAbort = () => {
    if (interrupted) return;
    interrupted = true;
    opts.log('warn', `stopping ${children.size} run(s); each keeps a checkpoint and resumes when the sweep runs again`);
    signalAll();
  };
  opts.signal.addEventListener('abort', onAbort);
  opts.onSecondInterrupt?.(signalAll);
  // When this process exits (a second Ctrl-C, an error), its children are told to stop: they are in their own
  // process groups, so nothing else reaches them (a SIGKILL of the sweep leaves them to finish their runs).
  const onExit = () => signalAll();
  process.on('exit', onExit);

  const start = (id: string): Promise<void> => {
    const run = manifest.runs.find((r) => r.id === id)!;
    const config = path.join(dir, run.config);
    const logFile = runLogPath(dir, id);
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    const log = fs.openSync(logFile, 'a');
    fs.writeSync(log, `\n== ${new Date().toISOString()} advmoe train ${config} --run-id ${id}\n`);
    const args = [cli, 'train', config, '--run-id', id, '--runs-dir', manifest.runsDir, '--threads', String(threads)];
    if (opts.backend) args.push('--backend', opts.backend);
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    children.set(id, child);
    report();
    return new Promise((resolve) => {
      let ended = false;
      const end = (how: 'finished' | 'interrupted' | 'failed', reason?: string) => {
        if (ended) return;
        ended = true;
        children.delete(id);
        done++;
        if (how === 'finished') outcome.finished.push(id);
        else if (how === 'interrupted') outcome.interrupted.push(id);
        else outcome.failed.push({ id, reason: reason ?? `see ${logFile}` });
        opts.log(how === 'failed' ? 'warn' : 'info', `run ${id} (${valuesLabel(run.values)}): ${how}${how === 'failed' && reason ? ` — ${reason}` : ''}`);
        report();
        resolve();
      };
      child.on('error', (e) => end('failed', `could not start: ${e.message}`));
      child.on('exit', (code, sig) => {
        // The exit code says what this process did (README "CLI": 0 finished, 130 interrupted); the state file
        // says what the run is. A refusal (exit 2, e.g. the experiment changed) leaves an interrupted run interrupted.
        const status = sweepRunStatus(manifest.runsDir, id);
        if (code === 0 && status.status === 'finished') end('finished');
        else if ((code === 130 || sig === 'SIGINT' || sig === 'SIGTERM') && status.status !== 'failed') end('interrupted');
        else end('failed', status.status === 'failed' ? status.error : `${lastErrorLine(logFile) ?? `exit ${code ?? sig}`} (log: ${logFile})`);
      });
    });
  };

  const workers = Array.from({ length: Math.min(parallel, queue.length) }, async () => {
    while (queue.length && !interrupted) await start(queue.shift()!);
  });
  try {
    await Promise.all(workers);
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
    process.off('exit', onExit);
  }
  return outcome;
}

/** The CLI's error line (`advmoe: …`) at the end of a run's log, if any. */
function lastErrorLine(logFile: string): string | undefined {
  try {
    const lines = fs.readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-20);
    return lines.reverse().find((l) => l.startsWith('advmoe: '))?.slice('advmoe: '.length);
  } catch {
    return undefined;
  }
}

function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
