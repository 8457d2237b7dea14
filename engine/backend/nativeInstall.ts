/**
 * `advmoe backend install tensorflow`: makes `@tensorflow/tfjs-node` usable in this checkout (README, Backends).
 *
 *   1. Already loads and passes the smoke test → done (idempotent; `--force` skips this and the cache).
 *   2. A cached build for this tfjs-node version → install the package without scripts, link the cached library,
 *      copy the cached binding (seconds; this is what every `npm ci` that wipes node_modules needs).
 *   3. The stock install (its script downloads the official libtensorflow and builds the binding) — users with
 *      internet get the official build; it is cached too.
 *   4. When that download fails: the C library of a TensorFlow CPU wheel from pip (or `--wheel`), under the file
 *      names the stock script expects, then the stock build of the binding against it; cached.
 * Every outcome is checked by the smoke test in a child process; a build that fails it is removed again, so
 * `auto` never picks a native backend that computes wrong results.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SmokeReport } from './nativeSmoke';
import {
  builtBindingDir,
  cacheEntry,
  cachedBuilds,
  cacheRoot,
  commitCacheEntry,
  installedVersion,
  OFFICIAL_TF_VERSION,
  packageDir,
  placeFromCache,
  removeBuiltBindings,
  removePath,
  stagingFor,
  TFJS_NODE,
  WHEEL_TF_VERSION,
} from './nativeLayout';
import { cause, ok, runTool, tail } from './nativeProcess';
import { downloadWheel, setupError, unpackWheel, wheelTfVersion } from './tfWheel';

export interface NativeInstallOptions {
  /** The checkout whose node_modules receives tfjs-node. */
  root: string;
  /** tfjs-node version: the engine's tfjs-core version (the two must match, see select.ts). */
  version: string;
  /** A tensorflow / tensorflow-cpu wheel to build against instead of asking pip. */
  wheel?: string;
  /** Rebuild even when it already works or a cached build exists. */
  force?: boolean;
  cache?: string;
  log: (line: string) => void;
  /** The smoke test, run in a fresh process (it loads the freshly placed binding). */
  smoke: () => Promise<SmokeReport>;
}

export type InstallOutcome = 'already-installed' | 'from-cache' | 'official' | 'wheel';

export interface NativeInstallResult {
  outcome: InstallOutcome;
  /** The TensorFlow version of the library in use, when known (null: one installed by other means). */
  tensorflow: string | null;
  cacheEntry: string | null;
  seconds: number;
  smoke: SmokeReport;
}

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const QUIET_NPM = ['--no-audit', '--no-fund', '--no-save', '--loglevel=error'];

function fmtErrors(s: SmokeReport): string {
  const e = s.errors;
  return `forward ${e.forward.toExponential(1)}, d/dx ${e.dInput.toExponential(1)}, d/dw ${e.dFilter.toExponential(1)} (≤ ${s.tolerance})`;
}

/** Installs the package files only (no install script: that would start the download). */
async function installPackage(o: NativeInstallOptions): Promise<void> {
  if (installedVersion(o.root) === o.version) return;
  o.log(`installing ${TFJS_NODE}@${o.version} (package files only)…`);
  const r = await runTool(NPM, ['install', ...QUIET_NPM, '--ignore-scripts', '--prefer-offline', `${TFJS_NODE}@${o.version}`], { cwd: o.root, timeoutMs: 10 * 60_000 });
  if (!ok(r) || installedVersion(o.root) !== o.version) {
    throw setupError(`\`npm install ${TFJS_NODE}@${o.version}\` failed: ${tail(r)}`);
  }
}

/** `npm rebuild` of tfjs-node: its install script, which downloads libtensorflow unless deps/lib already has it. */
function rebuild(o: NativeInstallOptions, env: NodeJS.ProcessEnv = {}) {
  return runTool(NPM, ['rebuild', '--no-audit', '--no-fund', TFJS_NODE], { cwd: o.root, env: { ...process.env, ...env }, timeoutMs: 20 * 60_000 });
}

async function checkTools(wheelGiven: boolean): Promise<string> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw setupError(
      `wrong architecture/OS for the TensorFlow-wheel build: it supports linux-x64, this is ${process.platform}-${process.arch}; ` +
        `install ${TFJS_NODE} where its own install can download libtensorflow`,
    );
  }
  for (const [tool, why] of [['g++', 'C++ compiler'], ['make', 'make']] as const) {
    const r = await runTool(tool, ['--version'], { timeoutMs: 30_000 });
    if (!ok(r)) throw setupError(`no ${why}: \`${tool} --version\` failed (${tail(r, 1)}); the binding is compiled with g++ and make (Debian: apt-get install g++ make)`);
  }
  const tried: string[] = [];
  for (const py of ['python3', 'python']) {
    const r = await runTool(py, wheelGiven ? ['--version'] : ['-m', 'pip', '--version'], { timeoutMs: 60_000 });
    if (ok(r)) return py;
    tried.push(`${py}: ${tail(r, 1)}`);
  }
  throw setupError(
    wheelGiven
      ? `no python3 found (needed to unpack the wheel and by node-gyp): ${tried.join('; ')}`
      : `no python with pip found (needed to fetch the TensorFlow wheel; or pass --wheel PATH): ${tried.join('; ')}`,
  );
}

async function smokeOrUndo(o: NativeInstallOptions, what: string, undo: () => void): Promise<SmokeReport> {
  o.log(`smoke test: conv2d forward and gradients on tensorflow vs wasm…`);
  const s = await o.smoke();
  if (!s.ok) {
    undo();
    throw setupError(`${what} fails the smoke test: ${s.reason ?? fmtErrors(s)}; removed it again, the engine stays on wasm`);
  }
  o.log(`smoke test passed: ${fmtErrors(s)}`);
  return s;
}

