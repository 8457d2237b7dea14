/** The engine's backend choice and its log. */
import * as vscode from 'vscode';
import { Requests } from '../../engine/protocol';
import { backendText } from '../format';
import type { CommandTable, Services } from '../services';
import { BACKENDS, engineSettings } from '../settings';

const DESCRIPTIONS: Record<string, string> = {
  auto: 'best available: tensorflow-gpu → tensorflow → wasm → cpu',
  'tensorflow-gpu': 'CUDA (@tensorflow/tfjs-node-gpu must be installed)',
  tensorflow: 'native CPU (@tensorflow/tfjs-node: `npm run setup:native`, or `advmoe backend install tensorflow`)',
  wasm: 'WebAssembly with SIMD, ships with the extension',
  cpu: 'plain JavaScript; slow, for debugging',
};

export function backendCommands(s: Services): CommandTable {
  return {
    'advmoe.showEngineLog': () => s.log.show(),
    'advmoe.selectBackend': () => selectBackend(s),
  };
}

async function selectBackend(s: Services): Promise<void> {
  const current = engineSettings().backend;
  const inUse = s.engine.running
    ? await s.engine.request(Requests.backendInfo).then(
        (i) => backendText(i),
        () => undefined,
      )
    : undefined;
  const pick = await vscode.window.showQuickPick(
    BACKENDS.map((b) => ({ label: b, description: `${b === current ? '(selected) ' : ''}${DESCRIPTIONS[b]}` })),
    { placeHolder: inUse ? `Engine backend (in use now: ${inUse})` : 'Engine backend' },
  );
  if (!pick || pick.label === current) return;
  await vscode.workspace.getConfiguration('advmoe').update('backend', pick.label, vscode.ConfigurationTarget.Global);
  void vscode.window.showInformationMessage(`AdvMoE: backend set to ${pick.label}; the engine restarts with it on the next job.`);
}
