/**
 * Creates and owns a model's variables. Initialisation is seeded (the model's Rng), so a given seed
 * always yields the same weights on every backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../util/rng';
import type { Param, ParamGroup } from './types';

export interface ConvWeights {
  /** [kh, kw, in, out] */
  kernel: tf.Variable;
  inChannels: number;
  outChannels: number;
  size: number;
}

export interface BatchNormWeights {
  gamma: tf.Variable;
  beta: tf.Variable;
  movingMean: tf.Variable;
  movingVar: tf.Variable;
  channels: number;
}

export interface LinearWeights {
  /** [in, out] */
  kernel: tf.Variable;
  bias: tf.Variable;
  inFeatures: number;
  outFeatures: number;
}

export class ParamFactory {
  readonly params: Param[] = [];
  private readonly names = new Set<string>();

  constructor(private readonly rng: Rng) {}

  /** He-normal (fan-in) initialised conv kernel, no bias (always followed by BN). */
  conv(name: string, inChannels: number, outChannels: number, size: number, group: ParamGroup = 'expert'): ConvWeights {
    const std = Math.sqrt(2 / (size * size * inChannels));
    const kernel = this.add(
      `${name}.kernel`,
      tf.randomNormal([size, size, inChannels, outChannels], 0, std, 'float32', this.rng.seed()),
      group,
      true,
      true,
    );
    return { kernel, inChannels, outChannels, size };
  }

  batchNorm(name: string, channels: number, group: ParamGroup = 'expert'): BatchNormWeights {
    return {
      gamma: this.add(`${name}.gamma`, tf.ones([channels]), group, true, false),
      beta: this.add(`${name}.beta`, tf.zeros([channels]), group, true, false),
      movingMean: this.add(`${name}.movingMean`, tf.zeros([channels]), group, false, false),
      movingVar: this.add(`${name}.movingVar`, tf.ones([channels]), group, false, false),
      channels,
    };
  }

  /** Uniform(±1/sqrt(fan-in)) initialised dense layer (PyTorch's default for Linear). */
  linear(name: string, inFeatures: number, outFeatures: number, group: ParamGroup = 'expert'): LinearWeights {
    const bound = 1 / Math.sqrt(inFeatures);
    return {
      kernel: this.add(
        `${name}.kernel`,
        tf.randomUniform([inFeatures, outFeatures], -bound, bound, 'float32', this.rng.seed()),
        group,
        true,
        true,
      ),
      bias: this.add(
        `${name}.bias`,
        tf.randomUniform([outFeatures], -bound, bound, 'float32', this.rng.seed()),
        group,
        true,
        false,
      ),
      inFeatures,
      outFeatures,
    };
  }

  /**
   * Zero-initialised state that is saved with the model but never differentiated nor decayed (a router's
   * selection bias). Optional: a checkpoint from before it existed loads it as zeros.
   */
  buffer(name: string, shape: number[], group: ParamGroup): tf.Variable {
    return this.add(name, tf.zeros(shape), group, false, false, true);
  }

  private add(name: string, init: tf.Tensor, group: ParamGroup, trainable: boolean, decay: boolean, optional = false): tf.Variable {
    if (this.names.has(name)) throw new Error(`duplicate parameter name ${name}`);
    this.names.add(name);
    // tfjs variable names are global to the engine; ours live in Param.name so that models can coexist.
    const variable = tf.variable(init, trainable);
    init.dispose();
    this.params.push({ name, variable, group, trainable, decay, ...(optional ? { optional } : {}) });
    return variable;
  }
}
