/** Builds the model an experiment asks for. */
import type { ModelConfig } from '../config/types';
import { Rng } from '../util/rng';
import type { DataSpec } from './net';
import { ResNet } from './resnet';
import type { Model } from './types';

export function createModel(config: ModelConfig, data: DataSpec, seed: number | Rng): Model {
  const rng = typeof seed === 'number' ? new Rng(seed) : seed;
  switch (config.backbone) {
    case 'resnet18':
      return new ResNet(config, data, rng);
    default:
      throw new RangeError(`backbone "${config.backbone}" is not implemented yet`);
  }
}
