/**
 * Messages between the extension host and the Sweep Table view, typed, with validators for both directions.
 * Types and plain functions only (no DOM, no Node): the host and the webview import it. The table's sorting,
 * grouping and exports are engine/sweeps/table.ts, shared with `advmoe sweep table`.
 *
 * Handshake: the webview posts `ready` once its script runs; only then does the host post `show`.
 */
import { fail, isNum, isObj, isStr, isStrArray, ok, quote, type Result } from '../../contract/guards';
import { isRunId } from '../../contract/runFolder';
import type { SweepTable, SweepTableRow } from '../../contract/sweepTable';
import { hostToViewParser, viewToHostParser, type ViewDescribeMessage, type ViewExportMessage, type ViewLogMessage, type ViewReadyMessage } from '../shared/messages';

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
export type SweepDescribeMessage = ViewDescribeMessage;
export type HostToSweep = SweepShowMessage | SweepDescribeMessage;

// ---- view → host ----
export type SweepReadyMessage = ViewReadyMessage;
export interface SweepRefreshMessage {
  type: 'refresh';
}
export interface SweepOpenMessage {
  type: 'open';
  view: SweepOpenView;
  runIds: string[];
}
export type SweepExportMessage = ViewExportMessage<SweepExportFormat>;
export type SweepLogMessage = ViewLogMessage;
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

const isRunIdList = (x: unknown): x is string[] => Array.isArray(x) && x.length > 0 && x.length <= 10_000 && x.every(isRunId);
const EXPORT_FORMATS: readonly SweepExportFormat[] = ['csv', 'json', 'tex'];

/** Validates a message the host received from the Sweep Table view. */
export const parseSweepToHost = viewToHostParser<SweepToHost, SweepExportFormat>(EXPORT_FORMATS, {
  refresh: () => ok({ type: 'refresh' }),
  open: (x) => {
    if (x.view !== 'training' && x.view !== 'robustness' && x.view !== 'routing') return fail(`open: unknown view ${quote(x.view)}`);
    if (!isRunIdList(x.runIds)) return fail('open: runIds must be a non-empty list of run ids');
    return ok({ type: 'open', view: x.view, runIds: x.runIds });
  },
  description: (x) => {
    if (typeof x.requestId !== 'number' || !Number.isInteger(x.requestId)) return fail('description: requestId must be an integer');
    if (x.status !== 'waiting' && x.status !== 'error' && x.status !== 'shown') return fail('description: bad status');
    const cells = (c: unknown) => Array.isArray(c) && c.every((r) => Array.isArray(r) && r.every(isStr));
    if (!isStr(x.message) || !isStrArray(x.header) || !cells(x.rows) || !isStrArray(x.selected)) return fail('description: malformed');
    return ok(x as unknown as SweepDescription);
  },
});

const STATUS_WORDS = /^[a-z]{1,20}$/;

/** A table as the host sends it; anything malformed is refused with what is wrong. */
export function parseSweepTable(raw: unknown): Result<SweepTable> {
  if (!isObj(raw) || !isStr(raw.sweep) || !isStrArray(raw.axes) || !Array.isArray(raw.rows)) return fail('not a sweep table');
  const num = (x: unknown) => x === undefined || isNum(x);
  for (const [i, r] of raw.rows.entries()) {
    if (!isObj(r) || !isRunId(r.runId) || !isObj(r.values) || !isStr(r.status) || !STATUS_WORDS.test(r.status)) return fail(`rows[${i}] is malformed`);
    for (const k of ['sa', 'ra', 'routerRobustness', 'expertRobustness', 'activeFlops', 'wallSeconds']) if (!num(r[k])) return fail(`rows[${i}].${k} is not a number`);
    if (r.collapsed !== undefined && typeof r.collapsed !== 'boolean') return fail(`rows[${i}].collapsed is not a boolean`);
  }
  return ok(raw as unknown as SweepTable);
}

/** Validates a message the Sweep Table view received from the host. */
export const parseHostToSweep = hostToViewParser<HostToSweep>({
  show: (x) => {
    if (!isStr(x.sweepDir)) return fail('show: bad `sweepDir`');
    if (x.error !== undefined && !isStr(x.error)) return fail('show: error must be text');
    if (x.table === undefined) return ok({ type: 'show', sweepDir: x.sweepDir, error: (x.error as string | undefined) ?? 'no table' });
    const t = parseSweepTable(x.table);
    if (!t.ok) return fail(`show: ${t.error}`);
    return ok({ type: 'show', sweepDir: x.sweepDir, table: t.value, error: x.error as string | undefined });
  },
});

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
