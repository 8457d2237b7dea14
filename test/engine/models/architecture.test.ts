/**
 * The `full` presets against the published architectures (parameter counts, FLOPs), and the FLOP
 * accounting of MoE models.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { BackboneName } from '../../../engine/config/types';
import { createModel } from '../../../engine/models/factory';
import type { Model } from '../../../engine/models/types';
import { isAdvMoEError } from '../../../engine/util/errors';
import { setupTestBackend } from '../helpers';
import { CIFAR, DENSE, MNIST, modelConfig, moe } from './fixtures';

before(setupTestBackend);

function trainableCount(model: Model, skip = (_: string) => false): number {
  return model.params.filter((p) => p.trainable && !skip(p.name)).reduce((n, p) => n + p.variable.size, 0);
}

function within(actual: number, expected: number, rel: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= rel * expected, `${what}: ${actual} vs ${expected} (±${rel * 100}%)`);
}

describe('full presets match the published architectures (CIFAR-10, dense)', () => {
  // Reference counts: the standard PyTorch CIFAR implementations (kuangliu/pytorch-cifar ResNet18 and
  // DenseNet121, xternalz WideResNet(28, 10)); VGG-16-BN conv+BN = 14.72 M (13 convs with biases + BN).
  const cases: [BackboneName, number, string, ((name: string) => boolean) | undefined][] = [
    ['resnet18', 11_173_962, 'ResNet-18', undefined],
    ['vgg16', 14_719_000, 'VGG-16-BN conv+BN', (name) => name.startsWith('fc.')],
    ['wrn28_10', 36_479_194, 'WRN-28-10', undefined],
    ['densenet', 6_956_298, 'DenseNet-121', undefined],
  ];
  for (const [backbone, expected, label, skip] of cases) {
    it(`${label} ≈ ${(expected / 1e6).toFixed(2)} M parameters`, () => {
      const model = createModel(modelConfig(backbone, DENSE, 'full'), CIFAR, 1);
      try {
        within(trainableCount(model, skip), expected, 0.01, label);
      } finally {
        model.dispose();
      }
    });
  }

  it('MoE candidates: ResNet-18 16, VGG-16 12 of its 13 convs, WRN-28-10 24, DenseNet-121 116', () => {
    for (const [backbone, candidates] of [['resnet18', 16], ['vgg16', 12], ['wrn28_10', 24], ['densenet', 116]] as const) {
      const model = createModel(modelConfig(backbone, moe({ expertWidth: 0.5 }), 'full'), CIFAR, 1);
      try {
        assert.equal(model.moeLayers.length, candidates, backbone);
        if (backbone === 'vgg16') assert.equal(model.params.filter((p) => p.name.endsWith('.kernel') && p.variable.rank === 4).length, 13);
      } finally {
        model.dispose();
      }
    }
  });
});

describe('FLOPs', () => {
  it('ResNet-18 full on 32×32: dense ≈ 1.11 GFLOPs (0.56 GMACs); a dense model is all active', () => {
    const model = createModel(modelConfig('resnet18', DENSE, 'full'), CIFAR, 1);
    try {
      const f = model.flops();
      within(f.dense, 1.11e9, 0.02, 'ResNet-18 FLOPs');
      assert.equal(f.active, f.dense);
      assert.equal(f.router, 0);
    } finally {
      model.dispose();
    }
  });

  for (const backbone of ['resnet18', 'vgg16', 'wrn28_10', 'densenet'] as const) {
    it(`${backbone} tiny: active < dense for k < N, = dense-width count for N·c = width, and grows with k`, () => {
      const dense = createModel(modelConfig(backbone), MNIST, 1);
      const k1 = createModel(modelConfig(backbone, moe({ experts: 2, topK: 1, expertWidth: 0.5 })), MNIST, 1);
      const k2 = createModel(modelConfig(backbone, moe({ experts: 2, topK: 2, expertWidth: 0.5 })), MNIST, 1);
      try {
        const [d, a, b] = [dense.flops(), k1.flops(), k2.flops()];
        assert.equal(d.active, d.dense);
        // With N = 2 experts of half width, the MoE convs have the dense widths.
        assert.equal(a.dense, d.dense);
        assert.ok(a.router > 0);
        assert.ok(a.active < a.dense, `${backbone}: active ${a.active} !< dense ${a.dense}`);
        // Expert convs fed by another MoE unit do ~1/4 of the work at k/N = 1/2, the rest 1/2.
        assert.ok(a.active - a.router > 0.2 * a.dense, `${backbone}: active ${a.active} implausibly small`);
        // k = N keeps everything: active = dense + routers.
        assert.equal(b.active - b.router, b.dense);
        assert.ok(a.active < b.active);
      } finally {
        dense.dispose();
        k1.dispose();
        k2.dispose();
      }
    });
  }
});

describe('model.moe.layers', () => {
  it('out-of-range indices are refused naming the valid range; in-range ones make exactly those layers MoE', () => {
    const tensorsBefore = tf.memory().numTensors;
    assert.throws(
      () => createModel(modelConfig('vgg16', moe({ layers: [0, 999] })), MNIST, 0),
      (e) => isAdvMoEError(e, 'CONFIG_INVALID') && /model\.moe\.layers: 999 out of range; vgg16 \(tiny\) has \d+ block convs, valid indices 0–\d+/.test((e as Error).message),
    );
    assert.equal(tf.memory().numTensors, tensorsBefore, 'the refused model is disposed');
    const m = createModel(modelConfig('vgg16', moe({ layers: [0, 2] })), MNIST, 0);
    assert.equal(m.moeLayers.length, 2);
    m.dispose();
  });
});
