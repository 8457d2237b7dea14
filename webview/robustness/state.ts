/** Robustness view: what it shows (the runs, their live reports, the UI options) and how it talks to the host. */
import { connectView } from '../shared/vscode';
import {
  parseHostToRobustness,
  parseRobustnessViewState,
  type HostToRobustness,
  type RobustnessReport,
  type RobustnessRunData,
  type RobustnessToHost,
  type RobustnessViewState,
} from './protocol';

export const host = connectView<RobustnessViewState, RobustnessToHost, HostToRobustness>('robustness view', parseRobustnessViewState, parseHostToRobustness);
export const PALETTE_SIZE = 8;
export const MIN_RENDER_INTERVAL_MS = 100;

export interface RunView {
  data: RobustnessRunData;
  /** Reports streamed by a running evaluation (shown instead of the stored analysis). */
  live?: { report: RobustnessReport; done: number; total: number; final: boolean };
  running: boolean;
  /** Last job outcome to tell the user (cancelled, failed). */
  note?: string;
  /** What the running evaluation does now (the notification's words), until its first partial report. */
  activity?: string;
}

export const ui = { selected: host.restored?.selected ?? {}, epsIn255: host.restored?.epsIn255 ?? false };
/** The runs shown, in order (replaced in place: other modules hold this array). */
export const runs: RunView[] = [];
/** What the host said: whether the workspace is trusted, whether `init` came; the error banner's text. */
export const view = { trusted: false, initialised: false, bannerText: undefined as string | undefined };

export function saveState(): void {
  const ids = runs.map((r) => r.data.runId);
  const selected: Record<string, string> = {};
  for (const id of ids) if (ui.selected[id]) selected[id] = ui.selected[id];
  ui.selected = selected;
  host.saveState({ runIds: ids, selected, epsIn255: ui.epsIn255 });
}

export const post = host.post;

/** The report drawn for a run: the live one while an evaluation streams, else the stored analysis. */
export function reportOf(r: RunView): RobustnessReport | undefined {
  return r.live?.report ?? r.data.analysis?.report;
}

// ---------------- formatting (numbers and dates: ../shared/format) ----------------
/** Exact value with its percentage, e.g. `0.8515625 (85.15625%)`. */
export const exact = (v: number) => `${String(v)} (${String(+(v * 100).toPrecision(12))}%)`;
export function flopsText(n: number): string {
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [u, s] of units) if (Math.abs(n) >= u) return `${+(n / u).toPrecision(4)} ${s}FLOPs`;
  return `${n} FLOPs`;
}
const ATTACK_LABEL: Record<string, (steps: number) => string> = {
  fgsm: () => 'FGSM',
  pgd: (k) => `PGD-${k}`,
  'apgd-ce': () => 'APGD-CE',
  router: () => 'Router attack',
  expert: () => 'Expert attack (routing frozen)',
};
export const attackLabel = (name: string, steps: number) => (ATTACK_LABEL[name] ?? (() => name))(steps);
