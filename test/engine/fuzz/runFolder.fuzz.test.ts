/**
 * Damaged run folders (README "Runs on disk"): files replaced by garbage, truncated, of the wrong JSON shape,
 * parts missing, swapped for links to outside or for the wrong kind of entry. Every reader and writer of the
 * run store either works or fails with a user-facing error naming the run or the file, and nothing outside
 * the run folder changes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { resolveConfig } from '../../../engine/config/load';
import { readCheckpoint } from '../../../engine/models/checkpoint';
import { appendMetrics, checkpointPath, createRun, listAnalyses, listCheckpoints, listRuns, readMetrics, readRunConfig, readState, writeAnalysis, writeState } from '../../../engine/runs/store';
import { assertUserError, fuzzParams, snapshot } from './settings';

const config = resolveConfig({ name: 'fuzz', model: { backbone: 'vgg16', preset: 'tiny' } });
const PARTS = ['state.json', 'config.json', 'metrics.jsonl', 'checkpoints', 'analysis', 'checkpoints/epoch-0001.ckpt'] as const;
type Part = (typeof PARTS)[number];

const jsonValue = fc.oneof(
  fc.constantFrom<unknown>(null, 5, -1, 1e308, 'x', [], {}, [1, 2], true, '../../etc', 'epoch-0001.ckpt', 'running', 'finished'),
  fc.string({ maxLength: 10 }),
  fc.integer(),
);
type Damage =
  | { kind: 'bytes'; part: Part; bytes: Uint8Array }
  | { kind: 'truncate'; part: Part; keep: number }
  | { kind: 'field'; part: 'state.json' | 'config.json'; field: string; value: unknown }
  | { kind: 'remove'; part: Part }
  | { kind: 'link'; part: Part; toDir: boolean }
  | { kind: 'swap'; part: Part };
const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ kind: fc.constant('bytes' as const), part: fc.constantFrom(...PARTS), bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ kind: fc.constant('truncate' as const), part: fc.constantFrom(...PARTS), keep: fc.nat(400) }),
  fc.record({
    kind: fc.constant('field' as const),
    part: fc.constantFrom('state.json' as const, 'config.json' as const),
    field: fc.constantFrom('id', 'status', 'step', 'totalSteps', 'epoch', 'pid', 'lastCheckpoint', 'warnings', 'headline', 'createdAt', 'model', 'data', 'method', 'schedule', 'eval'),
    value: jsonValue,
  }),
  fc.record({ kind: fc.constant('remove' as const), part: fc.constantFrom(...PARTS) }),
  fc.record({ kind: fc.constant('link' as const), part: fc.constantFrom(...PARTS), toDir: fc.boolean() }),
  fc.record({ kind: fc.constant('swap' as const), part: fc.constantFrom(...PARTS) }),
);

function damageRun(dir: string, outside: string, d: Damage): void {
  const p = path.join(dir, d.part);
  const isDir = d.part === 'checkpoints' || d.part === 'analysis';
  // Damage is done inside the run only: never write through a link an earlier damage planted.
  const linked = (() => {
    try {
      return fs.lstatSync(p).isSymbolicLink() || fs.lstatSync(path.dirname(p)).isSymbolicLink();
    } catch {
      return false;
    }
  })();
  if (linked && d.kind !== 'remove' && d.kind !== 'link' && d.kind !== 'swap') return;
  switch (d.kind) {
    case 'bytes':
      if (isDir) return;
      fs.writeFileSync(p, d.bytes);
      return;
    case 'truncate':
      if (isDir || !fs.existsSync(p) || !fs.lstatSync(p).isFile()) return;
      fs.writeFileSync(p, fs.readFileSync(p).subarray(0, d.keep));
      return;
    case 'field': {
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(fs.readFileSync(p, 'utf8'));
      } catch {
        return;
      }
      if (obj === null || typeof obj !== 'object') return;
      obj[d.field] = d.value;
      fs.writeFileSync(p, JSON.stringify(obj));
      return;
    }
    case 'remove':
      if (fs.existsSync(path.dirname(p)) && !fs.lstatSync(path.dirname(p)).isDirectory()) return;
      fs.rmSync(p, { recursive: true, force: true });
      return;
    case 'link':
      fs.rmSync(p, { recursive: true, force: true });
      if (fs.existsSync(path.dirname(p)) && !fs.lstatSync(path.dirname(p)).isDirectory()) return;
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.symlinkSync(d.toDir ? outside : path.join(outside, 'secret.txt'), p);
      return;
    case 'swap':
      if (fs.existsSync(path.dirname(p)) && !fs.lstatSync(path.dirname(p)).isDirectory()) return;
      fs.rmSync(p, { recursive: true, force: true });
      if (isDir) fs.writeFileSync(p, 'not a folder');
      else fs.mkdirSync(p, { recursive: true });
      return;
  }
}

/** Runs one store operation; a thrown error must be a user-facing one naming the run or a file. */
async function op(name: string, runId: string, fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assertUserError(e, new RegExp(`${runId}|\\.json|\\.jsonl|\\.ckpt|checkpoints|analysis`), name);
  }
}

test('damaged run folders give user-facing errors and nothing outside the run changes', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(damage, { minLength: 1, maxLength: 3 }), async (damages) => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-fuzz-run-'));
      const runsDir = path.join(root, 'runs');
      const outside = path.join(root, 'outside');
      fs.mkdirSync(outside);
      fs.writeFileSync(path.join(outside, 'secret.txt'), 'root:x:0:0:SECRET\n');
      try {
        const state = createRun(runsDir, { config, totalSteps: 10 });
        const id = state.id;
        state.lastCheckpoint = 'epoch-0001.ckpt';
        state.status = 'interrupted';
        writeState(runsDir, state);
        appendMetrics(runsDir, id, [{ kind: 'train', step: 1, epoch: 0.1, time: 1, metrics: { loss: 1 } }]);
        fs.writeFileSync(path.join(runsDir, id, 'checkpoints', 'epoch-0001.ckpt'), 'ADVMOECK not really');
        const before = snapshot(outside);
        for (const d of damages) {
          try {
            damageRun(path.join(runsDir, id), outside, d);
          } catch {
            // Damage that cannot be applied on top of an earlier one (a write into what is now a folder) is skipped.
          }
        }

        await op('readState', id, () => readState(runsDir, id));
        await op('readRunConfig', id, () => readRunConfig(runsDir, id));
        await op('readMetrics', id, () => readMetrics(runsDir, id));
        await op('listCheckpoints', id, () => listCheckpoints(runsDir, id));
        await op('listAnalyses', id, () => listAnalyses(runsDir, id));
        await op('listRuns', id, () => listRuns(runsDir, () => undefined));
        await op('appendMetrics', id, () => appendMetrics(runsDir, id, [{ kind: 'train', step: 2, epoch: 0.2, time: 2, metrics: { loss: 1 } }]));
        await op('writeAnalysis', id, () => writeAnalysis(runsDir, id, 'a.json', { ok: true }));
        await op('readCheckpoint', id, () => readCheckpoint(checkpointPath(runsDir, id, 'epoch-0001.ckpt')));
        for (const e of [...listRuns(runsDir)].map((s) => s.id)) assert.equal(e, id);
        assert.deepEqual(snapshot(outside), before, 'nothing outside the run folder changed');
        const secretShown = (m: string) => /SECRET|root:x/.test(m);
        try {
          readState(runsDir, id);
        } catch (e) {
          assert.ok(!secretShown((e as Error).message), 'no file content echoed');
        }
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    }),
    fuzzParams(100),
  );
});
