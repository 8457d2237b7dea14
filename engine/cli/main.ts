/**
 * `advmoe` — the engine, headless. Same jobs as the extension's engine process, on a terminal.
 *
 *   advmoe train <experiment.advmoe.json> [--resume <run-id> | --run-id <id>]
 *   advmoe sweep <file.advmoe-sweep.json> [--executor local|slurm] | sweep status <sweep> | sweep table <sweep>
 *   advmoe eval <run-id> [--checkpoint <file>] [--samples <n>]
 *   advmoe attack <run-id> --attack <fgsm|pgd|apgd-ce|router|expert> [--eps <x>] [--steps <n>] [--samples <n>]
 *   advmoe inspect <run-id> --ids <i,j,…> [--attack <name>] [--eps <x>] [--freeze-routing] [--out <file>]
 *   advmoe import <checkpoint.pth|.pt|.safetensors> --arch resnet18 --experts <N> --ratio <r> [--dataset cifar10|cifar100]
 *   advmoe export <run-id> --format safetensors|pth [--out <file>] [--checkpoint <file>]
 *   advmoe runs
 *   advmoe tensorboard [<runsDir|run folder>]
 *   advmoe backend [install tensorflow [--wheel <file.whl>] [--force] [--optional] | check tensorflow]
 *   advmoe data download <cifar10|cifar100|fashion-mnist> [--dir <folder>]
 *   advmoe bench [--quick] [--only <sections>] [--reps <n>] [--out <file>]
 * Common options: --runs-dir <dir> (default ./.advmoe/runs), --backend <name>, --threads <n>, --json, --verbose
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { nativeSmokeTest } from '../backend/nativeSmoke';
import { initBackend } from '../backend/select';
import type { BackendName } from '../config/types';
import { downloadDataset, isDownloadable } from '../data';
import { attackJob, evaluateJob, inspectJob } from '../jobs/evaluate';
import { trainJob } from '../jobs/train';
import { exportRun, type ExportFormat } from '../reference/export';
import { importReferenceCheckpoint } from '../reference/import';
import { listRuns } from '../runs/store';
import { runsUnder, writeRunEvents } from '../tensorboard/runEvents';
import { AdvMoEError, errorMessage, isAdvMoEError } from '../util/errors';
import type { LayerBalance } from '../protocol';
import { COLLAPSE_REMEDY_HINT } from '../training/collapse';
import { installTensorflow } from './nativeSetup';
import { sweepCommand } from './sweep';
import { formatDuration, pct, terminalReporter } from './progress';

const USAGE = `usage: advmoe <command> [options]

commands:
  train <experiment.advmoe.json>   train a run (prints SA, RA, router and expert robustness at the end)
        --resume <run-id>          continue an interrupted run from its last checkpoint instead
        --force                    with --resume: even if state.json names a live process (a reused pid)
        --run-id <id>              train the run with this id: made when absent, resumed when interrupted,
                                   left alone when finished (what sweeps run)
  sweep <file.advmoe-sweep.json>   train every run of a sweep (README "Sweeps") that is not finished yet
        --executor local|slurm     local (default): --parallel <n> runs at a time (default from cores and
                                   memory); slurm: one sbatch --array job, --slurm-args "<sbatch options>",
                                   --max-running <n>; --retry-failed also resumes failed runs; --dry-run lists
  sweep status <sweep>             each run's state, and its Slurm task's (squeue/scontrol)
  sweep table <sweep>              one row per run: axis values, status, SA, RA, router/expert robustness, ...
        [--format text|csv|json|latex] [--group-by <axis,...>|seeds] [--sort <column>] [--desc] [--out <file>]
  eval <run-id>                    full robustness analysis of a run's checkpoint (saved under analysis/)
        --checkpoint <file> --samples <n>
  attack <run-id> --attack <fgsm|pgd|apgd-ce|router|expert> [--eps <x>] [--steps <n>] [--samples <n>]
  inspect <run-id> --ids <i,j,...> [--attack <name>] [--eps <x>] [--freeze-routing] [--out <file.json>]
  import <checkpoint.pth|.pt|.safetensors>
        --arch resnet18 --experts <N> --ratio <r> [--dataset cifar10|cifar100] [--name <run name>] [--data-root <dir>]
                                   a checkpoint of the reference code (OPTML-Group/Robust-MoE-CNN) as a run
  export <run-id> --format safetensors|pth [--out <file>] [--checkpoint <file>]
                                   a run's model (default file: ./<run-id>.<format>) in the reference code's names (its train_moe.py loads the .pth)
  runs                             list the runs in the runs folder
  tensorboard [<runs folder|run folder>]
                                   write (or rebuild) the TensorBoard event files of every run there (default:
                                   the runs folder) from metrics.jsonl, config.json and the final analysis
  backend                          show which TensorFlow.js backend runs, and why others were skipped
  backend install tensorflow       set up @tensorflow/tfjs-node (native CPU): cached build, else the stock
        [--wheel <file.whl>]       install, else built against a TensorFlow CPU wheel from pip (or this one)
        [--force] [--optional]     --force: rebuild; --optional: exit 0 (staying on wasm) when it cannot be set up
  backend check tensorflow         smoke test: conv2d and its gradients on tensorflow vs wasm (1e-4)
  data download <cifar10|cifar100|fashion-mnist> [--dir <folder>]
  bench [--quick] [--only startup,at,sparse,kernels,scale] [--reps <n>] [--out <file.json>]
                                   performance benchmark (a checkout after \`npm run compile\`): prints one
                                   table, writes bench/results/<date>.json

options:
  --runs-dir <dir>   runs folder (default: ./.advmoe/runs)
  --sweeps-dir <dir> sweeps folder (default: beside the runs folder, ./.advmoe/sweeps)
  --backend <name>   auto | tensorflow-gpu | tensorflow | wasm | cpu (default: the config's, else auto)
  --threads <n>      wasm threads (default: all cores)
  --json             machine-readable output: one JSON event per line, the result last
  --verbose          debug log lines
  -h, --help`;

const BACKENDS = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
const ATTACKS = ['fgsm', 'pgd', 'apgd-ce', 'router', 'expert'] as const;

function fail(message: string): never {
  throw new AdvMoEError('INVALID_ARGUMENT', message);
}

function num(value: string | undefined, flag: string, integer = false): number | undefined {
  if (value === undefined) return undefined;
  // Number('') is 0: an empty entry (`--ids 0,,1`) must not read as sample 0.
  if (value.trim() === '') fail(`--${flag}: an empty value is not a number`);
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < 0) fail(`--${flag}: "${value}" is not a valid ${integer ? 'non-negative integer' : 'number'}`);
  return n;
}

/**
 * `advmoe bench`: runs the benchmark (bench/main.ts) in its own process, because it starts worker processes from
 * the tsc output of a checkout (it is not part of the bundle). Its flags go to it unchanged.
 */
