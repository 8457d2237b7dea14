/**
 * `npm run bench` / `advmoe bench`: every performance comparison of issue 5, measured side by side in one run.
 *
 * Each side runs in its own process (bench/worker.ts for our engine: one per backend and thread count, since both
 * are fixed per process; bench/peer_torch.py for PyTorch), every backend at 1 thread and at every core, and the
 * `at` ratios compare each backend at its best count. The orchestrator asks one side at a time for one
 * measurement and alternates between sides within every repetition, so load changes on a shared machine hit all
 * sides alike. Tables give medians with min–max; results go to bench/results/<YYYY-MM-DD>.json.
 *
 *   node out/bench/main.js [--quick] [--only startup,at,sparse,kernels,scale] [--reps N] [--out FILE]
 *                          [--models default,cifar-resnet] [--methods pgd-at,advmoe]
 */
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { benchModels, type ModelKey, ROOT } from './models';

const SECTIONS = ['startup', 'at', 'sparse', 'kernels', 'scale'] as const;
type Section = (typeof SECTIONS)[number];

export interface BenchOptions {
  quick: boolean;
  only: Section[];
  /** `at` section: the models and methods to run (default all), to fit a loaded machine's time. */
  models?: ModelKey[];
  methods?: Array<'pgd-at' | 'advmoe'>;
  reps?: number;
  out?: string;
  log?: (line: string) => void;
}

interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '—');
const range = (s: Stat, d = 1, k = 1): string => `${f(s.median * k, d)} (${f(s.min * k, d)}–${f(s.max * k, d)})`;

// ---------------------------------------------------------------------------------------------------------------
// CPU and peak

export interface CpuInfo {
  model: string;
  cores: number;
  mhz: number;
  flags: string[];
  /** FP32 FLOP per cycle per core assumed for the peak (how: `peakHow`). */
  flopsPerCycle: number;
  peakGflops: number;
  peakHow: string;
  /** wasm SIMD is 128-bit without FMA: 4 lanes × (1 mul + 1 add) × 2 vector pipes per cycle. */
  wasmCeilingGflops: number;
}

