/**
 * A robustness report as stored in a run's `analysis/*.json` (README "Runs on disk") and the one validator of it:
 * the extension host parses every file with it before a view draws it. Runtime-neutral (plain functions), so the
 * webviews may use it too.
 */
import type { MismatchCells, RobustnessReport } from '../engine/analysis/types';
import { isIntIn, isNum, isNumArray, isObj, type Result } from './guards';

/** One `analysis/*.json` of a run. */
export interface StoredAnalysis {
  /** File name under the run's `analysis/`. */
  name: string;
  /** Checkpoint the analysis was computed on. */
  checkpoint?: string;
  report: RobustnessReport;
  /** File modification time, ms since the epoch. */
  mtime: number;
}

/** A run id is its folder's name: no separators, not `.` or `..` (README "Runs on disk"). */
export function isRunId(x: unknown): x is string {
  return typeof x === 'string' && /^[A-Za-z0-9._-]{1,200}$/.test(x) && x !== '.' && x !== '..';
}

export type MismatchCellName = keyof MismatchCells;
export const MISMATCH_CELLS: readonly MismatchCellName[] = ['keptRight', 'keptWrong', 'changedRight', 'changedWrong'];

/**
 * Checks the fields the views read from a report (files on disk may be from an older version or hand-edited).
 * Returns the first problem as a readable path, e.g. `layers[2].loadClean: expected numbers`.
 */
export function parseRobustnessReport(x: unknown): Result<RobustnessReport> {
  const bad = (where: string, what: string): Result<RobustnessReport> => ({ ok: false, error: `${where}: ${what}` });
  if (!isObj(x)) return bad('report', 'not an object');
  for (const f of ['samples', 'sa', 'ra', 'seconds'] as const) if (!isNum(x[f])) return bad(f, 'expected a number');
  if (!isObj(x.attack)) return bad('attack', 'expected the attack settings');
  if (!Array.isArray(x.attacks)) return bad('attacks', 'expected a list');
  for (const [i, a] of x.attacks.entries()) {
    if (!isObj(a) || typeof a.name !== 'string' || !isNum(a.accuracy) || !isObj(a.settings)) return bad(`attacks[${i}]`, 'expected {name, settings, accuracy}');
  }
  if (!Array.isArray(x.raCurve) || !x.raCurve.every((p) => isObj(p) && isNum(p.eps) && isNum(p.ra))) return bad('raCurve', 'expected [{eps, ra}]');
  if (!Array.isArray(x.perExpert) || !x.perExpert.every((p) => isObj(p) && isNum(p.expert) && isNum(p.sa) && isNum(p.ra))) {
    return bad('perExpert', 'expected [{expert, sa, ra}]');
  }
  if (x.perExpertNote !== undefined && typeof x.perExpertNote !== 'string') return bad('perExpertNote', 'expected a string');
  if (x.routerRobustness !== null && !(isObj(x.routerRobustness) && isNum(x.routerRobustness.decisionsKept) && isNum(x.routerRobustness.accuracy))) {
    return bad('routerRobustness', 'expected null or {decisionsKept, accuracy}');
  }
  if (x.expertRobustness !== null && !(isObj(x.expertRobustness) && isNum(x.expertRobustness.accuracy))) {
    return bad('expertRobustness', 'expected null or {accuracy}');
  }
  if (!isObj(x.cost) || !isNum(x.cost.denseFlops) || !isNum(x.cost.activeFlops)) return bad('cost', 'expected {denseFlops, activeFlops}');
  if (!Array.isArray(x.layers)) return bad('layers', 'expected a list');
  let experts = -1;
  for (const [i, l] of x.layers.entries()) {
    if (!isObj(l) || typeof l.layer !== 'string') return bad(`layers[${i}]`, 'expected an object with a `layer` name');
    for (const f of ['loadClean', 'loadAdv'] as const) if (!isNumArray(l[f])) return bad(`layers[${i}].${f}`, 'expected numbers');
    const n = (l.loadClean as number[]).length;
    if (experts >= 0 && n !== experts) return bad(`layers[${i}].loadClean`, `has ${n} experts, layer 0 has ${experts}`);
    experts = n;
    if ((l.loadAdv as number[]).length !== n) return bad(`layers[${i}].loadAdv`, `expected ${n} experts`);
    for (const f of ['perClassClean', 'perClassAdv'] as const) {
      const m = l[f];
      if (!Array.isArray(m) || !m.every((row) => isNumArray(row) && row.length === n)) return bad(`layers[${i}].${f}`, `expected class × ${n} counts`);
    }
    if (!isNum(l.changeRate) || typeof l.collapsed !== 'boolean') return bad(`layers[${i}]`, 'expected changeRate and collapsed');
  }
  if (x.mismatch !== null) {
    if (!isObj(x.mismatch)) return bad('mismatch', 'expected null or the four cells');
    for (const c of MISMATCH_CELLS) if (!isNumArray(x.mismatch[c])) return bad(`mismatch.${c}`, 'expected sample ids');
  }
  if (x.perSample !== undefined) {
    const p = x.perSample;
    if (!isObj(p)) return bad('perSample', 'expected an object');
    const cols = ['ids', 'labels', 'predClean', 'confClean', 'predAdv', 'confAdv'] as const;
    for (const c of cols) if (!isNumArray(p[c])) return bad(`perSample.${c}`, 'expected numbers');
    const n = (p.ids as number[]).length;
    for (const c of cols) if ((p[c] as number[]).length !== n) return bad(`perSample.${c}`, `expected ${n} values (one per sample)`);
    if (!isIntIn(p.k, 1, 1 << 16)) return bad('perSample.k', 'expected a positive integer');
    for (const c of ['routeClean', 'routeAdv'] as const) {
      const r = p[c];
      if (!Array.isArray(r) || r.length !== x.layers.length) return bad(`perSample.${c}`, `expected one list per MoE layer (${x.layers.length})`);
      for (const [l, col] of r.entries()) {
        if (!isNumArray(col) || col.length !== n * (p.k as number)) return bad(`perSample.${c}[${l}]`, `expected ${n}·k experts`);
        if (experts > 0 && !col.every((e) => isIntIn(e, 0, experts))) return bad(`perSample.${c}[${l}]`, `expert outside 0..${experts - 1}`);
      }
    }
  }
  return { ok: true, value: x as unknown as RobustnessReport };
}

