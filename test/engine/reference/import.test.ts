/**
 * Import and export of the reference code's checkpoints, against a fixture made by scripts/make-reference-fixture.py
 * with PyTorch: a ResNet-18 CIFAR MoE of the reference's layout (N = 2, ratio 0.0625, its router), saved as the
 * reference's train_moe.py saves one, with PyTorch's logits and routing on 8 fixed images beside it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { resolveConfig } from '../../../engine/config/load';
import { type HostTensor, dictGet, readSafetensors, readTorchCheckpoint, writeTorchCheckpoint } from '../../../engine/interop';
import { loadModelCheckpoint } from '../../../engine/jobs/checkpoints';
import { silentReporter } from '../../../engine/jobs/context';
import { evaluateJob, inspectJob } from '../../../engine/jobs/evaluate';
import { buildModel } from '../../../engine/jobs/setup';
import { sparseForward } from '../../../engine/models/sparse';
import type { Model } from '../../../engine/models/types';
import { exportRun, referenceMismatch } from '../../../engine/reference/export';
import { IMPORTED_CHECKPOINT, importReferenceCheckpoint } from '../../../engine/reference/import';
import { referenceKey, referenceShape, toOurLayout, toReferenceLayout } from '../../../engine/reference/names';
import { checkpointPath, listRuns, readRunConfig, readState } from '../../../engine/runs/store';
import { isAdvMoEError } from '../../../engine/util/errors';
import { setupTestBackend } from '../helpers';

const ROOT = path.join(__dirname, '..', '..', '..', '..');
const FIXTURES = path.join(ROOT, 'test', 'engine', 'reference', 'fixtures');
const FIXTURE_JSON = path.join(FIXTURES, 'reference-n2-r0.0625.json');
const SCRIPT = path.join(ROOT, 'scripts', 'make-reference-fixture.py');

interface Fixture {
  checkpoint: string;
  experts: number;
  ratio: number;
  classes: number;
  inputShape: [number, number, number, number];
  inputs: number[];
  logits: number[][];
  routing: number[];
  stateDictKeys: number;
}
const fixture: Fixture = JSON.parse(fs.readFileSync(FIXTURE_JSON, 'utf8'));
const CHECKPOINT = path.join(FIXTURES, fixture.checkpoint);
const IMPORT = { arch: 'resnet18', experts: fixture.experts, ratio: fixture.ratio, dataset: 'cifar10' };

const temps: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-reference-'));
  temps.push(d);
  return d;
}
after(() => temps.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
before(setupTestBackend);

function inputs(): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.tensor4d(fixture.inputs, fixture.inputShape, 'float32'), 255) as tf.Tensor4D);
}

async function openImported(runsDir: string, runId: string): Promise<Model> {
  return (await loadModelCheckpoint(checkpointPath(runsDir, runId, IMPORTED_CHECKPOINT), (spec, c) => buildModel(c, spec))).model;
}

/** Max |Δ| of the model's logits from PyTorch's, and each sample's expert in every MoE layer. */
function compare(model: Model, sparse = false): { diff: number; routing: number[][] } {
  return tf.tidy(() => {
    const x = inputs();
    const out = sparse ? sparseForward(model, x) : model.forward(x, { training: false });
    const got = out.logits.arraySync();
    let diff = 0;
    got.forEach((row, b) => row.forEach((v, c) => (diff = Math.max(diff, Math.abs(v - fixture.logits[b][c])))));
    const routing = out.routing.map((r) => r.mask.arraySync().map((row) => row.indexOf(1)));
    return { diff, routing };
  });
}

function expectMatchesPyTorch(model: Model, label: string): void {
  for (const sparse of [false, true]) {
    const { diff, routing } = compare(model, sparse);
    assert.ok(diff <= 1e-4, `${label}${sparse ? ' (sparse)' : ''}: logits differ from PyTorch's by ${diff}`);
    assert.equal(routing.length, 16, 'ResNet-18 has 16 MoE convs');
    for (const layer of routing) assert.deepEqual(layer, fixture.routing, `${label}${sparse ? ' (sparse)' : ''}: routing`);
  }
}

