/**
 * The workspace's sweeps (README "Sweeps"): every `<runs folder>/../sweeps/<name>/sweep.json`, kept current by a
 * file watcher, so the Runs view can group runs by sweep and the Sweep Table can be opened on one.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { defaultSweepsDir, listSweeps } from '../engine/sweeps/folder';
import { allRunsDirs } from './settings';

export interface SweepNode {
  kind: 'sweep';
  name: string;
  /** The sweep folder. */
  dir: string;
  /** The runs folder its runs live in (from its manifest). */
  runsDir: string;
  /** Its run ids, in grid order. */
  runIds: string[];
  axes: string[];
}

export function isSweepNode(x: unknown): x is SweepNode {
  return typeof x === 'object' && x !== null && (x as SweepNode).kind === 'sweep' && typeof (x as SweepNode).dir === 'string';
}

export class SweepsStore implements vscode.Disposable {
  private sweeps: SweepNode[] = [];
  private readonly watchers: vscode.Disposable[] = [];
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChange = this.emitter.event;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly log: vscode.LogOutputChannel) {}

  init(): void {
    this.watch();
    this.reload();
  }

  /** The sweeps folder of each workspace runs folder. */
  sweepsDirs(): string[] {
    return allRunsDirs().map((d) => defaultSweepsDir(d.runsDir));
  }

  watch(): void {
    for (const w of this.watchers) w.dispose();
    this.watchers.length = 0;
    for (const { folder, runsDir } of allRunsDirs()) {
      // Watched from the workspace folder when the sweeps folder is inside it (as the runs store does): the sweeps
      // folder does not exist until the first sweep, and a watcher based on a missing folder reports nothing.
      const dir = defaultSweepsDir(runsDir);
      const rel = path.relative(folder.uri.fsPath, dir);
      const inside = rel && !rel.startsWith('..') && !path.isAbsolute(rel);
      const base = inside ? folder : vscode.Uri.file(dir);
      const relGlob = rel.split(path.sep).join('/');
      const prefix = inside ? `${relGlob}/` : '';
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(base, `${prefix}*/sweep.json`));
      const later = () => this.scheduleReload();
      w.onDidCreate(later);
      w.onDidChange(later);
      w.onDidDelete(later);
      // Removing a sweep folder reports the folder, which `*/sweep.json` does not match. Creating one may report only
      // the folder: a file written at once into a folder the watcher has not yet subscribed to goes unreported (in
      // code-server a new sweep never showed without Refresh Runs). So a new sweep folder, or a new sweeps folder,
      // reloads too; by the time the debounced reload reads it, `advmoe sweep` has written its sweep.json.
      const folders = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(base, `${prefix}*`), false, true, false);
      folders.onDidCreate(later);
      folders.onDidDelete(later);
      this.watchers.push(w, folders);
      if (inside) {
        const sweepsFolder = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(base, relGlob), false, true, true);
        sweepsFolder.onDidCreate(later);
        this.watchers.push(sweepsFolder);
      }
    }
  }

  private scheduleReload(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reload();
    }, 200);
  }

  reload(): void {
    const next: SweepNode[] = [];
    for (const dir of this.sweepsDirs()) {
      for (const { dir: sweepDir, manifest } of listSweeps(dir, (d, reason) => this.log.warn(`skipped sweep ${d}: ${reason}`))) {
        next.push({ kind: 'sweep', name: manifest.name, dir: sweepDir, runsDir: path.resolve(manifest.runsDir), runIds: manifest.runs.map((r) => r.id), axes: manifest.axes.map((a) => a.key) });
      }
    }
    this.sweeps = next;
    this.emitter.fire();
  }

  all(): SweepNode[] {
    return this.sweeps;
  }

  /** The sweep a run belongs to, if any. */
  sweepOf(runsDir: string, runId: string): SweepNode | undefined {
    const dir = path.resolve(runsDir);
    return this.sweeps.find((s) => s.runsDir === dir && s.runIds.includes(runId));
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers) w.dispose();
    this.emitter.dispose();
  }
}
