import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig } from '../../../engine/config/load';
import {
  appendMetrics,
  checkpointPath,
  createRun,
  deleteRun,
  listRuns,
  readMetrics,
  readRunConfig,
  readState,
  removeStaleTemps,
  runDir,
  truncateMetricsAfter,
  writeAnalysis,
  writeAnalysisImages,
  writeState,
} from '../../../engine/runs/store';
import { processStartTime } from '../../../engine/runs/owner';
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
  // Today's file with every option away from its legacy reading.
  const config = resolveConfig({ name: 'My Run', model: { backbone: 'resnet18', preset: 'tiny', moe: { routerNorm: true } }, method: { routing: { entropy: 0.2 } } });
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
  assert.deepEqual(read.method.routing, { classTarget: 0, balance: 0.3, entropy: 0, noise: 0, balanceBias: 0, balanceBiasOn: 'update-passes', tieExpertsEpochs: 0, freezeRoutersAfterEpochs: 0, straightThrough: 'every-pass' });
  // A run saved now keeps what it says.
  const fresh = readRunConfig(dir, createRun(dir, { config, totalSteps: 10 }).id);
  assert.deepEqual(JSON.parse(JSON.stringify(fresh)), JSON.parse(JSON.stringify(config)));
  assert.equal(fresh.model.moe.routerNorm, true);
  assert.equal(fresh.method.advmoe.loss, 'trades');
});

test('readRunConfig reads an official run saved before layout, padding and inputNormalization as the network it trained', () => {
  const dir = tmp();
  const config = resolveConfig({ model: { backbone: 'resnet18', preset: 'tiny', padding: 'symmetric', inputNormalization: 'none', moe: { router: 'shared' } }, method: { kind: 'official' } });
  assert.equal(config.model.moe.layout, 'gathered');
  const s = createRun(dir, { config, totalSteps: 10 });
  const file = path.join(dir, s.id, 'config.json');
  const old = JSON.parse(fs.readFileSync(file, 'utf8'));
  delete old.model.moe.layout;
  delete old.model.padding;
  delete old.model.inputNormalization;
  fs.writeFileSync(file, JSON.stringify(old));
  const read = readRunConfig(dir, s.id);
  assert.equal(read.model.moe.layout, 'blocks');
  assert.equal(read.model.padding, 'same');
  assert.equal(read.model.inputNormalization, 'dataset');
  const fresh = readRunConfig(dir, createRun(dir, { config, totalSteps: 10 }).id);
  assert.equal(fresh.model.moe.layout, 'gathered');
  assert.equal(fresh.model.padding, 'symmetric');
  assert.equal(fresh.model.inputNormalization, 'none');
});

test('links inside a run folder are refused, and nothing is written through them', () => {
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-outside-'));
  const secret = path.join(outside, 'secret.txt');
  fs.writeFileSync(secret, 'root:x:0:0:SECRET');
  for (const part of ['metrics.jsonl', 'checkpoints', 'analysis', 'state.json', 'config.json']) {
    const dir = tmp();
    const s = createRun(dir, { config, totalSteps: 10 });
    const p = path.join(dir, s.id, part);
    fs.rmSync(p, { recursive: true });
    const target = part === 'checkpoints' || part === 'analysis' ? outside : secret;
    fs.symlinkSync(target, p);
    const linkError = (e: unknown) => isAdvMoEError(e, 'DATA_CORRUPT') && /is a symbolic link/.test((e as Error).message) && !/SECRET|root:x/.test((e as Error).message);
    assert.throws(() => readState(dir, s.id), linkError, part);
    if (part === 'metrics.jsonl') assert.throws(() => appendMetrics(dir, s.id, [rec(1)]), linkError);
    if (part === 'checkpoints') assert.throws(() => checkpointPath(dir, s.id, 'epoch-0001.ckpt'), linkError);
    if (part === 'analysis') {
      assert.throws(() => writeAnalysis(dir, s.id, 'a.json', {}), linkError);
      assert.throws(() => writeAnalysisImages(dir, s.id, 'a.json', new Uint8Array(4)), linkError);
    }
    if (part === 'config.json') assert.throws(() => readRunConfig(dir, s.id), linkError);
  }
  assert.deepEqual(fs.readdirSync(outside), ['secret.txt']);
  assert.equal(fs.readFileSync(secret, 'utf8'), 'root:x:0:0:SECRET');
});

test('a state.json that is not JSON is reported without quoting its content', () => {
  const dir = tmp();
  const s = createRun(dir, { config, totalSteps: 10 });
  fs.writeFileSync(path.join(dir, s.id, 'state.json'), 'root:x:0:0:SECRET\n');
  assert.throws(() => readState(dir, s.id), (e) => isAdvMoEError(e, 'DATA_CORRUPT') && /state\.json is not valid JSON/.test((e as Error).message) && !/SECRET|root/.test((e as Error).message));
});