export async function installNativeBackend(o: NativeInstallOptions): Promise<NativeInstallResult> {
  const t0 = Date.now();
  const done = (outcome: InstallOutcome, tensorflow: string | null, entry: string | null, smoke: SmokeReport): NativeInstallResult => ({
    outcome,
    tensorflow,
    cacheEntry: entry,
    seconds: (Date.now() - t0) / 1000,
    smoke,
  });
  const pkg = packageDir(o.root);
  const root = o.cache ?? cacheRoot();
  const uninstall = (): void => removePath(pkg);

  if (!o.force && installedVersion(o.root) !== null) {
    o.log(`checking the installed ${TFJS_NODE}…`);
    const s = await o.smoke();
    if (s.ok) {
      o.log(`already installed and working (${fmtErrors(s)})`);
      return done('already-installed', null, null, s);
    }
    o.log(`the installed ${TFJS_NODE} does not work (${s.reason ?? fmtErrors(s)}); setting it up again`);
  }

  if (!o.force) {
    for (const { entry, manifest } of cachedBuilds(root, o.version)) {
      o.log(`using the cached build in ${entry} (TensorFlow ${manifest.tensorflow}, ${manifest.source})`);
      await installPackage(o);
      placeFromCache(entry, manifest, pkg);
      const s = await o.smoke();
      if (s.ok) {
        o.log(`smoke test passed: ${fmtErrors(s)}`);
        return done('from-cache', manifest.tensorflow, entry, s);
      }
      o.log(`the cached build fails the smoke test (${s.reason ?? fmtErrors(s)}); discarding it`);
      removePath(entry);
      uninstall();
    }
  }

  try {
    return await buildAndPlace(o, pkg, root, done);
  } catch (e) {
    // Leave a clean "not installed" (with its hint), not a package without its library ("failed to load").
    uninstall();
    throw e;
  }
}

async function buildAndPlace(
  o: NativeInstallOptions,
  pkg: string,
  root: string,
  done: (outcome: InstallOutcome, tensorflow: string | null, entry: string | null, smoke: SmokeReport) => NativeInstallResult,
): Promise<NativeInstallResult> {
  const uninstall = (): void => removePath(pkg);
  await installPackage(o);
  removePath(path.join(pkg, 'deps')); // a link to a cache entry would make the stock script skip its download
  removeBuiltBindings(pkg);
  o.log(`stock install: downloading the official libtensorflow ${OFFICIAL_TF_VERSION} and building the binding…`);
  const stock = await rebuild(o);
  if (ok(stock) && builtBindingDir(pkg) !== null && fs.existsSync(path.join(pkg, 'deps', 'lib', `libtensorflow.so.${OFFICIAL_TF_VERSION}`))) {
    const entry = cacheEntry(root, o.version, OFFICIAL_TF_VERSION);
    const staging = stagingFor(entry);
    fs.cpSync(path.join(pkg, 'deps', 'lib'), path.join(staging, 'deps', 'lib'), { recursive: true, verbatimSymlinks: true });
    const manifest = commitCacheEntry(staging, entry, pkg, { tfjsNode: o.version, tensorflow: OFFICIAL_TF_VERSION, source: 'official' });
    placeFromCache(entry, manifest, pkg);
    o.log(`official build cached in ${entry}`);
    const s = await smokeOrUndo(o, 'the official build', () => (removePath(entry), uninstall()));
    return done('official', OFFICIAL_TF_VERSION, entry, s);
  }
  o.log(`the stock install failed (${cause(stock)}); building against a TensorFlow CPU wheel instead`);

  const python = await checkTools(o.wheel !== undefined);
  let wheel = o.wheel;
  const downloads = path.join(root, 'downloads');
  if (wheel !== undefined) {
    wheel = path.resolve(wheel);
    if (!fs.existsSync(wheel)) throw setupError(`--wheel ${wheel}: no such file`);
  } else {
    o.log(`fetching the tensorflow-cpu ${WHEEL_TF_VERSION} wheel with pip (~270 MB)…`);
    wheel = await downloadWheel(python, downloads);
  }
  const tfVersion = wheelTfVersion(wheel);
  const entry = cacheEntry(root, o.version, tfVersion);
  const staging = stagingFor(entry);
  try {
    o.log(`unpacking libtensorflow and headers from ${path.basename(wheel)}…`);
    await unpackWheel(python, wheel, path.join(staging, 'deps'));
    removePath(path.join(pkg, 'deps'));
    removeBuiltBindings(pkg);
    fs.symlinkSync(path.join(staging, 'deps'), path.join(pkg, 'deps'), 'dir');
    o.log(`compiling the tfjs-node binding against TensorFlow ${tfVersion} (g++, about half a minute)…`);
    // Build from source: a prebuilt binding (if its host were reachable) targets libtensorflow 2.9.1.
    const built = await rebuild(o, { npm_config_build_from_source: 'true' });
    if (!ok(built) || builtBindingDir(pkg) === null) {
      throw setupError(`compiling the ${TFJS_NODE} binding against TensorFlow ${tfVersion} failed: ${cause(built)}`);
    }
    const manifest = commitCacheEntry(staging, entry, pkg, { tfjsNode: o.version, tensorflow: tfVersion, source: 'wheel' });
    placeFromCache(entry, manifest, pkg);
  } catch (e) {
    removePath(staging);
    throw e;
  }
  o.log(`cached in ${entry}`);
  if (o.wheel === undefined) removePath(downloads); // the unpacked library is cached; the wheel is not needed again
  const s = await smokeOrUndo(o, `the binding built against TensorFlow ${tfVersion}`, () => (removePath(entry), uninstall()));
  return done('wheel', tfVersion, entry, s);
}
