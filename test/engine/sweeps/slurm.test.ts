/** The Slurm executor's parsing and planning, with a recorded fake of Slurm's commands (no cluster needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSweepManifest, writeSweepFolder, defaultSweepsDir } from '../../../engine/sweeps/folder';
import { compactIndices, jobScript, parseArrayIndices, parseScontrol, splitArgs, submitSweep, sweepStatus, type CommandRunner } from '../../../engine/sweeps/slurm';
import { loadSweepFile } from '../../../engine/sweeps/spec';
import { tinySweep } from './fixtures';

test('--slurm-args splits like a shell', () => {
  assert.deepEqual(splitArgs('--partition=gpu  --time=01:00:00 --gres=gpu:1'), ['--partition=gpu', '--time=01:00:00', '--gres=gpu:1']);
  assert.deepEqual(splitArgs(`--comment="two words" -J 'a b' x\\ y ""`), ['--comment=two words', '-J', 'a b', 'x y', '']);
  assert.throws(() => splitArgs('--comment="open'), /unclosed " quote/);
});

test('array specs and scontrol records', () => {
  assert.deepEqual(parseArrayIndices('0-2,5,7-8%1'), [0, 1, 2, 5, 7, 8]);
  assert.deepEqual(parseArrayIndices('1-5:2'), [1, 3, 5]);
  assert.equal(compactIndices([3, 0, 1, 2, 7, 5, 6]), '0-3,5-7');
  const text = [
    'JobId=31 ArrayJobId=30 ArrayTaskId=0 JobName=advmoe-s UserId=root(0) JobState=COMPLETED Reason=None Dependency=(null) ExitCode=0:0',
    'JobId=32 ArrayJobId=30 ArrayTaskId=1 JobName=advmoe-s JobState=RUNNING Reason=None',
    'JobId=30 ArrayJobId=30 ArrayTaskId=2-3%1 JobName=advmoe-s JobState=PENDING Reason=JobArrayTaskLimit',
  ].join('\n');
  assert.deepEqual(parseScontrol(text), [
    { jobId: '30', index: 0, state: 'COMPLETED', reason: undefined },
    { jobId: '30', index: 1, state: 'RUNNING', reason: undefined },
    { jobId: '30', index: 2, state: 'PENDING', reason: 'JobArrayTaskLimit' },
    { jobId: '30', index: 3, state: 'PENDING', reason: 'JobArrayTaskLimit' },
  ]);
});

function fakeSlurm(queue: string, calls: string[][]): CommandRunner {
  return (cmd, args) => {
    calls.push([cmd, ...args]);
    if (cmd === 'squeue') return { code: 0, stdout: queue, stderr: '' };
    if (cmd === 'sbatch') return { code: 0, stdout: '77\n', stderr: '' };
    if (cmd === 'scontrol') return { code: 1, stdout: '', stderr: 'slurm_load_jobs error: Invalid job id specified' };
    return { code: 127, stdout: '', stderr: '', error: 'ENOENT' };
  };
}

test('submission: one array job of the runs neither finished nor queued; recorded in the manifest; the script trains by index', () => {
  const { dir, file, runsDir } = tinySweep();
  const { dir: sd, manifest } = writeSweepFolder(defaultSweepsDir(runsDir), loadSweepFile(file), runsDir);
  // Run 0 finished (a state file says so); run 2's task of job 50 is still pending.
  const id0 = manifest.runs[0].id;
  fs.mkdirSync(path.join(runsDir, id0), { recursive: true });
  fs.writeFileSync(
    path.join(runsDir, id0, 'state.json'),
    JSON.stringify({ id: id0, name: 'x', method: 'pgd-at', backbone: 'resnet18', moe: true, status: 'finished', createdAt: 'a', updatedAt: 'a', epoch: 1, step: 2, totalSteps: 2, headline: {}, warnings: [] }),
  );
  manifest.slurm = { jobs: [{ jobId: '50', submittedAt: 'x', indices: [2] }] };
  const calls: string[][] = [];
  const r = submitSweep({ dir: sd, manifest, slurmArgs: ['--partition=gpu', '--gres=gpu:1'], maxRunning: 2, run: fakeSlurm('50|2|PENDING|Priority\n', calls) });
  assert.equal(r.jobId, '77');
  assert.deepEqual(r.indices, [1, 3]);
  assert.deepEqual(r.alreadyFinished, [id0]);
  assert.deepEqual(r.queued, [{ id: manifest.runs[2].id, jobId: '50', state: 'PENDING' }]);
  const sbatch = calls.find((c) => c[0] === 'sbatch')!;
  assert.deepEqual(sbatch.slice(1, 5), ['--parsable', '--array=1,3%2', '--job-name=advmoe-methods-seeds', `--output=${path.join(sd, 'slurm', '%A_%a.out')}`]);
  assert.deepEqual(sbatch.slice(5), ['--partition=gpu', '--gres=gpu:1', path.join(sd, 'slurm', 'job.sh')]);
  assert.deepEqual(readSweepManifest(sd).slurm?.jobs.map((j) => [j.jobId, j.indices]), [['50', [2]], ['77', [1, 3]]]);
  const script = fs.readFileSync(path.join(sd, 'slurm', 'job.sh'), 'utf8');
  assert.match(script, new RegExp(`^IDS=\\(${manifest.runs.map((x) => x.id).join(' ')}\\)$`, 'm'));
  assert.match(script, /train '.*\/configs\/'"\$ID\.advmoe\.json" --run-id "\$ID" --runs-dir '.*' --threads "\$\{SLURM_CPUS_PER_TASK:-1\}"/);
  // Status: a job Slurm forgot gives no task state, the runs' files still say what they are.
  const rows = sweepStatus(readSweepManifest(sd), fakeSlurm('', []));
  assert.deepEqual(rows.map((x) => x.status), ['finished', 'missing', 'missing', 'missing']);
  // Missing Slurm commands are named.
  assert.throws(() => submitSweep({ dir: sd, manifest, run: () => ({ code: null, stdout: '', stderr: '', error: 'ENOENT' }) }), /cannot run squeue: ENOENT; the Slurm executor needs Slurm's commands/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the job script quotes paths with spaces and quotes', () => {
  const { dir, file, runsDir } = tinySweep();
  const { dir: sd, manifest } = writeSweepFolder(defaultSweepsDir(runsDir), loadSweepFile(file), runsDir);
  const s = jobScript(sd, { ...manifest, runsDir: "/data/it's here" }, { node: '/opt/node js/node', cli: '/x/advmoe.js', threads: 4, backend: 'tensorflow' });
  assert.match(s, /^exec '\/opt\/node js\/node' '\/x\/advmoe\.js' train .* --runs-dir '\/data\/it'\\''s here' --threads 4 --backend 'tensorflow'$/m);
  fs.rmSync(dir, { recursive: true, force: true });
});
