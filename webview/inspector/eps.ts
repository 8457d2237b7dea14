/**
 * The Inspector's ε control: a slider whose grid holds the values people type (0.1, 0.05, 8/255), and a text field
 * that takes them as typed. Pure functions (no DOM), shared by the view and its tests.
 */

/** The smallest of 1, 2, 5 × 10^k that is at least `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 0.001;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw * (1 - 1e-9)) return m * p;
  return 10 * p;
}

/** Whether ε is a whole number of 255ths (the CIFAR convention, e.g. 8/255). */
export function isOver255(eps: number): boolean {
  const n = eps * 255;
  return eps > 0 && Math.abs(n - Math.round(n)) < 1e-6 && Number(eps.toFixed(3)) !== eps;
}

/**
 * Slider step over [0, max]: about 200 positions on a 1-2-5 decimal grid (so 0.1, 0.05 and 0.3 are on it), or 1/255
 * when the analysis ε is in 255ths (so 2/255 … 16/255 are on it) and so is the current one (a typed 0.1 moves the
 * slider to the decimal grid, where it can stand).
 */
export function epsStep(max: number, analysisEps: number | undefined, current?: number): number {
  const in255 = analysisEps !== undefined && isOver255(analysisEps) && (current === undefined || current === 0 || isOver255(current));
  if (in255 && max / (1 / 255) <= 1000) return 1 / 255;
  return niceStep(max / 200);
}

/** The slider's value put on the grid (removes floating-point noise: 0.30000000000000004 → 0.3, 0.0313725… → 8/255). */
export function snapEps(v: number, step: number): number {
  const k = Math.round(v / step);
  const snapped = k * step;
  // Decimal grids: as many decimals as the step has; 255ths stay exact fractions.
  return Math.abs(step - 1 / 255) < 1e-12 ? k / 255 : Number(snapped.toFixed(Math.max(0, -Math.floor(Math.log10(step)) + 1)));
}

/** ε as typed: "0.1", ".03", "8/255". Undefined unless it is a number in [0, 1]. */
export function parseEps(text: string): number | undefined {
  const t = text.trim();
  const frac = /^(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)$/.exec(t);
  const v = frac ? Number(frac[1]) / Number(frac[2]) : /^\d*\.?\d+(e-?\d+)?$/i.test(t) ? Number(t) : Number.NaN;
  return Number.isFinite(v) && v >= 0 && v <= 1 ? v : undefined;
}
