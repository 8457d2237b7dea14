/**
 * One benchmark side: a child process on one backend (and wasm thread count, which is fixed per process). The
 * orchestrator (bench/main.ts) sends it one measurement at a time over the IPC channel and alternates between
 * workers, so that every side of a comparison sees the same machine load. Each request returns the wall time
 * measured inside the worker (no IPC in it).
 *
 *   node out/bench/worker.js --backend wasm|cpu|tensorflow [--threads N]
 */
import * as tf from '@tensorflow/tfjs-core';
import '../engine/util/registerGradients';
import { initBackend } from '../engine/backend/select';
import type { BackendName } from '../engine/config/types';
import { createModel } from '../engine/models/factory';
import { measureLatency } from '../engine/models/sparse';
import type { Model } from '../engine/models/types';
import { makeAdversary } from '../engine/training/adversary';
import { type AdversaryFn, createOptimizers, type Optimizers, trainStep } from '../engine/training/methods';
import { Rng } from '../engine/util/rng';
import { runKernelBench } from './kernels';
import { benchMethod, benchModels, type ModelKey, STEP } from './models';

interface StepSetup {
  model: Model;
  optimizers: Optimizers;
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  adversary: AdversaryFn;
  method: ReturnType<typeof benchMethod>;
  step: number;
}

const setups = new Map<string, StepSetup>();

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function randomBatch(batch: number, shape: [number, number, number], classes: number, seed: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  return tf.tidy(() => ({
    x: tf.randomUniform([batch, ...shape], 0, 1, 'float32', seed) as tf.Tensor4D,
    y: tf.cast(tf.floor(tf.randomUniform([batch], 0, classes, 'float32', seed + 1)), 'int32') as tf.Tensor1D,
  }));
}

async function setupStep(key: string, modelKey: ModelKey, kind: 'pgd-at' | 'advmoe', batch: number, attackSteps?: number): Promise<void> {
  const m = benchModels()[modelKey];
  const attack = { ...m.attack, steps: attackSteps ?? m.attack.steps };
  const model = createModel(m.model, m.data, 0);
  const { x, y } = randomBatch(batch, m.data.inputShape, m.data.numClasses, 1);
  const rng = new Rng(2);
  const s: StepSetup = {
    model,
    optimizers: createOptimizers(model, STEP),
    x,
    y,
    adversary: makeAdversary(model, attack, { rng }),
    method: benchMethod(kind, attack),
    step: 0,
  };
  setups.set(key, s);
  await runStep(s); // warm-up: operator creation, weight caches
}

async function runStep(s: StepSetup): Promise<number> {
  return (await timedStep(s)).ms;
}

/** Wall time and this process's CPU time (all threads, user + system) of one step: on a loaded shared machine
 * a single-threaded side's CPU time tracks its work far more steadily than its wall time. */
async function timedStep(s: StepSetup): Promise<{ ms: number; cpuMs: number }> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await trainStep(s.method, { model: s.model, optimizers: s.optimizers, x: s.x, y: s.y, lr: STEP.lr, step: s.step++, adversary: s.adversary });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  return { ms, cpuMs: (c.user + c.system) / 1000 };
}

function dropSetup(key: string): void {
  const s = setups.get(key);
  if (!s) return;
  s.model.dispose();
  s.optimizers.router.dispose?.();
  s.optimizers.expert.dispose?.();
  tf.dispose([s.x, s.y]);
  setups.delete(key);
}

/** Sparse-inference latency of the MoE model (routing fixed to balanced random choices, see main.ts) against
 * the masked dense forward and the dense counterpart. */
function sparseLatency(modelKey: ModelKey, experts: number, batch: number, reps: number, routing: 'balanced' | 'router'): unknown {
  const m = benchModels()[modelKey];
  const moeCfg = { ...m.model, moe: { ...m.model.moe, enabled: true, experts, topK: 1, expertWidth: 1 / experts } };
  const denseCfg = { ...m.model, moe: { ...m.model.moe, enabled: false } };
  const model = createModel(moeCfg, m.data, 0);
  const dense = createModel(denseCfg, m.data, 0);
  const x = tf.randomUniform([batch, ...m.data.inputShape], 0, 1, 'float32', 3) as tf.Tensor4D;
  let masks: tf.Tensor2D[] = [];
  try {
    if (routing === 'balanced') {
      // What a balanced trained router does: every expert chosen by 1/N of the samples, independently per layer.
      const rng = new Rng(5);
      masks = model.moeLayers.map(() => {
        const rows = Array.from({ length: batch }, () => {
          const e = Math.floor(rng.next() * experts);
          return Array.from({ length: experts }, (_, j) => (j === e ? 1 : 0));
        });
        return tf.tensor2d(rows);
      });
      // measureLatency runs plain forwards; fixed masks go through a thin wrapper model.
      const fixed = withRouting(model, { kind: 'fixed', masks });
      return measureLatency(fixed, batch, reps, { dense, input: x });
    }
    return measureLatency(model, batch, reps, { dense, input: x });
  } finally {
    tf.dispose([x, ...masks]);
    model.dispose();
    dense.dispose();
  }
}

