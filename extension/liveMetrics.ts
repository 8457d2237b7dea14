/**
 * Live metrics have one source: the run's `metrics.jsonl`, read from where the last read stopped. Two things say
 * when to read — the file watcher (runs trained anywhere: this window, the CLI, another window) and the engine's
 * metrics notification (sent right after the engine appended those records, and faster than a watcher event) —
 * but the records always come from the file, so none arrives twice and nothing is deduplicated afterwards.
 */
import * as vscode from 'vscode';
import type { MetricsRecord } from '../engine/runs/types';
import type { EngineClient } from './engineClient';
import { readMetrics } from './runsDisk';
import type { RunsStore } from './runsStore';

/** Fires a run id whenever that run's metrics file may have grown. */
export function metricsChanged(store: RunsStore, engine: EngineClient): { event: vscode.Event<string>; disposable: vscode.Disposable } {
  const emitter = new vscode.EventEmitter<string>();
  const subs = [
    store.onMetricsFileChanged((e) => emitter.fire(e.state.id)),
    engine.onMetrics((m) => emitter.fire(m.runId)),
  ];
  return { event: emitter.event, disposable: vscode.Disposable.from(emitter, ...subs) };
}

/**
 * Reads runs' metrics files incrementally. Reads of one run are queued one after the other (a read that is asked
 * for while one is going on runs once after it), so each byte range is read once.
 */
export class MetricsTail {
  private readonly offsets = new Map<string, number>();
  private readonly queues = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();

  constructor(
    private readonly store: RunsStore,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** All records of the run (from the start of the file); later `readNew` calls continue from here. */
  readAll(runId: string): Promise<MetricsRecord[]> {
    return this.enqueue(runId, () => this.read(runId, 0));
  }

  /**
   * What was appended since the last read. Calls made while a read of the run is queued are folded into one
   * more read after it, whose records the `deliver` of that later call receives.
   */
  readNew(runId: string, deliver: (records: MetricsRecord[]) => void): void {
    if (this.again.has(runId)) return;
    this.again.add(runId);
    void this.enqueue(runId, async () => {
      this.again.delete(runId);
      const records = await this.read(runId, this.offsets.get(runId) ?? 0);
      if (records.length > 0) deliver(records);
      return records;
    });
  }

  forget(runId: string): void {
    this.offsets.delete(runId);
  }

  private enqueue(runId: string, job: () => Promise<MetricsRecord[]>): Promise<MetricsRecord[]> {
    const before = this.queues.get(runId) ?? Promise.resolve();
    const result = before.then(job);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(runId, settled);
    void settled.then(() => {
      if (this.queues.get(runId) === settled) this.queues.delete(runId);
    });
    return result;
  }

  private async read(runId: string, offset: number): Promise<MetricsRecord[]> {
    const entry = this.store.get(runId);
    if (!entry) return [];
    const chunk = await readMetrics(entry.runsDir, runId, offset);
    if (chunk.bad > 0) this.log.warn(`run ${runId}: skipped ${chunk.bad} unreadable line(s) of metrics.jsonl`);
    this.offsets.set(runId, chunk.nextOffset);
    return chunk.records;
  }
}
