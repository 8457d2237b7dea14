/**
 * The one description of a job's progress that the Runs tree, its hover, the status bar and the notification share
 * (extension/jobProgress.ts): a training job's periodic evaluation does not reset its position to 0%, a second job
 * reads as waiting, a stop request reads as stopping at once.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProgressNotification } from '../../../engine/protocol';
import { applyProgress, jobActivity, liveRunDescription, statusBarText, type JobProgress } from '../../../extension/jobProgress';

const p = (message: string, done: number, total: number, eta?: number): ProgressNotification => ({ jobId: 'j', runId: 'r', message, done, total, eta });

function trainJob(label = 'mnist'): JobProgress {
  return { kind: 'train', label, phase: 'waiting' };
}

describe('job progress', () => {
  test('a train job keeps its step position while its periodic evaluation counts samples', () => {
    const job = trainJob();
    applyProgress(job, p('epoch 2/4 step 23/48', 23, 48), 48);
    assert.equal(liveRunDescription(job), 'running · epoch 2/4 · step 23/48 (47%)');
    applyProgress(job, p('evaluating SA/RA on 256 test samples', 0, 256), 48);
    // The tree said "running 0%" here before: the evaluation's 0/256 replaced the training position.
    assert.equal(liveRunDescription(job), 'running · epoch 2/4 · step 23/48 (47%)');
    assert.equal(jobActivity(job), 'epoch 2/4 · step 23/48 (47%) · evaluating SA/RA on 256 test samples (0/256)');
    const bar = statusBarText([job])!;
    assert.match(bar.text, /epoch 2\/4 · step 23\/48 \(47%\)/);
  });

  test('the first progress event ("starting step") is a step position even before the run total is known', () => {
    const job = trainJob();
    applyProgress(job, p('starting step 1/48', 0, 48));
    assert.deepEqual(job.step, { done: 0, total: 48 });
    assert.equal(job.phase, 'running');
  });

  test('a job that has heard nothing from the engine is waiting; with another job running it says so', () => {
    const a = trainJob('a');
    applyProgress(a, p('epoch 1/2 step 5/10', 5, 10), 10);
    const b: JobProgress = { kind: 'evaluate', label: 'b', phase: 'waiting' };
    assert.equal(jobActivity(b, 1), 'waiting for the engine (1 other job running)');
    assert.equal(jobActivity(b, 0), 'starting the engine…');
    const bar = statusBarText([a, b])!;
    assert.equal(bar.text, '$(sync~spin) AdvMoE 2 jobs: 1 running, 1 waiting');
    assert.match(bar.tooltip, /^a \(train\): epoch 1\/2 · step 5\/10 \(50%\)\nb \(evaluate\): waiting for the engine \(1 other job running\)$/);
    applyProgress(b, p('pgd ε=0.3 on 256 samples', 128, 256, 30), undefined);
    assert.equal(statusBarText([a, b])!.text, '$(sync~spin) AdvMoE 2 jobs: 2 running');
    assert.equal(jobActivity(b), 'pgd ε=0.3 on 256 samples (128/256) · ETA 30s');
  });

  test('stopping is said at once, everywhere', () => {
    const job = trainJob();
    applyProgress(job, p('epoch 1/2 step 5/10', 5, 10), 10);
    job.phase = 'stopping';
    assert.equal(liveRunDescription(job), 'stopping…');
    assert.match(jobActivity(job), /^stopping… \(finishing the current step, then saving a checkpoint\)$/);
    assert.match(statusBarText([job])!.text, /^\$\(debug-stop\) AdvMoE mnist · stopping…/);
  });

  test('SA and RA use the one formatter (one decimal)', () => {
    const job: JobProgress = { kind: 'evaluate', label: 'x', phase: 'running', progress: p('final analysis: pgd', 1, 2), sa: 0.265625, ra: 0.06640625 };
    assert.match(jobActivity(job), /SA 26\.6% RA 6\.6%$/);
  });
});