/** `model` with a routing mode added to every forward. */
function withRouting(model: Model, routing: NonNullable<Parameters<Model['forward']>[1]['routing']>): Model {
  return new Proxy(model, {
    get(target, prop, receiver) {
      if (prop === 'forward') return (x: tf.Tensor4D, opts: Parameters<Model['forward']>[1]) => target.forward(x, { ...opts, routing });
      return Reflect.get(target, prop, receiver);
    },
  });
}

/** Steps of one training configuration with numTensors and RSS sampled every `every` steps. */
async function memoryRun(modelKey: ModelKey, batch: number, steps: number, every: number, attackSteps: number): Promise<unknown> {
  const key = `mem-${modelKey}`;
  await setupStep(key, modelKey, 'advmoe', batch, attackSteps);
  const s = setups.get(key)!;
  const samples: Array<{ step: number; numTensors: number; rssMB: number; ms: number }> = [];
  const t0 = process.hrtime.bigint();
  for (let i = 1; i <= steps; i++) {
    await runStep(s);
    if (i % every === 0 || i === 1) {
      samples.push({ step: i, numTensors: tf.memory().numTensors, rssMB: process.memoryUsage().rss / 2 ** 20, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    }
  }
  dropSetup(key);
  return samples;
}

/**
 * One epoch (training steps only) over `samples` random images: the scale test's unit. Besides the epoch's wall
 * time it returns each step's time, the host-side batch preparation time, and the RSS / heap at the end, to tell
 * slower later steps (GC, memory growth) from machine load.
 */
async function epoch(
  modelKey: ModelKey, samples: number, batch: number, attackSteps: number,
): Promise<{ ms: number; stepMs: number[]; hostMs: number; rssMB: number; heapMB: number }> {
  const key = `epoch-${modelKey}-${batch}`;
  if (!setups.has(key)) await setupStep(key, modelKey, 'advmoe', batch, attackSteps);
  const s = setups.get(key)!;
  const m = benchModels()[modelKey];
  const steps = Math.ceil(samples / batch);
  const stepMs: number[] = [];
  let hostNs = 0n;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) {
    const th = process.hrtime.bigint();
    // A fresh batch per step, uploaded as a data loader would (host → backend each step).
    const host = new Float32Array(batch * m.data.inputShape.reduce((a, b) => a * b, 1));
    for (let j = 0; j < host.length; j++) host[j] = (Math.imul(j + i * 7919, 2654435761) >>> 0) / 2 ** 32;
    const labels = Int32Array.from({ length: batch }, (_, j) => (j + i) % m.data.numClasses);
    const x = tf.tensor4d(host, [batch, ...m.data.inputShape]);
    const y = tf.tensor1d(labels, 'int32');
    const old = [s.x, s.y];
    s.x = x;
    s.y = y;
    tf.dispose(old);
    hostNs += process.hrtime.bigint() - th;
    stepMs.push(await runStep(s));
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const mem = process.memoryUsage();
  return { ms, stepMs, hostMs: Number(hostNs) / 1e6, rssMB: mem.rss / 2 ** 20, heapMB: mem.heapUsed / 2 ** 20 };
}

async function handle(msg: { op: string; [k: string]: unknown }): Promise<unknown> {
  switch (msg.op) {
    case 'setupStep':
      await setupStep(msg.key as string, msg.model as ModelKey, msg.method as 'pgd-at' | 'advmoe', msg.batch as number, msg.attackSteps as number | undefined);
      return { ok: true };
    case 'step':
      return timedStep(setups.get(msg.key as string)!);
    case 'drop':
      dropSetup(msg.key as string);
      return { ok: true };
    case 'sparse':
      return sparseLatency(msg.model as ModelKey, msg.experts as number, msg.batch as number, msg.reps as number, (msg.routing as 'balanced' | 'router') ?? 'balanced');
    case 'kernels':
      return runKernelBench({ reps: msg.reps as number, batch: msg.batch as number, quick: Boolean(msg.quick) });
    case 'memory':
      return memoryRun(msg.model as ModelKey, msg.batch as number, msg.steps as number, msg.every as number, msg.attackSteps as number);
    case 'epoch':
      return epoch(msg.model as ModelKey, msg.samples as number, msg.batch as number, msg.attackSteps as number);
    case 'exit':
      setImmediate(() => process.exit(0));
      return { ok: true };
    default:
      throw new Error(`unknown op ${msg.op}`);
  }
}

async function main(): Promise<void> {
  const backend = (arg('backend') ?? 'wasm') as BackendName;
  const threads = arg('threads') ? Number(arg('threads')) : undefined;
  const t0 = process.hrtime.bigint();
  let info;
  try {
    info = await initBackend(backend, { threads });
    await tf.ready();
  } catch (e) {
    process.send!({ ready: false, error: (e as Error).message });
    return;
  }
  process.send!({ ready: true, info, initMs: Number(process.hrtime.bigint() - t0) / 1e6 });
  process.on('message', (m: { id: number; op: string }) => {
    handle(m).then(
      (result) => process.send!({ id: m.id, result }),
      (e: Error) => process.send!({ id: m.id, error: e.stack ?? e.message }),
    );
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