test('malformed state.json and config.json give errors that name the file and the field', () => {
  const dir = tmp();
  const s = createRun(dir, { config, totalSteps: 10 });
  const stateFile = path.join(dir, s.id, 'state.json');
  const good = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  const stateCases: [Record<string, unknown>, RegExp][] = [
    [{ warnings: 5 }, /warnings must be a list of strings/],
    [{ lastCheckpoint: 7 }, /lastCheckpoint must be a checkpoint file name/],
    [{ lastCheckpoint: '../../x.ckpt' }, /lastCheckpoint must be a checkpoint file name/],
    [{ step: 'many' }, /step must be a non-negative integer/],
    [{ status: 'paused' }, /status must be one of/],
    [{ headline: [] }, /headline must be an object of numbers/],
    [{ pid: -3 }, /pid must be a positive integer/],
  ];
  for (const [patch, message] of stateCases) {
    fs.writeFileSync(stateFile, JSON.stringify({ ...good, ...patch }));
    assert.throws(() => readState(dir, s.id), (e) => isAdvMoEError(e, 'DATA_CORRUPT') && message.test((e as Error).message) && (e as Error).message.includes(stateFile), JSON.stringify(patch));
  }
  fs.writeFileSync(stateFile, JSON.stringify([good]));
  assert.throws(() => readState(dir, s.id), /is not a JSON object/);

  const configFile = path.join(dir, s.id, 'config.json');
  const cfgCases: [unknown, RegExp][] = [
    [[config], /\(top level\).*must be object/],
    [{ ...config, model: undefined }, /model: required field is missing/],
    [{ ...config, data: 'mnist' }, /data: "mnist" must be object/],
  ];
  for (const [raw, message] of cfgCases) {
    fs.writeFileSync(configFile, JSON.stringify(raw));
    assert.throws(() => readRunConfig(dir, s.id), (e) => isAdvMoEError(e, 'DATA_CORRUPT') && message.test((e as Error).message) && (e as Error).message.includes(s.id));
  }
  fs.writeFileSync(configFile, JSON.stringify(config));
  assert.deepEqual(readRunConfig(dir, s.id), config);
});

test('a folder where a run file belongs (or a file where a folder belongs) is a clear error', () => {
  const dir = tmp();
  const s = createRun(dir, { config, totalSteps: 10 });
  fs.rmSync(path.join(dir, s.id, 'metrics.jsonl'));
  fs.mkdirSync(path.join(dir, s.id, 'metrics.jsonl'));
  assert.throws(() => appendMetrics(dir, s.id, [rec(1)]), (e) => isAdvMoEError(e, 'DATA_CORRUPT') && /metrics\.jsonl: a folder where a file belongs/.test((e as Error).message));
  fs.rmSync(path.join(dir, s.id, 'analysis'), { recursive: true });
  fs.writeFileSync(path.join(dir, s.id, 'analysis'), '');
  assert.throws(() => writeAnalysis(dir, s.id, 'a.json', {}), (e) => isAdvMoEError(e, 'DATA_CORRUPT') && /analysis: a file where a folder belongs/.test((e as Error).message));
});

test('a running state whose pid now belongs to another process reads as interrupted', () => {
  const dir = tmp();
  const s = createRun(dir, { config, totalSteps: 10 });
  assert.equal(s.pidStart, processStartTime(process.pid));
  assert.match(s.pidStart ?? '', /^\d+$/, 'Linux records the start time');
  // The parent process is alive, but it is not the process that started the run.
  writeState(dir, { ...s, pid: process.ppid, pidStart: '1' });
  assert.equal(readState(dir, s.id).status, 'interrupted');
  writeState(dir, { ...s, pid: process.ppid, pidStart: processStartTime(process.ppid) });
  assert.equal(readState(dir, s.id).status, 'running');
  writeState(dir, { ...s, pid: process.ppid, pidStart: undefined });
  assert.equal(readState(dir, s.id).status, 'running', 'without a start time the pid alone decides');
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const pid = spawnSync(process.execPath, ['-e', '']).pid!;
  assert.ok(pid > 0);
  return pid;
}

test('leftovers of a kill: stale temporary files and half-created run folders are cleaned up', () => {
  const dir = tmp();
  const s = createRun(dir, { config, totalSteps: 10 });
  assert.deepEqual(fs.readdirSync(dir), [s.id], 'creation leaves no temporary folder');
  const dead = deadPid();
  const stale = [`checkpoints/epoch-0001.ckpt.tmp-${dead}`, `state.json.tmp-${dead}`, `analysis/a.json.tmp-${dead}`];
  const live = `checkpoints/epoch-0002.ckpt.tmp-${process.ppid}`;
  for (const f of [...stale, live]) fs.writeFileSync(path.join(dir, s.id, f), 'partial');
  assert.deepEqual(removeStaleTemps(dir, s.id).sort(), stale.map((f) => path.normalize(f)).sort());
  assert.ok(fs.existsSync(path.join(dir, s.id, live)), 'a live writer keeps its file');
  for (const f of stale) assert.ok(!fs.existsSync(path.join(dir, s.id, f)));

  // A kill inside createRun leaves a hidden folder: not listed, removed by the next creation once its owner is dead.
  const orphan = path.join(dir, `.creating-${dead}-20260101-000000-x`);
  fs.mkdirSync(path.join(orphan, 'checkpoints'), { recursive: true });
  const warnings: string[] = [];
  assert.deepEqual(listRuns(dir, (d, r) => warnings.push(`${d}: ${r}`)).map((r) => r.id), [s.id]);
  assert.deepEqual(warnings, []);
  const next = createRun(dir, { config, totalSteps: 10 });
  assert.deepEqual(fs.readdirSync(dir).sort(), [s.id, next.id].sort());
});
