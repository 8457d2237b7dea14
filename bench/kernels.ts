/**
 * The engine's wasm training kernels against the stock path, per layer shape: stock tfjs-backend-wasm where it has
 * the kernel, the cpu backend where it has none (Conv2DBackpropFilter) or a wrong one (MaxPoolGrad).
 * Repetitions alternate between the two sides so that load changes on a shared machine hit both alike; medians.
 *
 *   node out/bench/kernels.js [--threads N] [--reps R] [--batch B]
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '../engine/util/registerGradients';
import { initBackend } from '../engine/backend/select';
import { registerWasmTrainingKernels } from '../engine/backend/wasmKernels';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
let REPS = 7;
let BATCH = 32;

export interface KernelRow {
  name: string;
  flops: number;
  ours: { label: string; ms: number; min: number; max: number };
  stock: { label: string; ms: number; min: number; max: number };
  /** stock median / ours median. */
  speedup: number;
}
const rows: KernelRow[] = [];
let printRows = true;

interface Side {
  label: string;
  backend: 'wasm' | 'cpu';
  ourKernels: boolean;
}
const OURS: Side = { label: 'ours', backend: 'wasm', ourKernels: true };
const STOCK_WASM: Side = { label: 'stock wasm', backend: 'wasm', ourKernels: false };
const CPU: Side = { label: 'cpu backend', backend: 'cpu', ourKernels: false };

