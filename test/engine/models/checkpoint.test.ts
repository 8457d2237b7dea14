/** Checkpoints: bit-exact round trip, atomic writes, corruption and mismatch errors. */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelTensors, modelTensors, readCheckpoint, writeCheckpoint } from '../../../engine/models/checkpoint';
import { createModel } from '../../../engine/models/factory';
import type { Model } from '../../../engine/models/types';
import { isAdvMoEError } from '../../../engine/util/errors';
import { setupTestBackend } from '../helpers';
import { MNIST, bytesOf, images, modelConfig, moe } from './fixtures';

let dir = '';
before(async () => {
  await setupTestBackend();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'advmoe-ckpt-'));
});
after(async () => {
  await fs.chmod(dir, 0o700).catch(() => undefined);
  await fs.rm(dir, { recursive: true, force: true });
});

/** Float32 values that a lossy path would alter: NaN payloads, -0, denormals, extremes. */
function awkwardFloats(): tf.Tensor {
  const bits = new Uint32Array([0x7fc00001, 0xffc12345, 0x80000000, 0x00000001, 0x007fffff, 0x7f7fffff, 0xff800000, 0x3eaaaaab]);
  return tf.tensor(new Float32Array(bits.buffer), [2, 4], 'float32');
}

function sameParams(a: Model, b: Model): boolean {
  return a.params.every((p, i) => p.name === b.params[i].name && bytesOf(p.variable).equals(bytesOf(b.params[i].variable)));
}

