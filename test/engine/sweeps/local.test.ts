/**
 * The local executor end to end through the CLI: a 2 methods × 2 seeds sweep of tiny runs, two at a time;
 * Ctrl-C (SIGINT to the sweep) stops every run cleanly, the rerun resumes the interrupted ones from their
 * checkpoints and trains the rest, a third run has nothing to do; then the table groups by method with
 * mean ± std over the seeds. Also `advmoe train --run-id` on its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chooseParallelism, RUN_MEMORY_BYTES } from '../../../engine/sweeps/local';
import { readSweepManifest } from '../../../engine/sweeps/folder';
import { sweepRunStatus } from '../../../engine/sweeps/runs';
import { BIN, repeatedPassSkip, tinySweep } from './fixtures';

function start(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.on('close', (code) => resolve({ code, out, err })));
  return { child, done };
}

const lastJson = (out: string) => JSON.parse(out.trim().split('\n').pop()!);

async function until(what: () => boolean, ms: number, label: string): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('runs at a time: bounded by cores, free memory and the runs; at least one', () => {
  assert.equal(chooseParallelism({ cores: 16, freeBytes: 64 * 1024 ** 3, runs: 4 }), 4);
  assert.equal(chooseParallelism({ cores: 2, freeBytes: 64 * 1024 ** 3, runs: 4 }), 2);
  assert.equal(chooseParallelism({ cores: 16, freeBytes: 3 * RUN_MEMORY_BYTES + 1, runs: 40 }), 3);
  assert.equal(chooseParallelism({ cores: 16, freeBytes: 0, runs: 4 }), 1);
});

test('local executor: Ctrl-C stops every run cleanly, a rerun resumes them and finishes only what was missing', { timeout: 600_000, skip: repeatedPassSkip() }, async () => {
  const { dir, file, runsDir } = tinySweep({ trainSamples: 96 });
  const common = ['--runs-dir', runsDir, '--backend', 'wasm', '--json'];
  const sweepDir = path.join(dir, '.advmoe', 'sweeps', 'methods-seeds');

  // 1. Two runs at a time; interrupt once both have taken a step.
  const first = start(['sweep', file, '--parallel', '2', ...common]);
  await until(() => fs.existsSync(path.join(sweepDir, 'sweep.json')), 60_000, 'the sweep folder');
  const ids = readSweepManifest(sweepDir).runs.map((r) => r.id);
  await until(() => ids.slice(0, 2).every((id) => (sweepRunStatus(runsDir, id).state?.step ?? 0) >= 1), 180_000, 'the first two runs to take a step');
  first.child.kill('SIGINT');
  const r1 = await first.done;
  assert.equal(r1.code, 130, r1.err);
  const o1 = lastJson(r1.out);
  assert.deepEqual(o1.interrupted.sort(), ids.slice(0, 2).sort());
  assert.equal(o1.parallel, 2);
  for (const id of ids.slice(0, 2)) {
    const s = sweepRunStatus(runsDir, id);
    assert.equal(s.status, 'interrupted');
    assert.ok(s.state?.lastCheckpoint, `${id} kept a checkpoint`);
  }
  assert.deepEqual(ids.slice(2).map((id) => sweepRunStatus(runsDir, id).status), ['missing', 'missing'], 'nothing new starts after Ctrl-C');

  // 2. Rerun: the interrupted runs resume, the others start; all finish.
  const second = start(['sweep', file, ...common]);
  const r2 = await second.done;
  assert.equal(r2.code, 0, r2.err + r2.out);
  const o2 = lastJson(r2.out);
  assert.deepEqual(o2.finished.sort(), [...ids].sort());
  for (const id of ids.slice(0, 2)) assert.match(fs.readFileSync(path.join(sweepDir, 'logs', `${id}.log`), 'utf8'), new RegExp(`resuming ${id} at step [1-9]`));
  for (const id of ids) assert.equal(sweepRunStatus(runsDir, id).status, 'finished');
  const stateBefore = fs.readFileSync(path.join(runsDir, ids[3], 'state.json'), 'utf8');

  // 3. Nothing left: a third run trains nothing.
  const r3 = await start(['sweep', file, ...common]).done;
  assert.equal(r3.code, 0, r3.err);
  const o3 = lastJson(r3.out);
  assert.deepEqual(o3.finished, []);
  assert.equal(o3.alreadyFinished.length, 4);
  assert.equal(fs.readFileSync(path.join(runsDir, ids[3], 'state.json'), 'utf8'), stateBefore);

  // 4. The table: one row per run; grouped by method, mean ± std over the two seeds.
  const t = await start(['sweep', 'table', 'methods-seeds', '--format', 'json', '--group-by', 'method.kind', '--runs-dir', runsDir]).done;
  assert.equal(t.code, 0, t.err);
  const table = JSON.parse(t.out);
  assert.equal(table.rows.length, 4);
  for (const row of table.rows) {
    assert.equal(row.status, 'finished');
    for (const k of ['sa', 'ra', 'routerRobustness', 'expertRobustness', 'activeFlops', 'wallSeconds']) assert.equal(typeof row[k], 'number', `${row.runId} ${k}`);
    assert.equal(typeof row.collapsed, 'boolean');
  }
  assert.deepEqual(table.groups.map((g: { values: Record<string, string> }) => g.values['method.kind']), ['pgd-at', 'advmoe']);
  for (const g of table.groups) {
    const sas = table.rows.filter((r: { values: Record<string, string> }) => r.values['method.kind'] === g.values['method.kind']).map((r: { sa: number }) => r.sa);
    assert.equal(g.metrics.sa.n, 2);
    assert.ok(Math.abs(g.metrics.sa.mean - (sas[0] + sas[1]) / 2) < 1e-12);
    assert.ok(Math.abs(g.metrics.sa.std - Math.abs(sas[0] - sas[1]) / Math.SQRT2) < 1e-12);
  }
  const bad = await start(['sweep', 'table', 'methods-seeds', '--group-by', 'model.moe.experts', '--runs-dir', runsDir]).done;
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--group-by: "model\.moe\.experts" is not an axis of sweep methods-seeds \(axes: method\.kind, seed\)/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('advmoe train --run-id: made with that id, left alone when finished, refused when the experiment changed', { timeout: 300_000, skip: repeatedPassSkip() }, async () => {
  const { dir, runsDir } = tinySweep();
  const exp = path.join(dir, 'tiny.advmoe.json');
  const a = await start(['train', exp, '--run-id', 'my-run', '--runs-dir', runsDir, '--backend', 'wasm', '--json']).done;
  assert.equal(a.code, 0, a.err);
  assert.equal(lastJson(a.out).runId, 'my-run');
  const state = fs.readFileSync(path.join(runsDir, 'my-run', 'state.json'), 'utf8');
  const again = await start(['train', exp, '--run-id', 'my-run', '--runs-dir', runsDir, '--backend', 'wasm', '--json']).done;
  assert.equal(again.code, 0, again.err);
  assert.match(again.out, /has already finished; nothing to do/);
  assert.equal(fs.readFileSync(path.join(runsDir, 'my-run', 'state.json'), 'utf8'), state);
  const changed = JSON.parse(fs.readFileSync(exp, 'utf8'));
  changed.seed = 5;
  fs.writeFileSync(exp, JSON.stringify(changed));
  const refused = await start(['train', exp, '--run-id', 'my-run', '--runs-dir', runsDir, '--backend', 'wasm']).done;
  assert.equal(refused.code, 2);
  assert.match(refused.err, /run "my-run" exists with another experiment \(seed: 0 vs 5\)/);
  const badId = await start(['train', exp, '--run-id', '../x', '--runs-dir', runsDir]).done;
  assert.equal(badId.code, 2);
  assert.match(badId.err, /"\.\.\/x" is not a valid run id/);
  fs.rmSync(dir, { recursive: true, force: true });
});
