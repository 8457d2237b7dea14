/**
 * The torch.save reader against fixtures PyTorch wrote (scripts/make-interop-fixtures.py), the writer by
 * round trip and, where python3 with torch is installed, by torch.load(weights_only=True) itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dictGet, hostTensor, isHostTensor, PyFloat, readTorchCheckpoint, tensorsOf, writeTorchCheckpoint, type HostTensor } from '../../../engine/interop';
import { isAdvMoEError } from '../../../engine/util/errors';
import { describe, FIXTURES } from './describe';

const expected: Record<string, unknown> = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8'));
const fixture = (name: string) => path.join(FIXTURES, name);
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-interop-'));

for (const name of ['state-dict.pth', 'reference.pth', 'views.pth', 'cuda-tagged.pth', 'legacy.pth']) {
  test(`${name} reads exactly what PyTorch saved`, async () => {
    assert.deepEqual(describe(await readTorchCheckpoint(fixture(name))), expected[name]);
  });
}

test('the reference-style checkpoint: numpy.float64 lr, state dicts, optimizer state with int keys', async () => {
  const ckpt = await readTorchCheckpoint(fixture('reference.pth'));
  assert.equal(dictGet(ckpt, 'arch'), 'resnet18');
  const groups = dictGet(ckpt, 'router_optimizer', 'param_groups') as Array<Map<string, unknown>>;
  assert.equal(groups[0].get('lr'), 0.005);
  const sd = tensorsOf(dictGet(ckpt, 'state_dict'))!;
  assert.deepEqual([...sd.keys()], ['conv.weight', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked', 'fc.weight', 'fc.bias']);
  assert.deepEqual(sd.get('conv.weight')!.shape, [3, 2, 3, 3]);
  assert.equal(sd.get('bn.num_batches_tracked')!.dtype, 'int64');
  const state = dictGet(ckpt, 'optimizer', 'state') as Map<unknown, unknown>;
  assert.ok(state.has(0), 'optimizer state is keyed by parameter index (an int)');
  assert.equal(dictGet(ckpt, 'big'), 2n ** 70n);
});

test('views share one storage in the file and come out contiguous', async () => {
  const v = (await readTorchCheckpoint(fixture('views.pth'))) as Map<string, HostTensor>;
  const base = Array.from(v.get('base')!.data as Float32Array);
  const t = v.get('t')!;
  assert.deepEqual(t.shape, [6, 4]);
  // t[i][j] = base[j][i]
  assert.equal((t.data as Float32Array)[1 * 4 + 2], base[2 * 6 + 1]);
  assert.deepEqual(Array.from(v.get('expand')!.data as Float32Array), [1, 1, 1, 2, 2, 2]);
});

for (const [name, global] of [['malicious-system.pth', 'posix.system'], ['malicious-eval.pth', 'builtins.eval']]) {
  test(`${name} is refused naming ${global}, and nothing runs`, async () => {
    fs.rmSync('/tmp/advmoe-pwned', { force: true });
    await assert.rejects(readTorchCheckpoint(fixture(name)), (e) => isAdvMoEError(e, 'CHECKPOINT_UNSAFE') && e.message.includes(global) && e.message.includes(name));
    assert.equal(fs.existsSync('/tmp/advmoe-pwned'), false);
  });
}

test('non-checkpoints get errors that say what the file is', async () => {
  await assert.rejects(readTorchCheckpoint(fixture('tensors.safetensors').replace('tensors.safetensors', 'expected.json')), (e) => isAdvMoEError(e, 'CHECKPOINT_CORRUPT') && /not a PyTorch checkpoint/.test(e.message));
  await assert.rejects(readTorchCheckpoint(fixture('tensors.safetensors')), (e) => isAdvMoEError(e, 'CHECKPOINT_CORRUPT') && /not a PyTorch checkpoint/.test(e.message));
  await assert.rejects(readTorchCheckpoint(fixture('missing.pth')), (e) => isAdvMoEError(e, 'CHECKPOINT_CORRUPT') && /missing\.pth: no such file/.test(e.message));
  await assert.rejects(readTorchCheckpoint(FIXTURES), (e) => isAdvMoEError(e, 'CHECKPOINT_CORRUPT') && /is a folder/.test(e.message));
});

/** A tree using every dtype, shared data, nesting, and numbers of every kind. */
function sampleTree() {
  const w = hostTensor('float32', [2, 3], [1, -2, 3.5, 0, 1e-30, -7]);
  return {
    epoch: 3,
    best_acc: new PyFloat(50),
    lr: 0.125,
    big: 2n ** 64n + 5n,
    neg: -(2 ** 40),
    name: 'resnet18 ✓',
    flags: [true, false, null],
    state_dict: new Map<string, HostTensor>([
      ['w', w],
      ['w_copy', w],
      ['h', hostTensor('float16', [3], [1, 0.1, 70000])],
      ['b', hostTensor('bfloat16', [2], [1.5, 3.14159])],
      ['d', hostTensor('float64', [1], [Math.PI])],
      ['n', hostTensor('int64', [], [2n ** 62n])],
      ['i', hostTensor('int32', [2], [-(2 ** 31), 5])],
      ['s', hostTensor('int16', [1], [-3])],
      ['c', hostTensor('int8', [1], [-100])],
      ['u', hostTensor('uint8', [2], [0, 255])],
      ['m', hostTensor('bool', [2, 1], [1, 0])],
      ['e', hostTensor('float32', [0, 3], [])],
    ]),
    opt: new Map<number, number[]>([[0, [1, 2]]]),
  };
}

