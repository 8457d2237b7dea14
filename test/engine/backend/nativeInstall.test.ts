/**
 * The native installer's decisions that need no network, compiler or 800 MB library: where the cache lives, the
 * already-working short cut, and re-placing a cached build after `npm ci` wiped node_modules (a fake package and
 * cache entry; the smoke test is injected). The full build is exercised by `npm run setup:native` in CI.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { installNativeBackend } from '../../../engine/backend/nativeInstall';
import { cacheEntry, cacheRoot, cachedBuilds, packageDir, type CacheManifest } from '../../../engine/backend/nativeLayout';
import type { SmokeReport } from '../../../engine/backend/nativeSmoke';
import { wheelTfVersion } from '../../../engine/backend/tfWheel';
import { isAdvMoEError } from '../../../engine/util/errors';

const VERSION = '4.22.0';
const GOOD: SmokeReport = { ok: true, errors: { forward: 1e-7, dInput: 1e-7, dFilter: 1e-7 }, tolerance: 1e-4 };

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-native-'));
}

/** A checkout with tfjs-node's package files in place (what `npm install --ignore-scripts` leaves). */
function fakeCheckout(): string {
  const root = tmp();
  fs.mkdirSync(packageDir(root), { recursive: true });
  fs.writeFileSync(path.join(packageDir(root), 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-node', version: VERSION }));
  return root;
}

function fakeCacheEntry(cache: string, tf: string, complete = true): string {
  const entry = cacheEntry(cache, VERSION, tf);
  fs.mkdirSync(path.join(entry, 'deps', 'lib'), { recursive: true });
  fs.writeFileSync(path.join(entry, 'deps', 'lib', 'libtensorflow.so.2.9.1'), 'lib');
  fs.mkdirSync(path.join(entry, 'binding', 'napi-v8'), { recursive: true });
  fs.writeFileSync(path.join(entry, 'binding', 'napi-v8', 'tfjs_binding.node'), `binding for ${tf}`);
  const m: CacheManifest = { tfjsNode: VERSION, tensorflow: tf, source: 'wheel', bindingDir: 'napi-v8', builtAt: 'now' };
  if (complete) fs.writeFileSync(path.join(entry, 'manifest.json'), JSON.stringify(m));
  return entry;
}

test('the cache folder: ADVMOE_NATIVE_CACHE, else XDG_CACHE_HOME, else ~/.cache; outside any checkout', () => {
  assert.equal(cacheRoot({ ADVMOE_NATIVE_CACHE: '/x/c', XDG_CACHE_HOME: '/y' }), path.resolve('/x/c'));
  assert.equal(cacheRoot({ XDG_CACHE_HOME: '/y' }), path.join('/y', 'advmoe', 'native'));
  assert.equal(cacheRoot({}), path.join(os.homedir(), '.cache', 'advmoe', 'native'));
  assert.equal(path.basename(cacheEntry('/c', VERSION, '2.21.0')), 'tfjs-node-4.22.0-tf-2.21.0');
});

test('wheel file names give the TensorFlow version; anything else is refused by name', () => {
  assert.equal(wheelTfVersion('/d/tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl'), '2.21.0');
  assert.equal(wheelTfVersion('tensorflow-2.20.0-cp312-cp312-manylinux_2_17_x86_64.whl'), '2.20.0');
  assert.throws(() => wheelTfVersion('/d/torch-2.5.0-cp311-none-any.whl'), (e: unknown) => isAdvMoEError(e, 'NATIVE_SETUP_FAILED') && /torch-2\.5\.0.*is not a tensorflow/.test(e.message));
});

test('an incomplete cache entry (no manifest: an interrupted build) is not used', () => {
  const cache = tmp();
  fakeCacheEntry(cache, '2.21.0', false);
  assert.deepEqual(cachedBuilds(cache, VERSION), []);
  const entry = fakeCacheEntry(cache, '2.9.1');
  assert.deepEqual(cachedBuilds(cache, VERSION).map((b) => b.entry), [entry]);
});

test('a working installation is left alone: one smoke test, nothing else', async () => {
  const root = fakeCheckout();
  const cache = tmp();
  const lines: string[] = [];
  let smokes = 0;
  const r = await installNativeBackend({ root, version: VERSION, cache, log: (l) => lines.push(l), smoke: async () => (smokes++, GOOD) });
  assert.equal(r.outcome, 'already-installed');
  assert.equal(smokes, 1);
  assert.deepEqual(fs.readdirSync(cache), []);
  assert.ok(lines.some((l) => /already installed and working/.test(l)), lines.join('\n'));
});

test('after node_modules was wiped, a cached build is linked and its binding copied, then smoke-tested', async () => {
  const root = fakeCheckout();
  const cache = tmp();
  const entry = fakeCacheEntry(cache, '2.21.0');
  const reports = [{ ...GOOD, ok: false, reason: '@tensorflow/tfjs-node failed to load: no binding' }, GOOD];
  const r = await installNativeBackend({ root, version: VERSION, cache, log: () => undefined, smoke: async () => reports.shift()! });
  assert.equal(r.outcome, 'from-cache');
  assert.equal(r.tensorflow, '2.21.0');
  assert.equal(r.cacheEntry, entry);
  const pkg = packageDir(root);
  assert.equal(fs.readlinkSync(path.join(pkg, 'deps')), path.join(entry, 'deps'));
  assert.equal(fs.readFileSync(path.join(pkg, 'lib', 'napi-v8', 'tfjs_binding.node'), 'utf8'), 'binding for 2.21.0');
  assert.equal(reports.length, 0, 'smoke-tested before (broken) and after placing');
  // Placing again (the next npm ci) replaces the link instead of failing on it, and leaves the cache intact.
  fs.rmSync(path.join(pkg, 'lib'), { recursive: true });
  const again = await installNativeBackend({ root, version: VERSION, cache, force: false, log: () => undefined, smoke: (() => { let n = 0; return async () => (n++ === 0 ? { ...GOOD, ok: false } : GOOD); })() });
  assert.equal(again.outcome, 'from-cache');
  assert.ok(fs.existsSync(path.join(entry, 'deps', 'lib', 'libtensorflow.so.2.9.1')));
});
