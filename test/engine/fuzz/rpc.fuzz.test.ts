/**
 * Malformed RPC requests (engine/protocol.ts): every request with random parameters — wrong types, missing
 * and unknown fields, non-objects — is answered promptly (no hang) with a result or a typed error that is not
 * INTERNAL and names what was wrong.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, it } from 'node:test';
import fc from 'fast-check';
import { type MessageConnection, ResponseError } from 'vscode-jsonrpc/node';
import { Requests } from '../../../engine/protocol';
import { startRpcPair, type RpcPair } from '../rpc/harness';
import { fuzzParams } from './settings';

const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-fuzz-rpc-'));
let rpc: RpcPair;
let client: MessageConnection;

before(async () => {
  rpc = await startRpcPair();
  client = rpc.client;
});

after(() => rpc.dispose());

const FIELDS = ['jobId', 'runsDir', 'runId', 'configPath', 'resumeRunId', 'checkpoint', 'samples', 'attack', 'eps', 'steps', 'sampleIds', 'ids', 'split', 'freezeRouting', 'analysis'];
const value = fc.oneof(
  fc.constantFrom<unknown>(5, 0, -1, 1.5, 1e308, null, true, false, '', 'pgd', 'test', 'train', '../x', 'missing', 'x.ckpt', 'a.json', [], [0], [-1], [0.5], ['0'], {}, { a: 1 }),
  fc.constant(runsDir),
  fc.constant(path.join(runsDir, 'missing.advmoe.json')),
  fc.string({ maxLength: 8 }),
  fc.integer(),
);
const paramsArb = fc.oneof(
  { weight: 6, arbitrary: fc.dictionary(fc.constantFrom(...FIELDS, 'extra'), value, { maxKeys: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, 5, 'x', [runsDir], []) },
);
const NAMES = Object.keys(Requests).filter((n) => n !== 'backendInfo') as (keyof typeof Requests)[];

/** Resolves with the answer or rejects with the error; a request still unanswered after `ms` is a hang. */
function answer(p: Promise<unknown>, ms: number): Promise<{ ok: true } | { ok: false; e: unknown }> {
  let timer: NodeJS.Timeout;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms (hang)`)), ms)));
  return Promise.race([p.then(() => ({ ok: true as const }), (e: unknown) => ({ ok: false as const, e })), hang]).finally(() => clearTimeout(timer));
}

it('random parameters get a prompt, typed answer that names the problem', async () => {
  let jobs = 0;
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...NAMES), paramsArb, async (name, raw) => {
      // Unique job ids, so that "already running" never depends on an earlier case.
      const params = raw && typeof raw === 'object' && !Array.isArray(raw) && typeof (raw as Record<string, unknown>).jobId === 'string' ? { ...raw, jobId: `fuzz-${jobs++}` } : raw;
      const r = await answer(client.sendRequest(Requests[name] as never, params as never), 20_000);
      if (r.ok) return;
      assert.ok(r.e instanceof ResponseError, `${name}: not a ResponseError: ${r.e}`);
      const code = (r.e.data as { code?: string } | undefined)?.code;
      assert.notEqual(code, 'INTERNAL', `${name}(${JSON.stringify(params)}): INTERNAL: ${r.e.message}`);
      assert.ok(code, `${name}: error without a code: ${r.e.message}`);
      if (code === 'INVALID_ARGUMENT') assert.match(r.e.message, new RegExp(`${FIELDS.join('|')}|parameters|run id|checkpoint name|analysis file name`), `${name}: ${r.e.message}`);
    }),
    fuzzParams(150),
  );
  // Nothing was created by requests that failed.
  assert.deepEqual(fs.readdirSync(runsDir), []);
});
