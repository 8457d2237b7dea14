/**
 * How every view, the Runs tree, the status bar and the notifications write numbers and dates — one formatter so
 * that "SA 26.6%" never stands beside "RA 6.641%". Runtime-neutral (no DOM, no Node): the webviews and the
 * extension host both import it.
 *
 * - Accuracies and other shares are percentages with one decimal (`pct`); cells that compare runs closely may ask
 *   for two (`pct(v, 2)`), always the same number of decimals for every run in that place.
 * - Other metrics (loss, entropy, ε) get up to 4 significant digits (`num`); tooltips give the exact value (`exact`).
 * - Dates are local time as `YYYY-MM-DD HH:MM` (`dateTime`); durations `1h 05m`, `3m 07s`, `42s` (`duration`).
 */

/** A share in [0, 1] as a percentage: `0.2656` → `26.6%`. Missing or non-finite values read `–`. */
export function pct(v: number | undefined | null, decimals = 1): string {
  if (v === undefined || v === null || !Number.isFinite(v)) return '–';
  return `${(v * 100).toFixed(decimals)}%`;
}

/** A metric value with up to `digits` significant digits and no trailing zeros: `0.976563` → `0.9766`. */
export function num(v: number | undefined | null, digits = 4): string {
  if (v === undefined || v === null) return '–';
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const abs = Math.abs(v);
  // Large magnitudes keep their integer digits (12,345 → "12345", not "1.235e+4").
  if (abs >= 10 ** digits) return String(Math.round(v));
  return String(Number(v.toPrecision(digits)));
}

/** The exact value (shortest round-trip form), shortened only when it is very long. */
export function exact(v: number): string {
  const s = String(v);
  return s.length <= 12 ? s : v.toPrecision(8);
}

/** ε as users write it: `8/255` when it is a whole number of 255ths below 1, else the plain number (`0.3`). */
export function epsText(eps: number): string {
  const n = eps * 255;
  const r = Math.round(n);
  if (eps > 0 && eps < 1 && Math.abs(n - r) < 1e-6 && r !== 0 && !isShortDecimal(eps)) return `${r}/255`;
  return num(eps);
}

/** 0.1, 0.25, 0.3: values people type, which are shown as they are even when they happen to be k/255. */
function isShortDecimal(v: number): boolean {
  return Number(v.toFixed(3)) === v;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** Local date and time as `2026-11-29 17:49` from an ISO string or milliseconds since the epoch; '' when invalid. */
export function dateTime(when: string | number | undefined): string {
  if (when === undefined) return '';
  const d = new Date(when);
  if (!Number.isFinite(d.getTime())) return '';
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** Seconds as `42s`, `3m 07s`, `1h 05m`; '–' when unknown. */
export function duration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad2(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${pad2(m % 60)}m`;
}

/** Whether a metric of the engine's records is a share in [0, 1] that the views show as a percentage. */
export function isShareMetric(name: string): boolean {
  return /acc|^sa$|^ra$|robustness|rate$|share$|kept$/i.test(name);
}
