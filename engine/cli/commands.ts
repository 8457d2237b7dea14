/**
 * The commands of `advmoe` (main.ts parses the arguments and handles errors): one function per command, each
 * returning the exit status. Usage: main.ts's USAGE and README "CLI".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nativeSmokeTest } from '../backend/nativeSmoke';
import type { BackendInfo } from '../protocol';
import type { BackendName } from '../config/types';
import { downloadDataset, isDownloadable } from '../data';
import type { JobContext, JobReporter } from '../jobs/context';
import { attackJob, evaluateJob, inspectJob } from '../jobs/evaluate';
import { trainJob } from '../jobs/train';
import { listRuns } from '../runs/store';
import { AdvMoEError, errorMessage } from '../util/errors';
import type { LayerBalance } from '../protocol';
import { COLLAPSE_REMEDY_HINT } from '../training/collapse';
import { installTensorflow } from './nativeSetup';
import { formatDuration, pct } from './progress';

export const ATTACKS = ['fgsm', 'pgd', 'apgd-ce', 'router', 'expert'] as const;

/** The parsed flags (main.ts's parseArgs options). */
export interface CliValues {
  'runs-dir'?: string;
  backend?: string;
  threads?: string;
  json?: boolean;
  verbose?: boolean;
  resume?: string;
  checkpoint?: string;
  samples?: string;
  attack?: string;
  eps?: string;
  steps?: string;
  ids?: string;
  'freeze-routing'?: boolean;
  force?: boolean;
  out?: string;
  dir?: string;
  wheel?: string;
  optional?: boolean;
  help?: boolean;
  'run-id'?: string;
  'sweeps-dir'?: string;
  executor?: string;
  parallel?: string;
  'slurm-args'?: string;
  'max-running'?: string;
  'retry-failed'?: boolean;
  'dry-run'?: boolean;
  format?: string;
  'group-by'?: string;
  sort?: string;
  desc?: boolean;
  arch?: string;
  experts?: string;
  ratio?: string;
  dataset?: string;
  name?: string;
  'data-root'?: string;
}

/** What every command gets from main. */
export interface Cli {
  o: CliValues;
  rest: string[];
  runsDir: string;
  json: boolean;
  reporter: JobReporter;
  ctx: JobContext;
  signal: AbortSignal;
  /** Prints the result: the human text, or with --json one `result` event. */
  print(human: string, data: unknown): void;
  /** Starts the backend (--backend, else `preferred`, else auto) and logs which one runs. */
  startBackend(preferred?: BackendName): Promise<BackendInfo>;
  /** Registers what a second Ctrl-C must do before the process exits (a sweep stops its child runs). */
  onSecondInterrupt(handler: () => void): void;
}

export function fail(message: string): never {
  throw new AdvMoEError('INVALID_ARGUMENT', message);
}

export function num(value: string | undefined, flag: string, integer = false): number | undefined {
  if (value === undefined) return undefined;
  // Number('') is 0: an empty entry (`--ids 0,,1`) must not read as sample 0.
  if (value.trim() === '') fail(`--${flag}: an empty value is not a number`);
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < 0) fail(`--${flag}: "${value}" is not a valid ${integer ? 'non-negative integer' : 'number'}`);
  return n;
}

/** `advmoe train <file>` / `--resume <run-id>`: trains, then prints the headline and the routing balance. */
async function trainCommand(cli: Cli): Promise<number> {
  const { o, rest, runsDir, ctx, print, startBackend } = cli;
  if (!o.resume && rest.length !== 1) fail('train needs one experiment file (or --resume <run-id>)');
  if (o.resume && o['run-id'] !== undefined) fail('--resume and --run-id exclude each other (--run-id resumes its run when interrupted)');
  await startBackend();
  const t0 = Date.now();
  const result = await trainJob(
    { runsDir, configPath: rest[0] ? path.resolve(rest[0]) : undefined, resumeRunId: o.resume, runId: o['run-id'], force: o.force },
    ctx,
  );
  const h = result.headline;
  print(
    [
      `run ${result.runId}: ${result.status} in ${formatDuration((Date.now() - t0) / 1000)}`,
      `  SA                 ${pct(h.sa)}`,
      `  RA                 ${pct(h.ra)}`,
      `  router robustness  ${pct(h.routerRobustness)}  (routing decisions kept under the router attack)`,
      `  expert robustness  ${pct(h.expertRobustness)}  (accuracy under PGD with routing frozen to clean)`,
      ...routingLines(result.routing ?? []),
      `  folder             ${path.join(runsDir, result.runId)}`,
    ].join('\n'),
    { ...result, seconds: (Date.now() - t0) / 1000 },
  );
  return result.status === 'finished' ? 0 : result.status === 'interrupted' ? 130 : 1;
}

