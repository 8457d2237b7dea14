/**
 * The run folder contract (README "Runs on disk", docs/architecture.md "The run folder"): file names, the records
 * of `state.json` and `metrics.jsonl` with their JSON Schemas, run ids and the order of checkpoints. The engine
 * writes run folders; the extension and the views read them; both go through this module. Runtime-neutral (types,
 * constants and plain functions); the schemas are compiled by `contract/parse.ts` where code generation is allowed
 * (Node), while the webviews, whose CSP forbids eval, check messages with the guards below.
 */
import { isCount, isNum, isObj, isStr, isStrArray } from './guards';


export const CONFIG_FILE = 'config.json';
export const STATE_FILE = 'state.json';
export const METRICS_FILE = 'metrics.jsonl';
export const CHECKPOINT_DIR = 'checkpoints';
export const ANALYSIS_DIR = 'analysis';
/** A run folder is built under `.creating-<pid>-<id>` and renamed into place when complete. */
export const CREATING_PREFIX = '.creating-';

export type RunStatus = 'running' | 'finished' | 'interrupted' | 'failed';
export const RUN_STATUSES: readonly RunStatus[] = ['running', 'finished', 'interrupted', 'failed'];

/** `state.json`: rewritten atomically as the run goes. */
export interface RunState {
  id: string;
  name: string;
  /** The experiment file the run was started from (absolute path), if any. */
  configPath?: string;
  method: string;
  backbone: string;
  moe: boolean;
  status: RunStatus;
  createdAt: string;
  updatedAt: string;
  /** Completed epochs and optimizer steps. */
  epoch: number;
  step: number;
  totalSteps: number;
  /** Checkpoint file name under `checkpoints/` to resume from. */
  lastCheckpoint?: string;
  /** Backend the run trains on. */
  backend?: string;
  /** Process id while running (lets readers notice a dead run and call it interrupted). */
  pid?: number;
  /** Start time of that process (Linux /proc/<pid>/stat), so that a reused pid is not taken for the run's. */
  pidStart?: string;
  /** Last evaluated headline metrics. */
  headline: { sa?: number; ra?: number; routerRobustness?: number; expertRobustness?: number };
  error?: string;
  /** Warnings raised during training, e.g. router collapse. */
  warnings: string[];
}

/**
 * Prefix of the eval records' per-layer routing balance: `routingShare/<layer>` is the largest share of the
 * evaluation's clean samples given the same routing decision, routed as inference routes them.
 */
export const ROUTING_SHARE_METRIC = 'routingShare/';

/** One line of `metrics.jsonl`. `metrics` is a flat name → value map so views can plot any series. */
export interface MetricsRecord {
  kind: 'train' | 'eval';
  step: number;
  /** Fractional epoch (step / stepsPerEpoch). */
  epoch: number;
  /** Seconds since the run started (excluding time while not running). */
  time: number;
  metrics: Record<string, number>;
}

/** A run id is its folder's name: no separators, not `.` or `..`. */
export function isRunId(x: unknown): x is string {
  return typeof x === 'string' && /^[A-Za-z0-9._-]{1,200}$/.test(x) && x !== '.' && x !== '..';
}

export const CHECKPOINT_NAME = /^[A-Za-z0-9._-]+\.ckpt$/;

/** An analysis file name under `analysis/` (no separators). */
export function isAnalysisName(x: unknown): x is string {
  return typeof x === 'string' && /^[\w.-]{1,200}\.json$/.test(x);
}

/**
 * JSON Schema of `state.json`. `must` (a keyword of ours) says in words what a field must be; parse.ts puts it in
 * the error, which then names the field: "step must be a non-negative integer". Defaults fill the optional lists.
 */
export const RUN_STATE_SCHEMA = {
  type: 'object',
  must: 'a JSON object',
  required: ['id', 'status', 'name', 'createdAt', 'step', 'totalSteps', 'epoch'],
  properties: {
    id: { type: 'string', must: 'a string' },
    status: { enum: RUN_STATUSES, must: `one of ${RUN_STATUSES.join(', ')}` },
    name: { type: 'string', must: 'a string' },
    createdAt: { type: 'string', must: 'a string' },
    updatedAt: { type: 'string', must: 'a string' },
    step: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, must: 'a non-negative integer' },
    totalSteps: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, must: 'a non-negative integer' },
    epoch: { type: 'number', minimum: 0, must: 'a number ≥ 0' },
    pid: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, must: 'a positive integer' },
    pidStart: { type: 'string', must: 'a string' },
    lastCheckpoint: { type: 'string', pattern: CHECKPOINT_NAME.source, must: 'a checkpoint file name (*.ckpt)' },
    warnings: { type: 'array', items: { type: 'string' }, default: [], must: 'a list of strings' },
    headline: { type: 'object', additionalProperties: { type: ['number', 'null'] }, default: {}, must: 'an object of numbers' },
    error: { type: 'string', must: 'a string' },
    configPath: { type: 'string', must: 'a string' },
    method: { type: 'string', must: 'a string' },
    backbone: { type: 'string', must: 'a string' },
    moe: { type: 'boolean', must: 'true or false' },
    backend: { type: 'string', must: 'a string' },
  },
} as const;

