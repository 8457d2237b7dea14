/**
 * Backend selection: `tfjs-node-gpu` (CUDA) → `tfjs-node` (native CPU) → `wasm` → `cpu` for 'auto', or exactly the
 * backend asked for. The native packages are optional: their install downloads libtensorflow, which fails without
 * internet, so they are required lazily and every reason for skipping one is reported in `BackendInfo.skipped`.
 *
 * Note: loading `@tensorflow/tfjs-backend-wasm` makes 'wasm' the highest-priority registered backend, so no tfjs op
 * may run before `initBackend` has resolved (tfjs would start initialising wasm on its own).
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import type { BackendName } from '../config/types';
import type { BackendInfo } from '../protocol';
import { AdvMoEError, errorMessage } from '../util/errors';
import { chooseThreads } from './threadCalibration';
import { registerWasmTrainingKernels } from './wasmKernels';
import { threadsUnsupportedReason, withNodeWasmThreads } from './wasmThreads';

export type ConcreteBackend = Exclude<BackendName, 'auto'>;

export interface InitBackendOptions {
  /**
   * Thread count: wasm's pool size (1 selects the single-threaded build) or native TensorFlow's intra- and
   * inter-op pools (see nativeThreadEnv). Default: every logical core, or the calibrated count (`calibrate`).
   */
  threads?: number;
  /**
   * Without `threads`: pick the count by measurement (engine/backend/threadCalibration.ts, cached per machine)
   * instead of the core count. Off by default so library callers and tests never spawn calibration processes.
   */
  calibrate?: boolean;
  /** Receives each note (fallbacks, limits) as it is decided, e.g. to forward it as a `log` notification. */
  log?: (message: string) => void;
  /**
   * Loads an optional native package (default: Node's `require`). Tests inject a failing loader to exercise the
   * "installed but fails to load" path, which cannot be produced with real packages on a machine without them.
   */
  loadNative?: (pkg: string) => unknown;
}

const NATIVE_PACKAGES = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
} as const;

/** How long the threaded wasm build may take to start its workers before we give up on threads. */
const THREADED_INIT_TIMEOUT_MS = 60_000;

let lastInfo: BackendInfo | null = null;
/** The native package that registered the 'tensorflow' backend in this process (both register under that name). */
let nativeLoaded: keyof typeof NATIVE_PACKAGES | null = null;

/** The result of the last successful `initBackend`, or null before it. */
export function getBackendInfo(): BackendInfo | null {
  return lastInfo;
}

function installHint(pkg: string): string {
  if (pkg === NATIVE_PACKAGES.tensorflow) {
    // The installer also works offline, from a TensorFlow CPU wheel pip can get (README, Backends).
    return 'set it up with `advmoe backend install tensorflow` (in a checkout: `npm run setup:native`)';
  }
  return `install it with \`npm install ${pkg}@${tf.version_core}\` on a machine with internet access (its install downloads libtensorflow)`;
}

/** A failed tfjs-node load may already have registered its kernels (it does so before loading its binding). */
function forgetTensorflowKernels(): void {
  if (tf.findBackendFactory('tensorflow') != null) return; // a working native backend owns them
  for (const k of tf.getKernelsForBackend('tensorflow')) tf.unregisterKernel(k.kernelName, 'tensorflow');
}

/**
 * The environment that sizes native TensorFlow's thread pools: libtensorflow reads TF_NUM_INTRAOP_THREADS and
 * TF_NUM_INTEROP_THREADS when it creates its session, oneDNN reads OMP_NUM_THREADS; all only when the library
 * loads, so they must be in process.env before the package is required (README "Benchmark": measured to change
 * the process's thread count and speed).
 */
export function nativeThreadEnv(threads: number): Record<string, string> {
  const n = String(Math.max(1, Math.floor(threads)));
  return { TF_NUM_INTRAOP_THREADS: n, TF_NUM_INTEROP_THREADS: n, OMP_NUM_THREADS: n };
}

/** Native TensorFlow's intra-op pool size in this process: what nativeThreadEnv set, else TensorFlow's default. */
function nativeThreads(cores: number): number {
  const n = Number(process.env.TF_NUM_INTRAOP_THREADS);
  return Number.isInteger(n) && n > 0 ? n : cores;
}

function defaultLoadNative(pkg: string): unknown {
  // TensorFlow logs its CPU-feature and oneDNN notes to stderr when the library loads; they read as errors on a
  // terminal and in the engine log. Warnings and errors still show; an explicit setting wins.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional package, loaded only when asked for
  return require(pkg);
}

