/**
 * Messages between the extension host and the Robustness view, with validators for both directions.
 * Types and plain functions only (both sides import it; no DOM, no Node).
 *
 * Handshake: the view posts `ready`; the host answers with `init` (every shown run with its analysis), then
 * `run` whenever one run's data changes (another analysis picked, a new file on disk), `job` when an evaluation
 * of a shown run starts or ends, and `partial` for each report an evaluation streams (the last one `final`).
 */
import { hostToViewParser, viewToHostParser, type ViewDescribeMessage, type ViewExportMessage, type ViewLogMessage, type ViewReadyMessage } from '../shared/messages';
import { fail, isNum, isObj, isStr, ok, type Result } from '../../contract/guards';
import { isAnalysisName, isRunId } from '../../contract/runFolder';
import { parseRobustnessReport, type RobustnessReport, type StoredAnalysis } from '../analysisProtocol';

export type { RobustnessReport, StoredAnalysis };

export type RobustnessExportFormat = 'png' | 'svg' | 'csv' | 'json';
const EXPORT_FORMATS: readonly RobustnessExportFormat[] = ['png', 'svg', 'csv', 'json'];

/** One analysis file of a run, for the picker. */
export interface AnalysisFileInfo {
  name: string;
  mtime: number;
}

/** One run as the Robustness view shows it. */
export interface RobustnessRunData {
  runId: string;
  name: string;
  method: string;
  status: string;
  /** The run's analysis files, newest first. */
  files: AnalysisFileInfo[];
  /** The analysis shown (absent when the run has none, or the chosen file is unreadable: see `error`). */
  analysis?: StoredAnalysis;
  /** Why nothing is shown for this run (readAnalysis' message, "no analysis yet", run not found). */
  error?: string;
  /** Files skipped because they could not be read (the newest readable one is shown instead). */
  warnings?: string[];
}

/** What the view persists with setState (and the serializer restores after a reload). */
export interface RobustnessViewState {
  runIds: string[];
  /** Analysis file chosen per run (absent = the newest). */
  selected: Record<string, string>;
  /** Draw the RA-vs-ε x axis in units of 1/255. */
  epsIn255: boolean;
}

// ---- host → view ----
export interface RobInitMessage {
  type: 'init';
  runs: RobustnessRunData[];
  /** The workspace is trusted: evaluations may start. */
  trusted: boolean;
  /** Evaluations of shown runs already running. */
  running?: string[];
}
export interface RobRunMessage {
  type: 'run';
  run: RobustnessRunData;
}
export interface RobJobMessage {
  type: 'job';
  runId: string;
  running: boolean;
  /** Why it ended, when it ended without a report (cancelled, failed). */
  message?: string;
  /** While it runs: what the job does now, in the words of the progress notification (waiting, batches, stopping). */
  activity?: string;
}
export interface RobPartialMessage {
  type: 'partial';
  runId: string;
  report: RobustnessReport;
  samplesDone: number;
  samplesTotal: number;
  final: boolean;
}
export type RobDescribeMessage = ViewDescribeMessage;
export type HostToRobustness = RobInitMessage | RobRunMessage | RobJobMessage | RobPartialMessage | RobDescribeMessage;

// ---- view → host ----
export type RobustnessToHost =
  | ViewReadyMessage
  | { type: 'addRuns' }
  | { type: 'removeRun'; runId: string }
  | { type: 'selectAnalysis'; runId: string; name: string }
  | { type: 'evaluate'; runId: string }
  | { type: 'cancel'; runId: string }
  | { type: 'openRouting'; runId: string; analysis?: string }
  | ViewExportMessage<RobustnessExportFormat>
  | ViewLogMessage
  | RobDescriptionMessage;

