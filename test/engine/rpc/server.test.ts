/** The JSON-RPC server over an in-memory connection pair: requests, typed errors, cancellation by jobId. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, it } from 'node:test';
import { type MessageConnection, ResponseError } from 'vscode-jsonrpc/node';
import { Notifications, Requests, type RunStateNotification } from '../../../engine/protocol';
import { listCheckpoints, readRunConfig, readState } from '../../../engine/runs/store';
import { testBackendName } from '../helpers';
import { startRpcPair, type RpcPair } from './harness';

const states: RunStateNotification[] = [];
let rpc: RpcPair;
let client: MessageConnection;

before(async () => {
  rpc = await startRpcPair((c) => c.onNotification(Notifications.runState, (n) => void states.push(n)));
  client = rpc.client;
});

after(() => rpc.dispose());

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (e) => e instanceof ResponseError && (e.data as { code: string }).code === code && message.test(e.message));
}

it('backendInfo answers', async () => {
  const info = await client.sendRequest(Requests.backendInfo);
  assert.equal(info.name, testBackendName());
});

it('bad requests get typed errors that name the problem', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-rpc-'));
  await rejectsWith(client.sendRequest(Requests.evaluate, { jobId: 'e0' } as never), 'INVALID_ARGUMENT', /runsDir must be a non-empty string/);
  await rejectsWith(client.sendRequest(Requests.evaluate, { jobId: 'e1', runsDir: dir } as never), 'INVALID_ARGUMENT', /runId must be a non-empty string/);
  await rejectsWith(client.sendRequest(Requests.evaluate, { jobId: 'e2', runsDir: dir, runId: 'missing' }), 'RUN_NOT_FOUND', /no run "missing"/);
  await rejectsWith(client.sendRequest(Requests.train, { jobId: '', runsDir: dir }), 'INVALID_ARGUMENT', /jobId/);
  await rejectsWith(client.sendRequest(Requests.train, { jobId: 't', runsDir: dir, configPath: path.join(dir, 'nope.advmoe.json') }), 'CONFIG_NOT_FOUND', /nope\.advmoe\.json/);
  await rejectsWith(client.sendRequest(Requests.evaluate, { jobId: 'e5', runsDir: dir, runId: '../x' }), 'INVALID_ARGUMENT', /not a valid run id/);
  await rejectsWith(client.sendRequest(Requests.samples, { runsDir: dir, runId: 'missing', ids: [0] }), 'RUN_NOT_FOUND', /no run "missing"/);
  await rejectsWith(client.sendRequest(Requests.samples, { runsDir: dir, runId: 'missing', ids: [-1] }), 'INVALID_ARGUMENT', /ids must be a list of non-negative integers/);
  await rejectsWith(client.sendRequest(Requests.samples, { runsDir: dir } as never), 'INVALID_ARGUMENT', /runId must be a non-empty string/);
});

it('every request refuses parameters of the wrong type, naming the field, before doing anything', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-rpc-'));
  // A number as configPath once made the engine read its own IPC pipe (fd 5) and hang for good.
  await rejectsWith(client.sendRequest(Requests.train, { jobId: 'w1', runsDir: dir, configPath: 5 } as never), 'INVALID_ARGUMENT', /configPath must be a non-empty string/);
  const cases: [keyof typeof Requests, Record<string, unknown>, RegExp][] = [
    ['train', { jobId: 'w2', runsDir: dir, resumeRunId: 7 }, /resumeRunId/],
    ['train', { jobId: 3, runsDir: dir }, /jobId/],
    ['evaluate', { jobId: 'w3', runsDir: dir, runId: 'r', samples: '10' }, /samples must be a positive integer/],
    ['evaluate', { jobId: 'w4', runsDir: dir, runId: 'r', checkpoint: 1 }, /checkpoint must be a non-empty string/],
    ['inspect', { jobId: 'w5', runsDir: dir, runId: 'r', sampleIds: [0], attack: 'nuke' }, /attack must be one of/],
    ['inspect', { jobId: 'w6', runsDir: dir, runId: 'r', sampleIds: [0], eps: 'big' }, /eps must be a finite number/],
    ['inspect', { jobId: 'w7', runsDir: dir, runId: 'r', sampleIds: '0,1' }, /sampleIds must be a list/],
    ['inspect', { jobId: 'w8', runsDir: dir, runId: 'r', sampleIds: [0], freezeRouting: 'yes' }, /freezeRouting must be true or false/],
    ['inspect', { jobId: 'w9', runsDir: dir, runId: 'r', sampleIds: [0], split: 'val' }, /split must be one of/],
    ['samples', { runsDir: dir, runId: 'r', ids: [0], analysis: {} }, /analysis must be a non-empty string/],
    ['cancel', { jobId: ['x'] }, /jobId must be a non-empty string/],
    ['samples', { runsDir: 5, runId: 'r', ids: [0] }, /runsDir must be a non-empty string/],
    ['samples', { runsDir: dir, runId: null, ids: [0] }, /runId/],
    ['importCheckpoint', { jobId: 'i1', runsDir: dir, file: 'a.pth', arch: 'vgg16', experts: 2, ratio: 0.5 }, /arch must be one of "resnet18"/],
    ['importCheckpoint', { jobId: 'i2', runsDir: dir, file: 'a.pth', arch: 'resnet18', experts: 1.5, ratio: 0.5 }, /experts must be a positive integer/],
    ['importCheckpoint', { jobId: 'i3', runsDir: dir, arch: 'resnet18', experts: 2, ratio: 0.5 }, /file must be a non-empty string/],
  ];
  for (const [name, p, message] of cases) {
    await rejectsWith(client.sendRequest(Requests[name] as never, p as never), 'INVALID_ARGUMENT', message);
  }
  for (const bad of [null, 5, 'x', [dir]]) {
    await rejectsWith(client.sendRequest(Requests.samples, bad as never), 'INVALID_ARGUMENT', /parameters must be an object/);
  }
});

it('importCheckpoint imports a checkpoint of the reference code as a finished run', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-rpc-'));
  const file = path.join(__dirname, '..', '..', '..', '..', 'test', 'engine', 'reference', 'fixtures', 'reference-n2-r0.0625.pth');
  const r = await client.sendRequest(Requests.importCheckpoint, { jobId: 'imp-1', runsDir: dir, file, arch: 'resnet18', experts: 2, ratio: 0.0625 });
  assert.equal(readState(dir, r.runId).status, 'finished');
  assert.deepEqual(listCheckpoints(dir, r.runId), [r.checkpoint]);
  assert.equal(readRunConfig(dir, r.runId).model.moe.layout, 'gathered');
  await rejectsWith(
    client.sendRequest(Requests.importCheckpoint, { jobId: 'imp-2', runsDir: dir, file, arch: 'resnet18', experts: 4, ratio: 0.0625 }),
    'CHECKPOINT_MISMATCH',
    /layer1\.0\.conv1\.weight has shape \[8, 64, 3, 3\]/,
  );
});

it('train streams runState and is cancelled by jobId, leaving a resumable run', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-rpc-'));
  const cfg = path.join(dir, 'tiny.advmoe.json');
  fs.writeFileSync(cfg, JSON.stringify({
    model: { backbone: 'vgg16', preset: 'tiny', widthMultiplier: 0.25 },
    method: { kind: 'advmoe', attack: { steps: 1, stepSize: 0.3 } },
    data: { trainSamples: 256, testSamples: 16 },
    schedule: { epochs: 1, batchSize: 16 },
    eval: { samples: 16, everyEpochs: 0 },
  }));
  let cancelled = false;
  client.onNotification(Notifications.progress, (p) => {
    if (p.jobId === 'train-1' && p.done >= 2 && !cancelled) {
      cancelled = true;
      void client.sendRequest(Requests.cancel, { jobId: 'train-1' });
    }
  });
  const result = await client.sendRequest(Requests.train, { jobId: 'train-1', runsDir: dir, configPath: cfg });
  assert.equal(result.status, 'interrupted');
  assert.ok(states.some((s) => s.jobId === 'train-1' && s.state.status === 'running'));
  assert.equal(readState(dir, result.runId).status, 'interrupted');
  assert.equal(listCheckpoints(dir, result.runId).length, 1);
  assert.deepEqual(await client.sendRequest(Requests.cancel, { jobId: 'train-1' }), { cancelled: false });
});