/** `advmoe eval <run-id>`: the full robustness analysis of a checkpoint, saved under analysis/. */
async function evalCommand(cli: Cli): Promise<number> {
  const { o, rest, runsDir, ctx, print, startBackend } = cli;
  if (rest.length !== 1) fail('eval needs a run id');
  await startBackend();
  const r = await evaluateJob({ jobId: 'cli', runsDir, runId: rest[0], checkpoint: o.checkpoint, samples: num(o.samples, 'samples', true) }, ctx);
  const rep = r.report;
  const lines = [
    `run ${r.runId}: ${rep.samples} test samples, ${rep.attack.norm} ε=${rep.attack.eps} PGD-${rep.attack.steps}`,
    `  SA ${pct(rep.sa)}   RA ${pct(rep.ra)}`,
    rep.routerRobustness ? `  router robustness: ${pct(rep.routerRobustness.decisionsKept)} decisions kept, accuracy ${pct(rep.routerRobustness.accuracy)}` : '  router robustness: — (dense model)',
    rep.expertRobustness ? `  expert robustness: ${pct(rep.expertRobustness.accuracy)}` : '  expert robustness: — (dense model)',
    ...rep.attacks.map((a) => `  ${a.name.padEnd(8)} accuracy ${pct(a.accuracy)}`),
    `  inference cost: ${(rep.cost.activeFlops / 1e6).toFixed(1)} MFLOPs active vs ${(rep.cost.denseFlops / 1e6).toFixed(1)} dense (−${pct(rep.cost.reduction)})`,
    `  saved to ${r.savedTo}`,
  ];
  print(lines.join('\n'), r);
  return 0;
}

/** `advmoe attack <run-id> --attack <name>`: accuracy under one attack. */
async function attackCommand(cli: Cli): Promise<number> {
  const { o, rest, runsDir, ctx, print, startBackend } = cli;
  if (rest.length !== 1) fail('attack needs a run id');
  if (!o.attack || !(ATTACKS as readonly string[]).includes(o.attack)) fail(`--attack must be one of ${ATTACKS.join(', ')}`);
  await startBackend();
  const r = await attackJob(
    { jobId: 'cli', runsDir, runId: rest[0], checkpoint: o.checkpoint, attack: o.attack as (typeof ATTACKS)[number], eps: num(o.eps, 'eps'), steps: num(o.steps, 'steps', true), samples: num(o.samples, 'samples', true) },
    ctx,
  );
  print(`${r.attack} ε=${r.eps} on ${r.samples} samples: accuracy ${pct(r.accuracy)}`, r);
  return 0;
}

/** `advmoe inspect <run-id> --ids …`: per-sample predictions and routing, clean and adversarial. */
async function inspectCommand(cli: Cli): Promise<number> {
  const { o, rest, runsDir, json, ctx, print, startBackend } = cli;
  if (rest.length !== 1) fail('inspect needs a run id');
  if (!o.ids) fail('inspect needs --ids <i,j,...>');
  const ids = o.ids.split(',').map((s) => num(s.trim(), 'ids', true)!);
  if (o.attack && !(ATTACKS as readonly string[]).includes(o.attack)) fail(`--attack must be one of ${ATTACKS.join(', ')}`);
  await startBackend();
  const r = await inspectJob(
    { jobId: 'cli', runsDir, runId: rest[0], checkpoint: o.checkpoint, sampleIds: ids, attack: o.attack as (typeof ATTACKS)[number] | undefined, eps: num(o.eps, 'eps'), freezeRouting: o['freeze-routing'] },
    ctx,
  );
  if (o.out) fs.writeFileSync(o.out, JSON.stringify(r, null, 1));
  const lines = r.samples.map((s) => {
    const changed = s.routing.filter((l) => l.changed).map((l) => l.layer);
    return `#${s.id} label ${s.label}: clean → ${s.predClean} (${pct(s.confClean)}), adversarial → ${s.predAdv} (${pct(s.confAdv)}); routing changed in ${changed.length}/${s.routing.length} layers${changed.length ? `: ${changed.join(', ')}` : ''}`;
  });
  print(lines.join('\n') + (o.out ? `\nwritten to ${o.out}` : ''), json ? r : {});
  return 0;
}

/** `advmoe runs`: the runs of the runs folder. */
async function runsCommand(cli: Cli): Promise<number> {
  const { runsDir, reporter, print } = cli;
  const runs = listRuns(runsDir, (dir, reason) => reporter.log('warn', `skipped ${dir}: ${reason}`));
  const lines = runs.length
    ? runs.map((r) => `${r.id.padEnd(40)} ${r.status.padEnd(11)} ${r.method.padEnd(8)} ${r.backbone}${r.moe ? '-moe' : ''}  epoch ${r.epoch}  SA ${pct(r.headline.sa)}  RA ${pct(r.headline.ra)}`)
    : [`no runs in ${runsDir}`];
  print(lines.join('\n'), { runs });
  return 0;
}