/** What is drawn, for the tests and diagnostics (answer to `describe`). */
export interface RobDescriptionMessage {
  type: 'description';
  requestId: number;
  runs: { runId: string; analysis?: string; error?: string; progress?: string; live: boolean }[];
  /** One entry per (metric, run): the value drawn, or null where it is n/a (dense run) or missing. */
  bars: { metric: string; runId: string; value: number | null }[];
  curves: { runId: string; points: { eps: number; ra: number }[] }[];
  layers: { layer: string; runId: string; changeRate: number; collapsed: boolean }[];
  attackRows: number;
  error?: string;
}

// ---- validation ----
/** Run ids and analysis names as the engine writes them (also what the host accepts from the view). */
export { isAnalysisName, isRunId };

function parseStored(x: unknown, where: string): Result<StoredAnalysis> {
  if (!isObj(x) || !isAnalysisName(x.name) || !isNum(x.mtime)) return fail(`${where}: expected {name, mtime, report}`);
  if (x.checkpoint !== undefined && !isStr(x.checkpoint)) return fail(`${where}.checkpoint: expected a string`);
  const r = parseRobustnessReport(x.report);
  if (!r.ok) return fail(`${where}.report.${r.error}`);
  return { ok: true, value: { name: x.name, mtime: x.mtime, checkpoint: x.checkpoint, report: r.value } };
}

function parseRun(x: unknown, where: string): Result<RobustnessRunData> {
  if (!isObj(x) || !isRunId(x.runId) || !isStr(x.name) || !isStr(x.method) || !isStr(x.status)) {
    return fail(`${where}: expected {runId, name, method, status}`);
  }
  if (!Array.isArray(x.files) || !x.files.every((f) => isObj(f) && isAnalysisName(f.name) && isNum(f.mtime))) {
    return fail(`${where}.files: expected [{name, mtime}]`);
  }
  if (x.error !== undefined && !isStr(x.error)) return fail(`${where}.error: expected a string`);
  if (x.warnings !== undefined && !(Array.isArray(x.warnings) && x.warnings.every(isStr))) return fail(`${where}.warnings: expected strings`);
  const run: RobustnessRunData = {
    runId: x.runId,
    name: x.name,
    method: x.method,
    status: x.status,
    files: (x.files as AnalysisFileInfo[]).map((f) => ({ name: f.name, mtime: f.mtime })),
    error: x.error,
    warnings: x.warnings as string[] | undefined,
  };
  if (x.analysis !== undefined) {
    const a = parseStored(x.analysis, `${where}.analysis`);
    if (!a.ok) return a;
    run.analysis = a.value;
  }
  return { ok: true, value: run };
}

/** Validates a message the view received from the host. */
export const parseHostToRobustness = hostToViewParser<HostToRobustness>({
  init: (x) => {
    if (!Array.isArray(x.runs)) return fail('init: bad `runs`');
    if (typeof x.trusted !== 'boolean') return fail('init: bad `trusted`');
    if (x.running !== undefined && !(Array.isArray(x.running) && x.running.every(isRunId))) return fail('init: bad `running`');
    const runs: RobustnessRunData[] = [];
    for (const [i, r] of x.runs.entries()) {
      const p = parseRun(r, `init: runs[${i}]`);
      if (!p.ok) return p;
      runs.push(p.value);
    }
    return ok({ type: 'init', runs, trusted: x.trusted, running: x.running as string[] | undefined });
  },
  run: (x) => {
    const p = parseRun(x.run, 'run');
    return p.ok ? ok({ type: 'run', run: p.value }) : p;
  },
  job: (x) => {
    if (!isRunId(x.runId) || typeof x.running !== 'boolean') return fail('job: bad fields');
    if (x.message !== undefined && !isStr(x.message)) return fail('job: bad `message`');
    if (x.activity !== undefined && !isStr(x.activity)) return fail('job: bad `activity`');
    return ok({ type: 'job', runId: x.runId, running: x.running, message: x.message as string | undefined, activity: x.activity as string | undefined });
  },
  partial: (x) => {
    if (!isRunId(x.runId)) return fail('partial: bad `runId`');
    if (!isNum(x.samplesDone) || !isNum(x.samplesTotal) || x.samplesDone < 0 || x.samplesTotal < x.samplesDone) {
      return fail('partial: bad `samplesDone`/`samplesTotal`');
    }
    if (typeof x.final !== 'boolean') return fail('partial: bad `final`');
    const r = parseRobustnessReport(x.report);
    if (!r.ok) return fail(`partial: invalid report (${r.error})`);
    return ok({ type: 'partial', runId: x.runId, report: r.value, samplesDone: x.samplesDone, samplesTotal: x.samplesTotal, final: x.final });
  },
});