function runBench(args: string[]): Promise<number> {
  const candidates = [path.join(__dirname, '..', '..', 'bench', 'main.js'), path.join(__dirname, '..', 'out', 'bench', 'main.js')];
  const script = candidates.find((c) => fs.existsSync(c));
  if (!script) {
    process.stderr.write('advmoe: bench runs from a checkout of the repository after `npm run compile` (or use `npm run bench`)\n');
    return Promise.resolve(2);
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit' });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'bench') return runBench(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'runs-dir': { type: 'string' },
        'sweeps-dir': { type: 'string' },
        'run-id': { type: 'string' },
        executor: { type: 'string' },
        parallel: { type: 'string' },
        'slurm-args': { type: 'string' },
        'max-running': { type: 'string' },
        'retry-failed': { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        format: { type: 'string' },
        'group-by': { type: 'string' },
        sort: { type: 'string' },
        desc: { type: 'boolean', default: false },
        backend: { type: 'string' },
        threads: { type: 'string' },
        json: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        resume: { type: 'string' },
        checkpoint: { type: 'string' },
        samples: { type: 'string' },
        attack: { type: 'string' },
        eps: { type: 'string' },
        steps: { type: 'string' },
        ids: { type: 'string' },
        'freeze-routing': { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
        out: { type: 'string' },
        dir: { type: 'string' },
        wheel: { type: 'string' },
        arch: { type: 'string' },
        experts: { type: 'string' },
        ratio: { type: 'string' },
        dataset: { type: 'string' },
        name: { type: 'string' },
        'data-root': { type: 'string' },
        optional: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    process.stderr.write(`advmoe: ${errorMessage(e)}\n\n${USAGE}\n`);
    return 2;
  }
  const { values: o, positionals: pos } = parsed;
  const [command, ...rest] = pos;
  if (o.help || !command) {
    process.stdout.write(USAGE + '\n');
    return o.help ? 0 : 2;
  }
  const json = o.json ?? false;
  const reporter = terminalReporter({ json, verbose: o.verbose });
  const controller = new AbortController();
  let interrupts = 0;
  const secondInterrupt: (() => void)[] = [];
  const onSigint = () => {
    // First Ctrl-C stops cleanly (checkpoint kept, run marked interrupted); a second one exits at once.
    if (++interrupts > 1) {
      for (const h of secondInterrupt) h();
      process.exit(130);
    }
    reporter.log('warn', 'stopping… (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  // SIGTERM (Slurm's scancel and preemption, `kill`) stops as cleanly as Ctrl-C: the run resumes when resubmitted.
  process.on('SIGTERM', onSigint);
  const runsDir = path.resolve(o['runs-dir'] ?? path.join('.advmoe', 'runs'));
  const print = (human: string, data: unknown) => {
    reporter.finish();
    if (json) process.stdout.write(JSON.stringify({ event: 'result', ...(data as object) }) + '\n');
    else process.stdout.write(human + '\n');
  };

  try {
    if (o.backend !== undefined && !BACKENDS.includes(o.backend)) fail(`--backend: "${o.backend}" is not one of ${BACKENDS.join(', ')}`);
    const threads = num(o.threads, 'threads', true);
    const startBackend = async (preferred?: BackendName) => {
      const info = await initBackend((o.backend as BackendName | undefined) ?? preferred ?? 'auto', { threads, calibrate: true, log: (m) => reporter.log('debug', m) });
      reporter.log('info', `backend: ${info.name}${info.name === 'wasm' ? ` (${info.threads} thread(s), SIMD ${info.simd ? 'on' : 'off'})` : info.name === 'tensorflow' ? ` (${info.threads} thread(s))` : ''}`);
      for (const s of info.skipped) reporter.log('debug', `skipped ${s.name}: ${s.reason}`);
      return info;
    };
    const ctx = { reporter, signal: controller.signal };

    switch (command) {
      case 'train': {
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
      case 'sweep': {
        return await sweepCommand(
          rest,
          {
            runsDir,
            sweepsDir: o['sweeps-dir'],
            executor: o.executor,
            parallel: num(o.parallel, 'parallel', true),
            threads,
            backend: o.backend,
            slurmArgs: o['slurm-args'],
            maxRunning: num(o['max-running'], 'max-running', true),
            retryFailed: o['retry-failed'] ?? false,
            dryRun: o['dry-run'] ?? false,
            format: o.format,
            groupBy: o['group-by'],
            sort: o.sort,
            desc: o.desc ?? false,
            out: o.out,
            json,
          },
          { reporter, signal: controller.signal, print, onSecondInterrupt: (h) => secondInterrupt.push(h) },
        );
      }
      case 'eval': {
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
      case 'attack': {
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
      case 'inspect': {
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
      case 'import': {
        if (rest.length !== 1) fail('import needs one checkpoint file (.pth, .pt or .safetensors)');
        if (!o.arch || o.experts === undefined || o.ratio === undefined) fail('import needs --arch resnet18, --experts <N> and --ratio <r> (the reference code\'s --arch, --n_expert and --ratio)');
        await startBackend();
        const r = await importReferenceCheckpoint({
          file: path.resolve(rest[0]),
          runsDir,
          arch: o.arch,
          experts: num(o.experts, 'experts', true)!,
          ratio: num(o.ratio, 'ratio')!,
          dataset: o.dataset,
          name: o.name,
          dataRoot: o['data-root'],
        });
        print(
          [
            `run ${r.runId}: imported ${r.parameters} tensors from ${path.basename(rest[0])} (${r.format}${r.epoch !== undefined ? `, epoch ${r.epoch}` : ''})`,
            `  ignored ${r.ignored.numBatchesTracked} num_batches_tracked and ${r.ignored.routerCopies} router copies`,
            `  folder  ${r.runFolder}`,
            `  next    advmoe eval ${r.runId}`,
          ].join('\n'),
          r,
        );
        return 0;
      }
      case 'export': {
        if (rest.length !== 1) fail('export needs a run id');
        if (o.format !== 'safetensors' && o.format !== 'pth') fail('export needs --format safetensors or --format pth');
        await startBackend();
        const out = o.out ?? `${rest[0]}.${o.format}`;
        const r = await exportRun({ runsDir, runId: rest[0], format: o.format as ExportFormat, checkpoint: o.checkpoint, out });
        print(`wrote ${r.file} (${r.keys} state-dict keys, the reference code's names)`, r);
        return 0;
      }
      case 'runs': {
        const runs = listRuns(runsDir, (dir, reason) => reporter.log('warn', `skipped ${dir}: ${reason}`));
        const lines = runs.length
          ? runs.map((r) => `${r.id.padEnd(40)} ${r.status.padEnd(11)} ${r.method.padEnd(8)} ${r.backbone}${r.moe ? '-moe' : ''}  epoch ${r.epoch}  SA ${pct(r.headline.sa)}  RA ${pct(r.headline.ra)}`)
          : [`no runs in ${runsDir}`];
        print(lines.join('\n'), { runs });
        return 0;
      }
      case 'tensorboard': {
        if (rest.length > 1) fail('usage: advmoe tensorboard [<runs folder|run folder>]');
        const target = path.resolve(rest[0] ?? runsDir);
        const { runsDir: dir, runIds } = runsUnder(target);
        // One damaged run folder does not stop the others: it is named, and the exit status says so.
        const written: Array<{ runId: string } & ReturnType<typeof writeRunEvents>> = [];
        const failed: Array<{ runId: string; error: string }> = [];
        for (const id of runIds) {
          try {
            written.push({ runId: id, ...writeRunEvents(dir, id) });
          } catch (e) {
            if (!isAdvMoEError(e)) throw e;
            failed.push({ runId: id, error: errorMessage(e) });
            reporter.log('warn', `${id}: no events written: ${errorMessage(e)}`);
          }
        }
        for (const w of written) for (const s of w.skipped) reporter.log('warn', `${w.runId}: left out ${s}`);
        const lines = written.length
          ? [...written.map((w) => `${w.runId.padEnd(40)} ${String(w.scalars).padStart(6)} scalars  ${path.relative(dir, w.file)}`), `view them: tensorboard --logdir ${dir}`]
          : [`no runs${failed.length ? ' could be read' : ''} in ${target}`];
        print(lines.join('\n'), { runsDir: dir, runs: written, failed });
        return failed.length ? 1 : 0;
      }
      case 'backend': {
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
      case 'data': {
        const [sub, dataset] = rest;
        if (sub !== 'download' || !dataset) fail('usage: advmoe data download <cifar10|cifar100|fashion-mnist> [--dir <folder>]');
        if (!isDownloadable(dataset)) fail(`"${dataset}" cannot be downloaded; choose cifar10, cifar100 or fashion-mnist (mnist is embedded)`);
        // The dataset lands in <dir>/<its standard folder>; point data.root at <dir>.
        const dir = path.resolve(o.dir ?? 'data');
        const r = await downloadDataset({
          dataset,
          dir,
          signal: controller.signal,
          onProgress: (p) => reporter.progress({ message: `downloading ${p.file}`, done: p.received, total: p.total ?? p.received }),
        });
        print(r.skipped ? `${dataset} already in ${r.folder}` : `${dataset} ready in ${r.folder} (set data.root to ${dir})`, r);
        return 0;
      }
      default:
        fail(`unknown command "${command}"\n\n${USAGE}`);
    }
  } catch (e) {
    reporter.finish();
    if (json) process.stdout.write(JSON.stringify({ event: 'error', code: isAdvMoEError(e) ? e.code : 'INTERNAL', message: errorMessage(e) }) + '\n');
    else process.stderr.write(`advmoe: ${errorMessage(e)}\n`);
    if (!isAdvMoEError(e) && o.verbose && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return isAdvMoEError(e, 'CANCELLED') ? 130 : isAdvMoEError(e, 'INVALID_ARGUMENT') ? 2 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

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