export function cpuInfo(): CpuInfo {
  let text = '';
  try {
    text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* not Linux */
  }
  const field = (name: string): string => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  const flags = field('flags').split(/\s+/).filter(Boolean);
  const cores = os.cpus().length;
  const mhz = Number(field('cpu MHz')) || os.cpus()[0]?.speed || 0;
  const has = (f: string): boolean => flags.includes(f);
  // Lanes of the widest FP32 vector × 2 (FMA = 2 FLOP) × 2 FMA pipes (Zen 4/5, Intel server cores since Skylake-SP).
  const lanes = has('avx512f') ? 16 : has('avx2') || has('avx') ? 8 : 4;
  const fma = has('fma') ? 2 : 1;
  const flopsPerCycle = lanes * fma * 2;
  const peakGflops = (cores * mhz * flopsPerCycle) / 1000;
  const isa = has('avx512f') ? 'AVX-512F' : has('avx2') ? 'AVX2' : 'SSE';
  return {
    model: field('model name') || os.cpus()[0]?.model || 'unknown',
    cores,
    mhz,
    flags: flags.filter((x) => ['avx', 'avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512vl', 'avx512_vnni'].includes(x)),
    flopsPerCycle,
    peakGflops,
    peakHow: `${cores} cores × ${(mhz / 1000).toFixed(2)} GHz × ${flopsPerCycle} FLOP/cycle (${isa}: ${lanes} fp32 lanes × ${fma === 2 ? 'FMA (2 FLOP)' : '1 FLOP'} × 2 pipes)`,
    wasmCeilingGflops: (cores * mhz * 16) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Sides

interface Side {
  name: string;
  call(req: Record<string, unknown>): Promise<any>;
  close(): void;
}

async function startWorker(name: string, args: string[]): Promise<{ side: Side; info: any; initMs: number } | { error: string }> {
  const child: ChildProcess = fork(path.join(__dirname, 'worker.js'), args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { TF_CPP_MIN_LOG_LEVEL: '2', ...process.env },
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 1;
  const ready = new Promise<any>((resolve) => {
    child.once('message', resolve);
    child.once('exit', (code) => resolve({ ready: false, error: `worker exited (${code})` }));
  });
  const first = await ready;
  if (!first.ready) {
    child.kill();
    return { error: first.error };
  }
  child.on('message', (m: any) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(new Error(`${name}: ${m.error}`));
    else p.resolve(m.result);
  });
  child.on('exit', () => pending.forEach((p) => p.reject(new Error(`${name} exited`))));
  const side: Side = {
    name,
    call: (req) =>
      new Promise((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        child.send({ ...req, id });
      }),
    close: () => {
      child.send({ op: 'exit', id: 0 });
      setTimeout(() => child.kill(), 2000).unref();
    },
  };
  return { side, info: first.info, initMs: first.initMs };
}

/** A python3 with torch importable, or null. */
function findTorchPython(): { python: string; version: string } | null {
  for (const python of [process.env.ADVMOE_BENCH_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[]) {
    try {
      const version = execFileSync(python, ['-c', 'import torch; print(torch.__version__)'], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 })
        .toString()
        .trim();
      return { python, version };
    } catch {
      /* next */
    }
  }
  return null;
}

function startTorch(python: string, threads: number): Side {
  const child = spawn(python, [path.join(ROOT, 'bench', 'peer_torch.py'), '--threads', String(threads)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const queue: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const p = queue.shift();
    if (!p) return;
    const m = JSON.parse(line);
    if (m.error) p.reject(new Error(`pytorch: ${m.error}`));
    else p.resolve(m);
  });
  child.on('exit', () => queue.splice(0).forEach((p) => p.reject(new Error('pytorch exited'))));
  return {
    name: 'pytorch',
    call: (req) =>
      new Promise((resolve, reject) => {
        queue.push({ resolve, reject });
        child.stdin!.write(JSON.stringify(req) + '\n');
      }),
    close: () => child.stdin!.end(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Sections

interface Ctx {
  opts: BenchOptions;
  log: (line: string) => void;
  results: Record<string, unknown>;
  wasmAll: Side | null;
  /** tfjs-node at every core, when installed: the sparse and memory sections run on it too. */
  nativeAll: Side | null;
  /** Writes the results so far (a long run stopped early keeps its finished rows). */
  save: () => void;
}

/** One measured side of the `at` section: a backend at one thread count. */
interface AtSide {
  side: Side;
  label: string;
  backend: 'wasm' | 'tensorflow' | 'pytorch' | 'cpu';
  threads: number;
  batchScale?: number;
}

const threadLabel = (backend: string, threads: number): string => `${backend} ${threads} thread${threads === 1 ? '' : 's'}`;

async function sectionStartup(ctx: Ctx): Promise<void> {
  const reps = ctx.opts.quick ? 3 : 5;
  const bin = path.join(ROOT, 'bin', 'advmoe.js');
  const backendMs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    execFileSync(process.execPath, [bin, 'backend'], { stdio: 'ignore' });
    backendMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  // Time from the request (process spawn) to the run starting and to the first training step's metrics.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-bench-'));
  const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples', 'mnist-advmoe.advmoe.json'), 'utf8'));
  delete cfg.$schema;
  Object.assign(cfg, { name: 'bench-first-step', logEverySteps: 1 });
  cfg.data = { ...cfg.data, trainSamples: 1024, testSamples: 256 };
  cfg.schedule = { ...cfg.schedule, epochs: 1 };
  cfg.eval = { ...cfg.eval, samples: 64 };
  const file = path.join(dir, 'first-step.advmoe.json');
  fs.writeFileSync(file, JSON.stringify(cfg));
  const runs: Array<{ backendLogMs: number; runningMs: number; firstStepDoneMs: number; firstStepS: number }> = [];
  for (let r = 0; r < Math.min(3, reps); r++) {
    runs.push(
      await new Promise((resolve, reject) => {
        const t0 = process.hrtime.bigint();
        const ms = (): number => Number(process.hrtime.bigint() - t0) / 1e6;
        const child = spawn(process.execPath, [bin, 'train', file, '--json', '--runs-dir', path.join(dir, 'runs')], { stdio: ['ignore', 'pipe', 'ignore'] });
        const seen: Record<string, number> = {};
        readline.createInterface({ input: child.stdout! }).on('line', (line) => {
          let ev: any;
          try {
            ev = JSON.parse(line);
          } catch {
            return;
          }
          if (ev.event === 'log' && String(ev.message).startsWith('backend:')) seen.backend ??= ms();
          if (ev.event === 'runState' && ev.state?.status === 'running') seen.running ??= ms();
          if (ev.event === 'metrics' && seen.first === undefined) {
            seen.first = ms();
            const rec = ev.records?.[0];
            child.kill('SIGKILL');
            resolve({ backendLogMs: seen.backend, runningMs: seen.running, firstStepDoneMs: seen.first, firstStepS: Number(rec?.time) });
          }
        });
        child.on('exit', () => {
          if (seen.first === undefined) reject(new Error('train ended before its first step'));
        });
      }),
    );
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const backend = stat(backendMs);
  const first = stat(runs.map((r) => r.firstStepDoneMs));
  const running = stat(runs.map((r) => r.runningMs));
  const stepS = stat(runs.map((r) => r.firstStepS));
  ctx.results.startup = { backendCommandMs: backend, runningMs: running, firstStepDoneMs: first, firstStepRecordTimeS: stepS, runs };
  ctx.log('\n## Engine start');
  ctx.log(`advmoe backend (spawn → exit)                 ${range(backend, 0)} ms   target < 3000 ms`);
  ctx.log(`advmoe train: spawn → run running             ${range(running, 0)} ms`);
  ctx.log(`advmoe train: spawn → first step's metrics    ${range(first, 0)} ms   (the step itself: ${range(stepS, 2)} s by its record)`);
  ctx.log(`  first step begins ≈ ${f(first.median - stepS.median * 1000, 0)} ms after the request   target < 5000 ms`);
}

async function sectionAt(ctx: Ctx, sides: AtSide[]): Promise<void> {
  const models = benchModels();
  const baseReps = ctx.opts.reps ?? (ctx.opts.quick ? 2 : 5);
  const rows: any[] = [];
  ctx.log(`\n## Adversarial-training throughput (images/s, median (min–max) of alternating reps; PGD-10; ${baseReps} reps, CIFAR model ${Math.max(1, baseReps - 2)})`);
  const all = sides;
  ctx.log(`${'model / step'.padEnd(30)} ${all.map((s) => s.label.padStart(22)).join(' ')}  load avg`);
  for (const key of ctx.opts.models ?? (['default', 'cifar-resnet'] as ModelKey[])) {
    const m = models[key];
    const reps = key === 'default' ? baseReps : Math.max(1, baseReps - 2);
    for (const method of ctx.opts.methods ?? (['pgd-at', 'advmoe'] as const)) {
      const sk = `${key}/${method}`;
      const active: typeof all = [];
      for (const s of all) {
        // The cpu backend is ~100× slower than wasm: only the default model, one step of batch/16.
        if (s.backend === 'cpu' && key !== 'default') continue;
        const batch = Math.max(1, Math.round(m.batch * (s.batchScale ?? 1)));
        try {
          if (s.backend === 'pytorch') {
            await s.side.call({ op: 'setup', key: sk, model: m.model, data: m.data, method, batch, attack: m.attack });
          } else {
            await s.side.call({ op: 'setupStep', key: sk, model: key, method, batch });
          }
          active.push(s);
        } catch (e) {
          ctx.log(`  ${s.label}: ${(e as Error).message.split('\n')[0]}`);
        }
      }
      const ms = new Map<string, number[]>(active.map((s) => [s.label, []]));
      const cpuMs = new Map<string, number[]>(active.map((s) => [s.label, []]));
      const load = [os.loadavg()[0]];
      for (let r = 0; r < reps; r++) {
        for (let i = 0; i < active.length; i++) {
          const s = active[(i + r) % active.length];
          if (s.backend === 'cpu' && r >= 1) continue;
          const out = await s.side.call({ op: 'step', key: sk });
          ms.get(s.label)!.push(out.ms);
          if (typeof out.cpuMs === 'number') cpuMs.get(s.label)!.push(out.cpuMs);
        }
        load.push(os.loadavg()[0]);
      }
      for (const s of active) await s.side.call({ op: 'drop', key: sk });
      const perSide: Record<string, { backend: string; threads: number; batch: number; ms: Stat; imgPerS: Stat; cpuMs?: Stat; imgPerCpuS?: Stat }> = {};
      for (const s of active) {
        const batch = Math.max(1, Math.round(m.batch * (s.batchScale ?? 1)));
        const t = ms.get(s.label)!;
        const c = cpuMs.get(s.label)!;
        perSide[s.label] = {
          backend: s.backend,
          threads: s.threads,
          batch,
          ms: stat(t),
          imgPerS: stat(t.map((x) => (batch * 1000) / x)),
          // Images per CPU-second (all of the side's threads): the work a side needs, less sensitive to load.
          ...(c.length ? { cpuMs: stat(c), imgPerCpuS: stat(c.map((x) => (batch * 1000) / x)) } : {}),
        };
      }
      const loadavg = { min: Math.min(...load), max: Math.max(...load) };
      rows.push({ model: key, label: m.label, method, batch: m.batch, reps, attack: m.attack, loadavg, sides: perSide, best: bestPerBackend(perSide) });
      ctx.results.at = { reps: baseReps, rows };
      ctx.save();
      const cell = (label: string): string => (perSide[label] ? range(perSide[label].imgPerS, 1) : 'n/a').padStart(22);
      ctx.log(`${`${key} ${method} (batch ${m.batch})`.padEnd(30)} ${all.map((s) => cell(s.label)).join(' ')}  ${f(loadavg.min, 1)}–${f(loadavg.max, 1)}`);
      const cpuCell = (label: string): string => (perSide[label]?.imgPerCpuS ? range(perSide[label].imgPerCpuS!, 1) : 'n/a').padStart(22);
      ctx.log(`${'  per CPU-second'.padEnd(30)} ${all.map((s) => cpuCell(s.label)).join(' ')}`);
    }
  }
  // Each backend at its best thread count (by median), and the ratios between the bests: a side run at a thread
  // count that slows it down would make the comparison unfair (README "Benchmark").
  const ratios = rows.map((row) => {
    const b = row.best as Record<string, { threads: number; imgPerS: number; allVsOne: number | null }>;
    const vsPt = (backend: string): number | null => (b[backend] && b.pytorch ? b[backend].imgPerS / b.pytorch.imgPerS : null);
    return { model: row.model, method: row.method, best: b, tensorflowVsPytorch: vsPt('tensorflow'), wasmVsPytorch: vsPt('wasm') };
  });
  ctx.results.at = { reps: baseReps, sides: all.map((s) => ({ label: s.label, backend: s.backend, threads: s.threads, batchScale: s.batchScale ?? 1 })), rows, ratios };
  ctx.log('best thread count per backend (median img/s; all threads / 1 thread), and ratios of the bests (target ≥ 1.0):');
  for (const r of ratios) {
    const bests = Object.entries(r.best as Record<string, { threads: number; imgPerS: number; allVsOne: number | null }>)
      .map(([name, v]) => `${name} ${v.threads}t ${f(v.imgPerS, 1)}${v.allVsOne === null ? '' : ` (×${f(v.allVsOne, 2)})`}`)
      .join(', ');
    const ratio = (x: number | null): string => (x === null ? 'n/a' : `×${f(x, 2)}`);
    ctx.log(`  ${`${r.model} ${r.method}`.padEnd(20)} ${bests}`);
    ctx.log(`  ${''.padEnd(20)} tensorflow-best / PyTorch-best ${ratio(r.tensorflowVsPytorch)}   wasm-best / PyTorch-best ${ratio(r.wasmVsPytorch)}`);
  }
}

/** Per backend: its fastest thread count by median images/s, and all threads / 1 thread where both ran. */
function bestPerBackend(perSide: Record<string, { backend: string; threads: number; imgPerS: Stat }>): Record<string, { threads: number; imgPerS: number; allVsOne: number | null }> {
  const out: Record<string, { threads: number; imgPerS: number; allVsOne: number | null }> = {};
  for (const backend of [...new Set(Object.values(perSide).map((v) => v.backend))]) {
    const mine = Object.values(perSide).filter((v) => v.backend === backend);
    const best = mine.reduce((a, b) => (b.imgPerS.median > a.imgPerS.median ? b : a));
    const one = mine.find((v) => v.threads === 1);
    const most = mine.reduce((a, b) => (b.threads > a.threads ? b : a));
    out[backend] = { threads: best.threads, imgPerS: best.imgPerS.median, allVsOne: one && most !== one ? most.imgPerS.median / one.imgPerS.median : null };
  }
  return out;
}

/** The sides the sparse and memory sections run on: wasm and, when installed, tfjs-node, both at every core. */
function allCoreSides(ctx: Ctx): Array<{ backend: string; side: Side }> {
  return [{ backend: 'wasm', side: ctx.wasmAll! }, ...(ctx.nativeAll ? [{ backend: 'tensorflow', side: ctx.nativeAll }] : [])];
}

async function sectionSparse(ctx: Ctx): Promise<void> {
  const rows: any[] = [];
  ctx.log('\n## Sparse MoE inference latency (ms per batch, median (min–max); every core; balanced random routing)');
  ctx.log(`${'backend'.padEnd(11)} ${'model'.padEnd(18)} ${'k/N'.padEnd(4)} ${'batch'.padStart(5)} ${'dense model'.padStart(22)} ${'MoE masked'.padStart(22)} ${'MoE sparse'.padStart(22)}  sparse/dense  sparse/masked`);
  for (const { backend, side } of allCoreSides(ctx)) {
    for (const key of ['default', 'cifar-resnet', 'cifar-resnet-small'] as ModelKey[]) {
      for (const experts of key === 'cifar-resnet-small' ? [2] : [2, 4]) {
        for (const batch of [1, 64]) {
          const reps = ctx.opts.reps ? ctx.opts.reps * (batch === 1 ? 5 : 2) : (batch === 1 ? 40 : 10) / (ctx.opts.quick ? 2 : 1);
          const r = await side.call({ op: 'sparse', model: key, experts, batch, reps, routing: 'balanced' });
          rows.push({ backend, model: key, k: 1, n: experts, ...r });
          const ok = experts === 2 ? (r.sparseVsDense <= 0.6 ? ' ✓' : ' ✗ (target ≤ 0.6)') : '';
          ctx.log(
            `${backend.padEnd(11)} ${key.padEnd(18)} ${`1/${experts}`.padEnd(4)} ${String(batch).padStart(5)} ${range(r.dense, 2).padStart(22)} ${range(r.masked, 2).padStart(22)} ${range(r.sparse, 2).padStart(22)}  ` +
              `${f(r.sparseVsDense, 2).padStart(12)}${ok}  ${f(r.sparseVsMasked, 2).padStart(8)}`,
          );
        }
      }
    }
  }
  ctx.results.sparse = { routing: 'balanced random: each MoE layer picks a uniformly random expert per sample', rows };
}

async function sectionKernels(ctx: Ctx, cpu: CpuInfo): Promise<void> {
  const reps = ctx.opts.reps ?? (ctx.opts.quick ? 3 : 7);
  const rows: any[] = await ctx.wasmAll!.call({ op: 'kernels', reps, batch: 32, quick: ctx.opts.quick });
  ctx.log(`\n## Kernels (wasm all threads, batch 32, ${reps} alternating reps; ms median (min–max), GFLOP/s, % of machine peak ${f(cpu.peakGflops, 0)} GFLOP/s)`);
  for (const r of rows) {
    const g = (ms: number): number => r.flops / ms / 1e6;
    r.oursGflops = g(r.ours.ms);
    r.stockGflops = g(r.stock.ms);
    r.oursPeakFraction = r.oursGflops / cpu.peakGflops;
    const flopCols = r.flops > 0 ? `${f(r.oursGflops, 1).padStart(6)} GFLOP/s ${f(100 * r.oursPeakFraction, 1).padStart(5)}%` : ''.padStart(22);
    ctx.log(
      `${r.name.padEnd(56)} ours ${range({ ...r.ours, median: r.ours.ms, n: 0 }, 2).padStart(22)} ${flopCols} | ${r.stock.label} ${f(r.stock.ms, 2)} ms | ×${f(r.speedup, 2)}`,
    );
  }
  ctx.results.kernels = { reps, batch: 32, rows };
}

async function sectionScale(ctx: Ctx): Promise<void> {
  const side = ctx.wasmAll!;
  const base = ctx.opts.quick ? 512 : 1024;
  const reps = ctx.opts.reps ?? (ctx.opts.quick ? 2 : 3);
  const batch = 128;
  ctx.log(`\n## Scale: one epoch of the default experiment's AdvMoE step (FGSM-RS, batch ${batch}) at 1×, 2×, 4× ${base} images (${reps} alternating reps)`);
  const times: Record<number, number[]> = { 1: [], 2: [], 4: [] };
  // Per step: every step's time in every epoch of that size, and the first vs last quarter of each epoch's steps
  // (later steps slower = something accumulates; all sizes' steps alike = the per-epoch time is linear up to load).
  const stepMs: Record<number, number[]> = { 1: [], 2: [], 4: [] };
  const firstQ: Record<number, number[]> = { 1: [], 2: [], 4: [] };
  const lastQ: Record<number, number[]> = { 1: [], 2: [], 4: [] };
  const hostMs: Record<number, number[]> = { 1: [], 2: [], 4: [] };
  const epochs: unknown[] = [];
  await side.call({ op: 'epoch', model: 'default', samples: batch, batch, attackSteps: 1 }); // warm-up
  for (let r = 0; r < reps; r++) {
    for (const m of r % 2 ? [4, 2, 1] : [1, 2, 4]) {
      const out = await side.call({ op: 'epoch', model: 'default', samples: base * m, batch, attackSteps: 1 });
      times[m].push(out.ms);
      const q = Math.max(1, Math.floor(out.stepMs.length / 4));
      stepMs[m].push(...out.stepMs);
      firstQ[m].push(...out.stepMs.slice(0, q));
      lastQ[m].push(...out.stepMs.slice(-q));
      hostMs[m].push(out.hostMs);
      epochs.push({ rep: r, multiple: m, ...out, loadavg: os.loadavg()[0] });
    }
  }
  const st = { 1: stat(times[1]), 2: stat(times[2]), 4: stat(times[4]) };
  const lin2 = st[2].median / (2 * st[1].median);
  const lin4 = st[4].median / (4 * st[1].median);
  for (const m of [1, 2, 4] as const) ctx.log(`  ${m}× (${base * m} images)  ${range(st[m], 2, 1 / 1000)} s   per image ${f(st[m].median / (base * m), 2)} ms`);
  ctx.log(`  time(2×)/(2·time(1×)) = ${f(lin2, 3)}, time(4×)/(4·time(1×)) = ${f(lin4, 3)}   target within 1 ± 0.10`);
  const stepSt = { 1: stat(stepMs[1]), 2: stat(stepMs[2]), 4: stat(stepMs[4]) };
  for (const m of [1, 2, 4] as const) {
    ctx.log(
      `  ${m}× per step ${range(stepSt[m], 0)} ms; first quarter ${range(stat(firstQ[m]), 0)}, last quarter ${range(stat(lastQ[m]), 0)} ms; host batch prep ${f(stat(hostMs[m]).median, 1)} ms/epoch`,
    );
  }

  const steps = ctx.opts.quick ? 200 : 1000;
  const every = steps / 10;
  const memBatch = 16;
  // tfjs-node keeps tensor data outside the JS heap, so RSS (not numTensors alone) shows a native leak.
  const memory: Record<string, unknown> = {};
  for (const { backend, side: s } of allCoreSides(ctx)) {
    ctx.log(`\n## Memory over ${steps} AdvMoE training steps (default model, FGSM-RS, batch ${memBatch}, ${backend}, every core)`);
    const samples: Array<{ step: number; numTensors: number; rssMB: number; ms: number }> = await s.call({ op: 'memory', model: 'default', batch: memBatch, steps, every, attackSteps: 1 });
    ctx.log(`  step      ${samples.map((x) => String(x.step).padStart(6)).join('')}`);
    ctx.log(`  tensors   ${samples.map((x) => String(x.numTensors).padStart(6)).join('')}`);
    ctx.log(`  RSS MB    ${samples.map((x) => f(x.rssMB, 0).padStart(6)).join('')}`);
    const after = samples.filter((x) => x.step >= every);
    const tensorGrowth = after[after.length - 1].numTensors - after[0].numTensors;
    const rssGrowth = after[after.length - 1].rssMB - after[0].rssMB;
    ctx.log(`  from step ${after[0].step} to ${steps}: tensors ${tensorGrowth >= 0 ? '+' : ''}${tensorGrowth}, RSS ${rssGrowth >= 0 ? '+' : ''}${f(rssGrowth, 1)} MB   target: no growth`);
    memory[backend] = { steps, batch: memBatch, samples, tensorGrowth, rssGrowthMB: rssGrowth };
  }
  ctx.results.scale = { base, batch, reps, epochMs: st, linearity: { twoX: lin2, fourX: lin4 }, stepMs: stepSt, epochs, memory };
}

// ---------------------------------------------------------------------------------------------------------------

export async function runBench(opts: BenchOptions): Promise<Record<string, unknown>> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const started = Date.now();
  const cpu = cpuInfo();
  const results: Record<string, unknown> = { date: new Date().toISOString(), node: process.version, cpu, quick: opts.quick, sections: opts.only };
  const want = (s: Section): boolean => opts.only.includes(s);
  log(`# AdvMoE bench ${String(results.date).slice(0, 10)}${opts.quick ? ' (quick)' : ''}`);
  log(`CPU: ${cpu.model}, ${cpu.cores} logical cores, ${f(cpu.mhz / 1000, 2)} GHz, flags ${cpu.flags.join(' ')}`);
  log(`peak fp32: ${f(cpu.peakGflops, 0)} GFLOP/s = ${cpu.peakHow}; wasm SIMD ceiling ≈ ${f(cpu.wasmCeilingGflops, 0)} GFLOP/s (128-bit, no FMA)`);
  const out = opts.out ?? path.join(ROOT, 'bench', 'results', `${String(results.date).slice(0, 10)}${opts.quick ? '-quick' : ''}.json`);
  const save = (): void => {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  };
  const ctx: Ctx = { opts, log, results, wasmAll: null, nativeAll: null, save };
  const opened: Side[] = [];
  try {
    if (want('startup')) await sectionStartup(ctx);
    const needWasmAll = want('at') || want('sparse') || want('kernels') || want('scale');
    const needNative = want('at') || want('sparse') || want('scale');
    const all = os.cpus().length;
    // Every side at 1 thread and at every core: on a small or shared machine more threads can be slower, and each
    // side is compared at its best (README "Benchmark").
    const counts = all > 1 ? [1, all] : [1];
    const sides: AtSide[] = [];
    const backends: Record<string, unknown> = {};
    if (needWasmAll) {
      for (const n of [...counts].reverse()) {
        if (n !== all && !want('at')) continue;
        const w = await startWorker(`wasm-${n}`, ['--backend', 'wasm', '--threads', String(n)]);
        if ('error' in w) {
          if (n === all) throw new Error(`wasm backend failed: ${w.error}`);
          continue;
        }
        opened.push(w.side);
        if (n === all) ctx.wasmAll = w.side;
        backends[threadLabel('wasm', n)] = { ...w.info, initMs: w.initMs };
        sides.unshift({ side: w.side, label: threadLabel('wasm', n), backend: 'wasm', threads: n });
      }
    }
    if (needNative) {
      for (const n of [...counts].reverse()) {
        if (n !== all && !want('at')) continue;
        const native = await startWorker(`tensorflow-${n}`, ['--backend', 'tensorflow', '--threads', String(n)]);
        if ('error' in native) {
          log(`native (tfjs-node): skipped (${native.error.split(';')[0]})`);
          backends.tensorflow = { skipped: native.error };
          break;
        }
        opened.push(native.side);
        if (n === all) ctx.nativeAll = native.side;
        backends[threadLabel('tensorflow', n)] = { ...native.info, initMs: native.initMs };
        sides.splice(sides.findIndex((s) => s.backend !== 'wasm') >>> 0, 0, { side: native.side, label: threadLabel('tensorflow', n), backend: 'tensorflow', threads: n });
      }
    }
    if (want('at')) {
      if (!opts.quick) {
        const c = await startWorker('cpu', ['--backend', 'cpu']);
        if (!('error' in c)) {
          opened.push(c.side);
          // ~100× slower than wasm: a batch of 1/16 keeps a step within seconds (img/s is per image anyway).
          sides.push({ side: c.side, label: 'cpu (batch/16)', backend: 'cpu', threads: 1, batchScale: 1 / 16 });
          backends.cpu = c.info;
        }
      } else log('cpu backend: skipped in --quick (about 100× slower than wasm)');
    }
    results.backends = backends;
    if (want('at')) {
      const py = findTorchPython();
      if (py) {
        const peers: Record<string, unknown> = {};
        for (const n of counts) {
          const torch = startTorch(py.python, n);
          opened.push(torch);
          const info = await torch.call({ op: 'info' });
          peers[threadLabel('pytorch', n)] = info;
          sides.push({ side: torch, label: threadLabel('pytorch', n), backend: 'pytorch', threads: n });
          log(`peer: PyTorch ${info.torch} (${py.python}), ${info.threads} thread(s), mkldnn ${info.mkldnn}`);
        }
        results.peer = { python: py.python, sides: peers };
      } else {
        results.peer = { skipped: 'python3 with torch not found' };
        log('peer: skipped (install python3-torch)');
      }
      await sectionAt(ctx, sides);
    }
    if (want('sparse')) await sectionSparse(ctx);
    if (want('kernels')) await sectionKernels(ctx, cpu);
    if (want('scale')) await sectionScale(ctx);
  } finally {
    for (const s of opened) s.close();
  }
  results.wallS = (Date.now() - started) / 1000;
  save();
  log(`\nwall time ${f(results.wallS as number, 0)} s; results written to ${path.relative(process.cwd(), out) || out}`);
  return results;
}

export function parseBenchArgs(argv: string[]): BenchOptions {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const only = get('only');
  const sections = only ? only.split(',').map((s) => s.trim()) : [...SECTIONS];
  for (const s of sections) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only: unknown section "${s}" (${SECTIONS.join(', ')})`);
  const reps = get('reps');
  const models = get('models')?.split(',') as ModelKey[] | undefined;
  for (const m of models ?? []) if (!['default', 'cifar-resnet'].includes(m)) throw new Error(`--models: unknown "${m}" (default, cifar-resnet)`);
  const methods = get('methods')?.split(',') as Array<'pgd-at' | 'advmoe'> | undefined;
  for (const m of methods ?? []) if (!['pgd-at', 'advmoe'].includes(m)) throw new Error(`--methods: unknown "${m}" (pgd-at, advmoe)`);
  return { quick: argv.includes('--quick'), only: sections as Section[], reps: reps ? Number(reps) : undefined, out: get('out'), models, methods };
}

if (require.main === module) {
  let opts: BenchOptions;
  try {
    opts = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    process.exit(2);
  }
  runBench(opts).then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
