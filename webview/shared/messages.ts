/**
 * The messages every view exchanges with its host alike — the `ready` handshake, `log`, `export` of a chart or
 * table, and the `describe`/`description` pair the tests use — typed and validated once. Each view's protocol
 * validates its own messages and hands these to `parseCommonToHost` / `parseDescribe`. Runtime-neutral: the host
 * and the webviews import it (no DOM, no Node).
 */

import { fail, type Result } from '../../contract/guards';

export { fail, type Result };

export type LogLevel = 'info' | 'warn' | 'error';
export interface ViewReadyMessage {
  type: 'ready';
}
export interface ViewLogMessage {
  type: 'log';
  level: LogLevel;
  message: string;
}
export interface ViewExportMessage<F extends string = string> {
  type: 'export';
  format: F;
  /** Suggested file name, e.g. `training.csv`. */
  fileName: string;
  /** Text for svg/csv/json; base64 (no data: prefix) for png. */
  data: string;
}
/** Host → view: describe what you have drawn (answered by a `description` with the same id). */
export interface ViewDescribeMessage {
  type: 'describe';
  requestId: number;
}
/** A view that exports nothing through `export` (F = never) gets no export message type. */
export type CommonToHost<F extends string = string> = ViewReadyMessage | ViewLogMessage | (F extends string ? ViewExportMessage<F> : never);

const EXPORT_NAME = /^[\w.\- ]{1,120}$/;
const MAX_LOG_CHARS = 4000;

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Validates the common view → host messages. Returns undefined for any other `type` (the view's own parser
 * handles those). `formats` are the export formats this view offers; the file name must end with one of them.
 */
export function parseCommonToHost<F extends string>(x: unknown, formats: readonly F[]): Result<CommonToHost<F>> | undefined {
  if (!isObj(x)) return undefined;
  switch (x.type) {
    case 'ready':
      return { ok: true, value: { type: 'ready' } };
    case 'log':
      if (x.level !== 'info' && x.level !== 'warn' && x.level !== 'error') return fail('log: bad `level`');
      if (typeof x.message !== 'string') return fail('log: `message` must be a string');
      return { ok: true, value: { type: 'log', level: x.level, message: x.message.slice(0, MAX_LOG_CHARS) } };
    case 'export': {
      const format = formats.find((f) => f === x.format);
      if (!format) return fail('export: bad `format`');
      if (typeof x.fileName !== 'string' || !EXPORT_NAME.test(x.fileName) || !x.fileName.endsWith(`.${format}`)) return fail('export: bad `fileName`');
      if (typeof x.data !== 'string') return fail('export: `data` must be a string');
      return { ok: true, value: { type: 'export', format, fileName: x.fileName, data: x.data } as CommonToHost<F> };
    }
    default:
      return undefined;
  }
}

/** Validates a host → view `describe`; undefined for any other `type`. */
export function parseDescribe(x: unknown): Result<ViewDescribeMessage> | undefined {
  if (!isObj(x) || x.type !== 'describe') return undefined;
  if (typeof x.requestId !== 'number' || !Number.isFinite(x.requestId)) return fail('describe: bad `requestId`');
  return { ok: true, value: { type: 'describe', requestId: x.requestId } };
}

/** How each of a view's own message types is validated: one function per `type` (`x.type` is that type). */
export type MessageCases<T extends { type: string }> = { [K in T['type']]: (x: Record<string, unknown>) => Result<Extract<T, { type: K }>> };

/** Checks that `x` is a message and hands it to the case for its `type`. */
function parseOwn<T extends { type: string }>(x: unknown, cases: MessageCases<T>): Result<T> {
  if (!isObj(x) || typeof x.type !== 'string') return fail('not an object with a string `type`');
  const parse = Object.prototype.hasOwnProperty.call(cases, x.type) ? (cases as Record<string, (m: Record<string, unknown>) => Result<T>>)[x.type] : undefined;
  return parse ? parse(x) : unknownType(x);
}

/**
 * The validator of a view's view → host messages `T`: the common ones (exports in `formats`) here, the view's own
 * through `cases`.
 */
export function viewToHostParser<T extends { type: string }, F extends string>(
  formats: readonly F[],
  cases: MessageCases<Exclude<T, CommonToHost<F>>>,
): (x: unknown) => Result<T> {
  return (x) => (parseCommonToHost(x, formats) ?? parseOwn(x, cases)) as Result<T>;
}

/** The validator of a view's host → view messages `T`: `describe` here, the view's own through `cases`. */
export function hostToViewParser<T extends { type: string }>(cases: MessageCases<Exclude<T, ViewDescribeMessage>>): (x: unknown) => Result<T> {
  return (x) => (parseDescribe(x) ?? parseOwn(x, cases)) as Result<T>;
}

/** The error for a message whose `type` no parser knew. */
export function unknownType<T>(x: unknown): Result<T> {
  if (!isObj(x) || typeof x.type !== 'string') return fail('not an object with a string `type`');
  return fail(`unknown message type ${JSON.stringify(x.type).slice(0, 40)}`);
}
