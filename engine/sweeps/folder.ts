/**
 * The sweep folder (README "Sweeps"), beside the runs folder: `<runs folder>/../sweeps/<sweep name>/`
 *   sweep.json                 the manifest: source file, runs folder, axes, every run's id and axis values,
 *                              the Slurm jobs submitted for it (rewritten atomically)
 *   configs/<run-id>.advmoe.json  each run's resolved experiment (what `advmoe train --run-id` trains)
 *   logs/<run-id>.log          the local executor's output of each run's process
 *   slurm/job.sh, slurm/<job>_<task>.out  the Slurm executor's array script and task outputs
 * The runs themselves stay ordinary runs in the runs folder, named by their stable ids.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readRunConfig, runDir, writeFileAtomic } from '../runs/store';
import { AdvMoEError } from '../util/errors';
import { SWEEP_FILE_SUFFIX, firstDifference, loadSweepFile, valuesLabel, type AxisValue, type SweepPlan } from './spec';

export const MANIFEST_FILE = 'sweep.json';

export interface SlurmSubmission {
  jobId: string;
  submittedAt: string;
  /** Array indices (run indices) this job runs. */
  indices: number[];
}

export interface SweepManifestRun {
  index: number;
  id: string;
  values: Record<string, AxisValue>;
  /** The run's experiment, relative to the sweep folder. */
  config: string;
}

export interface SweepManifest {
  version: 1;
  name: string;
  source?: string;
  /** Absolute runs folder the sweep's runs live in. */
  runsDir: string;
  createdAt: string;
  updatedAt: string;
  axes: { key: string; values: AxisValue[] }[];
  runs: SweepManifestRun[];
  slurm?: { jobs: SlurmSubmission[] };
}

/** The sweeps folder that belongs to a runs folder: its sibling `sweeps/` (`.advmoe/sweeps` by default). */
export function defaultSweepsDir(runsDir: string): string {
  return path.join(path.dirname(path.resolve(runsDir)), 'sweeps');
}

export function sweepDir(sweepsDir: string, name: string): string {
  return path.join(sweepsDir, name);
}

export function runConfigPath(dir: string, runId: string): string {
  return path.join(dir, 'configs', `${runId}.advmoe.json`);
}

export function runLogPath(dir: string, runId: string): string {
  return path.join(dir, 'logs', `${runId}.log`);
}

/**
 * Writes (or updates) the sweep folder for a plan: every run's experiment and the manifest. The Slurm jobs of an
 * earlier manifest are kept. A sweep folder of the same name made from another sweep file is refused: its runs
 * would be mixed up with this one's.
 */
export function writeSweepFolder(sweepsDir: string, plan: SweepPlan, runsDir: string): { dir: string; manifest: SweepManifest } {
  const dir = sweepDir(sweepsDir, plan.name);
  const earlier = fs.existsSync(path.join(dir, MANIFEST_FILE)) ? readSweepManifest(dir) : null;
  if (earlier && earlier.source && plan.source && path.resolve(earlier.source) !== path.resolve(plan.source)) {
    throw new AdvMoEError(
      'INVALID_ARGUMENT',
      `sweep "${plan.name}" in ${dir} was made from ${earlier.source}, not ${plan.source}; give this sweep another "name" (or delete that folder)`,
    );
  }
  if (earlier && path.resolve(earlier.runsDir) !== path.resolve(runsDir)) {
    throw new AdvMoEError('INVALID_ARGUMENT', `sweep "${plan.name}" keeps its runs in ${earlier.runsDir}, not ${runsDir}; pass --runs-dir ${earlier.runsDir}`);
  }
  fs.mkdirSync(path.join(dir, 'configs'), { recursive: true });
  const keep = new Set<string>();
  for (const run of plan.runs) {
    const file = runConfigPath(dir, run.id);
    keep.add(path.basename(file));
    const text = JSON.stringify(run.config, null, 2) + '\n';
    // Unchanged files are left alone: a run of this sweep may be reading its own right now.
    if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text) writeFileAtomic(file, text);
  }
  for (const f of fs.readdirSync(path.join(dir, 'configs'))) if (f.endsWith('.advmoe.json') && !keep.has(f)) fs.rmSync(path.join(dir, 'configs', f), { force: true });
  const now = new Date().toISOString();
  const manifest: SweepManifest = {
    version: 1,
    name: plan.name,
    source: plan.source,
    runsDir: path.resolve(runsDir),
    createdAt: earlier?.createdAt ?? now,
    updatedAt: now,
    axes: plan.axes.map((a) => ({ key: a.key, values: a.values })),
    runs: plan.runs.map((r) => ({ index: r.index, id: r.id, values: r.values, config: path.relative(dir, runConfigPath(dir, r.id)) })),
    ...(earlier?.slurm ? { slurm: earlier.slurm } : {}),
  };
  writeManifest(dir, manifest);
  return { dir, manifest };
}

/**
 * Refuses a plan some of whose runs already exist with another experiment (the sweep's base or axes changed since
 * they ran): training them under the old ids would mix two experiments in one table. Each is named with the first
 * field that differs. Runs whose config cannot be read are left to the status, which calls them unreadable.
 */