function isResolvable(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

function isNotInstalled(e: unknown, pkg: string): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === 'MODULE_NOT_FOUND' && typeof err.message === 'string' && err.message.includes(`'${pkg}'`);
}

/**
 * Tries to make a native TensorFlow backend current. Returns null on success or the reason it cannot be used.
 * `wantGpu` distinguishes tfjs-node-gpu (which must find a CUDA device to count as 'tensorflow-gpu').
 */
async function tryNative(name: keyof typeof NATIVE_PACKAGES, load: (pkg: string) => unknown, threads?: number): Promise<string | null> {
  const pkg = NATIVE_PACKAGES[name];
  if (nativeLoaded === null && threads !== undefined) Object.assign(process.env, nativeThreadEnv(threads));
  if (nativeLoaded !== null && nativeLoaded !== name) {
    return `${NATIVE_PACKAGES[nativeLoaded]} is already loaded in this process and owns the 'tensorflow' backend`;
  }
  if (nativeLoaded === null) {
    let mod: unknown;
    try {
      mod = load(pkg);
    } catch (e) {
      forgetTensorflowKernels();
      if (isNotInstalled(e, pkg)) return `${pkg} is not installed; ${installHint(pkg)}`;
      return `${pkg} failed to load: ${errorMessage(e).split('\n')[0]}`;
    }
    // tfjs-node registers 'tensorflow' through its own `require('@tensorflow/tfjs')`. tfjs-core keeps the engine
    // and the kernel registry on the global object, so that registration is visible here when the two copies
    // of tfjs-core agree; npm dedupes them when the versions match. Verify instead of assuming.
    if (tf.findBackendFactory('tensorflow') == null) {
      const theirs = (mod as { version?: Record<string, string> })?.version?.['tfjs-core'] ?? 'unknown';
      return `${pkg} loaded but its backend is not visible to the engine's @tensorflow/tfjs-core ` +
        `(${tf.version_core} here, ${theirs} there); install matching versions`;
    }
    nativeLoaded = name;
  }
  let ok: boolean;
  try {
    ok = await tf.setBackend('tensorflow');
  } catch (e) {
    return `${pkg} failed to initialise: ${errorMessage(e)}`;
  }
  if (!ok) return `${pkg} failed to initialise (see the warning above)`;
  if (name === 'tensorflow-gpu' && !(tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice) {
    return `${pkg} loaded but TensorFlow found no CUDA GPU (check the CUDA/cuDNN libraries and the driver)`;
  }
  return null;
}

/** The C library's own version as tfjs-node's binding reports it (TF_Version), or 'unknown'. */
function nativeTfVersion(): string {
  const binding = (tf.backend() as { binding?: { TF_Version?: unknown } }).binding;
  return typeof binding?.TF_Version === 'string' ? binding.TF_Version : 'unknown';
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * XNNPACK's pool threads are Emscripten pthreads, i.e. Node workers that Emscripten `ref()`s while they run, and
 * they run (idle-waiting for work) for the life of the process: without this, a script or test file that is done
 * would never exit.
 */
function unrefWasmWorkers(): void {
  type W = { unref?: () => void };
  const mod = (tf.findBackend('wasm') as unknown as { wasm?: { PThread?: { runningWorkers?: W[]; unusedWorkers?: W[] } } })
    ?.wasm;
  const pt = mod?.PThread;
  for (const w of [...(pt?.runningWorkers ?? []), ...(pt?.unusedWorkers ?? [])]) w.unref?.();
}

/** Makes wasm current with `wanted` threads if possible; appends what happened to `notes`. */
async function initWasm(wanted: number, note: (m: string) => void): Promise<void> {
  registerWasmTrainingKernels();
  if (tf.findBackend('wasm') != null) {
    // The XNNPACK pool and the Emscripten workers are created once per process.
    await tf.setBackend('wasm');
    const have = tfwasm.getThreadsCount();
    if (have !== wanted) {
      note(`wasm already runs with ${have} thread(s) in this process; restart the engine to use ${wanted}`);
    }
    return;
  }
  if (wanted > 1) {
    const why = threadsUnsupportedReason();
    if (why !== null) {
      note(`wasm threads unavailable (${why}); running single-threaded`);
    } else {
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
      tfwasm.setThreadsCount(wanted);
      let failure: string;
      try {
        const ok = await withTimeout(
          withNodeWasmThreads(wanted, () => tf.setBackend('wasm')),
          THREADED_INIT_TIMEOUT_MS,
          'starting the wasm worker threads',
        );
        if (ok) {
          unrefWasmWorkers();
          const have = tfwasm.getThreadsCount();
          if (have < wanted) note(`wasm thread pool has ${have} threads (asked for ${wanted})`);
          return;
        }
        failure = 'the threaded build failed to initialise (see the warning above)';
      } catch (e) {
        failure = errorMessage(e);
      }
      note(`wasm threads failed to start (${failure}); falling back to single-threaded wasm`);
    }
  }
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  tfwasm.setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) {
    throw new Error('the wasm backend failed to initialise (see the warning above)');
  }
}

/**
 * Selects and initialises the compute backend. For 'auto' the first usable of tensorflow-gpu, tensorflow, wasm,
 * cpu wins and the ones before it are listed in `skipped` with the reason; an explicit choice that cannot be used
 * throws AdvMoEError('BACKEND_UNAVAILABLE') naming the backend and the reason.
 */
export async function initBackend(pref: BackendName, opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const load = opts.loadNative ?? defaultLoadNative;
  const cores = os.cpus().length;
  const wantedThreads = Math.max(1, Math.floor(opts.threads ?? cores));
  const notes: string[] = [];
  const note = (m: string): void => {
    notes.push(m);
    opts.log?.(m);
  };
  const skipped: BackendInfo['skipped'] = [];
  const threadsWhy = new Map<ConcreteBackend, string>();
  /** The calibrated thread count for a backend (cached per machine), or undefined when it cannot be measured. */
  const calibrated = async (name: ConcreteBackend): Promise<number | undefined> => {
    if (name === 'cpu' || name === 'tensorflow-gpu') return undefined;
    if (name === 'tensorflow' && !isResolvable(NATIVE_PACKAGES.tensorflow)) return undefined;
    const c = await chooseThreads(name, { log: note });
    threadsWhy.set(name, c.why);
    return c.threads;
  };
  const order: ConcreteBackend[] = pref === 'auto' ? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] : [pref];

  let chosen: ConcreteBackend | null = null;
  for (const name of order) {
    let reason: string | null;
    if (name === 'tensorflow-gpu' || name === 'tensorflow') {
      const threads = opts.threads ?? (opts.calibrate ? await calibrated(name) : undefined);
      reason = await tryNative(name, load, threads);
      if (reason !== null && name === 'tensorflow-gpu' && nativeLoaded === 'tensorflow-gpu' && pref === 'auto') {
        // tfjs-node-gpu without a usable GPU still runs TensorFlow's native CPU kernels, and tfjs-node cannot be
        // loaded beside it (both own the 'tensorflow' backend): use it as 'tensorflow'.
        skipped.push({ name, reason });
        chosen = 'tensorflow';
        break;
      }
    } else if (name === 'wasm') {
      try {
        await initWasm(opts.threads === undefined && opts.calibrate ? ((await calibrated('wasm')) ?? wantedThreads) : wantedThreads, note);
        reason = null;
      } catch (e) {
        reason = errorMessage(e);
      }
    } else {
      reason = (await tf.setBackend('cpu')) ? null : 'the cpu backend failed to initialise';
    }
    if (reason === null) {
      chosen = name;
      break;
    }
    if (pref !== 'auto') {
      throw new AdvMoEError('BACKEND_UNAVAILABLE', `Backend '${name}' is unavailable: ${reason}`, {
        backend: name,
        reason,
      });
    }
    skipped.push({ name, reason });
  }
  if (chosen === null) {
    throw new AdvMoEError('BACKEND_UNAVAILABLE', 'No backend could be initialised', { skipped });
  }

  const wasm = chosen === 'wasm';
  const info: BackendInfo = {
    name: chosen,
    skipped,
    // Native TensorFlow: its intra-op pool (cores unless set); cpu is single-threaded JavaScript.
    threads: wasm ? tfwasm.getThreadsCount() : chosen === 'cpu' ? 1 : nativeThreads(cores),
    ...(threadsWhy.has(chosen) ? { threadsWhy: threadsWhy.get(chosen) } : opts.threads !== undefined ? { threadsWhy: 'set by --threads' } : {}),
    simd: wasm ? Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) : chosen !== 'cpu',
    tfjsVersion: tf.version_core,
    notes,
    ...(wasm || chosen === 'cpu' ? {} : { nativeVersion: nativeTfVersion() }),
  };
  lastInfo = info;
  return info;
}
