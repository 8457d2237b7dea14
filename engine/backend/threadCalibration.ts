/**
 * Thread count by measurement. On a small or shared machine a second thread can make a training step slower
 * (README "Benchmark": measured on 2 vCPUs), so the engine does not take the core count on faith: it times a few
 * training-like steps at 1 thread and at every core, each in its own child process (wasm's pool and
 * TensorFlow's thread environment are fixed once per process), alternating between the two, and keeps the
 * faster. The result is cached per machine (CPU model, core count, backend, versions) in a JSON file in the
 * per-user cache folder, so a warm start reads one small file.
 */
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errorMessage } from '../util/errors';

export type CalibratedBackend = 'wasm' | 'tensorflow';

/** What a cached measurement is valid for. */
export interface MachineKey {
  backend: CalibratedBackend;
  cpu: string;
  cores: number;
  /** Versions that change the kernels: Node (V8 runs wasm), tfjs, the native package. */
  versions: Record<string, string>;
}

export interface CalibrationEntry {
  key: MachineKey;
  threads: number;
  /** Images/s samples per thread count (alternating rounds). */
  samples: Record<string, number[]>;
  /** ISO date of the measurement. */
  date: string;
}

export interface ThreadChoice {
  threads: number;
  /** One line for `advmoe backend`, e.g. "calibrated: 1 thread 212 img/s, 2 threads 160 img/s; cached 2026-11-29". */
  why: string;
}

/** Counts that must beat the next smaller one by this factor to be chosen: more threads cost other processes. */
export const MORE_THREADS_MARGIN = 1.05;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The fastest thread count by median images/s; a larger count must beat the current best by MORE_THREADS_MARGIN. */
export function decideThreads(samples: Record<string, number[]>): number {
  const counts = Object.keys(samples).map(Number).filter((n) => samples[n]?.length > 0).sort((a, b) => a - b);
  if (counts.length === 0) throw new Error('no calibration samples');
  let best = counts[0];
  for (const n of counts.slice(1)) if (median(samples[n]) > median(samples[best]) * MORE_THREADS_MARGIN) best = n;
  return best;
}

export function describeEntry(e: CalibrationEntry, cached: boolean): string {
  const parts = Object.keys(e.samples)
    .map(Number)
    .sort((a, b) => a - b)
    .map((n) => `${n} thread${n === 1 ? '' : 's'} ${median(e.samples[n]).toFixed(0)} img/s`);
  return `calibrated: ${parts.join(', ')}${cached ? `; cached ${e.date.slice(0, 10)}` : ''}`;
}

export function machineKey(backend: CalibratedBackend): MachineKey {
  const versions: Record<string, string> = { node: process.version };
  const pkgVersion = (pkg: string): string => {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional packages: their version when installed
      return (require(`${pkg}/package.json`) as { version: string }).version;
    } catch {
      return 'none';
    }
  };
  versions['tfjs-core'] = pkgVersion('@tensorflow/tfjs-core');
  versions[backend === 'wasm' ? 'tfjs-backend-wasm' : 'tfjs-node'] = pkgVersion(backend === 'wasm' ? '@tensorflow/tfjs-backend-wasm' : '@tensorflow/tfjs-node');
  const cpus = os.cpus();
  return { backend, cpu: cpus[0]?.model?.trim() ?? 'unknown', cores: cpus.length, versions };
}

const keyId = (k: MachineKey): string => JSON.stringify([k.backend, k.cpu, k.cores, Object.entries(k.versions).sort()]);

/** $ADVMOE_CACHE_DIR, else $XDG_CACHE_HOME/advmoe, else ~/.cache/advmoe (macOS/Windows: the same under home). */
export function cacheFile(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.ADVMOE_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'advmoe');
  return path.join(dir, 'threads.json');
}

/** The cached entries; an unreadable or malformed file yields none and a note (it is rewritten on the next save). */
export function readCache(file: string): { entries: CalibrationEntry[]; note?: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { entries: [] };
  }
  try {
    const data = JSON.parse(text) as { entries?: unknown };
    if (!Array.isArray(data.entries)) throw new Error('no "entries" array');
    const valid = data.entries.filter(
      (e: CalibrationEntry) => e && typeof e.threads === 'number' && e.threads >= 1 && e.key && e.samples && typeof e.date === 'string',
    );
    return { entries: valid };
  } catch (e) {
    return { entries: [], note: `thread calibration cache ${file} is unreadable (${errorMessage(e)}); recalibrating` };
  }
}

