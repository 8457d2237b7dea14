/**
 * Type checks of RPC request parameters against engine/protocol.ts, one schema per request, before any job
 * sees them: a request comes from another process, and a wrong type can do harm far from where it entered
 * (a number as `configPath` made `fs.readFileSync(5)` read the engine's own IPC pipe and block for good).
 * Fields the protocol does not know are ignored, so that an older engine still serves a newer client.
 */
import type { CancelParams, EvaluateParams, ImportCheckpointParams, InspectParams, SamplesParams, TrainParams } from '../protocol';
import { AdvMoEError } from '../util/errors';

type Check = (v: unknown) => string | undefined;

const ATTACKS = ['fgsm', 'pgd', 'apgd-ce', 'router', 'expert'] as const;
const SPLITS = ['test', 'train'] as const;

const str: Check = (v) => (typeof v === 'string' && v.length > 0 && !v.includes('\0') ? undefined : 'must be a non-empty string');
const finite: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? undefined : 'must be a finite number ≥ 0');
const positive: Check = (v) => (Number.isSafeInteger(v) && (v as number) > 0 ? undefined : 'must be a positive integer');
const bool: Check = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');
const ids: Check = (v) =>
  Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0) ? undefined : 'must be a list of non-negative integers';
const oneOf =
  (values: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && values.includes(v) ? undefined : `must be one of ${values.map((x) => `"${x}"`).join(', ')}`;

/** `field?` marks an optional field (absent or undefined). */
type Schema<T> = { [K in keyof T as `${string & K}` | `${string & K}?`]?: Check };

const job = { jobId: str, runsDir: str };
const onRun = { ...job, runId: str, 'checkpoint?': str };

export const PARAM_SCHEMAS = {
  train: { ...job, 'configPath?': str, 'resumeRunId?': str, 'force?': bool } satisfies Schema<TrainParams>,
  evaluate: { ...onRun, 'samples?': positive } satisfies Schema<EvaluateParams>,
  inspect: {
    ...onRun,
    sampleIds: ids,
    'split?': oneOf(SPLITS),
    'attack?': oneOf(ATTACKS),
    'eps?': finite,
    'steps?': positive,
    'freezeRouting?': bool,
  } satisfies Schema<InspectParams>,
  samples: { runsDir: str, runId: str, ids, 'split?': oneOf(SPLITS), 'analysis?': str } satisfies Schema<SamplesParams>,
  cancel: { jobId: str } satisfies Schema<CancelParams>,
  importCheckpoint: {
    ...job,
    file: str,
    arch: oneOf(['resnet18']),
    experts: positive,
    ratio: finite,
    'dataset?': oneOf(['cifar10', 'cifar100']),
    'name?': str,
    'dataRoot?': str,
  } satisfies Schema<ImportCheckpointParams>,
} as const;

export type RequestName = keyof typeof PARAM_SCHEMAS;

/** Returns `params` typed as the request's parameters, or throws INVALID_ARGUMENT naming every bad field. */
export function checkParams<T>(request: RequestName, params: unknown): T {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    throw new AdvMoEError('INVALID_ARGUMENT', `${request}: parameters must be an object`);
  }
  const p = params as Record<string, unknown>;
  const problems: string[] = [];
  for (const [key, check] of Object.entries(PARAM_SCHEMAS[request] as Record<string, Check>)) {
    const optional = key.endsWith('?');
    const field = optional ? key.slice(0, -1) : key;
    const value = p[field];
    if (value === undefined && optional) continue;
    const problem = check(value);
    if (problem) problems.push(`${field} ${problem}`);
  }
  if (problems.length) throw new AdvMoEError('INVALID_ARGUMENT', `${request}: ${problems.join('; ')}`, { errors: problems });
  return params as T;
}
