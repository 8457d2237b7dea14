/**
 * Every message between the extension host and a webview, typed, plus validators for both directions.
 * Both sides import this module, so it must stay free of DOM and Node imports (types and plain functions only).
 *
 * Handshake: the webview posts `ready` once its script runs; only then does the host post state.
 */
import { fail, isNum, isObj, isStr, ok } from '../contract/guards';
import { RUN_STATUSES, isMetricsRecord, isRunState } from '../contract/runFolder';
import type { MetricsRecord, RunState } from '../contract/runFolder';
import {
  hostToViewParser,
  viewToHostParser,
  type ViewDescribeMessage,
  type ViewExportMessage,
  type ViewLogMessage,
  type ViewReadyMessage,
} from './shared/messages';

export type { MetricsRecord, RunState };

/** One run as the Training view plots it. */
export interface RunSeriesData {
  runId: string;
  name: string;
  status: RunState['status'];
  method: string;
  records: MetricsRecord[];
}

export type XAxis = 'step' | 'epoch' | 'time';
export type ExportFormat = 'png' | 'svg' | 'csv';
const EXPORT_FORMATS: readonly ExportFormat[] = ['png', 'svg', 'csv'];

/** What the Training view persists with `setState` (and what the serializer restores after a reload). */
export interface TrainingViewState {
  runIds: string[];
  smoothing: number;
  xAxis: XAxis;
  logScale: boolean;
}

// ---- host → Training view ----
export interface InitMessage {
  type: 'init';
  runs: RunSeriesData[];
  /** UI options to apply (a restored state); omitted = keep the webview's current ones. */
  options?: Partial<Omit<TrainingViewState, 'runIds'>>;
}
export interface AppendMessage {
  type: 'append';
  runId: string;
  records: MetricsRecord[];
}
export interface RunStateMessage {
  type: 'runState';
  state: RunState;
}
/** Ask the webview to describe what it has drawn (answered by `description`). */
export type DescribeMessage = ViewDescribeMessage;
export type HostToTraining = InitMessage | AppendMessage | RunStateMessage | DescribeMessage;

// ---- Training view → host ----
export type ReadyMessage = ViewReadyMessage;
export type ExportMessage = ViewExportMessage<ExportFormat>;
export interface AddRunsMessage {
  type: 'addRuns';
}
export type LogMessage = ViewLogMessage;
export interface DrawnSeries {
  runId: string;
  metric: string;
  /** Points held (all of them, never downsampled). */
  points: number;
  /** Points in the drawn path after downsampling. */
  drawn: number;
}
export interface DescriptionMessage {
  type: 'description';
  requestId: number;
  charts: string[];
  series: DrawnSeries[];
  runs: { runId: string; status: RunState['status'] }[];
}
export type TrainingToHost = ReadyMessage | ExportMessage | AddRunsMessage | LogMessage | DescriptionMessage;

// ---- validation (guards: contract/guards.ts; run records: contract/runFolder.ts) ----
export { isMetricsRecord, isRunState };

function isRunSeries(x: unknown): x is RunSeriesData {
  return (
    isObj(x) &&
    isStr(x.runId) &&
    isStr(x.name) &&
    isStr(x.status) &&
    RUN_STATUSES.includes(x.status as RunState['status']) &&
    isStr(x.method) &&
    Array.isArray(x.records) &&
    x.records.every(isMetricsRecord)
  );
}

/** Validates a message the host received from the Training view. */
export const parseTrainingToHost = viewToHostParser<TrainingToHost, ExportFormat>(EXPORT_FORMATS, {
  addRuns: () => ok({ type: 'addRuns' }),
  description: (x) => {
    if (!isNum(x.requestId) || !Array.isArray(x.charts) || !x.charts.every(isStr)) return fail('description: bad fields');
    if (!Array.isArray(x.series) || !Array.isArray(x.runs)) return fail('description: bad fields');
    const series = x.series.every((s) => isObj(s) && isStr(s.runId) && isStr(s.metric) && isNum(s.points) && isNum(s.drawn));
    const runs = x.runs.every((r) => isObj(r) && isStr(r.runId) && isStr(r.status));
    if (!series || !runs) return fail('description: bad series/runs');
    return ok(x as unknown as DescriptionMessage);
  },
});

/** Validates a message the Training view received from the host. */
export const parseHostToTraining = hostToViewParser<HostToTraining>({
  init: (x) => {
    if (!Array.isArray(x.runs) || !x.runs.every(isRunSeries)) return fail('init: bad `runs`');
    if (x.options !== undefined && !isObj(x.options)) return fail('init: bad `options`');
    return ok(x as unknown as InitMessage);
  },
  append: (x) => {
    if (!isStr(x.runId) || !Array.isArray(x.records) || !x.records.every(isMetricsRecord)) return fail('append: bad fields');
    return ok(x as unknown as AppendMessage);
  },
  runState: (x) => (isRunState(x.state) ? ok(x as unknown as RunStateMessage) : fail('runState: bad `state`')),
});

/** Validates a persisted view state (it comes from storage written by an older version, maybe). */
export function parseTrainingViewState(x: unknown): TrainingViewState | undefined {
  if (!isObj(x) || !Array.isArray(x.runIds) || !x.runIds.every(isStr)) return undefined;
  const smoothing = isNum(x.smoothing) && x.smoothing >= 0 && x.smoothing < 1 ? x.smoothing : 0.6;
  const xAxis: XAxis = x.xAxis === 'epoch' || x.xAxis === 'time' ? x.xAxis : 'step';
  return { runIds: x.runIds, smoothing, xAxis, logScale: x.logScale === true };
}