describe('names', () => {
  it('maps our parameter names onto the reference state dict', () => {
    assert.deepEqual(referenceKey('stem.kernel', 4), { key: 'conv1.weight', kind: 'conv' });
    assert.deepEqual(referenceKey('stem.bn.movingVar', 1), { key: 'bn1.running_var', kind: 'vector' });
    assert.equal(referenceKey('layer2.0.conv1.kernel', 4).key, 'layer2.0.conv1.weight');
    assert.equal(referenceKey('layer2.0.conv2.bn.gamma', 1).key, 'layer2.0.bn2.weight');
    assert.equal(referenceKey('layer2.0.shortcut.kernel', 4).key, 'layer2.0.shortcut.0.weight');
    assert.equal(referenceKey('layer2.0.shortcut.bn.beta', 1).key, 'layer2.0.shortcut.1.bias');
    assert.deepEqual(referenceKey('fc.kernel', 2), { key: 'linear.weight', kind: 'linear' });
    assert.equal(referenceKey('router.layer3.2.bn1.movingMean', 1).key, 'router.layer3.2.bn1.running_mean');
    assert.equal(referenceKey('router.fc.bias', 1).key, 'router.fc.bias');
  });

  it('conv and linear layouts go there and back unchanged, and put each value where PyTorch has it', () => {
    const ours = [3, 2, 4, 5]; // [kh, kw, in, out]
    const v = Float32Array.from({ length: 120 }, (_, i) => i);
    const ref = toReferenceLayout(v, ours, 'conv');
    assert.deepEqual(referenceShape(ours, 'conv'), [5, 4, 3, 2]);
    // ours[y=2][x=1][in=3][out=4] is reference[out=4][in=3][y=2][x=1].
    assert.equal(ref[((4 * 4 + 3) * 3 + 2) * 2 + 1], v[((2 * 2 + 1) * 4 + 3) * 5 + 4]);
    assert.deepEqual(toOurLayout(ref, [5, 4, 3, 2], 'conv'), v);
    const lin = Float32Array.from({ length: 6 }, (_, i) => i);
    assert.deepEqual(Array.from(toReferenceLayout(lin, [2, 3], 'linear')), [0, 3, 1, 4, 2, 5]);
    assert.deepEqual(toOurLayout(toReferenceLayout(lin, [2, 3], 'linear'), [3, 2], 'linear'), lin);
  });
});

