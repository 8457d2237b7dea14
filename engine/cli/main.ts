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
import { initBackend } from '../backend/select';
import type { BackendName } from '../config/types';
import { errorMessage, isAdvMoEError } from '../util/errors';
import { COMMANDS, fail, num, type Cli } from './commands';
import { STUDY_COMMANDS } from './studyCommands';
import { terminalReporter } from './progress';

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

/** The flags of every command (parseArgs); commands.ts's CliValues types them. */
const OPTIONS = {
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
} as const;

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'bench') return runBench(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: OPTIONS,
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

    const cli: Cli = { o, rest, runsDir, json, reporter, ctx, signal: controller.signal, print, startBackend, onSecondInterrupt: (h) => secondInterrupt.push(h) };
    const table = { ...COMMANDS, ...STUDY_COMMANDS };
    const run = Object.hasOwn(table, command) ? table[command] : undefined;
    if (!run) fail(`unknown command "${command}"\n\n${USAGE}`);
    return await run(cli);
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
