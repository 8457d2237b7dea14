/**
 * The commands that reach beyond one run (main.ts parses the arguments; commands.ts holds the run commands):
 * sweeps (README "Sweeps"), import and export of the reference code's checkpoints (README "Analyse a model trained
 * with the reference code"), TensorBoard event files (README "TensorBoard").
 */
import * as path from 'node:path';
import { exportRun, type ExportFormat } from '../reference/export';
import { importReferenceCheckpoint } from '../reference/import';
import { runsUnder, writeRunEvents } from '../tensorboard/runEvents';
import { errorMessage, isAdvMoEError } from '../util/errors';
import { type Cli, fail, num } from './commands';
import { sweepCommand } from './sweep';

/** `advmoe sweep <file>` / `sweep status|table <sweep>`. */
async function sweepCmd(cli: Cli): Promise<number> {
  const { o, rest, runsDir, json, reporter, signal, print } = cli;
  return sweepCommand(
    rest,
    {
      runsDir,
      sweepsDir: o['sweeps-dir'],
      executor: o.executor,
      parallel: num(o.parallel, 'parallel', true),
      threads: num(o.threads, 'threads', true),
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
    { reporter, signal, print, onSecondInterrupt: (h) => cli.onSecondInterrupt(h) },
  );
}

/** `advmoe import <checkpoint> --arch … --experts … --ratio …`: a reference checkpoint as a run. */
async function importCmd(cli: Cli): Promise<number> {
  const { o, rest, runsDir, print, startBackend } = cli;
  if (rest.length !== 1) fail('import needs one checkpoint file (.pth, .pt or .safetensors)');
  if (!o.arch || o.experts === undefined || o.ratio === undefined) fail("import needs --arch resnet18, --experts <N> and --ratio <r> (the reference code's --arch, --n_expert and --ratio)");
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

/** `advmoe export <run-id> --format safetensors|pth`: a run's model in the reference code's names. */
async function exportCmd(cli: Cli): Promise<number> {
  const { o, rest, runsDir, print, startBackend } = cli;
  if (rest.length !== 1) fail('export needs a run id');
  if (o.format !== 'safetensors' && o.format !== 'pth') fail('export needs --format safetensors or --format pth');
  await startBackend();
  const out = o.out ?? `${rest[0]}.${o.format}`;
  const r = await exportRun({ runsDir, runId: rest[0], format: o.format as ExportFormat, checkpoint: o.checkpoint, out });
  print(`wrote ${r.file} (${r.keys} state-dict keys, the reference code's names)`, r);
  return 0;
}

/** `advmoe tensorboard [<runs folder|run folder>]`: (re)writes the runs' event files. */
async function tensorboardCmd(cli: Cli): Promise<number> {
  const { rest, runsDir, reporter, print } = cli;
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

export const STUDY_COMMANDS: Record<string, (cli: Cli) => Promise<number>> = {
  sweep: sweepCmd,
  import: importCmd,
  export: exportCmd,
  tensorboard: tensorboardCmd,
};
