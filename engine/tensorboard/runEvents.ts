/**
 * TensorBoard event files in run folders (README "TensorBoard"): one file per run,
 * `<run>/events.out.tfevents.<created>.advmoe`, derived from what the run folder already holds, so it can
 * be rebuilt at any time (`advmoe tensorboard`):
 *   - the run's hparams (config.json flattened to dotted names) as the HParams plugin's session start, and
 *     its end (success / failure) once the run has finished or failed;
 *   - every metrics.jsonl record as scalars `<kind>/<metric>` (train/loss, eval/sa, …) at its step (float32, the
 *     only scalar dtype TensorBoard's data server reads);
 *   - the final analysis' per-layer routing (decision share and entropy, change rate, expert load on clean
 *     and adversarial inputs) as `routing/<layer>/…` at the analysis' step.
 * Wall times are the run's creation time plus the record's training time, so a rebuilt file is identical.
 * Training appends to the file as it logs (RunEventLog); a resumed run rebuilds it first, since its
 * metrics.jsonl was cut back to the checkpoint.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LayerRoutingStats, RobustnessReport } from '../analysis/types';
import { openForAppend, openForWrite, readNoFollow, refuseLink } from '../runs/noLinks';
import { listAnalyses, readMetrics, readRunConfig, readState, runDir } from '../runs/store';
import type { MetricsRecord, RunState } from '../runs/types';
import { AdvMoEError } from '../util/errors';
import { fileVersionEvent, hparamsEndEvent, hparamsStartEvent, scalarsEvent, type HParams } from './events';
import { frameRecord } from './records';

export const EVENTS_PREFIX = 'events.out.tfevents.';
const FINAL_ANALYSIS = /^final-step-(\d+)\.json$/;

export function eventsFileName(state: Pick<RunState, 'createdAt'>): string {
  const created = Date.parse(state.createdAt);
  return `${EVENTS_PREFIX}${Number.isFinite(created) ? Math.floor(created / 1000) : 0}.advmoe`;
}

/** Seconds since the epoch of a record `time` seconds into the run. */
function wallTime(state: Pick<RunState, 'createdAt'>, time: number): number {
  const created = Date.parse(state.createdAt);
  return (Number.isFinite(created) ? created / 1000 : 0) + (Number.isFinite(time) ? time : 0);
}

/** config.json as dotted names → scalar values; lists become their JSON text. */
export function flattenHParams(config: unknown, prefix = '', out: HParams = {}): HParams {
  if (config !== null && typeof config === 'object' && !Array.isArray(config)) {
    for (const [k, v] of Object.entries(config)) flattenHParams(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (typeof config === 'number' || typeof config === 'string' || typeof config === 'boolean') {
    out[prefix] = config;
  } else if (Array.isArray(config)) {
    out[prefix] = JSON.stringify(config);
  }
  return out;
}

export function metricScalars(r: MetricsRecord): Array<[string, number]> {
  return Object.entries(r.metrics)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [`${r.kind}/${k}`, v]);
}

export function routingScalars(layers: readonly LayerRoutingStats[]): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const l of layers) {
    const at = `routing/${l.layer}`;
    if (l.decisionShare !== undefined) out.push([`${at}/decisionShare`, l.decisionShare]);
    if (l.decisionEntropy !== undefined) out.push([`${at}/decisionEntropy`, l.decisionEntropy]);
    out.push([`${at}/changeRate`, l.changeRate]);
    l.loadClean.forEach((v, e) => out.push([`${at}/loadClean/expert${e}`, v]));
    l.loadAdv.forEach((v, e) => out.push([`${at}/loadAdv/expert${e}`, v]));
  }
  return out;
}

function endStatus(state: RunState): 'success' | 'failure' | undefined {
  return state.status === 'finished' ? 'success' : state.status === 'failed' ? 'failure' : undefined;
}

export interface RunEventsSummary {
  file: string;
  /** Scalar values written, and the events that hold them. */
  scalars: number;
  events: number;
  /** Problems that left something out (an unreadable analysis, damaged metrics lines). */
  skipped: string[];
}

