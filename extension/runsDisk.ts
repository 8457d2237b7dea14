/**
 * Reading runs from disk (`<runsDir>/<id>/state.json`, `metrics.jsonl`), so the Runs view and the
 * Training view work after a reload, in untrusted workspaces and for runs started elsewhere (the CLI),
 * without starting the engine. Read-only; the engine owns these files. No `vscode` import (tested in Node).
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { isOwnerAlive } from '../engine/runs/owner';
import { isObj } from '../contract/guards';
import { parseMetricsRecord, parseRunState } from '../contract/parse';
import { parseRobustnessReport, type StoredAnalysis } from '../contract/analysisReport';
import { ANALYSIS_DIR, CHECKPOINT_DIR, CONFIG_FILE, CREATING_PREFIX, METRICS_FILE, STATE_FILE, isAnalysisName, isRunId, sortCheckpoints, stepsPerEpoch, type MetricsRecord, type RunState } from '../contract/runFolder';

export function runDir(runsDir: string, runId: string): string {
  return path.join(runsDir, runId);
}

export { isRunId };

/**
 * The runs folder to use for a run named in restored view state (it comes from storage anyone could have
 * written): the folder the Runs view knows the run in, else the saved one only if it is one of the workspace's
 * runs folders; undefined otherwise.
 */
export function restoredRunsDir(saved: string, known: string | undefined, workspaceRunsDirs: readonly string[]): string | undefined {
  if (known !== undefined) return known;
  const resolved = path.resolve(saved);
  return workspaceRunsDirs.some((d) => path.resolve(d) === resolved) ? resolved : undefined;
}

/**
 * The folder to delete for a run, or an Error saying why not. The path must resolve to a direct child of the
 * runs folder and be a real folder (not a link): run ids come from files anyone can edit.
 */
