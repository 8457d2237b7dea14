/**
 * Messages between the extension host and the Sweep Table view, typed, with validators for both directions.
 * Types and plain functions only (no DOM, no Node): the host and the webview import it. The table's sorting,
 * grouping and exports are engine/sweeps/table.ts, shared with `advmoe sweep table`.
 *
 * Handshake: the webview posts `ready` once its script runs; only then does the host post `show`.
 */
import type { SweepTable, SweepTableRow } from '../../contract/sweepTable';

export type { SweepTable, SweepTableRow };

export type SweepExportFormat = 'csv' | 'json' | 'tex';
export type SweepOpenView = 'training' | 'robustness' | 'routing';
/** `''`: one row per run; `'*seeds'`: every axis but seed; else an axis key. */
export type GroupChoice = string;
export const GROUP_NONE = '';
export const GROUP_ALL_BUT_SEED = '*seeds';

/** What the view persists with `setState` (and what the serializer restores after a reload). */
export interface SweepViewState {
  sweepDir: string;
  sort: string;
  descending: boolean;
  groupBy: GroupChoice;
  filterText: string;
  /** Status shown ('' = every status). */
  status: string;
}

// ---- host → view ----
export interface SweepShowMessage {
  type: 'show';
  sweepDir: string;
  table?: SweepTable;
  /** Why there is no table (a missing or damaged sweep.json), shown instead of it. */
  error?: string;
}
export interface SweepDescribeMessage {
  type: 'describe';
  requestId: number;
}
export type HostToSweep = SweepShowMessage | SweepDescribeMessage;

// ---- view → host ----
export interface SweepReadyMessage {
  type: 'ready';
}
export interface SweepRefreshMessage {
  type: 'refresh';
}
export interface SweepOpenMessage {
  type: 'open';
  view: SweepOpenView;
  runIds: string[];
}
export interface SweepExportMessage {
  type: 'export';
  format: SweepExportFormat;
  fileName: string;
  data: string;
}
export interface SweepLogMessage {
  type: 'log';
  level: 'info' | 'warn' | 'error';
  message: string;
}
/** What the view shows now, cell by cell (integration tests and diagnostics). */
export interface SweepDescription {
  type: 'description';
  requestId: number;
  status: 'waiting' | 'error' | 'shown';
  message: string;
  header: string[];
  rows: string[][];
  selected: string[];
}
export type SweepToHost = SweepReadyMessage | SweepRefreshMessage | SweepOpenMessage | SweepExportMessage | SweepLogMessage | SweepDescription;

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isStr = (x: unknown): x is string => typeof x === 'string';
const RUN_ID = /^[A-Za-z0-9._-]{1,200}$/;
const isRunIdList = (x: unknown): x is string[] => Array.isArray(x) && x.length > 0 && x.length <= 10_000 && x.every((s) => isStr(s) && RUN_ID.test(s) && s !== '.' && s !== '..');
const MAX_EXPORT = 64 * 1024 * 1024;

export function parseSweepToHost(raw: unknown): Parsed<SweepToHost> {
  if (!isObj(raw) || !isStr(raw.type)) return { ok: false, error: 'not a message object with a type' };
  switch (raw.type) {
    case 'ready':
    case 'refresh':
      return { ok: true, value: { type: raw.type } };
    case 'open':
      if (raw.view !== 'training' && raw.view !== 'robustness' && raw.view !== 'routing') return { ok: false, error: `open: unknown view ${JSON.stringify(raw.view)}` };
      if (!isRunIdList(raw.runIds)) return { ok: false, error: 'open: runIds must be a non-empty list of run ids' };
      return { ok: true, value: { type: 'open', view: raw.view, runIds: raw.runIds } };
    case 'export':
      if (raw.format !== 'csv' && raw.format !== 'json' && raw.format !== 'tex') return { ok: false, error: `export: unknown format ${JSON.stringify(raw.format)}` };
      if (!isStr(raw.fileName) || !/^[\w.-]{1,120}$/.test(raw.fileName)) return { ok: false, error: 'export: fileName must be a plain file name' };
      if (!isStr(raw.data) || raw.data.length > MAX_EXPORT) return { ok: false, error: 'export: data must be text under 64 MB' };
      return { ok: true, value: { type: 'export', format: raw.format, fileName: raw.fileName, data: raw.data } };
    case 'log':
      if (raw.level !== 'info' && raw.level !== 'warn' && raw.level !== 'error') return { ok: false, error: 'log: bad level' };
      if (!isStr(raw.message)) return { ok: false, error: 'log: message must be text' };
      return { ok: true, value: { type: 'log', level: raw.level, message: raw.message.slice(0, 2000) } };
    case 'description': {
      if (typeof raw.requestId !== 'number' || !Number.isInteger(raw.requestId)) return { ok: false, error: 'description: requestId must be an integer' };
      if (raw.status !== 'waiting' && raw.status !== 'error' && raw.status !== 'shown') return { ok: false, error: 'description: bad status' };
      const cells = (x: unknown) => Array.isArray(x) && x.every((r) => Array.isArray(r) && r.every(isStr));
      if (!isStr(raw.message) || !Array.isArray(raw.header) || !raw.header.every(isStr) || !cells(raw.rows) || !Array.isArray(raw.selected) || !raw.selected.every(isStr)) {
        return { ok: false, error: 'description: malformed' };
      }
      return { ok: true, value: raw as unknown as SweepDescription };
    }
    default:
      return { ok: false, error: `unknown message type ${JSON.stringify(raw.type)}` };
  }
}

