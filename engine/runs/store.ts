/**
 * The run folder (README "Runs on disk"; its files and records are the contract in contract/runFolder.ts):
 *   <runsDir>/<run-id>/config.json     resolved experiment (written once)
 *                      state.json      RunState, rewritten atomically
 *                      metrics.jsonl   append-only, one MetricsRecord a line; a torn last line is tolerated
 *                      checkpoints/    written to a temporary file, then renamed
 *                      analysis/*.json robustness reports
 * Nothing outside `runsDir` is written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExperimentConfig } from '../config/types';
import { resolveConfig } from '../config/load';
import { AdvMoEError, isAdvMoEError } from '../util/errors';
import { openForAppend, openForUpdate, openForWrite, readNoFollow, refuseLink, runPartError } from './noLinks';
import { isOwnerAlive, isPidAlive, ownStartTime } from './owner';
import type { MetricsRecord, RunState } from './types';
import { upgradeLegacyConfig } from './legacyConfig';
import { parseMetricsRecord, parseRunState } from '../../contract/parse';
import { ANALYSIS_DIR, CHECKPOINT_DIR, CONFIG_FILE, CREATING_PREFIX, METRICS_FILE, STATE_FILE, isRunId, sortCheckpoints, stepsPerEpoch } from '../../contract/runFolder';

export { ANALYSIS_DIR, CHECKPOINT_DIR, CONFIG_FILE, METRICS_FILE, STATE_FILE };

/** Writes a file so that readers see either the old or the new content, never a mix. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openForWrite(tmp);
  try {
    fs.writeSync(fd, data as any);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw runPartError(e, file);
  }
}

export function runDir(runsDir: string, runId: string): string {
  if (!isRunId(runId)) {
    throw new AdvMoEError('INVALID_ARGUMENT', `"${runId}" is not a valid run id (letters, digits, ".", "_", "-")`);
  }
  return path.join(runsDir, runId);
}

/** The parts of a run folder that are always there; none may be a link (noLinks.ts). */
const RUN_PARTS = [CONFIG_FILE, STATE_FILE, METRICS_FILE, CHECKPOINT_DIR, ANALYSIS_DIR];

/** Refuses a run folder that is a link or holds one among its fixed parts. */
export function checkRunLinks(runsDir: string, runId: string): void {
  const dir = runDir(runsDir, runId);
  refuseLink(dir);
  for (const part of RUN_PARTS) refuseLink(path.join(dir, part));
}

/** A run sub-folder, refused when it or the run folder is a link; `create` makes it when missing (writers). */
function runSubdir(runsDir: string, runId: string, folder: string, create = false): string {
  const dir = path.join(runDir(runsDir, runId), folder);
  refuseLink(runDir(runsDir, runId));
  refuseLink(dir);
  try {
    if (create) fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw runPartError(e, dir);
  }
  return dir;
}

/** A run file's text. A link is refused (AdvMoEError); any other read failure is `orElse`'s to answer. */
function readRunText<T>(file: string, orElse: (e: NodeJS.ErrnoException) => T): string | T {
  try {
    return readNoFollow(file).toString('utf8');
  } catch (e) {
    if (e instanceof AdvMoEError) throw e;
    return orElse(e as NodeJS.ErrnoException);
  }
}

/** A JSON.parse failure without the text it quotes: a file that is not ours may hold secrets. */
function jsonProblem(e: unknown): string {
  const m = /position (\d+)/.exec((e as Error).message);
  return m ? `not valid JSON (at byte ${m[1]})` : 'not valid JSON';
}

function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'run';
}

function timestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export interface NewRun {
  config: ExperimentConfig;
  configPath?: string;
  totalSteps: number;
  /** This exact id instead of `<timestamp>-<name>` (sweep runs: README "Sweeps"); taken already → RUN_BUSY. */
  id?: string;
}