async function use(side: Side): Promise<void> {
  await tf.setBackend(side.backend);
  registerWasmTrainingKernels(side.ourKernels);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Times `make(inputs)` on two sides. Inputs are created on each side's backend beforehand so that no transfer
 * between backends is timed; dataSync makes sure the work is done.
 */
async function compare(
  name: string,
  flops: number,
  inputs: () => tf.Tensor[],
  run: (t: tf.Tensor[]) => tf.Tensor,
  a: Side,
  b: Side,
  reps = REPS,
): Promise<void> {
  const sides = [a, b];
  const data: tf.Tensor[][] = [];
  for (const s of sides) {
    await use(s);
    data.push(inputs());
  }
  const times: number[][] = [[], []];
  for (let r = -1; r < reps; r++) {
    for (let k = 0; k < 2; k++) {
      await use(sides[k]);
      const t0 = process.hrtime.bigint();
      const y = run(data[k]);
      y.dataSync();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      y.dispose();
      if (r >= 0) times[k].push(ms); // r = -1 is a warm-up (operator creation, caches)
    }
  }
  const [ma, mb] = times.map(median);
  const g = (ms: number): string => (flops / ms / 1e6).toFixed(2).padStart(7);
  rows.push({
    name,
    flops,
    ours: { label: a.label, ms: ma, min: Math.min(...times[0]), max: Math.max(...times[0]) },
    stock: { label: b.label, ms: mb, min: Math.min(...times[1]), max: Math.max(...times[1]) },
    speedup: mb / ma,
  });
  if (printRows) console.log(
    `${name.padEnd(44)} ${a.label} ${ma.toFixed(2).padStart(8)} ms ${g(ma)} GFLOP/s | ` +
      `${b.label} ${mb.toFixed(2).padStart(8)} ms ${g(mb)} GFLOP/s | ×${(mb / ma).toFixed(2)}`,
  );
  await use(OURS);
  data.flat().forEach((t) => t.dispose());
}

interface Layer {
  label: string;
  h: number;
  ci: number;
  co: number;
  k: number;
  s: number;
}

async function main(): Promise<void> {
  const info = await initBackend('wasm', { threads: arg('threads', os.cpus().length) });
  REPS = arg('reps', 7);
  BATCH = arg('batch', 32);
  console.log(`backend ${info.name}, threads ${info.threads}, simd ${info.simd}; batch ${BATCH}, ${REPS} reps, medians`);
  for (const n of info.notes ?? []) console.log(`note: ${n}`);
  await allKernels(false);
}

/**
 * The kernel comparisons on the current (wasm) backend, for the combined bench (bench/main.ts): rows with medians
 * and min–max. `quick` keeps the conv layers and drops the matMul and pooling rows.
 */
export async function runKernelBench(opts: { reps: number; batch: number; quick: boolean }): Promise<KernelRow[]> {
  REPS = opts.reps;
  BATCH = opts.batch;
  printRows = false;
  rows.length = 0;
  await allKernels(opts.quick);
  return [...rows];
}

async function allKernels(quick: boolean): Promise<void> {
  const layers: Layer[] = [
    { label: 'MNIST stem 28² 1→16 3×3/1', h: 28, ci: 1, co: 16, k: 3, s: 1 },
    { label: 'CIFAR stem 32² 3→16 3×3/1', h: 32, ci: 3, co: 16, k: 3, s: 1 },
    { label: '28² 16→32 3×3/2', h: 28, ci: 16, co: 32, k: 3, s: 2 },
    { label: '14² 32→32 3×3/1', h: 14, ci: 32, co: 32, k: 3, s: 1 },
    { label: '14² 32→64 3×3/2', h: 14, ci: 32, co: 64, k: 3, s: 2 },
    { label: '16² 32→64 1×1/2 (shortcut)', h: 16, ci: 32, co: 64, k: 1, s: 2 },
    { label: '8² 64→64 3×3/1', h: 8, ci: 64, co: 64, k: 3, s: 1 },
  ];
  for (const L of layers) {
    const ho = Math.ceil(L.h / L.s);
    const flops = 2 * BATCH * ho * ho * L.k * L.k * L.ci * L.co;
    const xShape: [number, number, number, number] = [BATCH, L.h, L.h, L.ci];
    const fShape: [number, number, number, number] = [L.k, L.k, L.ci, L.co];
    const dyShape: [number, number, number, number] = [BATCH, ho, ho, L.co];
    const attrs = { strides: [L.s, L.s], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined };
    await compare(
      `${L.label} forward conv (reference)`,
      flops,
      () => [tf.randomNormal(xShape), tf.randomNormal(fShape)],
      ([x, f]) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, L.s, 'same'),
      OURS,
      STOCK_WASM,
    );
    await compare(
      `${L.label} BackpropInput`,
      flops,
      () => [tf.randomNormal(dyShape), tf.randomNormal(fShape)],
      ([dy, f]) =>
        tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, { ...attrs, inputShape: xShape } as never) as tf.Tensor,
      OURS,
      STOCK_WASM,
    );
    await compare(
      `${L.label} BackpropFilter`,
      flops,
      () => [tf.randomNormal(xShape), tf.randomNormal(dyShape)],
      ([x, dy]) => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: fShape } as never) as tf.Tensor,
      OURS,
      CPU,
      1, // the cpu backend needs seconds per call here
    );
  }

  if (quick) return;
  for (const [m, k, nn] of [[BATCH, 1024, 10], [BATCH, 256, 256], [512, 512, 512]]) {
    // The two products of a dense layer's backward pass: dx = dy·Wᵀ and dW = xᵀ·dy.
    await compare(
      `matMul a·bᵀ [${m}×${nn}]·[${k}×${nn}]ᵀ`,
      2 * m * k * nn,
      () => [tf.randomNormal([m, nn]), tf.randomNormal([k, nn])],
      ([a, b]) => tf.matMul(a, b, false, true),
      OURS,
      STOCK_WASM,
    );
    await compare(
      `matMul aᵀ·b [${m}×${k}]ᵀ·[${m}×${nn}]`,
      2 * m * k * nn,
      () => [tf.randomNormal([m, k]), tf.randomNormal([m, nn])],
      ([a, b]) => tf.matMul(a, b, true, false),
      OURS,
      STOCK_WASM,
    );
  }

  for (const [h, c] of [[28, 16], [14, 32]]) {
    const x4 = [BATCH, h, h, c];
    await compare(
      `maxPool 3×3/2 same grad ${h}²×${c} (stock wasm is wrong)`,
      0,
      () => [tf.randomNormal(x4)],
      ([x]) => tf.grad((t: tf.Tensor) => tf.sum(tf.maxPool(t as tf.Tensor4D, 3, 2, 'same')))(x),
      OURS,
      CPU,
    );
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