const STATUS_WORDS = /^[a-z]{1,20}$/;

/** A table as the host sends it; anything malformed is refused with what is wrong. */
export function parseSweepTable(raw: unknown): Parsed<SweepTable> {
  if (!isObj(raw) || !isStr(raw.sweep) || !Array.isArray(raw.axes) || !raw.axes.every(isStr) || !Array.isArray(raw.rows)) return { ok: false, error: 'not a sweep table' };
  const num = (x: unknown) => x === undefined || (typeof x === 'number' && Number.isFinite(x));
  for (const [i, r] of raw.rows.entries()) {
    if (!isObj(r) || !isStr(r.runId) || !RUN_ID.test(r.runId) || !isObj(r.values) || !isStr(r.status) || !STATUS_WORDS.test(r.status)) return { ok: false, error: `rows[${i}] is malformed` };
    for (const k of ['sa', 'ra', 'routerRobustness', 'expertRobustness', 'activeFlops', 'wallSeconds']) if (!num(r[k])) return { ok: false, error: `rows[${i}].${k} is not a number` };
    if (r.collapsed !== undefined && typeof r.collapsed !== 'boolean') return { ok: false, error: `rows[${i}].collapsed is not a boolean` };
  }
  return { ok: true, value: raw as unknown as SweepTable };
}

export function parseHostToSweep(raw: unknown): Parsed<HostToSweep> {
  if (!isObj(raw) || !isStr(raw.type)) return { ok: false, error: 'not a message object with a type' };
  if (raw.type === 'describe') {
    return typeof raw.requestId === 'number' ? { ok: true, value: { type: 'describe', requestId: raw.requestId } } : { ok: false, error: 'describe: requestId' };
  }
  if (raw.type !== 'show' || !isStr(raw.sweepDir)) return { ok: false, error: `unknown message ${JSON.stringify(raw.type)}` };
  if (raw.error !== undefined && !isStr(raw.error)) return { ok: false, error: 'show: error must be text' };
  if (raw.table === undefined) return { ok: true, value: { type: 'show', sweepDir: raw.sweepDir, error: (raw.error as string | undefined) ?? 'no table' } };
  const t = parseSweepTable(raw.table);
  if (!t.ok) return { ok: false, error: `show: ${t.error}` };
  return { ok: true, value: { type: 'show', sweepDir: raw.sweepDir, table: t.value, error: raw.error as string | undefined } };
}

export function parseSweepViewState(raw: unknown): SweepViewState | undefined {
  if (!isObj(raw) || !isStr(raw.sweepDir) || !raw.sweepDir) return undefined;
  return {
    sweepDir: raw.sweepDir,
    sort: isStr(raw.sort) ? raw.sort.slice(0, 200) : '',
    descending: raw.descending === true,
    groupBy: isStr(raw.groupBy) ? raw.groupBy.slice(0, 200) : GROUP_NONE,
    filterText: isStr(raw.filterText) ? raw.filterText.slice(0, 500) : '',
    status: isStr(raw.status) && (raw.status === '' || STATUS_WORDS.test(raw.status)) ? raw.status : '',
  };
}
