/**
 * Reads a sweep's table from disk: the manifest's runs, each with its state.json headline, the newest final
 * analysis (collapse flag, active FLOPs) and the time of its last metrics record (wall time). A run that is
 * missing or damaged still gets its row, with its status saying so.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ANALYSIS_DIR, METRICS_FILE, listAnalyses, runDir } from '../runs/store';
import { readSweepManifest, type SweepManifest } from './folder';
import { sweepRunStatus } from './runs';
import type { SweepTable, SweepTableRow } from '../../contract/sweepTable';

/** The newest `final-step-<n>.json` analysis of a run (largest n), or null. */
function finalAnalysis(runsDir: string, runId: string): { activeFlops?: number; collapsed?: boolean } | null {
  const finals = listAnalyses(runsDir, runId)
    .map((f) => ({ f, step: Number(/^final-step-(\d+)\.json$/.exec(f)?.[1] ?? NaN) }))
    .filter((x) => Number.isFinite(x.step))
    .sort((a, b) => b.step - a.step);
  if (!finals.length) return null;
  try {
    const report = JSON.parse(fs.readFileSync(path.join(runDir(runsDir, runId), ANALYSIS_DIR, finals[0].f), 'utf8')) as {
      cost?: { activeFlops?: unknown };
      layers?: { collapsed?: unknown }[];
    };
    const activeFlops = typeof report.cost?.activeFlops === 'number' ? report.cost.activeFlops : undefined;
    const collapsed = Array.isArray(report.layers) ? report.layers.some((l) => l?.collapsed === true) : undefined;
    return { activeFlops, collapsed };
  } catch {
    return null; // damaged: the row shows what state.json has
  }
}

/** `time` of the last complete record in metrics.jsonl, reading only the file's tail. */
export function lastMetricsTime(runsDir: string, runId: string): number | undefined {
  const file = path.join(runDir(runsDir, runId), METRICS_FILE);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        const r = JSON.parse(lines[i]) as { time?: unknown };
        if (typeof r.time === 'number' && Number.isFinite(r.time)) return r.time;
      } catch {
        // a torn last line, or the first (cut) line of the tail
      }
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

export function sweepTableRows(manifest: SweepManifest): SweepTableRow[] {
  return manifest.runs.map((r) => {
    const s = sweepRunStatus(manifest.runsDir, r.id);
    const row: SweepTableRow = { runId: r.id, values: r.values, status: s.status };
    if (!s.state) return row;
    const h = s.state.headline;
    Object.assign(row, { sa: h.sa, ra: h.ra, routerRobustness: h.routerRobustness, expertRobustness: h.expertRobustness });
    const a = finalAnalysis(manifest.runsDir, r.id);
    if (a) Object.assign(row, { activeFlops: a.activeFlops, collapsed: a.collapsed });
    row.wallSeconds = lastMetricsTime(manifest.runsDir, r.id);
    for (const k of Object.keys(row) as (keyof SweepTableRow)[]) if (row[k] === undefined) delete row[k];
    return row;
  });
}

export function readSweepTable(dir: string): SweepTable {
  const manifest = readSweepManifest(dir);
  return { sweep: manifest.name, axes: manifest.axes.map((a) => a.key), rows: sweepTableRows(manifest) };
}
