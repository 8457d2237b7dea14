/**
 * What a long-running job (train, evaluate, attack, inspect) reports and how it is cancelled. The RPC
 * server turns reports into notifications; the CLI into a progress bar and log lines.
 */
import type { AnalysisNotification, LogNotification, ProgressNotification } from '../protocol';
import type { MetricsRecord, RunState } from '../runs/types';
import { AdvMoEError } from '../util/errors';

export interface JobReporter {
  progress(p: Omit<ProgressNotification, 'jobId'>): void;
  metrics(runId: string, records: MetricsRecord[]): void;
  runState(state: RunState): void;
  log(level: LogNotification['level'], message: string): void;
  /** A robustness report so far (evaluate jobs); optional: the CLI shows progress instead. */
  analysis?(a: Omit<AnalysisNotification, 'jobId'>): void;
}

export interface JobContext {
  reporter: JobReporter;
  signal: AbortSignal;
}

/** Throws CANCELLED once the job's signal fired; long loops call it between steps. */
export function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw new AdvMoEError('CANCELLED', 'cancelled by the user');
}

/** A reporter that drops everything (tests, library use). */
export const silentReporter: JobReporter = {
  progress() {},
  metrics() {},
  runState() {},
  log() {},
};
