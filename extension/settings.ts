/** The extension's settings (`advmoe.*`), read fresh each time. */
import * as path from 'path';
import * as vscode from 'vscode';
import type { BackendName } from '../engine/config/types';

export const BACKENDS: readonly BackendName[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface EngineSettings {
  backend: BackendName;
  /** Node executable for the engine; '' = VS Code's own. */
  nodePath: string;
  /** wasm backend threads; 0 = the engine's default. */
  wasmThreads: number;
}

export function engineSettings(): EngineSettings {
  const c = vscode.workspace.getConfiguration('advmoe');
  const backend = c.get<string>('backend', 'auto');
  return {
    backend: (BACKENDS as readonly string[]).includes(backend) ? (backend as BackendName) : 'auto',
    // Restricted Mode hides workspace values of this setting (capabilities.untrustedWorkspaces).
    nodePath: c.get<string>('nodePath', '').trim(),
    wasmThreads: Math.max(0, Math.floor(c.get<number>('wasmThreads', 0))),
  };
}

/** `<folder>/<advmoe.runsFolder>`: the runs folder of a workspace folder (each run is a sub-folder). */
export function runsDirFor(folder: vscode.WorkspaceFolder): string {
  const setting = vscode.workspace.getConfiguration('advmoe', folder.uri).get<string>('runsFolder', '.advmoe/runs').trim() || '.advmoe/runs';
  return path.resolve(folder.uri.fsPath, setting);
}

export function allRunsDirs(): { folder: vscode.WorkspaceFolder; runsDir: string }[] {
  return (vscode.workspace.workspaceFolders ?? []).map((folder) => ({ folder, runsDir: runsDirFor(folder) }));
}

/** The runs folder for a file (its workspace folder's), or the first workspace folder's. */
export function runsDirForUri(uri: vscode.Uri | undefined): string | undefined {
  const folder = (uri && vscode.workspace.getWorkspaceFolder(uri)) ?? vscode.workspace.workspaceFolders?.[0];
  return folder ? runsDirFor(folder) : undefined;
}