describe('advmoe import', () => {
  it('imports the reference checkpoint as a finished run whose logits equal PyTorch\'s (1e-4) and whose routing is identical', async () => {
    const runsDir = path.join(tmp(), 'runs');
    const r = await importReferenceCheckpoint({ file: CHECKPOINT, runsDir, ...IMPORT });
    assert.equal(r.format, 'torch');
    assert.equal(r.epoch, 3);
    // The router has 116 tensors: 97 read as copies under each of the 16 MoE convs, its 19 batch counters as such.
    assert.equal(r.ignored.routerCopies, 16 * 97);
    assert.ok(r.ignored.numBatchesTracked > 0);
    // Every key of the state dict is accounted for: assigned, a num_batches_tracked, or a router copy.
    assert.equal(r.parameters + r.ignored.routerCopies + r.ignored.numBatchesTracked, fixture.stateDictKeys);
    const state = readState(runsDir, r.runId);
    assert.equal(state.status, 'finished');
    assert.equal(state.lastCheckpoint, IMPORTED_CHECKPOINT);
    assert.equal(state.pid, undefined);
    assert.deepEqual(listRuns(runsDir).map((s) => s.id), [r.runId]);
    const cfg = readRunConfig(runsDir, r.runId);
    assert.equal(cfg.model.moe.layout, 'gathered');
    assert.equal(cfg.model.moe.router, 'reference');
    assert.equal(cfg.model.padding, 'symmetric');
    assert.equal(cfg.model.inputNormalization, 'none');
    assert.equal(cfg.method.kind, 'official');
    const model = await openImported(runsDir, r.runId);
    try {
      expectMatchesPyTorch(model, 'imported');
    } finally {
      model.dispose();
    }
  });

  it('the run evaluates (advmoe eval) and inspects on CIFAR-format data: SA is the accuracy of PyTorch\'s logits', async () => {
    const dir = tmp();
    const runsDir = path.join(dir, 'runs');
    const dataRoot = path.join(dir, 'data');
    // The fixture's images as a CIFAR-10 test batch: label, then the R, G and B planes.
    const labels = fixture.logits.map((row, b) => (b % 2 === 0 ? row.indexOf(Math.max(...row)) : (row.indexOf(Math.max(...row)) + 1) % 10));
    const [n, h, w, c] = fixture.inputShape;
    const bytes = Buffer.alloc(n * (1 + h * w * c));
    for (let b = 0; b < n; b++) {
      const base = b * (1 + h * w * c);
      bytes[base] = labels[b];
      for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) bytes[base + 1 + ch * h * w + i] = fixture.inputs[(b * h * w + i) * c + ch];
    }
    fs.mkdirSync(path.join(dataRoot, 'cifar-10-batches-bin'), { recursive: true });
    fs.writeFileSync(path.join(dataRoot, 'cifar-10-batches-bin', 'test_batch.bin'), bytes);
    const r = await importReferenceCheckpoint({ file: CHECKPOINT, runsDir, dataRoot, ...IMPORT });
    const ctx = { reporter: silentReporter, signal: new AbortController().signal };
    const expectedSa = labels.filter((l, b) => fixture.logits[b].indexOf(Math.max(...fixture.logits[b])) === l).length / n;
    const ev = await evaluateJob({ jobId: 't', runsDir, runId: r.runId, samples: n }, ctx);
    assert.equal(ev.report.samples, n);
    assert.equal(ev.report.sa, expectedSa);
    assert.ok(ev.report.routerRobustness, 'router robustness is reported');
    assert.ok(fs.existsSync(ev.savedTo));
    const ins = await inspectJob({ jobId: 't', runsDir, runId: r.runId, sampleIds: [0, 1] }, ctx);
    assert.equal(ins.samples.length, 2);
    assert.equal(ins.samples[0].routing.length, 16);
  });

  it('reads the same model from safetensors, and our .pth and .safetensors exports import back bit-identically', async () => {
    const dir = tmp();
    const runsDir = path.join(dir, 'runs');
    const first = await importReferenceCheckpoint({ file: CHECKPOINT, runsDir, ...IMPORT });
    const values = async (runId: string) => {
      const m = await openImported(runsDir, runId);
      try {
        return m.params.map((p) => Array.from(p.variable.dataSync()));
      } finally {
        m.dispose();
      }
    };
    const original = await values(first.runId);
    for (const format of ['pth', 'safetensors'] as const) {
      const out = path.join(dir, `export.${format}`);
      const e = await exportRun({ runsDir, runId: first.runId, format, out });
      assert.equal(e.keys, fixture.stateDictKeys, 'the export has the reference state dict\'s keys (router copies and batch counters included)');
      const again = await importReferenceCheckpoint({ file: out, runsDir, ...IMPORT });
      assert.equal(again.format, format === 'pth' ? 'torch' : 'safetensors');
      assert.deepEqual(await values(again.runId), original, `${format} round trip`);
    }
    // The .pth holds what train_moe.py's resume reads.
    const tree = await readTorchCheckpoint(path.join(dir, 'export.pth'));
    for (const key of ['epoch', 'arch', 'state_dict', 'router', 'best_acc', 'sa_record', 'optimizer', 'router_optimizer']) assert.ok(dictGet(tree, key) !== undefined, key);
    assert.equal((await readSafetensors(path.join(dir, 'export.safetensors'))).tensors.size, fixture.stateDictKeys);
  });

  it('an export loads strictly into PyTorch modules of the reference layout and gives the same logits and routing', async (t) => {
    const probe = spawnSync('python3', ['-c', 'import torch, safetensors'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      t.skip(`needs python3 with torch and safetensors (${(probe.error?.message ?? probe.stderr).trim().split('\n').pop()})`);
      return;
    }
    const dir = tmp();
    const runsDir = path.join(dir, 'runs');
    const r = await importReferenceCheckpoint({ file: CHECKPOINT, runsDir, ...IMPORT });
    for (const format of ['pth', 'safetensors'] as const) {
      const out = path.join(dir, `export.${format}`);
      await exportRun({ runsDir, runId: r.runId, format, out });
      const run = spawnSync('python3', [SCRIPT, '--check', FIXTURE_JSON, out], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const got: { logits: number[][]; routing: number[] } = JSON.parse(run.stdout);
      let diff = 0;
      got.logits.forEach((row, b) => row.forEach((v, c) => (diff = Math.max(diff, Math.abs(v - fixture.logits[b][c])))));
      assert.ok(diff <= 1e-4, `${format}: PyTorch's logits of our export differ by ${diff}`);
      assert.deepEqual(got.routing, fixture.routing, `${format}: routing`);
    }
  });
});

describe('advmoe import: bad input names the problem and writes nothing', () => {
  async function refused(file: string, opts: Partial<typeof IMPORT>, code: string, message: RegExp): Promise<void> {
    const runsDir = path.join(tmp(), 'runs');
    await assert.rejects(importReferenceCheckpoint({ file, runsDir, ...IMPORT, ...opts } as Parameters<typeof importReferenceCheckpoint>[0]), (e) => {
      assert.ok(isAdvMoEError(e, code as never), `${code}: ${(e as Error).message}`);
      assert.match((e as Error).message, message);
      return true;
    });
    assert.ok(!fs.existsSync(runsDir) || fs.readdirSync(runsDir).length === 0, 'no run folder is left');
  }

  it('other widths, other N, another architecture, a bad ratio', async () => {
    await refused(CHECKPOINT, { ratio: 0.125 }, 'CHECKPOINT_MISMATCH', /^layer1\.0\.conv1\.weight has shape \[8, 64, 3, 3\] in the checkpoint; the reference ResNet-18 MoE \(N = 2, ratio 0\.125, 10 classes\) needs \[16, 64, 3, 3\]/);
    await refused(CHECKPOINT, { experts: 3 }, 'CHECKPOINT_MISMATCH', /layer1\.0\.conv1\.weight has shape \[8, 64, 3, 3\].*needs \[12, 64, 3, 3\]/);
    await refused(CHECKPOINT, { dataset: 'cifar100' }, 'CHECKPOINT_MISMATCH', /linear\.weight has shape \[10, 32\].*needs \[100, 32\]/);
    await refused(CHECKPOINT, { arch: 'vgg16' }, 'INVALID_ARGUMENT', /--arch: "vgg16" is not supported/);
    await refused(CHECKPOINT, { ratio: 0.3 }, 'INVALID_ARGUMENT', /--ratio: 0\.3 × 64 planes is not a whole number/);
    await refused(CHECKPOINT, { dataset: 'mnist' }, 'INVALID_ARGUMENT', /--dataset: "mnist"/);
  });

  it('a damaged file, a missing file', async () => {
    const dir = tmp();
    const cut = path.join(dir, 'cut.pth');
    const whole = fs.readFileSync(CHECKPOINT);
    fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    await refused(cut, {}, 'CHECKPOINT_CORRUPT', /cut\.pth/);
    await refused(path.join(dir, 'none.pth'), {}, 'INVALID_ARGUMENT', /no such checkpoint file/);
  });

  it('a missing key, an unexpected key, a router copy that differs from the router', async () => {
    const dir = tmp();
    const tree = await readTorchCheckpoint(CHECKPOINT);
    const state = dictGet(tree, 'state_dict') as Map<string, HostTensor>;
    const variant = async (name: string, edit: (s: Map<string, HostTensor>) => void): Promise<string> => {
      const s = new Map(state);
      edit(s);
      const file = path.join(dir, `${name}.pth`);
      await writeTorchCheckpoint(file, { state_dict: s });
      return file;
    };
    await refused(await variant('missing', (s) => s.delete('layer3.1.bn2.running_mean')), {}, 'CHECKPOINT_MISMATCH', /^layer3\.1\.bn2\.running_mean is missing from the checkpoint/);
    await refused(
      await variant('extra', (s) => s.set('layer5.0.conv1.weight', s.get('layer4.0.conv1.weight')!)),
      {},
      'CHECKPOINT_MISMATCH',
      /^layer5\.0\.conv1\.weight \(shape \[64, 16, 3, 3\]\) is not a parameter of the reference ResNet-18 MoE/,
    );
    await refused(
      await variant('copy', (s) => {
        const t = s.get('layer2.1.conv2.router.fc.bias')!;
        s.set('layer2.1.conv2.router.fc.bias', { ...t, data: Float32Array.from(t.data as Float32Array, (v) => v + 1) });
      }),
      {},
      'CHECKPOINT_MISMATCH',
      /layer2\.1\.conv2\.router\.fc\.bias differs from router\.fc\.bias/,
    );
  });
});

describe('advmoe export', () => {
  it('refuses a network the reference code does not build, naming each option that differs', () => {
    const why = referenceMismatch(resolveConfig({ model: { backbone: 'resnet18', preset: 'tiny' }, data: { dataset: 'cifar10', root: '/d' } }));
    assert.match(why!, /model\.preset is "tiny"/);
    assert.match(why!, /model\.padding is "same"/);
    assert.match(why!, /model\.moe\.layout is "blocks"/);
    assert.match(why!, /model\.moe\.router is "per-layer"/);
    const ok = resolveConfig({ model: { backbone: 'resnet18', padding: 'symmetric', inputNormalization: 'none', moe: { layout: 'gathered', router: 'reference', expertWidth: 0.5 } } });
    assert.equal(referenceMismatch(ok), null);
  });
});