/** Replaces the entry for `entry.key` and writes the file atomically (concurrent engines may share it). */
export function saveEntry(file: string, entry: CalibrationEntry): void {
  const kept = readCache(file).entries.filter((e) => keyId(e.key) !== keyId(entry.key));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ entries: [...kept, entry] }, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

export type Measure = (backend: CalibratedBackend, counts: number[]) => Promise<Record<string, number[]>>;

export interface ChooseOptions {
  log?: (message: string) => void;
  file?: string;
  /** Tests inject a measurement; the default spawns calibration workers (measureThreads). */
  measure?: Measure;
  key?: MachineKey;
}

/**
 * The thread count for `backend` on this machine: from the cache when it holds this machine's key, else measured
 * (and cached). A failed measurement falls back to every core with the reason in `why`; never throws.
 */
export async function chooseThreads(backend: CalibratedBackend, opts: ChooseOptions = {}): Promise<ThreadChoice> {
  const key = opts.key ?? machineKey(backend);
  if (key.cores <= 1) return { threads: 1, why: 'one core' };
  const file = opts.file ?? cacheFile();
  const cache = readCache(file);
  if (cache.note) opts.log?.(cache.note);
  const hit = cache.entries.find((e) => keyId(e.key) === keyId(key));
  if (hit) return { threads: hit.threads, why: describeEntry(hit, true) };
  let samples: Record<string, number[]>;
  try {
    samples = await (opts.measure ?? measureThreads)(backend, [1, key.cores]);
  } catch (e) {
    return { threads: key.cores, why: `every core (thread calibration failed: ${errorMessage(e)})` };
  }
  const entry: CalibrationEntry = { key, threads: decideThreads(samples), samples, date: new Date().toISOString() };
  try {
    saveEntry(file, entry);
  } catch (e) {
    opts.log?.(`thread calibration not cached (${errorMessage(e)})`);
  }
  return { threads: entry.threads, why: describeEntry(entry, false) };
}

/** Alternating rounds per thread count; each round is a few training-like steps (calibrateWorker.ts). */
const ROUNDS = 3;
const TIMEOUT_MS = 60_000;

/**
 * Starts one calibration worker per thread count (they initialise in parallel), then asks them in turn, order
 * alternating per round, for one timed round each, so that load changes hit every count alike.
 */
export async function measureThreads(backend: CalibratedBackend, counts: number[]): Promise<Record<string, number[]>> {
  const script = path.join(__dirname, 'calibrateWorker.js');
  if (!fs.existsSync(script)) throw new Error(`${script} is missing`);
  const children = counts.map((n) =>
    fork(script, ['--backend', backend, '--threads', String(n)], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } }),
  );
  const ask = (i: number, msg: object): Promise<{ imgPerS?: number; ready?: boolean; error?: string }> =>
    new Promise((resolve, reject) => {
      const c = children[i];
      const onExit = (code: number | null): void => reject(new Error(`calibration worker (${counts[i]} threads) exited (${code})`));
      c.once('exit', onExit);
      c.once('message', (m: { error?: string }) => {
        c.off('exit', onExit);
        if (m.error) reject(new Error(m.error));
        else resolve(m);
      });
      if (Object.keys(msg).length) c.send(msg);
    });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
  });
  const run = async (): Promise<Record<string, number[]>> => {
    await Promise.all(children.map((_, i) => ask(i, {})));
    const samples: Record<string, number[]> = Object.fromEntries(counts.map((n) => [n, [] as number[]]));
    for (let r = 0; r < ROUNDS; r++) {
      for (let j = 0; j < counts.length; j++) {
        const i = r % 2 ? counts.length - 1 - j : j;
        samples[counts[i]].push((await ask(i, { op: 'round' })).imgPerS!);
      }
    }
    return samples;
  };
  try {
    return await Promise.race([run(), timeout]);
  } finally {
    clearTimeout(timer);
    for (const c of children) c.kill();
  }
}