/** Refuses a runs folder that exists but is not a folder; a missing one is made when the first run is. */
export function checkRunsDir(runsDir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(runsDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new AdvMoEError('INVALID_ARGUMENT', `cannot use the runs folder ${runsDir}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  if (!st.isDirectory()) throw new AdvMoEError('INVALID_ARGUMENT', `the runs folder ${runsDir} is a file, not a folder (--runs-dir)`);
}

/**
 * A run folder is built under a hidden temporary name (`.creating-<pid>-<id>`) and renamed into place once
 * complete, so a kill during creation leaves no half-made run that listings warn about for good; such
 * leftovers of dead processes are removed by the next createRun.
 */
const CREATING = new RegExp(`^\\${CREATING_PREFIX}(\\d+)-`);

function removeOrphanCreations(runsDir: string): void {
  for (const name of fs.readdirSync(runsDir)) {
    const m = CREATING.exec(name);
    if (m && Number(m[1]) !== process.pid && !isPidAlive(Number(m[1]))) fs.rmSync(path.join(runsDir, name), { recursive: true, force: true });
  }
}

/** Creates a fresh run folder and returns its initial state. */
export function createRun(runsDir: string, run: NewRun, now = new Date()): RunState {
  fs.mkdirSync(runsDir, { recursive: true });
  removeOrphanCreations(runsDir);
  if (run.id !== undefined) runDir(runsDir, run.id); // refuses an id that is not a folder name
  const base = run.id ?? `${timestamp(now)}-${slug(run.config.name)}`;
  const iso = now.toISOString();
  const state: RunState = {
    id: base,
    name: run.config.name,
    configPath: run.configPath,
    method: run.config.method.kind,
    backbone: run.config.model.backbone,
    moe: run.config.model.moe.enabled,
    status: 'running',
    createdAt: iso,
    updatedAt: iso,
    epoch: 0,
    step: 0,
    totalSteps: run.totalSteps,
    pid: process.pid,
    pidStart: ownStartTime(),
    headline: {},
    warnings: [],
  };
  const tmp = path.join(runsDir, `${CREATING_PREFIX}${process.pid}-${base}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    fs.mkdirSync(path.join(tmp, CHECKPOINT_DIR), { recursive: true });
    fs.mkdirSync(path.join(tmp, ANALYSIS_DIR), { recursive: true });
    writeFileAtomic(path.join(tmp, CONFIG_FILE), JSON.stringify(run.config, null, 2) + '\n');
    fs.writeFileSync(path.join(tmp, METRICS_FILE), '');
    for (let i = 2; ; i++) {
      if (!fs.existsSync(path.join(runsDir, state.id))) {
        writeFileAtomic(path.join(tmp, STATE_FILE), JSON.stringify(state, null, 2) + '\n');
        try {
          fs.renameSync(tmp, path.join(runsDir, state.id));
          return state;
        } catch (e) {
          // Another process took the id between the check and the rename: try the next one.
          if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
      }
      if (run.id !== undefined) throw new AdvMoEError('RUN_BUSY', `run "${run.id}" already exists in ${runsDir} (another process created it)`);
      state.id = `${base}-${i}`;
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

const TEMP_FILE = /\.tmp-(\d+)$/;

/**
 * Removes the temporary files (`*.tmp-<pid>`, see writeFileAtomic and checkpoints) that killed writers left in
 * a run folder: only those whose writer is dead. Returns them, relative to the run folder.
 */
export function removeStaleTemps(runsDir: string, runId: string): string[] {
  const removed: string[] = [];
  const dir = runDir(runsDir, runId);
  for (const sub of ['', CHECKPOINT_DIR, ANALYSIS_DIR]) {
    const d = path.join(dir, sub);
    let names: string[];
    try {
      if (fs.lstatSync(d).isSymbolicLink()) continue;
      names = fs.readdirSync(d);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = TEMP_FILE.exec(name);
      if (!m || Number(m[1]) === process.pid || isPidAlive(Number(m[1]))) continue;
      fs.rmSync(path.join(d, name), { force: true });
      removed.push(path.join(sub, name));
    }
  }
  return removed;
}

export function writeState(runsDir: string, state: RunState): void {
  state.updatedAt = new Date().toISOString();
  writeFileAtomic(path.join(runDir(runsDir, state.id), STATE_FILE), JSON.stringify(state, null, 2) + '\n');
}

/** Reads a run's state. A run marked running whose process is gone is reported as interrupted. */
export function readState(runsDir: string, runId: string): RunState {
  const file = path.join(runDir(runsDir, runId), STATE_FILE);
  checkRunLinks(runsDir, runId);
  const text = readRunText(file, () => {
    throw new AdvMoEError('RUN_NOT_FOUND', `no run "${runId}" in ${runsDir} (missing ${STATE_FILE})`);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AdvMoEError('DATA_CORRUPT', `${file} is ${jsonProblem(e)}`);
  }
  const parsed = parseRunState(json, runId);
  if ('problem' in parsed) throw new AdvMoEError('DATA_CORRUPT', `${file} does not describe run "${runId}": ${parsed.problem}`);
  const state = parsed.value;
  if (state.status === 'running' && state.pid !== process.pid && !isOwnerAlive(state.pid, state.pidStart)) state.status = 'interrupted';
  return state;
}

export function readRunConfig(runsDir: string, runId: string): ExperimentConfig {
  const file = path.join(runDir(runsDir, runId), CONFIG_FILE);
  const text = readRunText(file, (e) => {
    throw new AdvMoEError('DATA_CORRUPT', `cannot read the resolved config ${file}: ${e.code ?? e.message}`);
  });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new AdvMoEError('DATA_CORRUPT', `the resolved config ${file} is ${jsonProblem(e)}`);
  }
  // Validated like an experiment file (a resolved config is one, with every default filled in). Options added
  // since the run was saved read as what it was trained with, not as today's defaults (legacyConfig.ts).
  try {
    return resolveConfig(upgradeLegacyConfig(raw as ExperimentConfig), { source: file });
  } catch (e) {
    if (isAdvMoEError(e, 'CONFIG_INVALID')) throw new AdvMoEError('DATA_CORRUPT', `the resolved config of run "${runId}" is damaged: ${e.message}`, e.details);
    throw e;
  }
}

/** Every run under `runsDir`, newest first. Unreadable folders are skipped (reported through `onSkip`). */
export function listRuns(runsDir: string, onSkip?: (dir: string, reason: string) => void): RunState[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(runsDir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []; // no run yet
    checkRunsDir(runsDir);
    throw new AdvMoEError('INVALID_ARGUMENT', `cannot read the runs folder ${runsDir}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const runs: RunState[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || CREATING.test(e.name)) continue; // a run being created (or left by a kill)
    try {
      runs.push(readState(runsDir, e.name));
    } catch (err) {
      onSkip?.(path.join(runsDir, e.name), (err as Error).message);
    }
  }
  return runs.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/** Appends records. If the file ends in a torn line (a crash mid-write), that fragment is dropped first so
 * that no record is glued to garbage. */
export function appendMetrics(runsDir: string, runId: string, records: MetricsRecord[]): void {
  if (!records.length) return;
  const file = path.join(runDir(runsDir, runId), METRICS_FILE);
  dropTornTail(file);
  const fd = openForAppend(file);
  try {
    fs.writeSync(fd, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  } finally {
    fs.closeSync(fd);
  }
}

function dropTornTail(file: string): void {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    return;
  }
  if (size === 0) return;
  const fd = openForUpdate(file);
  try {
    const last = Buffer.alloc(1);
    fs.readSync(fd, last, 0, 1, size - 1);
    if (last[0] === 0x0a) return;
    // Find the last newline, scanning back in chunks.
    let end = size;
    const chunk = Buffer.alloc(4096);
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      fs.readSync(fd, chunk, 0, end - start, start);
      const i = chunk.subarray(0, end - start).lastIndexOf(0x0a);
      if (i >= 0) {
        fs.ftruncateSync(fd, start + i + 1);
        return;
      }
      end = start;
    }
    fs.ftruncateSync(fd, 0);
  } finally {
    fs.closeSync(fd);
  }
}

export interface MetricsRead {
  records: MetricsRecord[];
  /** Lines that could not be parsed (other than a torn last line), 1-based. */
  badLines: number[];
  tornTail: boolean;
}

/** Reads metrics.jsonl, tolerating a torn last line; `afterStep` keeps only records with a larger step. */
export function readMetrics(runsDir: string, runId: string, afterStep = -Infinity): MetricsRead {
  const file = path.join(runDir(runsDir, runId), METRICS_FILE);
  const text = readRunText(file, () => undefined);
  if (text === undefined) return { records: [], badLines: [], tornTail: false };
  const lines = text.split('\n');
  const tornTail = lines[lines.length - 1] !== '';
  const records: MetricsRecord[] = [];
  const badLines: number[] = [];
  lines.forEach((line, i) => {
    if (!line) return;
    try {
      const parsed = parseMetricsRecord(JSON.parse(line));
      if ('problem' in parsed) throw new Error(parsed.problem);
      if (parsed.value.step > afterStep) records.push(parsed.value);
    } catch {
      if (!(tornTail && i === lines.length - 1)) badLines.push(i + 1);
    }
  });
  return { records, badLines, tornTail };
}

/** Drops records past `step` (a resumed run replays the steps after its checkpoint). */
export function truncateMetricsAfter(runsDir: string, runId: string, step: number): void {
  const file = path.join(runDir(runsDir, runId), METRICS_FILE);
  const { records } = readMetrics(runsDir, runId);
  const kept = records.filter((r) => r.step <= step);
  if (kept.length === records.length && !readMetrics(runsDir, runId).tornTail) return;
  writeFileAtomic(file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
}

export function checkpointPath(runsDir: string, runId: string, name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name === '.' || name === '..') throw new AdvMoEError('INVALID_ARGUMENT', `"${name}" is not a valid checkpoint name`);
  const file = path.join(runSubdir(runsDir, runId, CHECKPOINT_DIR), name);
  refuseLink(file);
  return file;
}

/** Sorted names of a run sub-folder's files with the given ending; none when the folder is missing. */
function listRunFiles(runsDir: string, runId: string, folder: string, ending: string): string[] {
  const dir = path.join(runDir(runsDir, runId), folder);
  try {
    return fs.readdirSync(dir).filter((f) => f.endsWith(ending)).sort();
  } catch {
    return [];
  }
}

/** A run's checkpoints, oldest first, in the contract's one order (by the training step each was taken at). */
export function listCheckpoints(runsDir: string, runId: string): string[] {
  const names = listRunFiles(runsDir, runId, CHECKPOINT_DIR, '.ckpt');
  if (names.length < 2) return names;
  let perEpoch = NaN;
  try {
    perEpoch = stepsPerEpoch(readState(runsDir, runId).totalSteps, readRunConfig(runsDir, runId).schedule.epochs);
  } catch {
    // A damaged state or config: the order by name (every epoch checkpoint, then every step checkpoint).
  }
  return sortCheckpoints(names, perEpoch);
}

export function listAnalyses(runsDir: string, runId: string): string[] {
  return listRunFiles(runsDir, runId, ANALYSIS_DIR, '.json');
}

export function writeAnalysis(runsDir: string, runId: string, name: string, report: unknown): string {
  if (!/^[A-Za-z0-9._-]+\.json$/.test(name)) throw new AdvMoEError('INVALID_ARGUMENT', `"${name}" is not an analysis file name`);
  const file = path.join(runSubdir(runsDir, runId, ANALYSIS_DIR, true), name);
  writeFileAtomic(file, JSON.stringify(report, null, 1) + '\n');
  return file;
}

/** Removes a run folder (callers confirm with the user first). Refuses a run that is still running. */
export function deleteRun(runsDir: string, runId: string): void {
  const state = readState(runsDir, runId);
  if (state.status === 'running') throw new AdvMoEError('RUN_BUSY', `run "${runId}" is still running; stop it first`);
  fs.rmSync(runDir(runsDir, runId), { recursive: true, force: true });
}

/** The adversarial inputs of an analysis, stored next to its JSON: `<name>.adv.u8` (name without `.json`). */
export function analysisImagesPath(runsDir: string, runId: string, analysisName: string): string {
  if (!/^[A-Za-z0-9._-]+\.json$/.test(analysisName)) throw new AdvMoEError('INVALID_ARGUMENT', `"${analysisName}" is not an analysis file name`);
  return path.join(runSubdir(runsDir, runId, ANALYSIS_DIR), analysisName.replace(/\.json$/, '.adv.u8'));
}

const IMAGES_MAGIC = 'ADVMOE-U8 1\n';

/** Writes n images of h·w·c bytes (pixel·255) as one file: a magic line, a JSON header line, the bytes. */
export function writeAnalysisImages(runsDir: string, runId: string, analysisName: string, bytes: Uint8Array, shape?: [number, number, number]): string {
  const file = analysisImagesPath(runsDir, runId, analysisName);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const header = Buffer.from(IMAGES_MAGIC + JSON.stringify({ bytes: bytes.length, ...(shape ? { shape } : {}) }) + '\n', 'utf8');
  writeFileAtomic(file, Buffer.concat([header, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]));
  return file;
}

/** Reads what writeAnalysisImages wrote; null when the file does not exist; a clear error when it is damaged. */
export function readAnalysisImages(runsDir: string, runId: string, analysisName: string): Uint8Array | null {
  const file = analysisImagesPath(runsDir, runId, analysisName);
  let buf: Buffer;
  try {
    buf = readNoFollow(file);
  } catch (e) {
    if (e instanceof AdvMoEError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new AdvMoEError('DATA_NOT_FOUND', `cannot read ${file}: ${(e as Error).message}`);
  }
  const magicEnd = IMAGES_MAGIC.length;
  const headerEnd = buf.indexOf(0x0a, magicEnd);
  if (buf.subarray(0, magicEnd).toString('utf8') !== IMAGES_MAGIC || headerEnd < 0) {
    throw new AdvMoEError('DATA_CORRUPT', `${file} is not an AdvMoE image file`);
  }
  let header: { bytes?: unknown };
  try {
    header = JSON.parse(buf.subarray(magicEnd, headerEnd).toString('utf8')) as { bytes?: unknown };
  } catch {
    throw new AdvMoEError('DATA_CORRUPT', `${file} has a damaged header`);
  }
  const body = buf.subarray(headerEnd + 1);
  if (header.bytes !== body.length) throw new AdvMoEError('DATA_CORRUPT', `${file} is truncated or damaged: ${body.length} bytes, header says ${String(header.bytes)}`);
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
}
