/**
 * The shape of `state.json` (README "Runs on disk"), checked field by field when it is read: the file may be
 * damaged, hand-edited or written by another version, and a wrong type must become an error that names the
 * file and the field, not a crash later in resume or in a view.
 */
import type { RunState } from './types';

const STATUSES = ['running', 'finished', 'interrupted', 'failed'];
const CHECKPOINT_NAME = /^[A-Za-z0-9._-]+\.ckpt$/;

type Problem = string | undefined;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const count = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const finite = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Checks a parsed state.json of run `runId`; fills the optional lists. Returns the first problem, naming its field. */
export function checkStateShape(x: unknown, runId: string): { state: RunState } | { problem: string } {
  if (!isObj(x)) return { problem: 'is not a JSON object' };
  const opt = (field: string, ok: (v: unknown) => boolean, what: string): Problem =>
    x[field] === undefined || ok(x[field]) ? undefined : `${field} must be ${what}`;
  const req = (field: string, ok: (v: unknown) => boolean, what: string): Problem =>
    ok(x[field]) ? undefined : `${field} must be ${what}`;
  const problem =
    (x.id !== runId ? `id is ${JSON.stringify(x.id)?.slice(0, 60)}, not the folder's name "${runId}"` : undefined) ??
    req('status', (v) => typeof v === 'string' && STATUSES.includes(v), `one of ${STATUSES.join(', ')}`) ??
    req('name', (v) => typeof v === 'string', 'a string') ??
    req('createdAt', (v) => typeof v === 'string', 'a string') ??
    opt('updatedAt', (v) => typeof v === 'string', 'a string') ??
    req('step', count, 'a non-negative integer') ??
    req('totalSteps', count, 'a non-negative integer') ??
    req('epoch', finite, 'a number ≥ 0') ??
    opt('pid', (v) => Number.isSafeInteger(v) && (v as number) > 0, 'a positive integer') ??
    opt('pidStart', (v) => typeof v === 'string', 'a string') ??
    opt('lastCheckpoint', (v) => typeof v === 'string' && CHECKPOINT_NAME.test(v), 'a checkpoint file name (*.ckpt)') ??
    opt('warnings', (v) => Array.isArray(v) && v.every((w) => typeof w === 'string'), 'a list of strings') ??
    opt('headline', (v) => isObj(v) && Object.values(v).every((m) => m === undefined || m === null || typeof m === 'number'), 'an object of numbers') ??
    opt('error', (v) => typeof v === 'string', 'a string') ??
    opt('configPath', (v) => typeof v === 'string', 'a string');
  if (problem) return { problem };
  const state = x as unknown as RunState;
  state.warnings ??= [];
  state.headline ??= {};
  return { state };
}
