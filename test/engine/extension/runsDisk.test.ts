/** The extension's disk reader (extension/runsDisk.ts) has no `vscode` import, so it is tested here in Node. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { listRuns, readRunState, restoredRunsDir, runFolderToDelete } from '../../../extension/runsDisk';
import { parseInspectorViewState } from '../../../webview/inspector/protocol';
import { parseRoutingViewState } from '../../../webview/routing/protocol';

function workspace(): { ws: string; runsDir: string } {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-ws-'));
  const runsDir = path.join(ws, '.advmoe', 'runs');
  fs.mkdirSync(runsDir, { recursive: true });
  fs.mkdirSync(path.join(ws, 'src'));
  fs.writeFileSync(path.join(ws, 'src', 'keep.ts'), 'x');
  return { ws, runsDir };
}

function writeRun(runsDir: string, folder: string, id: string): void {
  fs.mkdirSync(path.join(runsDir, folder), { recursive: true });
  const state = { id, name: 'n', method: 'advmoe', backbone: 'vgg16', moe: true, status: 'finished', createdAt: 'a', updatedAt: 'a', epoch: 1, step: 1, totalSteps: 1, lastCheckpoint: 'x.ckpt', headline: {}, warnings: [] };
  fs.writeFileSync(path.join(runsDir, folder, 'state.json'), JSON.stringify(state));
}

test('a state.json whose id is not its folder name is listed under the folder name, as damaged', async () => {
  const { runsDir } = workspace();
  writeRun(runsDir, 'innocent-run', '../../src');
  const [s] = await listRuns(runsDir);
  assert.equal(s.id, 'innocent-run');
  assert.equal(s.status, 'failed');
  assert.equal(s.lastCheckpoint, undefined);
  assert.match(s.error ?? '', /damaged run: its state.json names run "..\/..\/src", not its folder "innocent-run"/);
  assert.equal((await readRunState(runsDir, 'innocent-run'))?.id, 'innocent-run');
  // A run the engine is still creating (hidden name, renamed when complete) is not listed, damaged or otherwise.
  writeRun(runsDir, '.creating-123-20260101-x', '20260101-x');
  assert.deepEqual((await listRuns(runsDir)).map((r) => r.id), ['innocent-run']);
});

test('the folder to delete is a direct child of the runs folder, never outside it', async () => {
  const { ws, runsDir } = workspace();
  writeRun(runsDir, 'good', 'good');
  assert.equal(await runFolderToDelete(runsDir, 'good'), path.join(runsDir, 'good'));
  for (const id of ['../../src', '..', '.', '', 'a/b', '/etc']) {
    await assert.rejects(runFolderToDelete(runsDir, id), /refusing to delete/, id);
  }
  fs.symlinkSync(path.join(ws, 'src'), path.join(runsDir, 'linked'));
  await assert.rejects(runFolderToDelete(runsDir, 'linked'), /\(a link\); refusing to delete/);
  assert.ok(fs.existsSync(path.join(ws, 'src', 'keep.ts')));
});

test('Delete Run is hidden in Restricted Mode and checks trust and the path itself', () => {
  const root = path.join(__dirname, '..', '..', '..', '..');
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const menus = pkg.contributes.menus['view/item/context'].filter((m: { command: string }) => m.command === 'advmoe.deleteRun');
  assert.ok(menus.length > 0 && menus.every((m: { when: string }) => /\bisWorkspaceTrusted\b/.test(m.when)));
  const src = fs.readFileSync(path.join(root, 'extension', 'commands', 'runCommands.ts'), 'utf8');
  const body = src.slice(src.indexOf('async function deleteRun('));
  assert.ok(body.length > 0, 'deleteRun is in runCommands.ts');
  assert.match(body, /requireTrust\(\)/);
  assert.match(body, /runFolderToDelete\(/);
});

test('restored view state goes through the same checks as live input', () => {
  const ws = ['/ws/a/.advmoe/runs', '/ws/b/runs'];
  assert.equal(restoredRunsDir('/elsewhere', '/ws/a/.advmoe/runs', ws), '/ws/a/.advmoe/runs', 'the known folder wins');
  assert.equal(restoredRunsDir('/ws/b/runs/', undefined, ws), '/ws/b/runs');
  assert.equal(restoredRunsDir('/etc', undefined, ws), undefined);
  assert.equal(restoredRunsDir('/ws/b/runs/../../..', undefined, ws), undefined);
  for (const runId of ['../x', '..', '.', 'a/b', '']) {
    assert.equal(parseRoutingViewState({ runsDir: '/ws/b/runs', runId }), undefined, runId);
    assert.equal(parseInspectorViewState({ target: { runsDir: '/ws/b/runs', runId } }), undefined, runId);
  }
  assert.equal(parseRoutingViewState({ runsDir: '/ws/b/runs', runId: 'r-1' })?.runId, 'r-1');
  assert.equal(parseInspectorViewState({ target: { runsDir: '/ws/b/runs', runId: 'r-1' } })?.target.runId, 'r-1');
  // The panels use these checks when VS Code restores them.
  const root = path.join(__dirname, '..', '..', '..', '..');
  for (const panel of ['routingPanel.ts', 'inspectorPanel.ts']) {
    const src = fs.readFileSync(path.join(root, 'extension', panel), 'utf8');
    const start = src.indexOf('  restore(state: unknown)');
    assert.ok(start >= 0, `${panel} has restore()`);
    const revive = src.slice(start, src.indexOf('\n  }\n', start));
    assert.match(revive, /restoredRunsDir\(/, panel);
  }
});