/** Validates a persisted view state (storage of an older version, maybe). */
export function parseRobustnessViewState(x: unknown): RobustnessViewState | undefined {
  if (!isObj(x) || !Array.isArray(x.runIds) || !x.runIds.every(isRunId)) return undefined;
  const selected: Record<string, string> = {};
  if (isObj(x.selected)) for (const [k, v] of Object.entries(x.selected)) if (isRunId(k) && isAnalysisName(v)) selected[k] = v;
  return { runIds: [...x.runIds], selected, epsIn255: x.epsIn255 === true };
}

/** A message that names one shown run and nothing else. */
function runMessage<K extends 'removeRun' | 'evaluate' | 'cancel'>(type: K): (x: Record<string, unknown>) => Result<{ type: K; runId: string }> {
  return (x) => (isRunId(x.runId) ? ok({ type, runId: x.runId }) : fail(`${type}: bad \`runId\``));
}

/** Validates a message the host received from the view. */
export const parseRobustnessToHost = viewToHostParser<RobustnessToHost, RobustnessExportFormat>(EXPORT_FORMATS, {
  addRuns: () => ok({ type: 'addRuns' }),
  removeRun: runMessage('removeRun'),
  evaluate: runMessage('evaluate'),
  cancel: runMessage('cancel'),
  selectAnalysis: (x) => {
    if (!isRunId(x.runId) || !isAnalysisName(x.name)) return fail('selectAnalysis: bad fields');
    return ok({ type: 'selectAnalysis', runId: x.runId, name: x.name });
  },
  openRouting: (x) => {
    if (!isRunId(x.runId) || (x.analysis !== undefined && !isAnalysisName(x.analysis))) return fail('openRouting: bad fields');
    return ok({ type: 'openRouting', runId: x.runId, analysis: x.analysis as string | undefined });
  },
  description: (x) => {
    if (!isNum(x.requestId) || !Array.isArray(x.runs) || !Array.isArray(x.bars) || !Array.isArray(x.curves) || !Array.isArray(x.layers)) {
      return fail('description: bad fields');
    }
    return ok(x as unknown as RobDescriptionMessage);
  },
});

// ---- what the view shows, as numbers (shared by the bars, the CSV and the JSON export) ----

export const ATTACK_ORDER = ['fgsm', 'pgd', 'apgd-ce', 'router', 'expert'] as const;

/** The grouped-bar metrics, in drawing order. `value` is null where the metric does not apply (dense model). */
export const BAR_METRICS: { key: string; label: string; value: (r: RobustnessReport) => number | null }[] = [
  { key: 'sa', label: 'SA (clean)', value: (r) => r.sa },
  { key: 'ra', label: 'RA', value: (r) => r.ra },
  { key: 'routerKept', label: 'Router robustness (decisions kept)', value: (r) => r.routerRobustness?.decisionsKept ?? null },
  { key: 'routerAcc', label: 'Accuracy under router attack', value: (r) => r.routerRobustness?.accuracy ?? null },
  { key: 'expertAcc', label: 'Expert robustness', value: (r) => r.expertRobustness?.accuracy ?? null },
];