/** `advmoe backend [install|check tensorflow]`: the backend that runs, or the native backend set up or checked. */
async function backendCommand(cli: Cli): Promise<number> {
  const { o, rest, json, reporter, print, startBackend } = cli;
  if (rest.length > 0) {
    const [sub, which] = rest;
    if (!['install', 'check'].includes(sub) || which !== 'tensorflow' || rest.length !== 2) {
      fail('usage: advmoe backend [install tensorflow [--wheel <file.whl>] [--force] [--optional] | check tensorflow]');
    }
    if (sub === 'check') {
      const report = await nativeSmokeTest();
      const e = report.errors;
      print(
        report.ok
          ? `tensorflow agrees with wasm: forward ${e.forward.toExponential(1)}, d/dx ${e.dInput.toExponential(1)}, d/dw ${e.dFilter.toExponential(1)} (≤ ${report.tolerance})`
          : `tensorflow check failed: ${report.reason}`,
        report,
      );
      return report.ok ? 0 : 1;
    }
    const log = (line: string) => (json ? reporter.log('info', line) : process.stdout.write(`[native] ${line}\n`));
    try {
      const r = await installTensorflow({ wheel: o.wheel, force: o.force, log });
      const how = { 'already-installed': 'already installed', 'from-cache': 'placed from the cache', official: 'official build installed', wheel: 'built against the TensorFlow wheel' }[r.outcome];
      print(`tensorflow backend ready: ${how}${r.tensorflow ? ` (TensorFlow ${r.tensorflow})` : ''} in ${formatDuration(r.seconds)}`, r);
      return 0;
    } catch (e) {
      if (!o.optional) throw e;
      // npm run demo / npm test: a machine that cannot build the native backend still runs everything on wasm.
      print(`native backend not set up: ${errorMessage(e)}\nthe engine stays on wasm`, { ok: false, reason: errorMessage(e) });
      return 0;
    }
  }
  const info = await startBackend();
  const lines = [
    `backend: ${info.name}${info.nativeVersion ? ` (native TensorFlow ${info.nativeVersion})` : ''}`,
    `tfjs: ${info.tfjsVersion}`,
    ...(info.name !== 'cpu' ? [`threads: ${info.threads}${info.threadsWhy ? ` (${info.threadsWhy})` : ''}`] : []),
    ...(info.name === 'wasm' ? [`SIMD: ${info.simd}`] : []),
    ...(info.notes ?? []).map((n) => `note: ${n}`),
    ...info.skipped.map((s) => `skipped ${s.name}: ${s.reason}`),
  ];
  print(lines.join('\n'), info);
  return 0;
}

/** `advmoe data download <dataset>`. */
async function dataCommand(cli: Cli): Promise<number> {
  const { o, rest, reporter, print } = cli;
  const [sub, dataset] = rest;
  if (sub !== 'download' || !dataset) fail('usage: advmoe data download <cifar10|cifar100|fashion-mnist> [--dir <folder>]');
  if (!isDownloadable(dataset)) fail(`"${dataset}" cannot be downloaded; choose cifar10, cifar100 or fashion-mnist (mnist is embedded)`);
  // The dataset lands in <dir>/<its standard folder>; point data.root at <dir>.
  const dir = path.resolve(o.dir ?? 'data');
  const r = await downloadDataset({
    dataset,
    dir,
    signal: cli.signal,
    onProgress: (p) => reporter.progress({ message: `downloading ${p.file}`, done: p.received, total: p.total ?? p.received }),
  });
  print(r.skipped ? `${dataset} already in ${r.folder}` : `${dataset} ready in ${r.folder} (set data.root to ${dir})`, r);
  return 0;
}

export const COMMANDS: Record<string, (cli: Cli) => Promise<number>> = {
  train: trainCommand,
  eval: evalCommand,
  attack: attackCommand,
  inspect: inspectCommand,
  runs: runsCommand,
  backend: backendCommand,
  data: dataCommand,
};

/** The train printout's routing balance: one line per MoE layer, and what to turn on when one collapsed. */
function routingLines(layers: readonly LayerBalance[]): string[] {
  if (layers.length === 0) return [];
  const width = Math.max(...layers.map((l) => l.layer.length));
  const lines = [`  routing balance    (share of inputs given the most common decision; decision entropy, 1 = balanced)`];
  for (const l of layers) {
    lines.push(`    ${l.layer.padEnd(width)}  share ${pct(l.decisionShare)}  entropy ${l.decisionEntropy.toFixed(2)}${l.collapsed ? '  COLLAPSED' : ''}`);
  }
  if (layers.some((l) => l.collapsed)) lines.push(`  collapsed routers: ${COLLAPSE_REMEDY_HINT}`);
  return lines;
}
