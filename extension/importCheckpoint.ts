/**
 * "AdvMoE: Import Checkpoint of the Reference Code…": asks for the file and the reference code's settings (arch,
 * n_expert, ratio, dataset), lets the engine import it (engine/reference/import.ts) and shows the new run. The
 * questions mirror `advmoe import`'s options (README "Analyse a model trained with the reference code").
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { type ImportCheckpointParams, type ImportCheckpointResult, Requests } from '../engine/protocol';
import type { EngineClient } from './engineClient';

/** The import's settings from the user, or undefined when a question was dismissed. */
export async function askImportSettings(runsDir: string, workspaceDir: string): Promise<Omit<ImportCheckpointParams, 'jobId'> | undefined> {
  const files = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Import',
    title: 'Checkpoint of the reference code (OPTML-Group/Robust-MoE-CNN)',
    filters: { 'PyTorch or safetensors checkpoints': ['pth', 'pt', 'tar', 'safetensors'], 'All files': ['*'] },
  });
  const file = files?.[0]?.fsPath;
  if (!file) return undefined;
  const arch = await vscode.window.showQuickPick([{ label: 'resnet18', description: 'ResNet-18 CIFAR MoE (resnet18_cifar_moe)' }], { placeHolder: 'Architecture (--arch)' });
  if (!arch) return undefined;
  const experts = await vscode.window.showInputBox({
    title: 'Experts per MoE layer (the reference code\'s --n_expert)',
    value: '2',
    validateInput: (v) => (/^\d+$/.test(v.trim()) && Number(v) >= 2 && Number(v) <= 64 ? undefined : 'an integer from 2 to 64'),
  });
  if (experts === undefined) return undefined;
  const ratio = await vscode.window.showInputBox({
    title: 'Width ratio (the reference code\'s --ratio; planes = ratio × planes)',
    value: '0.5',
    validateInput: (v) => (Number(v) > 0 && Number(v) <= 1 ? undefined : 'a number in (0, 1]'),
  });
  if (ratio === undefined) return undefined;
  const dataset = await vscode.window.showQuickPick(['cifar10', 'cifar100'], { placeHolder: 'Dataset the model was trained on' });
  if (!dataset) return undefined;
  return {
    runsDir,
    file,
    arch: 'resnet18',
    experts: Number(experts),
    ratio: Number(ratio),
    dataset: dataset as 'cifar10' | 'cifar100',
    // CIFAR is looked for where `advmoe data download` puts it: <workspace>/data.
    dataRoot: path.join(workspaceDir, 'data'),
  };
}

/** Runs the import on the engine with a progress notification. */
export function runImport(engine: EngineClient, params: ImportCheckpointParams): Thenable<ImportCheckpointResult> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `AdvMoE: importing ${path.basename(params.file)}…` },
    () => engine.request(Requests.importCheckpoint, params),
  );
}
