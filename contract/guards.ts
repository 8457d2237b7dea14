/**
 * The one set of type guards for data that crosses a boundary (files on disk, engine RPC, webview messages).
 * Runtime-neutral: no Node, DOM or `vscode` import, so the engine, the extension host and the webviews share it
 * (docs/architecture.md, "Contracts"). Numbers are finite: JSON cannot carry NaN or ±∞, so a non-finite number in
 * a message is always a bug upstream.
 */

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T>(error: string): Result<T> {
  return { ok: false, error };
}

/** A plain object (not null, not an array). */
export const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
export const isStr = (x: unknown): x is string => typeof x === 'string';
/** A finite number. */
export const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
/** A whole number in [lo, hi). */
export const isIntIn = (x: unknown, lo: number, hi: number): x is number => Number.isInteger(x) && (x as number) >= lo && (x as number) < hi;
/** A non-negative safe integer (counts, steps, ids). */
export const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
export const isNumArray = (x: unknown): x is number[] => Array.isArray(x) && x.every(isNum);
export const isStrArray = (x: unknown): x is string[] => Array.isArray(x) && x.every(isStr);

/** `JSON.stringify(x)` cut to `max` characters, for naming an unexpected value in a message. */
export function quote(x: unknown, max = 40): string {
  return String(JSON.stringify(x)).slice(0, max);
}