test('writeTorchCheckpoint → readTorchCheckpoint round trip (half and bfloat16 rounded to nearest even)', async () => {
  const file = path.join(tmp(), 'round.pth');
  await writeTorchCheckpoint(file, sampleTree());
  const back = await readTorchCheckpoint(file);
  assert.equal(dictGet(back, 'epoch'), 3);
  assert.equal(dictGet(back, 'best_acc'), 50);
  assert.equal(dictGet(back, 'big'), 2n ** 64n + 5n);
  assert.equal(dictGet(back, 'neg'), -(2 ** 40));
  assert.equal(dictGet(back, 'name'), 'resnet18 ✓');
  assert.deepEqual(dictGet(back, 'flags'), [true, false, null]);
  const sd = tensorsOf(dictGet(back, 'state_dict'))!;
  assert.deepEqual(Array.from(sd.get('w')!.data as Float32Array), Array.from(Float32Array.from([1, -2, 3.5, 0, 1e-30, -7])));
  assert.deepEqual(Array.from(sd.get('h')!.data as Float32Array), [1, 0.0999755859375, Infinity]);
  assert.deepEqual(Array.from(sd.get('b')!.data as Float32Array), [1.5, 3.140625]);
  assert.equal((sd.get('n')!.data as BigInt64Array)[0], 2n ** 62n);
  assert.deepEqual(sd.get('n')!.shape, []);
  assert.deepEqual(Array.from(sd.get('i')!.data as Int32Array), [-(2 ** 31), 5]);
  assert.deepEqual(Array.from(sd.get('m')!.data as Uint8Array), [1, 0]);
  assert.deepEqual(sd.get('e')!.shape, [0, 3]);
  for (const [k, t] of sd) assert.ok(isHostTensor(t), k);
  assert.deepEqual(dictGet(back, 'opt'), new Map([[0, [1, 2]]]));
});