/** (Re)writes a run's event file from its folder, atomically. */
export function writeRunEvents(runsDir: string, runId: string): RunEventsSummary {
  const dir = runDir(runsDir, runId);
  const state = readState(runsDir, runId);
  const config = readRunConfig(runsDir, runId);
  const { records, badLines } = readMetrics(runsDir, runId);
  const skipped = badLines.map((l) => `metrics.jsonl line ${l} is not a record`);
  const events: Uint8Array[] = [fileVersionEvent(wallTime(state, 0)), hparamsStartEvent(flattenHParams(config), wallTime(state, 0))];
  let scalars = 0;
  let lastTime = 0;
  for (const r of records) {
    const values = metricScalars(r);
    if (!values.length) continue;
    events.push(scalarsEvent(r.step, wallTime(state, r.time), values));
    scalars += values.length;
    lastTime = Math.max(lastTime, r.time);
  }
  for (const name of listAnalyses(runsDir, runId)) {
    const m = FINAL_ANALYSIS.exec(name);
    if (!m) continue;
    let report: RobustnessReport;
    try {
      report = JSON.parse(readNoFollow(path.join(dir, 'analysis', name)).toString('utf8'));
      if (!Array.isArray(report.layers)) throw new Error('no layers');
    } catch (e) {
      skipped.push(`analysis/${name}: ${(e as Error).message}`);
      continue;
    }
    const values = routingScalars(report.layers);
    if (values.length) events.push(scalarsEvent(Number(m[1]), wallTime(state, lastTime), values));
    scalars += values.length;
  }
  const end = endStatus(state);
  if (end) events.push(hparamsEndEvent(end, wallTime(state, lastTime)));
  const file = path.join(dir, eventsFileName(state));
  replaceFile(file, Buffer.concat(events.map(frameRecord)));
  return { file, scalars, events: events.length, skipped };
}

/**
 * Written under a name without "tfevents" (TensorBoard would read a half-written file as another one),
 * then renamed over the event file; `.tmp-<pid>` lets a later resume clear it after a crash.
 */
function replaceFile(file: string, data: Buffer): void {
  const tmp = path.join(path.dirname(file), `tensorboard.tmp-${process.pid}`);
  const fd = openForWrite(tmp);
  try {
    fs.writeSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
  refuseLink(file);
  fs.renameSync(tmp, file);
}

/** The live event file of a training run: rebuilt when training (re)starts, then appended to. */
export class RunEventLog {
  private readonly file: string;
  private lastTime = 0;

  private constructor(
    private readonly runsDir: string,
    private readonly state: RunState,
  ) {
    this.file = path.join(runDir(runsDir, state.id), eventsFileName(state));
  }

  /** Rebuilds the run's file from its folder (dropping steps a resume cut from metrics.jsonl). */
  static open(runsDir: string, state: RunState): RunEventLog {
    writeRunEvents(runsDir, state.id);
    const log = new RunEventLog(runsDir, state);
    log.lastTime = readMetrics(runsDir, state.id).records.reduce((t, r) => Math.max(t, r.time), 0);
    return log;
  }

  append(records: readonly MetricsRecord[]): void {
    const events: Uint8Array[] = [];
    for (const r of records) {
      const values = metricScalars(r);
      if (values.length) events.push(scalarsEvent(r.step, wallTime(this.state, r.time), values));
      this.lastTime = Math.max(this.lastTime, r.time);
    }
    this.write(events);
  }

  /** The final analysis' routing at its step. */
  routing(step: number, layers: readonly LayerRoutingStats[]): void {
    const values = routingScalars(layers);
    if (values.length) this.write([scalarsEvent(step, wallTime(this.state, this.lastTime), values)]);
  }

  /** The HParams session's end: the run finished or failed. */
  end(status: 'success' | 'failure'): void {
    this.write([hparamsEndEvent(status, wallTime(this.state, this.lastTime))]);
  }

  private write(events: Uint8Array[]): void {
    if (!events.length) return;
    const fd = openForAppend(this.file);
    try {
      fs.writeSync(fd, Buffer.concat(events.map(frameRecord)));
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Runs under `target`: the run itself when it is a run folder (has state.json), else every run in it. */
export function runsUnder(target: string): { runsDir: string; runIds: string[] } {
  if (!fs.existsSync(target)) throw new AdvMoEError('RUN_NOT_FOUND', `${target}: no such folder`);
  if (fs.existsSync(path.join(target, 'state.json'))) return { runsDir: path.dirname(path.resolve(target)), runIds: [path.basename(path.resolve(target))] };
  if (!fs.statSync(target).isDirectory()) throw new AdvMoEError('INVALID_ARGUMENT', `${target} is a file; give a runs folder or a run folder`);
  const runIds = fs
    .readdirSync(target, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(target, e.name, 'state.json')))
    .map((e) => e.name)
    .sort();
  return { runsDir: path.resolve(target), runIds };
}
