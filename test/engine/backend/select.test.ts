/**
 * Backend selection. The native packages' absence is simulated with an injected loader, so the same cases run
 * with and without tfjs-node installed (`npm run setup:native`); the last test checks the real tfjs-node where it
 * is. Tests run in order in one process; wasm initialises once per process, so the thread-fallback cases run in
 * child processes.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import { getBackendInfo, initBackend } from '../../../engine/backend/select';
import { isAdvMoEError } from '../../../engine/util/errors';

const nativeMissing = (pkg: string): boolean => {
  try {
    require.resolve(pkg);
    return false;
  } catch {
    return true;
  }
};
/**
 * A loader that fails exactly as Node's require does for a package that is not installed, so these cases run the
 * same where `npm run setup:native` installed tfjs-node (CI) and where nothing is installed.
 */
const notInstalled = (pkg: string): never => {
  throw Object.assign(new Error(`Cannot find module '${pkg}'\nRequire stack:\n- select.js`), { code: 'MODULE_NOT_FOUND' });
};

test('an explicit backend that is not installed fails with BACKEND_UNAVAILABLE naming it and the reason', async () => {
  await assert.rejects(initBackend('tensorflow', { loadNative: notInstalled }), (e: unknown) => {
    assert.ok(isAdvMoEError(e, 'BACKEND_UNAVAILABLE'));
    assert.match(e.message, /'tensorflow'/);
    assert.match(e.message, /@tensorflow\/tfjs-node is not installed/);
    assert.match(e.message, /advmoe backend install tensorflow/);
    return true;
  });
});

test('a native package that is installed but fails to load is reported with its error', async () => {
  const loadNative = (): never => {
    throw new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory');
  };
  await assert.rejects(initBackend('tensorflow-gpu', { loadNative }), (e: unknown) => {
    assert.ok(isAdvMoEError(e, 'BACKEND_UNAVAILABLE'));
    assert.match(e.message, /'tensorflow-gpu'.*@tensorflow\/tfjs-node-gpu failed to load: libcudart\.so\.11\.0/);
    return true;
  });
});

test('auto without the native packages picks wasm, lists both as skipped with reasons, and runs 2 threads', async () => {
  const notes: string[] = [];
  const info = await initBackend('auto', { threads: 2, log: (m) => notes.push(m), loadNative: notInstalled });
  assert.equal(info.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.deepEqual(info.skipped.map((s) => s.name), ['tensorflow-gpu', 'tensorflow']);
  assert.match(info.skipped[0].reason, /@tensorflow\/tfjs-node-gpu is not installed/);
  assert.match(info.skipped[1].reason, /@tensorflow\/tfjs-node is not installed/);
  // 2 even on a 2-core machine, where stock tfjs would cap the pool at cores/2 = 1.
  assert.equal(info.threads, 2);
  assert.equal(info.threads, tfwasm.getThreadsCount());
  assert.equal(info.simd, true);
  assert.equal(info.tfjsVersion, tf.version_core);
  assert.deepEqual(info.notes, notes);
  assert.deepEqual(getBackendInfo(), info);
  // The threaded backend computes correctly.
  const y = tf.tidy(() => tf.sum(tf.conv2d(tf.ones([2, 8, 8, 3]) as tf.Tensor4D, tf.ones([3, 3, 3, 4]) as tf.Tensor4D, 1, 'valid')));
  assert.equal(y.dataSync()[0], 2 * 6 * 6 * 4 * 27);
  y.dispose();
});

test('a different thread count later in the same process is reported, not silently ignored', async () => {
  const info = await initBackend('wasm', { threads: 1 });
  assert.equal(info.threads, 2);
  assert.ok(info.notes?.some((n) => /already runs with 2 thread\(s\).*restart the engine to use 1/.test(n)), String(info.notes));
});

test('auto with a failing native loader skips with "failed to load" and still lands on wasm', async () => {
  const info = await initBackend('auto', {
    loadNative: (pkg) => {
      throw new Error(`${pkg}: broken binding`);
    },
  });
  assert.equal(info.name, 'wasm');
  assert.match(info.skipped[0].reason, /failed to load: @tensorflow\/tfjs-node-gpu: broken binding/);
  assert.match(info.skipped[1].reason, /failed to load: @tensorflow\/tfjs-node: broken binding/);
});

test('cpu can be selected explicitly and back', async () => {
  const info = await initBackend('cpu');
  assert.equal(info.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.equal(info.threads, 1);
  assert.deepEqual(info.skipped, []);
  assert.equal((await initBackend('wasm')).name, 'wasm');
});

/** Runs initBackend('wasm') in a fresh process (a fresh wasm module) and returns its BackendInfo. */
function initInChild(env: NodeJS.ProcessEnv, preamble = ''): { name: string; threads: number; notes: string[] } {
  const select = path.resolve(__dirname, '../../../engine/backend/select.js');
  const script = `${preamble}
    require(${JSON.stringify(select)}).initBackend('wasm', { threads: 2 }).then(
      (i) => process.stdout.write(JSON.stringify(i)), (e) => { console.error(e); process.exit(1); });`;
  const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  return JSON.parse(out.toString());
}

test('when the threaded build cannot start, wasm falls back to one thread and says why', () => {
  // The worker scripts go under os.tmpdir(); a TMPDIR below a regular file cannot be created.
  const info = initInChild({ TMPDIR: path.join(__filename, 'not-a-dir') });
  assert.equal(info.name, 'wasm');
  assert.equal(info.threads, 1);
  assert.ok(info.notes.some((n) => /wasm threads failed to start \(.*\); falling back to single-threaded/.test(n)), String(info.notes));
});

test('without SharedArrayBuffer, wasm runs single-threaded and says so', () => {
  const info = initInChild({}, 'delete globalThis.SharedArrayBuffer;');
  assert.equal(info.threads, 1);
  assert.ok(info.notes.some((n) => /wasm threads unavailable \(SharedArrayBuffer is not available\)/.test(n)), String(info.notes));
});

test('with tfjs-node installed, auto picks tensorflow and reports the native library version', { skip: nativeMissing('@tensorflow/tfjs-node') && 'tfjs-node is not installed (npm run setup:native)' }, async () => {
  const info = await initBackend('auto');
  assert.equal(info.name, 'tensorflow');
  assert.equal(tf.getBackend(), 'tensorflow');
  assert.deepEqual(info.skipped.map((s) => s.name), ['tensorflow-gpu']);
  assert.match(info.nativeVersion ?? '', /^\d+\.\d+\.\d+/);
  const y = tf.tidy(() => tf.sum(tf.conv2d(tf.ones([2, 8, 8, 3]) as tf.Tensor4D, tf.ones([3, 3, 3, 4]) as tf.Tensor4D, 1, 'valid')));
  assert.equal(y.dataSync()[0], 2 * 6 * 6 * 4 * 27);
  y.dispose();
});