export function checkExistingRuns(plan: SweepPlan, runsDir: string): void {
  const problems: string[] = [];
  for (const r of plan.runs) {
    if (!fs.existsSync(runDir(runsDir, r.id))) continue;
    let saved;
    try {
      saved = readRunConfig(runsDir, r.id);
    } catch {
      continue;
    }
    const diff = firstDifference(saved, r.config);
    if (diff) problems.push(`${r.id} (${valuesLabel(r.values)}): ${diff}`);
  }
  if (problems.length) {
    throw new AdvMoEError(
      'CONFIG_INVALID',
      `sweep ${plan.name}: ${problems.length} run(s) exist in ${runsDir} with another experiment than the sweep now gives (its base or axes changed since they ran; saved vs now):\n  - ${problems.join('\n  - ')}\n` +
        'give the sweep another "name" to train the new grid beside them, or delete those runs',
      { errors: problems },
    );
  }
}

export function writeManifest(dir: string, manifest: SweepManifest): void {
  manifest.updatedAt = new Date().toISOString();
  writeFileAtomic(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 1) + '\n');
}

/** Reads a sweep folder's manifest; a damaged one is named with what is wrong. */
export function readSweepManifest(dir: string): SweepManifest {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new AdvMoEError('RUN_NOT_FOUND', `no sweep in ${dir} (cannot read ${MANIFEST_FILE}: ${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  let m: SweepManifest;
  try {
    m = JSON.parse(text) as SweepManifest;
  } catch (e) {
    throw new AdvMoEError('DATA_CORRUPT', `${file} is not valid JSON: ${(e as Error).message}`);
  }
  const problem = manifestProblem(m);
  if (problem) throw new AdvMoEError('DATA_CORRUPT', `${file} is damaged: ${problem}`);
  return m;
}

function manifestProblem(m: unknown): string | null {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return 'not an object';
  const o = m as Record<string, unknown>;
  if (o.version !== 1) return `version ${JSON.stringify(o.version)} is not 1`;
  if (typeof o.name !== 'string') return 'name is not a string';
  if (typeof o.runsDir !== 'string') return 'runsDir is not a string';
  if (!Array.isArray(o.axes) || !o.axes.every((a) => a && typeof a.key === 'string' && Array.isArray(a.values))) return 'axes is not a list of {key, values}';
  if (!Array.isArray(o.runs)) return 'runs is not a list';
  for (const [i, r] of o.runs.entries()) {
    if (!r || typeof r !== 'object') return `runs[${i}] is not an object`;
    const run = r as Record<string, unknown>;
    if (typeof run.id !== 'string' || !/^[A-Za-z0-9._-]+$/.test(run.id)) return `runs[${i}].id is not a run id`;
    if (typeof run.index !== 'number' || typeof run.config !== 'string' || !run.values || typeof run.values !== 'object') return `runs[${i}] lacks index, config or values`;
  }
  if (o.slurm !== undefined) {
    const s = o.slurm as { jobs?: unknown };
    if (!s || !Array.isArray(s.jobs) || !s.jobs.every((j) => j && typeof j.jobId === 'string' && Array.isArray(j.indices))) return 'slurm.jobs is not a list of {jobId, indices}';
  }
  return null;
}

/**
 * A sweep named on the command line: its folder, its name in the sweeps folder, or its sweep file (whose
 * name says which folder).
 */
export function findSweepDir(sweepsDir: string, ref: string): string {
  const asPath = path.resolve(ref);
  if (fs.existsSync(path.join(asPath, MANIFEST_FILE))) return asPath;
  if (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(ref) && fs.existsSync(path.join(sweepsDir, ref, MANIFEST_FILE))) return path.join(sweepsDir, ref);
  if (ref.endsWith(SWEEP_FILE_SUFFIX) || (fs.existsSync(asPath) && fs.statSync(asPath).isFile())) {
    const plan = loadSweepFile(asPath);
    const dir = sweepDir(sweepsDir, plan.name);
    if (fs.existsSync(path.join(dir, MANIFEST_FILE))) return dir;
    throw new AdvMoEError('RUN_NOT_FOUND', `sweep "${plan.name}" (${ref}) has not been started: no ${path.join(dir, MANIFEST_FILE)}; run \`advmoe sweep ${ref}\``);
  }
  throw new AdvMoEError('RUN_NOT_FOUND', `no sweep "${ref}": not a sweep folder, a sweep name in ${sweepsDir} or a sweep file`);
}

/** Every sweep folder under `sweepsDir` with its manifest; unreadable ones are reported through `onSkip`. */
export function listSweeps(sweepsDir: string, onSkip?: (dir: string, reason: string) => void): { dir: string; manifest: SweepManifest }[] {
  let names: string[];
  try {
    names = fs.readdirSync(sweepsDir);
  } catch {
    return [];
  }
  const out: { dir: string; manifest: SweepManifest }[] = [];
  for (const n of names.sort()) {
    const dir = path.join(sweepsDir, n);
    if (!fs.existsSync(path.join(dir, MANIFEST_FILE))) continue;
    try {
      out.push({ dir, manifest: readSweepManifest(dir) });
    } catch (e) {
      onSkip?.(dir, (e as Error).message);
    }
  }
  return out;
}