async function expectCode(promise: Promise<unknown> | (() => unknown), code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(
    async () => (typeof promise === 'function' ? promise() : promise),
    (e: unknown) => {
      assert.ok(isAdvMoEError(e), `expected AdvMoEError ${code}, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      if (pattern) assert.match(e.message, pattern);
      return true;
    },
  );
}

describe('checkpoint', () => {
  const config = modelConfig('resnet18', moe({ experts: 2, topK: 1 }), 'tiny', 0.5);

  it('round-trips model parameters, extra tensors and meta bit-identically, leaving no temporary file', async () => {
    const model = createModel(config, MNIST, 1);
    // Make the BN statistics non-trivial so that they are really carried.
    tf.tidy(() => {
      model.forward(images(2, MNIST), { training: true, updateBnStats: true });
    });
    const extra = {
      'optimizer/expert/velocity/stem.kernel': tf.randomNormal([3, 3, 1, 8], 0, 1, 'float32', 3),
      'state/awkward': awkwardFloats(),
      'state/counts': tf.tensor([-2147483648, 2147483647, 0, 7], [4], 'int32'),
      'state/scalar': tf.scalar(0.1),
      'state/empty': tf.tensor([], [0, 3]),
    };
    const meta = { epoch: 3, step: 1234, rng: [1, 4294967295, 0, 42], optimizerSlots: ['velocity'], note: 'ü' };
    const file = path.join(dir, 'round.ckpt');
    await writeCheckpoint(file, { tensors: { ...modelTensors(model), ...extra }, meta, config });
    assert.deepEqual(await fs.readdir(dir), ['round.ckpt']);

    const loaded = await readCheckpoint(file);
    assert.deepEqual(loaded.meta, meta);
    assert.deepEqual(loaded.config, config);
    assert.equal(loaded.header.formatVersion, 1);
    assert.deepEqual(Object.keys(loaded.tensors), [...model.params.map((p) => p.name), ...Object.keys(extra)]);
    for (const [name, t] of Object.entries(extra)) {
      assert.equal(loaded.tensors[name].dtype, t.dtype, name);
      assert.deepEqual(loaded.tensors[name].shape, t.shape, name);
      assert.ok(bytesOf(loaded.tensors[name]).equals(bytesOf(t)), `${name} changed`);
    }

    const other = createModel(config, MNIST, 99);
    try {
      assert.ok(!sameParams(model, other), 'seeds 1 and 99 gave the same weights: the test would prove nothing');
      loadModelTensors(other, loaded.tensors);
      assert.ok(sameParams(model, other));
      tf.tidy(() => {
        const x = images(3, MNIST);
        assert.ok(bytesOf(model.forward(x, { training: false }).logits).equals(bytesOf(other.forward(x, { training: false }).logits)));
      });
    } finally {
      other.dispose();
      model.dispose();
      tf.dispose(Object.values(extra));
      tf.dispose(Object.values(loaded.tensors));
    }
  });

  describe('corrupt files give CHECKPOINT_CORRUPT naming the file', () => {
    let good: Buffer;
    let payloadStart = 0;
    before(async () => {
      const model = createModel(config, MNIST, 1);
      const file = path.join(dir, 'source.ckpt');
      await writeCheckpoint(file, { tensors: modelTensors(model), meta: { epoch: 1 } });
      model.dispose();
      good = await fs.readFile(file);
      payloadStart = 48 + good.readUInt32LE(12);
    });

    const variants: [string, (b: Buffer) => Buffer, RegExp][] = [
      ['truncated payload', (b) => b.subarray(0, b.length - 5), /truncated/],
      ['truncated header', (b) => b.subarray(0, 60), /truncated/],
      ['truncated preamble', (b) => b.subarray(0, 20), /truncated/],
      ['empty file', () => Buffer.alloc(0), /truncated/],
      ['trailing bytes', (b) => Buffer.concat([b, Buffer.from([0])]), /unexpected bytes/],
      ['bad magic', (b) => flip(b, 0), /magic/],
      ['flipped bit in the header', (b) => flip(b, 70), /header checksum/],
      ['flipped bit in the header hash', (b) => flip(b, 20), /header checksum/],
      ['flipped bit in the payload', (b) => flip(b, b.length - 3), /payload checksum/],
      ['garbage', (b) => Buffer.from(Array.from(b, (_, i) => (i * 7919 + 13) & 0xff)), /magic/],
    ];
    for (const [label, mutate, pattern] of variants) {
      it(label, async () => {
        const file = path.join(dir, `${label.replace(/ /g, '-')}.ckpt`);
        await fs.writeFile(file, mutate(good));
        await expectCode(readCheckpoint(file), 'CHECKPOINT_CORRUPT', pattern);
        await expectCode(readCheckpoint(file), 'CHECKPOINT_CORRUPT', new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      });
    }

    it('a flipped bit anywhere is caught', async () => {
      const file = path.join(dir, 'anywhere.ckpt');
      for (let i = 0; i < 40; i++) {
        const at = Math.floor(((i + 0.5) / 40) * good.length);
        await fs.writeFile(file, flip(good, at));
        await expectCode(readCheckpoint(file), 'CHECKPOINT_CORRUPT');
      }
      assert.ok(payloadStart > 48 && payloadStart < good.length);
    });

    it('the unmodified file reads', async () => {
      const file = path.join(dir, 'unmodified.ckpt');
      await fs.writeFile(file, good);
      tf.dispose(Object.values((await readCheckpoint(file)).tensors));
    });
  });

  describe('CHECKPOINT_MISMATCH, and nothing is assigned', () => {
    async function roundTrip(model: Model): Promise<Record<string, tf.Tensor>> {
      const file = path.join(dir, 'mismatch.ckpt');
      await writeCheckpoint(file, { tensors: modelTensors(model), meta: null });
      return (await readCheckpoint(file)).tensors;
    }

    it('names the parameter and both shapes for a width mismatch', async () => {
      const wide = createModel(modelConfig('resnet18', moe(), 'tiny', 1), MNIST, 1);
      const narrow = createModel(config, MNIST, 2);
      const tensors = await roundTrip(wide);
      const before = narrow.params.map((p) => bytesOf(p.variable));
      try {
        await expectCode(() => loadModelTensors(narrow, tensors), 'CHECKPOINT_MISMATCH', /stem\.kernel.*\[3, 3, 1, 16\].*\[3, 3, 1, 8\]/);
        assert.ok(narrow.params.every((p, i) => bytesOf(p.variable).equals(before[i])), 'a failed load changed the model');
      } finally {
        tf.dispose(Object.values(tensors));
        wide.dispose();
        narrow.dispose();
      }
    });

    it('loads a checkpoint from before routers had selection biases, with zero biases', async () => {
      const model = createModel(modelConfig('vgg16', moe()), MNIST, 1);
      const copy = createModel(modelConfig('vgg16', moe()), MNIST, 2);
      const tensors = await roundTrip(model);
      try {
        const legacy = Object.fromEntries(Object.entries(tensors).filter(([name]) => !name.endsWith('selectionBias')));
        assert.ok(Object.keys(legacy).length < Object.keys(tensors).length, 'the model has selection biases to leave out');
        for (const p of copy.params) if (p.name.endsWith('selectionBias')) p.variable.assign(tf.onesLike(p.variable));
        loadModelTensors(copy, legacy);
        for (const p of copy.params) {
          if (p.name.endsWith('selectionBias')) assert.deepEqual(Array.from(p.variable.dataSync()), [0, 0], p.name);
        }
        assert.ok(sameParams(copy, model));
      } finally {
        tf.dispose(Object.values(tensors));
        model.dispose();
        copy.dispose();
      }
    });

    it('rejects another backbone, and an MoE checkpoint in a dense model of the same widths', async () => {
      const moeModel = createModel(modelConfig('resnet18', moe({ experts: 2, expertWidth: 0.5 })), MNIST, 1);
      const dense = createModel(modelConfig('resnet18'), MNIST, 1);
      const vgg = createModel(modelConfig('vgg16', moe()), MNIST, 1);
      const tensors = await roundTrip(moeModel);
      try {
        await expectCode(() => loadModelTensors(dense, tensors), 'CHECKPOINT_MISMATCH', /router.*model lacks/);
        await expectCode(() => loadModelTensors(vgg, tensors), 'CHECKPOINT_MISMATCH', /lacks parameter features/);
        // Tensors in a '/' namespace (optimizer state) are not the model's business.
        const copy = createModel(modelConfig('resnet18', moe({ experts: 2, expertWidth: 0.5 })), MNIST, 5);
        loadModelTensors(copy, { ...tensors, 'optimizer/x': tensors['stem.kernel'] });
        assert.ok(sameParams(copy, moeModel));
        copy.dispose();
      } finally {
        tf.dispose(Object.values(tensors));
        moeModel.dispose();
        dense.dispose();
        vgg.dispose();
      }
    });
  });

  describe('a failed write never damages the existing checkpoint', () => {
    const tensors = () => ({ a: tf.tensor([1, 2, 3]), b: tf.tensor([4], [1], 'int32') });

    async function withGood(name: string, fail: (file: string) => Promise<void>): Promise<void> {
      const sub = await fs.mkdtemp(path.join(dir, `${name}-`));
      const file = path.join(sub, 'run.ckpt');
      const good = tensors();
      await writeCheckpoint(file, { tensors: good, meta: { epoch: 1 } });
      const bytes = await fs.readFile(file);
      await fail(file);
      assert.ok((await fs.readFile(file)).equals(bytes), 'the good checkpoint changed');
      const back = await readCheckpoint(file);
      assert.deepEqual(back.meta, { epoch: 1 });
      tf.dispose([...Object.values(good), ...Object.values(back.tensors)]);
      await fs.chmod(sub, 0o700);
      const left = (await fs.readdir(sub)).filter((f) => f !== 'run.ckpt' && !f.startsWith('blocker'));
      assert.deepEqual(left, [], 'a temporary file was left behind');
    }

    it('when the temporary file cannot be created', async () => {
      await withGood('blocked', async (file) => {
        // A directory in the way makes open() fail whoever we are (root ignores read-only permissions).
        await fs.mkdir(`${file}.tmp-${process.pid}`);
        const t = tensors();
        await assert.rejects(writeCheckpoint(file, { tensors: t, meta: { epoch: 2 } }), /EISDIR|EEXIST|directory/i);
        tf.dispose(Object.values(t));
        await fs.rmdir(`${file}.tmp-${process.pid}`);
      });
    });

    it('in a read-only directory', async (t) => {
      if (process.getuid?.() === 0) {
        t.skip('running as root, which ignores directory permissions; the previous test covers the failure path');
        return;
      }
      await withGood('readonly', async (file) => {
        await fs.chmod(path.dirname(file), 0o500);
        const t2 = tensors();
        await assert.rejects(writeCheckpoint(file, { tensors: t2, meta: { epoch: 2 } }), /EACCES|EPERM/);
        tf.dispose(Object.values(t2));
      });
    });

    it('when the rename fails after the data was written (temporary file removed)', async () => {
      await withGood('rename', async (file) => {
        // Renaming a file over a non-empty directory fails; here the target is a directory beside `file`.
        const target = path.join(path.dirname(file), 'blocker');
        await fs.mkdir(path.join(target, 'inside'), { recursive: true });
        const t = tensors();
        await assert.rejects(writeCheckpoint(target, { tensors: t, meta: { epoch: 2 } }));
        tf.dispose(Object.values(t));
        const names = await fs.readdir(path.dirname(file));
        assert.ok(!names.some((n) => n.includes('.tmp-')), `left behind: ${names}`);
      });
    });

    it('for invalid tensors (bool dtype, disposed), before touching the disk', async () => {
      await withGood('invalid', async (file) => {
        const bool = tf.tensor([true, false], [2], 'bool');
        const ok = tf.scalar(1);
        await expectCode(writeCheckpoint(file, { tensors: { ok, bad: bool }, meta: null }), 'INVALID_ARGUMENT', /bad.*bool/);
        ok.dispose();
        const gone = tf.scalar(2);
        gone.dispose();
        await expectCode(writeCheckpoint(file, { tensors: { gone }, meta: null }), 'INVALID_ARGUMENT', /disposed/);
        bool.dispose();
      });
    });
  });
});

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] ^= 0x10;
  return c;
}
