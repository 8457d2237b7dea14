/**
 * The TensorFlow CPU wheel as a source of libtensorflow: pip fetches it (from whatever index pip is configured
 * with), and its C/C++ library, framework library and headers are laid out the way tfjs-node's build expects
 * (README, Backends).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OFFICIAL_TF_VERSION, WHEEL_PACKAGE, WHEEL_TF_VERSION } from './nativeLayout';
import { ok, runTool, tail } from './nativeProcess';
import { AdvMoEError } from '../util/errors';

/** The error every step of the native set-up throws; its message names the missing piece. */
export function setupError(message: string): AdvMoEError {
  return new AdvMoEError('NATIVE_SETUP_FAILED', message);
}

/** The TensorFlow version of a tensorflow / tensorflow-cpu wheel, from its file name (PEP 427). */
export function wheelTfVersion(file: string): string {
  const m = /^tensorflow(?:_cpu)?-(\d+\.\d+\.\d+)-.+\.whl$/.exec(path.basename(file));
  if (!m) throw setupError(`${file} is not a tensorflow or tensorflow-cpu wheel (expected tensorflow_cpu-<version>-….whl)`);
  return m[1];
}

/** `pip download` of tensorflow-cpu into `dir` (reused when a previous attempt already fetched it). */
export async function downloadWheel(python: string, dir: string): Promise<string> {
  const find = (): string | undefined =>
    fs.existsSync(dir) ? fs.readdirSync(dir).find((f) => f.startsWith(`tensorflow_cpu-${WHEEL_TF_VERSION}-`) && f.endsWith('.whl')) : undefined;
  const have = find();
  if (have) return path.join(dir, have);
  fs.mkdirSync(dir, { recursive: true });
  const r = await runTool(
    python,
    ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', `${WHEEL_PACKAGE}==${WHEEL_TF_VERSION}`, '-d', dir],
    { timeoutMs: 20 * 60_000 },
  );
  const got = find();
  if (!ok(r) || !got) {
    throw setupError(
      `no TensorFlow wheel available: \`${python} -m pip download ${WHEEL_PACKAGE}==${WHEEL_TF_VERSION}\` failed (${tail(r)}); ` +
        'give a downloaded wheel with --wheel PATH',
    );
  }
  return path.join(dir, got);
}

/**
 * Unpacks the wheel's libraries into `deps/lib` under the names tfjs-node's install script looks for
 * (libtensorflow.so.2.9.1 — its presence makes the script build instead of download), with the usual soname links,
 * and the headers the binding includes into `deps/include`. Done by python's zipfile, so no unzip is needed.
 */
export async function unpackWheel(python: string, wheel: string, deps: string): Promise<void> {
  const lib = `libtensorflow.so.${OFFICIAL_TF_VERSION}`;
  const fw = `libtensorflow_framework.so.${OFFICIAL_TF_VERSION}`;
  const script = `
import os, shutil, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
libs = {'tensorflow/libtensorflow_cc.so.2': 'lib/${lib}', 'tensorflow/libtensorflow_framework.so.2': 'lib/${fw}'}
inc = tuple('tensorflow/include/%s/' % d for d in ('tensorflow', 'tsl', 'xla'))
found = set()
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        n = info.filename
        if n in libs:
            out = libs[n]; found.add(n)
        elif n.startswith(inc) and not n.endswith('/'):
            out = 'include/' + n[len('tensorflow/include/'):]
        else:
            continue
        p = os.path.join(dest, out)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with z.open(info) as src, open(p, 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
missing = sorted(set(libs) - found)
if missing:
    sys.exit('the wheel has no ' + ', '.join(missing))
`;
  const r = await runTool(python, ['-c', script, wheel, deps], { timeoutMs: 10 * 60_000 });
  if (!ok(r)) throw setupError(`could not unpack ${wheel}: ${tail(r)}`);
  const libDir = path.join(deps, 'lib');
  const links: [string, string][] = [
    ['libtensorflow_cc.so.2', lib],
    ['libtensorflow.so.2', lib],
    ['libtensorflow.so', 'libtensorflow.so.2'],
    ['libtensorflow_framework.so.2', fw],
    ['libtensorflow_framework.so', 'libtensorflow_framework.so.2'],
  ];
  for (const [name, target] of links) {
    fs.rmSync(path.join(libDir, name), { force: true });
    fs.symlinkSync(target, path.join(libDir, name));
  }
}