test('the writer refuses what a checkpoint cannot hold', async () => {
  const dir = tmp();
  const loop: unknown[] = [];
  loop.push(loop);
  await assert.rejects(writeTorchCheckpoint(path.join(dir, 'a.pth'), loop as never), (e) => isAdvMoEError(e, 'INVALID_ARGUMENT') && /contains itself/.test(e.message));
  await assert.rejects(
    writeTorchCheckpoint(path.join(dir, 'b.pth'), { x: { dtype: 'uint8', shape: [1], data: new Float32Array([300]) } as unknown as HostTensor }),
    (e) => isAdvMoEError(e, 'INVALID_ARGUMENT') && /"x".*300/.test(e.message),
  );
  await assert.rejects(writeTorchCheckpoint(path.join(dir, 'c.pth'), { x: { dtype: 'float32', shape: [2, 2], data: new Float32Array(3) } }), (e) => isAdvMoEError(e, 'INVALID_ARGUMENT') && /"x"/.test(e.message));
  assert.deepEqual(fs.readdirSync(dir), [], 'a failed write leaves nothing behind');
});

const PYTORCH_CHECK = `
import json, math, sys, torch
o = torch.load(sys.argv[1], weights_only=True)
sd = o['state_dict']
out = {k: {'dtype': str(v.dtype), 'shape': list(v.shape), 'values': [x if math.isfinite(x) else str(x) for x in v.float().reshape(-1).tolist()] if v.dtype != torch.int64 else [str(x) for x in v.reshape(-1).tolist()]} for k, v in sd.items()}
print(json.dumps({'epoch': o['epoch'], 'best_acc': o['best_acc'], 'best_is_float': isinstance(o['best_acc'], float), 'lr': o['lr'], 'big': str(o['big']), 'neg': o['neg'], 'name': o['name'], 'flags': o['flags'],
  'shared': sd['w'].untyped_storage().data_ptr() == sd['w_copy'].untyped_storage().data_ptr(), 'opt': {str(k): v for k, v in o['opt'].items()}, 'sd': out}))
`;

function pythonWithTorch(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.error) return 'python3 is not installed';
  if (r.status !== 0) return 'python3 has no torch (pip install torch)';
  return undefined;
}

test('torch.load(weights_only=True) reads what writeTorchCheckpoint wrote', { skip: pythonWithTorch() }, async () => {
  const file = path.join(tmp(), 'for-torch.pth');
  await writeTorchCheckpoint(file, sampleTree());
  const r = spawnSync('python3', ['-c', PYTORCH_CHECK, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout);
  assert.equal(o.epoch, 3);
  assert.equal(o.best_acc, 50);
  assert.equal(o.best_is_float, true);
  assert.equal(o.lr, 0.125);
  assert.equal(o.big, String(2n ** 64n + 5n));
  assert.equal(o.neg, -(2 ** 40));
  assert.equal(o.name, 'resnet18 ✓');
  assert.deepEqual(o.flags, [true, false, null]);
  assert.equal(o.shared, true, 'tensors sharing one array share one storage');
  assert.deepEqual(o.opt, { 0: [1, 2] });
  const dtypes: Record<string, string> = { w: 'torch.float32', h: 'torch.float16', b: 'torch.bfloat16', d: 'torch.float64', n: 'torch.int64', i: 'torch.int32', s: 'torch.int16', c: 'torch.int8', u: 'torch.uint8', m: 'torch.bool', e: 'torch.float32' };
  for (const [k, dt] of Object.entries(dtypes)) assert.equal(o.sd[k].dtype, dt, k);
  assert.deepEqual(o.sd.w.values, Array.from(Float32Array.from([1, -2, 3.5, 0, 1e-30, -7])));
  assert.deepEqual(o.sd.h.values, [1, 0.0999755859375, 'inf']);
  assert.deepEqual(o.sd.b.values, [1.5, 3.140625]);
  assert.deepEqual(o.sd.n.values, [String(2n ** 62n)]);
  assert.deepEqual(o.sd.m.shape, [2, 1]);
  assert.deepEqual(o.sd.m.values, [1, 0]);
  assert.deepEqual(o.sd.e.shape, [0, 3]);
});
