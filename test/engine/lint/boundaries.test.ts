/**
 * The linter's import boundaries (eslint.config.mjs; docs/architecture.md "Rooms") reject what they are there to
 * reject and let the allowed imports through: each probe is linted as if it were a file of that room.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ESLint } from 'eslint';

const ROOT = path.resolve(__dirname, '../../../..');

async function restricted(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: ROOT });
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return result.messages.filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports').map((m) => `${m.line}`);
}

test('import boundaries: each room is refused what it must not import, and allowed the rest', async () => {
  const engine = [
    "import * as vscode from 'vscode';", // 1: refused
    "import { JobManager } from '../extension/jobs';", // 2: refused
    "import type { HostToTraining } from '../webview/protocol';", // 3: refused (even a type)
    "import { isObj } from '../contract/guards';", // 4: allowed
    'export const a = [vscode, JobManager, isObj] as unknown as HostToTraining;',
  ].join('\n');
  assert.deepEqual(await restricted('engine/probe.ts', engine), ['1', '2', '3']);

  const webview = [
    "import * as fs from 'fs';",
    "import * as p from 'node:path';",
    "import { trainJob } from '../engine/jobs/train';",
    "import { parseRunState } from '../contract/parse';",
    "import type { RunState } from '../engine/runs/types';", // 5: allowed (type only)
    "import { isObj } from '../contract/guards';", // 6: allowed
    "import { postMessage } from './shared/vscode';", // 7: allowed (the webview API wrapper, not the vscode module)
    'export const a = [fs, p, trainJob, parseRunState, isObj, postMessage] as unknown as RunState;',
  ].join('\n');
  assert.deepEqual(await restricted('webview/probe.ts', webview), ['1', '2', '3', '4']);

  const extension = [
    "import { draw } from '../webview/training/main';", // 1: refused (webview runtime)
    "import { parseTrainingToHost } from '../webview/protocol';", // 2-4: the message contracts, allowed
    "import { parseRoutingToHost } from '../webview/routing/protocol';",
    "import { filterSamples } from '../webview/analysisProtocol';",
    "import type { Heatmap } from '../webview/routing/heatmap';", // 5: allowed (type only)
    'export const a = [draw, parseTrainingToHost, parseRoutingToHost, filterSamples] as unknown as Heatmap;',
  ].join('\n');
  assert.deepEqual(await restricted('extension/probe.ts', extension), ['1']);

  const contract = [
    "import * as fs from 'node:fs';",
    "import { trainJob } from '../engine/jobs/train';",
    "import type { RunState } from '../engine/runs/types';",
    "import { x } from '../webview/protocol';",
    'export const a = [fs, trainJob, x] as unknown as RunState;',
  ].join('\n');
  assert.deepEqual(await restricted('contract/probe.ts', contract), ['1', '2', '4']);
});
