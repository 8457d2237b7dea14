/**
 * Multi-threaded wasm under Node.
 *
 * tfjs-backend-wasm 4.22 hard-codes `WASM_HAS_MULTITHREAD_SUPPORT = false` under Node (tfjs issue #3830), and even
 * with the flag forced on, its threaded build cannot start there:
 *  - it hands Emscripten a `blob:` URL for the pthread worker script, and Node's `Worker` only accepts files;
 *  - it posts the main script to each worker as a Blob, which the worker can only `importScripts` from a file;
 *  - that main script is `Function.prototype.toString()` of a function inside tfjs' Rollup bundle, so it refers to
 *    bundle-level names (`require$$0`…, `commonjsGlobal`, tslib's `__read`/`__values`/`__spreadArray`) that do not
 *    exist in the worker;
 *  - XNNPACK's pool size is capped at half of `os.cpus().length` (1 on a 2-core machine).
 *
 * `withNodeWasmThreads` works around all four for the duration of the backend's initialisation only: it records
 * the text of the Blobs tfjs creates, writes them as real files (with the missing bundle-level names defined),
 * makes the worker load the main script from its file, and reports enough logical cores for the wanted pool size.
 * Everything it patches is restored when initialisation ends.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
// The real module object (not an esModuleInterop copy): tfjs' bundle calls `require('os').cpus()` on it.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- see above: the module object itself
import os = require('os');
import * as path from 'path';

const MAIN_SCRIPT_MARK = 'var WasmBackendModuleThreadedSimd';
const WORKER_SCRIPT_MARK = 'WasmBackendModuleThreadedSimd(Module)';

/** Definitions the bundled threaded factory expects from the Rollup bundle it was cut out of (tslib 2.x bodies). */
const BUNDLE_PRELUDE = `var require$$0 = require('fs'), require$$1 = require('path'), require$$3 = require('perf_hooks'),
  require$$4 = require('os'), commonjsGlobal = globalThis;
function __values(o) { var s = typeof Symbol === "function" && Symbol.iterator, m = s && o[s], i = 0;
  if (m) return m.call(o);
  if (o && typeof o.length === "number") return { next: function () { if (o && i >= o.length) o = void 0; return { value: o && o[i++], done: !o }; } };
  throw new TypeError(s ? "Object is not iterable." : "Symbol.iterator is not defined."); }
function __read(o, n) { var m = typeof Symbol === "function" && o[Symbol.iterator]; if (!m) return o;
  var i = m.call(o), r, ar = [], e;
  try { while ((n === void 0 || n-- > 0) && !(r = i.next()).done) ar.push(r.value); }
  catch (error) { e = { error: error }; }
  finally { try { if (r && !r.done && (m = i["return"])) m.call(i); } finally { if (e) throw e.error; } }
  return ar; }
function __spreadArray(to, from, pack) { if (pack || arguments.length === 2) for (var i = 0, l = from.length, ar; i < l; i++) {
  if (ar || !(i in from)) { if (!ar) ar = Array.prototype.slice.call(from, 0, i); ar[i] = from[i]; } }
  return to.concat(ar || Array.prototype.slice.call(from)); }
`;

/** Writes `text` to a content-addressed file (atomically, so concurrent engine processes can share it). */
function writeScript(dir: string, stem: string, ext: string, text: string): string {
  const hash = crypto.createHash('sha256').update(text).digest('hex').slice(0, 16);
  const file = path.join(dir, `${stem}-${hash}${ext}`);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  }
  return file;
}

/** Why the threaded build cannot be tried in this process, or null when it can. */
export function threadsUnsupportedReason(): string | null {
  if (typeof SharedArrayBuffer === 'undefined') return 'SharedArrayBuffer is not available';
  try {
    // The threads feature-detection module from wasm-feature-detect (shared memory + atomic.notify).
    // (lib "dom"/WebAssembly typings are not in this project's tsconfig; the global exists in Node.)
    const wa = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly;
    const ok = wa.validate(
      new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0,
        254, 16, 2, 0, 26, 11]),
    );
    if (!ok) return 'this WebAssembly engine has no threads support';
  } catch (e) {
    return `WebAssembly threads check failed: ${(e as Error).message}`;
  }
  return null;
}

/**
 * Runs `init` (which must initialise the wasm backend) with the patches described above in place.
 * `threads` is the XNNPACK pool size wanted; the caller sets it with `setThreadsCount` beforehand.
 */
export async function withNodeWasmThreads<T>(threads: number, init: () => Promise<T>): Promise<T> {
  const dir = path.join(os.tmpdir(), 'advmoe-tfjs-wasm');
  fs.mkdirSync(dir, { recursive: true });

  const RealBlob = globalThis.Blob;
  const realCreateObjectURL = URL.createObjectURL;
  const realCpus = os.cpus;
  const texts = new WeakMap<Blob, string>();
  let mainScript: string | null = null;
  let failure: Error | null = null;

  class RecordingBlob extends RealBlob {
    constructor(parts?: ConstructorParameters<typeof Blob>[0], options?: ConstructorParameters<typeof Blob>[1]) {
      super(parts as never, options);
      if (parts && parts.every((p: unknown) => typeof p === 'string')) {
        const text = (parts as unknown as string[]).join('');
        texts.set(this, text);
        if (text.startsWith(MAIN_SCRIPT_MARK)) {
          try {
            mainScript = writeScript(dir, 'tfjs-wasm-threaded-main', '.js', BUNDLE_PRELUDE + text);
          } catch (e) {
            failure = e as Error;
          }
        }
      }
    }
  }

  globalThis.Blob = RecordingBlob as typeof Blob;
  URL.createObjectURL = (obj: Blob): string => {
    const text = texts.get(obj);
    if (text === undefined || !text.includes(WORKER_SCRIPT_MARK)) return realCreateObjectURL(obj);
    if (mainScript === null) throw failure ?? new Error('tfjs created the worker before its main script');
    // The worker is told to import the main script from the Blob it is posted; point it at the file instead.
    const redirect =
      `\n;(function(){var orig=self.onmessage;self.onmessage=function(e){` +
      `if(e&&e.data&&e.data.cmd==="load")e.data.urlOrBlob=${JSON.stringify(mainScript)};return orig(e)}})();\n`;
    // .cjs: Node loads worker files by extension, and a stray package.json "type":"module" above tmp must not matter.
    return writeScript(dir, 'tfjs-wasm-threaded-worker', '.cjs', text + redirect);
  };
  // XNNPACK sizes its pool as min(requested, logical cores / 2); report enough cores for the requested size.
  const patchedCpus = (): os.CpuInfo[] => {
    const real = realCpus();
    const n = Math.max(real.length, 2 * threads);
    return Array.from({ length: n }, (_, i) => real[i % real.length]);
  };
  os.cpus = patchedCpus;
  try {
    const result = await init();
    if (failure) throw failure;
    return result;
  } finally {
    globalThis.Blob = RealBlob;
    URL.createObjectURL = realCreateObjectURL;
    os.cpus = realCpus;
  }
}
