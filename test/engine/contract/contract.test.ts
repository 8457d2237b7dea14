/**
 * The run-folder contract (contract/): one set of guards, one parse of state.json and metrics.jsonl, one checkpoint
 * order, and the engine's run store and the extension's disk reader agree on all three.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isNum, isNumArray } from '../../../contract/guards';
import { parseRunState } from '../../../contract/parse';
import { isRunState, sortCheckpoints } from '../../../contract/runFolder';
import { listCheckpoints, readMetrics as engineReadMetrics, readState } from '../../../engine/runs/store';
import { listCheckpointFiles, readMetrics as extensionReadMetrics, readRunState } from '../../../extension/runsDisk';

const GOOD = { id: 'r', name: 'n', method: 'advmoe', backbone: 'vgg16', moe: true, status: 'finished', createdAt: 'a', updatedAt: 'a', epoch: 2, step: 20, totalSteps: 40 };

function runFolder(state: Record<string, unknown>, epochs = 4): string {
  const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-contract-'));
  fs.mkdirSync(path.join(runsDir, String(state.id), 'checkpoints'), { recursive: true });
  fs.writeFileSync(path.join(runsDir, String(state.id), 'state.json'), JSON.stringify(state));
  fs.writeFileSync(path.join(runsDir, String(state.id), 'config.json'), JSON.stringify({ model: { backbone: 'vgg16', preset: 'tiny' }, schedule: { epochs } }));
  return runsDir;
}

test('guards: numbers are finite everywhere (±∞ and NaN are not numbers)', () => {
  for (const bad of [Infinity, -Infinity, NaN, '1', null]) assert.equal(isNum(bad), false, String(bad));
  assert.equal(isNum(-0.5), true);
  assert.equal(isNumArray([1, Infinity]), false);
});

test('state.json: defaults filled, each broken field named, and the engine and the extension accept the same files', async () => {
  const parsed = parseRunState({ ...GOOD }, 'r');
  assert.ok('value' in parsed);
  assert.deepEqual(parsed.value.warnings, []);
  assert.deepEqual(parsed.value.headline, {});
  const broken: [Record<string, unknown>, RegExp][] = [
    [{ step: 1.5 }, /step must be a non-negative integer/],
    [{ epoch: -1 }, /epoch must be a number ≥ 0/],
    [{ status: 'paused' }, /status must be one of running, finished/],
    [{ totalSteps: undefined }, /totalSteps must be a non-negative integer \(it is missing\)/],
    [{ headline: { sa: 'high' } }, /headline must be an object of numbers/],
    [{ lastCheckpoint: '../x.ckpt' }, /lastCheckpoint must be a checkpoint file name/],
  ];
  for (const [patch, message] of broken) {
    const state = { ...GOOD, ...patch };
    const p = parseRunState(JSON.parse(JSON.stringify(state)), 'r');
    assert.ok('problem' in p && message.test(p.problem), `${JSON.stringify(patch)}: ${JSON.stringify(p)}`);
    const runsDir = runFolder(JSON.parse(JSON.stringify(state)));
    assert.throws(() => readState(runsDir, 'r'), message, 'engine');
    assert.equal(await readRunState(runsDir, 'r'), undefined, `extension lists ${JSON.stringify(patch)}`);
    assert.equal(isRunState(JSON.parse(JSON.stringify(state))), false, `message guard accepts ${JSON.stringify(patch)}`);
  }
  const runsDir = runFolder(GOOD);
  assert.deepEqual(await readRunState(runsDir, 'r'), readState(runsDir, 'r'));
  assert.equal(isRunState(readState(runsDir, 'r')), true);
});

test('metrics.jsonl: the engine and the extension keep the same records', async () => {
  const runsDir = runFolder(GOOD);
  const lines = [
    { kind: 'train', step: 1, epoch: 0.1, time: 1, metrics: { loss: 2 } },
    { kind: 'train', step: 2, epoch: 0.2, metrics: { loss: 1 } }, // no time
    { kind: 'eval', step: 3, epoch: 0.3, time: 3, metrics: { sa: 'high' } },
    { kind: 'eval', step: 4, epoch: 0.4, time: 4, metrics: { sa: 0.5 } },
  ];
  fs.writeFileSync(path.join(runsDir, 'r', 'metrics.jsonl'), lines.map((l) => JSON.stringify(l) + '\n').join(''));
  const engine = engineReadMetrics(runsDir, 'r');
  const extension = await extensionReadMetrics(runsDir, 'r');
  assert.deepEqual(engine.records.map((r) => r.step), [1, 4]);
  assert.deepEqual(extension.records, engine.records);
  assert.deepEqual(engine.badLines, [2, 3]);
  assert.equal(extension.bad, 2);
});

test('checkpoints: one order, by the training step each was taken at, in the engine and the extension', async () => {
  // 40 steps over 4 epochs: 10 a step. A stop at step 15 wrote step-0000015; the run resumed and went on.
  const runsDir = runFolder(GOOD, 4);
  const dir = path.join(runsDir, 'r', 'checkpoints');
  const written = ['epoch-0001.ckpt', 'step-0000015.ckpt', 'epoch-0002.ckpt', 'step-0000020.ckpt', 'epoch-0003.ckpt'];
  // Written in that order, but file times say the opposite (a copied folder): the order must not depend on them.
  written.forEach((n, i) => {
    fs.writeFileSync(path.join(dir, n), 'x');
    const t = new Date(Date.UTC(2026, 0, 1) - i * 60_000);
    fs.utimesSync(path.join(dir, n), t, t);
  });
  const expected = ['epoch-0001.ckpt', 'step-0000015.ckpt', 'epoch-0002.ckpt', 'step-0000020.ckpt', 'epoch-0003.ckpt'];
  assert.deepEqual(listCheckpoints(runsDir, 'r'), expected);
  assert.deepEqual(await listCheckpointFiles(runsDir, 'r'), expected);
  // Without a usable config the order is by name, the same on both sides.
  fs.writeFileSync(path.join(runsDir, 'r', 'config.json'), '{');
  assert.deepEqual(listCheckpoints(runsDir, 'r'), await listCheckpointFiles(runsDir, 'r'));
  // At the same step the epoch checkpoint comes first; other names last, by name.
  assert.deepEqual(sortCheckpoints(['b.ckpt', 'step-1.ckpt', 'a.ckpt', 'epoch-1.ckpt'], 1), ['epoch-1.ckpt', 'step-1.ckpt', 'a.ckpt', 'b.ckpt']);
  assert.deepEqual(sortCheckpoints(['epoch-1.ckpt', 'step-3.ckpt'], 5), ['step-3.ckpt', 'epoch-1.ckpt']);
});