/** A dense model: no MoE layers and no router robustness. */
export function isDense(r: RobustnessReport): boolean {
  return r.routerRobustness === null && r.layers.length === 0;
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export interface ExportRun {
  runId: string;
  name: string;
  method: string;
  /** Analysis file, or a live label. */
  analysis: string;
  checkpoint?: string;
  samplesDone?: number;
  samplesTotal?: number;
  report: RobustnessReport;
}

/**
 * Every number the view shows, one per line: `run_id,run_name,analysis,section,item,metric,value`. Values are the
 * report's own numbers, written in their shortest round-trip form (never rounded).
 */
export function robustnessCsv(runs: readonly ExportRun[]): string {
  const lines = ['run_id,run_name,analysis,section,item,metric,value'];
  for (const run of runs) {
    const r = run.report;
    const row = (section: string, item: string, metric: string, value: number | string | boolean) =>
      lines.push([run.runId, run.name, run.analysis, section, item, metric, String(value)].map(csvField).join(','));
    row('summary', '', 'samples', r.samples);
    if (run.samplesDone !== undefined && run.samplesTotal !== undefined) {
      row('summary', '', 'samplesDone', run.samplesDone);
      row('summary', '', 'samplesTotal', run.samplesTotal);
    }
    for (const m of BAR_METRICS) {
      const v = m.value(r);
      row('summary', '', m.key, v === null ? 'n/a' : v);
    }
    row('summary', '', 'seconds', r.seconds);
    for (const a of r.attacks) {
      row('attack', a.name, 'accuracy', a.accuracy);
      row('attack', a.name, 'norm', a.settings.norm);
      row('attack', a.name, 'eps', a.settings.eps);
      row('attack', a.name, 'stepSize', a.settings.stepSize);
      row('attack', a.name, 'steps', a.settings.steps);
      row('attack', a.name, 'restarts', a.settings.restarts);
      row('attack', a.name, 'randomStart', a.settings.randomStart);
    }
    for (const p of r.raCurve) row('raCurve', String(p.eps), 'ra', p.ra);
    for (const p of r.perExpert) {
      row('perExpert', String(p.expert), 'sa', p.sa);
      row('perExpert', String(p.expert), 'ra', p.ra);
    }
    for (const l of r.layers) {
      row('layer', l.layer, 'changeRate', l.changeRate);
      row('layer', l.layer, 'collapsed', l.collapsed);
      if (l.decisionShare !== undefined) row('layer', l.layer, 'decisionShare', l.decisionShare);
      if (l.top1Share !== undefined) row('layer', l.layer, 'top1Share', l.top1Share);
    }
    row('cost', '', 'denseFlops', r.cost.denseFlops);
    row('cost', '', 'activeFlops', r.cost.activeFlops);
    row('cost', '', 'reduction', r.cost.reduction);
    const lat = r.cost.latencyMs;
    if (lat) {
      if (lat.dense !== undefined) row('cost', '', 'latencyDenseMs', lat.dense);
      if (lat.moeMasked !== undefined) row('cost', '', 'latencyMoeMaskedMs', lat.moeMasked);
      if (lat.moe !== undefined) row('cost', '', 'latencyMoeMs', lat.moe);
      row('cost', '', 'latencyBatch', lat.batch);
    }
  }
  return lines.join('\n') + '\n';
}

/** The shown part of each report (everything but per-class counts, mismatch ids and per-sample columns), as JSON. */
export function robustnessJson(runs: readonly ExportRun[]): string {
  return (
    JSON.stringify(
      {
        runs: runs.map((run) => {
          const r = run.report;
          return {
            runId: run.runId,
            name: run.name,
            method: run.method,
            analysis: run.analysis,
            checkpoint: run.checkpoint,
            samplesDone: run.samplesDone,
            samplesTotal: run.samplesTotal,
            report: {
              samples: r.samples,
              sa: r.sa,
              ra: r.ra,
              attack: r.attack,
              routerRobustness: r.routerRobustness,
              expertRobustness: r.expertRobustness,
              perExpert: r.perExpert,
              attacks: r.attacks,
              raCurve: r.raCurve,
              layers: r.layers.map((l) => ({ layer: l.layer, changeRate: l.changeRate, collapsed: l.collapsed, decisionShare: l.decisionShare, top1Share: l.top1Share })),
              cost: r.cost,
              seconds: r.seconds,
            },
          };
        }),
      },
      null,
      2,
    ) + '\n'
  );
}
