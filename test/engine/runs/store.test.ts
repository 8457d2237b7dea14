import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig } from '../../../engine/config/load';
import {
  appendMetrics,
  createRun,
  deleteRun,
  listRuns,
  readMetrics,
  readRunConfig,
  readState,
  runDir,
  truncateMetricsAfter,
  writeState,
} from '../../../engine/runs/store';
import { isAdvMoEError } from '../../../engine/util/errors';

const config = resolveConfig({ name: 'My Run', model: { backbone: 'resnet18', preset: 'tiny' } });
const rec = (step: number) => ({ kind: 'train' as const, step, epoch: step / 10, time: step, metrics: { loss: 1 / (step + 1) } });

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-runs-'));
}

test('createRun lays out the run folder and state round-trips', () => {
  const dir = tmp();
  const s = createRun(dir, { config, totalSteps: 100 }, new Date(2026, 0, 2, 3, 4, 5));
  assert.equal(s.id, '20260102-030405-my-run');
  for (const f of ['config.json', 'state.json', 'metrics.jsonl', 'checkpoints', 'analysis']) {
    assert.ok(fs.existsSync(path.join(dir, s.id, f)), f);
  }
  const again = createRun(dir, { config, totalSteps: 100 }, new Date(2026, 0, 2, 3, 4, 5));
  assert.equal(again.id, '20260102-030405-my-run-2');
  s.step = 42;
  writeState(dir, s);
  assert.equal(readState(dir, s.id).step, 42);
  assert.equal(listRuns(dir).length, 2);
  assert.deepEqual(fs.readdirSync(path.join(dir, s.id)).filter((f) => f.includes('.tmp-')), []);
});

test('a running run whose process is gone reads as interrupted', () => {
  const dir = tmp();
  const s = createRun(dir, { config, totalSteps: 10 });
  s.pid = 2 ** 22 + 12345; // beyond pid_max: no such process
  writeState(dir, s);
  assert.equal(readState(dir, s.id).status, 'interrupted');
});

test('metrics: append, torn last line tolerated and repaired on the next append, truncate on resume', () => {
  const dir = tmp();
  const s = createRun(dir, { config, totalSteps: 10 });
  appendMetrics(dir, s.id, [rec(1), rec(2)]);
  fs.appendFileSync(path.join(dir, s.id, 'metrics.jsonl'), '{"kind":"train","step":3,"epo');
  let read = readMetrics(dir, s.id);
  assert.deepEqual(read.records.map((r) => r.step), [1, 2]);
  assert.equal(read.tornTail, true);
  assert.deepEqual(read.badLines, []);
  appendMetrics(dir, s.id, [rec(3), rec(4)]);
  read = readMetrics(dir, s.id);
  assert.deepEqual(read.records.map((r) => r.step), [1, 2, 3, 4]);
  assert.equal(read.tornTail, false);
  truncateMetricsAfter(dir, s.id, 2);
  assert.deepEqual(readMetrics(dir, s.id).records.map((r) => r.step), [1, 2]);
});

test('bad ids, missing and corrupt runs give clear errors; delete refuses a live run', () => {
  const dir = tmp();
  assert.throws(() => runDir(dir, '../etc'), (e) => isAdvMoEError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => readState(dir, 'nope'), (e) => isAdvMoEError(e, 'RUN_NOT_FOUND') && /nope/.test((e as Error).message));
  const s = createRun(dir, { config, totalSteps: 10 });
  assert.throws(() => deleteRun(dir, s.id), (e) => isAdvMoEError(e, 'RUN_BUSY'));
  fs.writeFileSync(path.join(dir, s.id, 'state.json'), '{oops');
  assert.throws(() => readState(dir, s.id), (e) => isAdvMoEError(e, 'DATA_CORRUPT') && /state\.json/.test((e as Error).message));
  const skipped: string[] = [];
  assert.equal(listRuns(dir, (d) => skipped.push(d)).length, 0);
  assert.equal(skipped.length, 1);
  const t = createRun(dir, { config, totalSteps: 1 });
  t.status = 'finished';
  writeState(dir, t);
  deleteRun(dir, t.id);
  assert.equal(fs.existsSync(path.join(dir, t.id)), false);
});

test('readRunConfig reads a run saved before routerNorm, advmoe.loss and method.routing as the run was trained', () => {
  const dir = tmp();
  const s = createRun(dir, { config, totalSteps: 10 });
  const file = path.join(dir, s.id, 'config.json');
  const old = JSON.parse(fs.readFileSync(file, 'utf8'));
  delete old.model.moe.routerNorm;
  delete old.method.advmoe.loss;
  delete old.method.routing;
  old.method.routerBalance = 0.3;
  fs.writeFileSync(file, JSON.stringify(old));
  const read = readRunConfig(dir, s.id);
  assert.equal(read.model.moe.routerNorm, false);
  assert.equal(read.method.advmoe.loss, 'ce');
  assert.deepEqual(read.method.routing, { classTarget: 0, balance: 0.3, entropy: 0, noise: 0 });
  // A run saved now keeps what it says.
  const fresh = readRunConfig(dir, createRun(dir, { config, totalSteps: 10 }).id);
  assert.deepEqual(fresh, JSON.parse(JSON.stringify(config)));
  assert.equal(fresh.model.moe.routerNorm, true);
});