export async function runFolderToDelete(runsDir: string, runId: string): Promise<string> {
  if (!isRunId(runId)) throw new Error(`"${runId}" is not a run id; refusing to delete`);
  const root = path.resolve(runsDir);
  const dir = path.resolve(root, runId);
  if (path.dirname(dir) !== root) throw new Error(`${dir} is not inside ${root}; refusing to delete`);
  const st = await fs.lstat(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a run folder (${st.isSymbolicLink() ? 'a link' : 'not a folder'}); refusing to delete`);
  return dir;
}

/** A run that says `running` but whose process is gone was interrupted (crash, kill, reboot). */
export function effectiveState(state: RunState): RunState {
  if (state.status === 'running' && state.pid !== undefined && !isOwnerAlive(state.pid, state.pidStart)) {
    return { ...state, status: 'interrupted' };
  }
  return state;
}

export async function readRunState(runsDir: string, runId: string): Promise<RunState | undefined> {
  if (runId.startsWith(CREATING_PREFIX)) return undefined; // a run the engine is still creating (README "Runs on disk")
  let json: unknown;
  try {
    json = JSON.parse(await fs.readFile(path.join(runDir(runsDir, runId), STATE_FILE), 'utf8'));
  } catch {
    return undefined; // missing, or caught mid-rename
  }
  if (isObj(json) && typeof json.id === 'string' && json.id !== runId) {
    const parsed = parseRunState({ ...json, id: runId }, runId);
    return 'value' in parsed ? damagedState(parsed.value, json.id, runId) : undefined;
  }
  const parsed = parseRunState(json, runId);
  return 'value' in parsed ? effectiveState(parsed.value) : undefined;
}

/**
 * A state.json whose id is not its folder's name: listed under the folder name as failed, with the reason, so
 * that no command acts on the id it claims (README "Runs on disk": the folder is the run id).
 */
function damagedState(parsed: RunState, claimedId: string, folder: string): RunState {
  const claimed = JSON.stringify(claimedId).slice(0, 80);
  return {
    ...parsed,
    id: folder,
    status: 'failed',
    pid: undefined,
    pidStart: undefined,
    lastCheckpoint: undefined,
    headline: {},
    warnings: [],
    error: `damaged run: its state.json names run ${claimed}, not its folder "${folder}"`,
  };
}

/** Every run with a readable state.json, newest first. */
export async function listRuns(runsDir: string): Promise<RunState[]> {
  let names: string[];
  try {
    names = await fs.readdir(runsDir);
  } catch {
    return [];
  }
  const states = await Promise.all(names.map((n) => readRunState(runsDir, n)));
  return states
    .filter((s): s is RunState => s !== undefined)
    .sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? '') || b.id.localeCompare(a.id));
}

export interface MetricsChunk {
  records: MetricsRecord[];
  /** Byte offset just after the last complete line read; pass it back to read only what was appended. */
  nextOffset: number;
  /** Complete lines that were not valid records (skipped). */
  bad: number;
}

/**
 * Reads `metrics.jsonl` from `offset`. A last line without its newline is a record still being written
 * (or torn by a crash): it is left for the next read, not parsed.
 */
export async function readMetrics(runsDir: string, runId: string, offset = 0): Promise<MetricsChunk> {
  let buf: Buffer;
  try {
    const fh = await fs.open(path.join(runDir(runsDir, runId), METRICS_FILE), 'r');
    try {
      const { size } = await fh.stat();
      if (size < offset) offset = 0; // rewritten (shorter): start over
      buf = Buffer.alloc(size - offset);
      await fh.read(buf, 0, buf.length, offset);
    } finally {
      await fh.close();
    }
  } catch {
    return { records: [], nextOffset: offset, bad: 0 };
  }
  const end = buf.lastIndexOf(0x0a);
  if (end < 0) return { records: [], nextOffset: offset, bad: 0 };
  const records: MetricsRecord[] = [];
  let bad = 0;
  for (const line of buf.subarray(0, end).toString('utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const parsed = parseMetricsRecord(JSON.parse(line));
      if ('value' in parsed) records.push(parsed.value);
      else bad++;
    } catch {
      bad++;
    }
  }
  return { records, nextOffset: offset + end + 1, bad };
}

/** Names of a run's `analysis/*.json`, newest first (by modification time). */
export async function listAnalysisFiles(runsDir: string, runId: string): Promise<{ name: string; mtime: number }[]> {
  const dir = path.join(runDir(runsDir, runId), ANALYSIS_DIR);
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const stats = await Promise.all(
    names.map(async (name) => {
      try {
        return { name, mtime: (await fs.stat(path.join(dir, name))).mtimeMs };
      } catch {
        return undefined;
      }
    }),
  );
  return stats.filter((s): s is { name: string; mtime: number } => !!s).sort((a, b) => b.mtime - a.mtime || b.name.localeCompare(a.name));
}

/**
 * Reads one `analysis/*.json`. Throws an Error naming the file and the problem when it is missing, not JSON, or
 * not a robustness report (the views show that message instead of drawing garbage).
 */
export async function readAnalysis(runsDir: string, runId: string, name: string): Promise<StoredAnalysis> {
  if (!isAnalysisName(name)) throw new Error(`"${name}" is not an analysis file name`);
  const file = path.join(runDir(runsDir, runId), ANALYSIS_DIR, name);
  let text: string;
  let mtime: number;
  try {
    text = await fs.readFile(file, 'utf8');
    mtime = (await fs.stat(file)).mtimeMs;
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message})`);
  }
  const parsed = parseRobustnessReport(json);
  if (!parsed.ok) throw new Error(`${file} is not a robustness report: ${parsed.error}`);
  const checkpoint = (json as { checkpoint?: unknown }).checkpoint;
  return { name, checkpoint: typeof checkpoint === 'string' ? checkpoint : undefined, report: parsed.value, mtime };
}

/**
 * Checkpoint file names of a run, oldest first, in the contract's one order (by the training step each was taken
 * at; contract/runFolder.ts), which the engine's run store uses too.
 */
export async function listCheckpointFiles(runsDir: string, runId: string): Promise<string[]> {
  let names: string[];
  try {
    names = (await fs.readdir(path.join(runDir(runsDir, runId), CHECKPOINT_DIR))).filter((n) => n.endsWith('.ckpt'));
  } catch {
    return [];
  }
  if (names.length < 2) return names;
  const state = await readRunState(runsDir, runId);
  let epochs: unknown;
  try {
    const config: unknown = JSON.parse(await fs.readFile(path.join(runDir(runsDir, runId), CONFIG_FILE), 'utf8'));
    epochs = isObj(config) && isObj(config.schedule) ? config.schedule.epochs : undefined;
  } catch {
    epochs = undefined; // a damaged config: the order by name
  }
  return sortCheckpoints(names, stepsPerEpoch(state?.totalSteps ?? NaN, epochs));
}
