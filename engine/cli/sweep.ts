/**
 * `advmoe sweep …` (README "Sweeps"):
 *   sweep <file.advmoe-sweep.json> [--executor local|slurm] [--parallel N] [--slurm-args "…"] [--max-running N]
 *         [--retry-failed] [--dry-run]
 *   sweep status <sweep>
 *   sweep table <sweep> [--format text|csv|json|latex] [--group-by a,b | --group-by seeds] [--sort col] [--desc]
 * <sweep> is a sweep folder, a sweep name in the sweeps folder or the sweep file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { JobReporter } from '../jobs/context';
import { AdvMoEError } from '../util/errors';
import { checkExistingRuns, defaultSweepsDir, findSweepDir, readSweepManifest, writeSweepFolder } from '../sweeps/folder';
import { runSweepLocally } from '../sweeps/local';
import { readSweepTable } from '../sweeps/rows';
import { splitArgs, submitSweep, sweepStatus } from '../sweeps/slurm';
import { loadSweepFile, valuesLabel } from '../sweeps/spec';
import { TABLE_FORMATS, allButSeed, renderTable, type TableFormat } from '../../contract/sweepTable';

export interface SweepCliOptions {
  runsDir: string;
  sweepsDir?: string;
  executor?: string;
  parallel?: number;
  threads?: number;
  backend?: string;
  slurmArgs?: string;
  maxRunning?: number;
  retryFailed: boolean;
  dryRun: boolean;
  format?: string;
  groupBy?: string;
  sort?: string;
  desc: boolean;
  out?: string;
  json: boolean;
}

export interface SweepCliContext {
  reporter: JobReporter;
  signal: AbortSignal;
  print(human: string, data: unknown): void;
  onSecondInterrupt(handler: () => void): void;
}

function fail(message: string): never {
  throw new AdvMoEError('INVALID_ARGUMENT', message);
}

export async function sweepCommand(args: string[], o: SweepCliOptions, ctx: SweepCliContext): Promise<number> {
  const sweepsDir = path.resolve(o.sweepsDir ?? defaultSweepsDir(o.runsDir));
  const [first, ...rest] = args;
  if (!first) fail('usage: advmoe sweep <file.advmoe-sweep.json> | sweep status <sweep> | sweep table <sweep>');
  if (first === 'status') {
    if (rest.length !== 1) fail('usage: advmoe sweep status <sweep folder | name | file>');
    return status(findSweepDir(sweepsDir, rest[0]), ctx);
  }
  if (first === 'table') {
    if (rest.length !== 1) fail('usage: advmoe sweep table <sweep folder | name | file> [--format text|csv|json|latex] [--group-by …] [--sort …]');
    return table(findSweepDir(sweepsDir, rest[0]), o, ctx);
  }
  if (rest.length) fail(`sweep takes one sweep file, got ${args.length} arguments`);
  return run(first, sweepsDir, o, ctx);
}

async function run(file: string, sweepsDir: string, o: SweepCliOptions, ctx: SweepCliContext): Promise<number> {
  const executor = o.executor ?? 'local';
  if (executor !== 'local' && executor !== 'slurm') fail(`--executor: "${executor}" is not one of local, slurm`);
  if (executor === 'local' && (o.slurmArgs !== undefined || o.maxRunning !== undefined)) fail('--slurm-args and --max-running are for --executor slurm');
  if (executor === 'slurm' && o.parallel !== undefined) fail('--parallel is for --executor local (Slurm decides; --max-running caps the tasks at a time)');
  if (o.parallel === 0 || o.maxRunning === 0) fail('--parallel and --max-running must be at least 1');
  const plan = loadSweepFile(file);
  checkExistingRuns(plan, path.resolve(o.runsDir));
  const { dir, manifest } = writeSweepFolder(sweepsDir, plan, path.resolve(o.runsDir));
  ctx.reporter.log('info', `sweep ${plan.name}: ${plan.runs.length} run(s) over ${plan.axes.map((a) => `${a.key} (${a.values.length})`).join(' × ')}; folder ${dir}`);
  if (o.dryRun) {
    ctx.print(plan.runs.map((r) => `${r.id}  ${valuesLabel(r.values)}`).join('\n'), { sweep: plan.name, folder: dir, runs: manifest.runs });
    return 0;
  }

  if (executor === 'slurm') {
    const r = submitSweep({ dir, manifest, slurmArgs: o.slurmArgs ? splitArgs(o.slurmArgs) : [], maxRunning: o.maxRunning, threads: o.threads, backend: o.backend, retryFailed: o.retryFailed });
    const lines = [
      r.jobId ? `submitted job ${r.jobId}: ${r.indices.length} run(s) (array ${r.sbatch?.find((a) => a.startsWith('--array='))?.slice(8)})` : 'nothing to submit',
      `  already finished: ${r.alreadyFinished.length}`,
      ...(r.queued.length ? [`  still queued or running: ${r.queued.map((q) => `${q.id} (${q.jobId}, ${q.state})`).join(', ')}`] : []),
      ...r.skipped.map((s) => `  skipped ${s.id}: ${s.why}`),
      `  status: advmoe sweep status ${plan.name}${o.sweepsDir ? ` --sweeps-dir ${sweepsDir}` : ''}`,
    ];
    ctx.print(lines.join('\n'), { sweep: plan.name, folder: dir, ...r });
    return 0;
  }

  const outcome = await runSweepLocally({
    dir,
    manifest,
    parallel: o.parallel,
    threads: o.threads,
    backend: o.backend,
    retryFailed: o.retryFailed,
    signal: ctx.signal,
    log: (level, m) => ctx.reporter.log(level, m),
    progress: (p) => ctx.reporter.progress({ message: p.message, done: p.done, total: p.total }),
    onSecondInterrupt: ctx.onSecondInterrupt,
  });
  const total = manifest.runs.length;
  const finishedNow = outcome.finished.length + outcome.alreadyFinished.length;
  const lines = [
    `sweep ${plan.name}: ${finishedNow}/${total} run(s) finished (${outcome.finished.length} now, ${outcome.alreadyFinished.length} before)`,
    ...(outcome.interrupted.length ? [`  interrupted: ${outcome.interrupted.join(', ')} (run the sweep again to resume them)`] : []),
    ...outcome.failed.map((f) => `  failed ${f.id}: ${f.reason}`),
    ...outcome.skipped.map((s) => `  skipped ${s.id}: ${s.why}`),
    `  table: advmoe sweep table ${plan.name}${o.sweepsDir ? ` --sweeps-dir ${sweepsDir}` : ''}`,
  ];
  ctx.print(lines.join('\n'), { sweep: plan.name, folder: dir, ...outcome });
  if (outcome.interrupted.length || ctx.signal.aborted) return 130;
  return outcome.failed.length ? 1 : 0;
}

function status(dir: string, ctx: SweepCliContext): number {
  const manifest = readSweepManifest(dir);
  const rows = sweepStatus(manifest);
  const counts: Record<string, number> = {};
  for (const r of rows) counts[r.status] = (counts[r.status] ?? 0) + 1;
  const width = Math.max(...rows.map((r) => r.id.length), 3);
  const lines = [
    `sweep ${manifest.name}: ${Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(', ')} (${rows.length} run(s))${manifest.slurm ? `; Slurm jobs ${manifest.slurm.jobs.map((j) => j.jobId).join(', ')}` : ''}`,
    ...rows.map((r) => {
      const progress = r.totalSteps ? ` step ${r.step}/${r.totalSteps}` : '';
      const slurm = r.slurm ? `  slurm ${r.slurm.jobId}_${r.slurm.index} ${r.slurm.state}${r.slurm.reason ? ` (${r.slurm.reason})` : ''}` : '';
      return `${r.id.padEnd(width)}  ${r.status.padEnd(11)}${progress}${slurm}  ${valuesLabel(r.values as never)}${r.error && r.status !== 'finished' ? `\n${' '.repeat(width + 2)}${r.error}` : ''}`;
    }),
  ];
  ctx.print(lines.join('\n'), { sweep: manifest.name, folder: dir, runs: rows });
  return 0;
}

function table(dir: string, o: SweepCliOptions, ctx: SweepCliContext): number {
  const format = (o.format ?? 'text') as TableFormat;
  if (!TABLE_FORMATS.includes(format)) fail(`--format: "${o.format}" is not one of ${TABLE_FORMATS.join(', ')}`);
  const t = readSweepTable(dir);
  let groupBy: string[] | undefined;
  if (o.groupBy !== undefined) {
    groupBy = o.groupBy === 'seeds' ? allButSeed(t.axes) : o.groupBy.split(',').map((s) => s.trim()).filter(Boolean);
    for (const g of groupBy) if (!t.axes.includes(g)) fail(`--group-by: "${g}" is not an axis of sweep ${t.sweep} (axes: ${t.axes.join(', ')})`);
  }
  const columns = [...t.axes, 'runId', 'status', 'collapsed', 'runs', 'sa', 'ra', 'routerRobustness', 'expertRobustness', 'activeFlops', 'wallSeconds'];
  if (o.sort !== undefined && !columns.includes(o.sort)) fail(`--sort: "${o.sort}" is not a column (one of ${columns.join(', ')})`);
  const text = renderTable(t, format, { groupBy, sort: o.sort, descending: o.desc });
  if (o.out) {
    fs.writeFileSync(o.out, text);
    ctx.print(`written to ${o.out}`, { out: o.out });
  } else if (o.json) {
    ctx.print('', format === 'json' ? JSON.parse(text) : { text });
  } else {
    process.stdout.write(text);
  }
  return 0;
}
