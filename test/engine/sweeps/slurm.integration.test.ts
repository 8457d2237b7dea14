/**
 * The Slurm executor on a real one-node cluster (slurmCluster.ts): a 4-run sweep (2 methods × 2 seeds of tiny
 * runs) submitted as one array job, one task at a time; once the first run has finished and the second is
 * training, `scancel` stops the job; the resubmission asks for exactly the runs not finished, the second one
 * resumes from its checkpoint, and every run finishes. Skips, saying why, where Slurm cannot start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSweepManifest } from '../../../engine/sweeps/folder';
import { sweepRunStatus } from '../../../engine/sweeps/runs';
import { activeTasks } from '../../../engine/sweeps/slurm';
import { startSlurmCluster } from './slurmCluster';
import { BIN, repeatedPassSkip, tinySweep } from './fixtures';

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

async function until(what: () => boolean, ms: number, label: string): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

test('Slurm: a 4-run sweep as an array job; scancel, then a resubmission trains only what was missing', { timeout: 600_000, skip: repeatedPassSkip() }, async (t) => {
  const cluster = await startSlurmCluster();
  if ('skip' in cluster) {
    t.skip(`Slurm cluster not started: ${cluster.skip}`);
    return;
  }
  try {
    // 100 steps a run: long enough that run 1 is still training while `sweep status` and `scancel` run (with 6
    // steps, as the local executor's test, run 1 could finish first on a fast machine).
    const { dir, file, runsDir } = tinySweep({ trainSamples: 1600 });
    const sweepsDir = path.join(dir, '.advmoe', 'sweeps');
    const common = ['--runs-dir', runsDir, '--backend', 'wasm', '--json'];

    // 1. Submit, one task at a time so that the interruption below finds a known picture.
    const first = await cli(['sweep', file, '--executor', 'slurm', '--max-running', '1', '--slurm-args=--time=10 --cpus-per-task=1', ...common]);
    assert.equal(first.code, 0, first.err + first.out);
    const r1 = JSON.parse(first.out.trim().split('\n').pop()!);
    assert.match(r1.jobId, /^\d+$/);
    assert.deepEqual(r1.indices, [0, 1, 2, 3]);
    const sweepDir = path.join(sweepsDir, 'methods-seeds');
    const manifest = readSweepManifest(sweepDir);
    assert.deepEqual(manifest.slurm?.jobs.map((j) => j.jobId), [r1.jobId]);
    const ids = manifest.runs.map((r) => r.id);

    // 2. Run 0 finished and run 1 training: cancel the job.
    await until(() => sweepRunStatus(runsDir, ids[0]).status === 'finished', 180_000, `run ${ids[0]} to finish`);
    await until(() => (sweepRunStatus(runsDir, ids[1]).state?.step ?? 0) >= 1, 120_000, `run ${ids[1]} to take a step`);
    const during = await cli(['sweep', 'status', 'methods-seeds', ...common]);
    assert.equal(during.code, 0, during.err);
    const statusRows = JSON.parse(during.out.trim().split('\n').pop()!).runs as { id: string; status: string; slurm?: { state: string } }[];
    assert.equal(statusRows.find((r) => r.id === ids[1])?.slurm?.state, 'RUNNING', JSON.stringify(statusRows));
    assert.equal(statusRows.find((r) => r.id === ids[3])?.slurm?.state, 'PENDING', JSON.stringify(statusRows));
    const finishedBefore = fs.readFileSync(path.join(runsDir, ids[0], 'state.json'), 'utf8');
    assert.equal(spawnSync('scancel', [r1.jobId]).status, 0);
    await until(() => activeTasks([r1.jobId]).length === 0, 60_000, 'the cancelled job to leave the queue');
    assert.equal(sweepRunStatus(runsDir, ids[0]).status, 'finished');
    const second = sweepRunStatus(runsDir, ids[1]);
    assert.equal(second.status, 'interrupted', 'SIGTERM from scancel stops the run cleanly');
    assert.ok(second.state?.lastCheckpoint, 'the interrupted run kept a checkpoint');
    const notFinished = ids.filter((id) => sweepRunStatus(runsDir, id).status !== 'finished');
    assert.ok(notFinished.length >= 2 && !notFinished.includes(ids[0]));

    // 3. Resubmit: only the runs not finished, and every run finishes; run 0 is not touched again.
    const again = await cli(['sweep', file, '--executor', 'slurm', ...common]);
    assert.equal(again.code, 0, again.err + again.out);
    const r2 = JSON.parse(again.out.trim().split('\n').pop()!);
    assert.deepEqual(r2.indices, notFinished.map((id) => ids.indexOf(id)));
    assert.deepEqual(r2.alreadyFinished, ids.filter((id) => !notFinished.includes(id)));
    await until(() => ids.every((id) => sweepRunStatus(runsDir, id).status === 'finished'), 300_000, 'every run to finish');
    assert.equal(fs.readFileSync(path.join(runsDir, ids[0], 'state.json'), 'utf8'), finishedBefore, 'the finished run was not trained again');
    const out1 = fs.readFileSync(path.join(sweepDir, 'slurm', `${r2.jobId}_1.out`), 'utf8');
    assert.match(out1, new RegExp(`resuming ${ids[1]} at step [1-9]`), out1);
    assert.equal(readSweepManifest(sweepDir).slurm?.jobs.length, 2);

    // 4. Nothing left to do: a third submission submits nothing.
    const third = await cli(['sweep', file, '--executor', 'slurm', ...common]);
    const r3 = JSON.parse(third.out.trim().split('\n').pop()!);
    assert.equal(r3.jobId, undefined);
    assert.equal(r3.alreadyFinished.length, 4);
    fs.rmSync(dir, { recursive: true, force: true });
  } finally {
    await cluster.stop();
  }
});
