/** Configs and small helpers shared by the model tests. */
import * as tf from '@tensorflow/tfjs-core';
import type { BackboneName, BackbonePreset, ModelConfig, MoeConfig } from '../../../engine/config/types';
import type { DataSpec } from '../../../engine/models/net';

export const MNIST: DataSpec = { inputShape: [28, 28, 1], numClasses: 10, mean: [0.1307], std: [0.3081] };
export const CIFAR: DataSpec = { inputShape: [32, 32, 3], numClasses: 10, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] };

export const DENSE: MoeConfig = { enabled: false, experts: 2, topK: 1, expertWidth: 0.5, router: 'per-layer', routerNorm: false, layers: 'all-blocks' };

export function moe(overrides: Partial<MoeConfig> = {}): MoeConfig {
  return { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, router: 'per-layer', routerNorm: false, layers: 'all-blocks', ...overrides };
}

export function modelConfig(backbone: BackboneName, m: MoeConfig = DENSE, preset: BackbonePreset = 'tiny', widthMultiplier = 1): ModelConfig {
  return { backbone, preset, widthMultiplier, moe: m };
}

/** A seeded uniform [0,1) batch. */
export function images(batch: number, spec: DataSpec, seed = 7): tf.Tensor4D {
  return tf.randomUniform([batch, ...spec.inputShape], 0, 1, 'float32', seed) as tf.Tensor4D;
}

/** The raw bytes of a tensor's values (bit-exact comparisons, NaN payloads and -0 included). */
export function bytesOf(t: tf.Tensor): Buffer {
  const v = t.dataSync() as Float32Array | Int32Array;
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

export const BACKBONES: BackboneName[] = ['resnet18', 'vgg16', 'wrn28_10', 'densenet'];
