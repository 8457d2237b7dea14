/**
 * Where the native backend's pieces live: `@tensorflow/tfjs-node` in the project's node_modules (re-placed after
 * every `npm ci`), and the ~850 MB libtensorflow plus the compiled binding in a per-user cache outside the
 * repository, so that re-placing them is a link and a copy instead of a download and a build (README, Backends).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const TFJS_NODE = '@tensorflow/tfjs-node';
/** The libtensorflow version tfjs-node 4.22's install script downloads and whose file name it checks for. */
export const OFFICIAL_TF_VERSION = '2.9.1';
/** The TensorFlow CPU wheel whose C library the binding is built against when the official download fails. */
export const WHEEL_PACKAGE = 'tensorflow-cpu';
export const WHEEL_TF_VERSION = '2.21.0';

export type BuildSource = 'official' | 'wheel';

/** What a complete cache entry records; written last, so an entry without it is incomplete. */
export interface CacheManifest {
  tfjsNode: string;
  tensorflow: string;
  source: BuildSource;
  /** The binding's folder under the package's lib/ (node-pre-gyp's `napi-v<N>`). */
  bindingDir: string;
  builtAt: string;
}

/** `ADVMOE_NATIVE_CACHE`, else `$XDG_CACHE_HOME/advmoe/native`, else `~/.cache/advmoe/native`. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ADVMOE_NATIVE_CACHE) return path.resolve(env.ADVMOE_NATIVE_CACHE);
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'advmoe', 'native');
}

export function cacheEntry(root: string, tfjsNode: string, tensorflow: string): string {
  return path.join(root, `tfjs-node-${tfjsNode}-tf-${tensorflow}`);
}

export function readManifest(entry: string): CacheManifest | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(entry, 'manifest.json'), 'utf8')) as CacheManifest;
  } catch {
    return null;
  }
}

/** Complete cache entries for this tfjs-node version; the official build first (it is the supported pairing). */
export function cachedBuilds(root: string, tfjsNode: string): { entry: string; manifest: CacheManifest }[] {
  const out: { entry: string; manifest: CacheManifest }[] = [];
  for (const tfv of [OFFICIAL_TF_VERSION, WHEEL_TF_VERSION]) {
    const entry = cacheEntry(root, tfjsNode, tfv);
    const manifest = readManifest(entry);
    if (manifest && manifest.tfjsNode === tfjsNode && fs.existsSync(path.join(entry, 'binding', manifest.bindingDir, 'tfjs_binding.node'))) {
      out.push({ entry, manifest });
    }
  }
  return out;
}

/**
 * The folder whose node_modules holds the engine's TensorFlow.js (a checkout's root): tfjs-node must be installed
 * beside that copy of tfjs-core, or its backend is invisible to the engine.
 */
export function projectRoot(): string {
  const core = require.resolve('@tensorflow/tfjs-core/package.json');
  return path.resolve(path.dirname(core), '..', '..', '..');
}

export function packageDir(root: string): string {
  return path.join(root, 'node_modules', ...TFJS_NODE.split('/'));
}

export function installedVersion(root: string): string | null {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageDir(root), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return null;
  }
}

/** The compiled binding's folder under lib/ (`napi-v8` for tfjs-node 4.22 on Node ≥ 20), or null if none is built. */
export function builtBindingDir(pkg: string): string | null {
  const lib = path.join(pkg, 'lib');
  if (!fs.existsSync(lib)) return null;
  const dirs = fs
    .readdirSync(lib)
    .filter((d) => /^napi-v\d+$/.test(d) && fs.existsSync(path.join(lib, d, 'tfjs_binding.node')))
    .sort((a, b) => Number(b.slice(6)) - Number(a.slice(6)));
  return dirs[0] ?? null;
}

/** Removes built bindings, so a failed build cannot pass for a successful one by leaving an older binding behind. */
export function removeBuiltBindings(pkg: string): void {
  const lib = path.join(pkg, 'lib');
  if (!fs.existsSync(lib)) return;
  for (const d of fs.readdirSync(lib)) if (/^napi-v\d+$/.test(d)) removePath(path.join(lib, d));
}

function removePath(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}

/**
 * Points the installed package at a cache entry: deps/ becomes a link to the entry's libraries (the binding finds
 * them through its RUNPATH `$ORIGIN/../../deps/lib`), and the binding is copied (86 KB) into lib/.
 */
export function placeFromCache(entry: string, manifest: CacheManifest, pkg: string): void {
  const deps = path.join(pkg, 'deps');
  removePath(deps);
  fs.symlinkSync(path.join(entry, 'deps'), deps, 'dir');
  const dir = path.join(pkg, 'lib', manifest.bindingDir);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(entry, 'binding', manifest.bindingDir, 'tfjs_binding.node'), path.join(dir, 'tfjs_binding.node'));
}

/**
 * Turns a staging folder (deps/lib filled, binding built in `pkg`) into a complete cache entry: copies the binding,
 * drops the headers (only the build needs them), writes the manifest last and renames the folder into place, so a
 * concurrent or interrupted set-up never sees half an entry.
 */
export function commitCacheEntry(staging: string, entry: string, pkg: string, m: Omit<CacheManifest, 'bindingDir' | 'builtAt'>): CacheManifest {
  const bindingDir = builtBindingDir(pkg);
  if (bindingDir === null) throw new Error(`the build left no tfjs_binding.node under ${path.join(pkg, 'lib')}`);
  fs.mkdirSync(path.join(staging, 'binding', bindingDir), { recursive: true });
  fs.copyFileSync(path.join(pkg, 'lib', bindingDir, 'tfjs_binding.node'), path.join(staging, 'binding', bindingDir, 'tfjs_binding.node'));
  removePath(path.join(staging, 'deps', 'include'));
  const manifest: CacheManifest = { ...m, bindingDir, builtAt: new Date().toISOString() };
  fs.writeFileSync(path.join(staging, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  removePath(entry);
  fs.renameSync(staging, entry);
  return manifest;
}

/** A fresh staging folder beside the entry (same file system, so the final rename is atomic). */
export function stagingFor(entry: string): string {
  const staging = `${entry}.partial-${process.pid}`;
  removePath(staging);
  fs.mkdirSync(path.join(staging, 'deps', 'lib'), { recursive: true });
  return staging;
}

export { removePath };