/** JSON Schema of one `metrics.jsonl` record. */
export const METRICS_RECORD_SCHEMA = {
  type: 'object',
  must: 'a metrics record',
  required: ['kind', 'step', 'epoch', 'time', 'metrics'],
  properties: {
    kind: { enum: ['train', 'eval'], must: 'train or eval' },
    step: { type: 'number', must: 'a number' },
    epoch: { type: 'number', must: 'a number' },
    time: { type: 'number', must: 'a number' },
    metrics: { type: 'object', additionalProperties: { type: 'number' }, must: 'an object of numbers' },
  },
} as const;

/**
 * The same shape as RUN_STATE_SCHEMA's required fields, for a `runState` message (the host parsed the file with the
 * schema; the webview, which cannot compile schemas under its CSP, checks what it draws from).
 */
export function isRunState(x: unknown): x is RunState {
  return (
    isObj(x) &&
    isStr(x.id) &&
    isStr(x.name) &&
    RUN_STATUSES.includes(x.status as RunStatus) &&
    isStr(x.createdAt) &&
    isCount(x.step) &&
    isCount(x.totalSteps) &&
    isNum(x.epoch) &&
    x.epoch >= 0 &&
    (x.warnings === undefined || isStrArray(x.warnings)) &&
    (x.headline === undefined || (isObj(x.headline) && Object.values(x.headline).every((v) => v === null || isNum(v)))) &&
    (x.lastCheckpoint === undefined || (isStr(x.lastCheckpoint) && CHECKPOINT_NAME.test(x.lastCheckpoint)))
  );
}

/** METRICS_RECORD_SCHEMA as a guard, for `append` messages. */
export function isMetricsRecord(x: unknown): x is MetricsRecord {
  if (!isObj(x)) return false;
  if (x.kind !== 'train' && x.kind !== 'eval') return false;
  if (!isNum(x.step) || !isNum(x.epoch) || !isNum(x.time) || !isObj(x.metrics)) return false;
  return Object.values(x.metrics).every(isNum);
}

/**
 * Where in training a checkpoint was taken, in optimizer steps: `epoch-E.ckpt` at the end of epoch E (E ·
 * stepsPerEpoch), `step-S.ckpt` at step S (a stop inside an epoch). Other names: NaN.
 */
export function checkpointStep(name: string, stepsPerEpoch: number): number {
  const m = /^(epoch|step)-(\d+)\.ckpt$/.exec(name);
  if (!m) return NaN;
  return m[1] === 'step' ? Number(m[2]) : Number(m[2]) * stepsPerEpoch;
}

/**
 * The one checkpoint order, oldest first: by the training step each was taken at; at the same step the epoch
 * checkpoint first; names of neither form last, by name. `stepsPerEpoch` = totalSteps / schedule.epochs; when it
 * is unknown (NaN), by name, which puts every epoch checkpoint before every step checkpoint.
 */
export function sortCheckpoints(names: readonly string[], stepsPerEpoch: number): string[] {
  if (!(stepsPerEpoch > 0 && Number.isFinite(stepsPerEpoch))) return [...names].sort();
  const key = (n: string) => checkpointStep(n, stepsPerEpoch);
  return [...names].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (Number.isNaN(ka) || Number.isNaN(kb)) return Number.isNaN(ka) === Number.isNaN(kb) ? a.localeCompare(b) : Number.isNaN(ka) ? 1 : -1;
    return ka - kb || (a.startsWith('epoch-') ? -1 : 0) - (b.startsWith('epoch-') ? -1 : 0) || a.localeCompare(b);
  });
}

/** Steps per epoch of a run, from its state and its config's `schedule.epochs`; NaN when either is unusable. */
export function stepsPerEpoch(totalSteps: number, epochs: unknown): number {
  return isNum(epochs) && epochs > 0 && totalSteps > 0 ? totalSteps / epochs : NaN;
}
