/** Builds the model an experiment asks for. */
import type { ModelConfig } from '../config/types';
import { Rng } from '../util/rng';
import { DenseNet } from './densenet';
import type { DataSpec, Net } from './net';
import { ResNet } from './resnet';
import type { Model } from './types';
import { Vgg } from './vgg';
import { WideResNet } from './wrn';

export function createModel(config: ModelConfig, data: DataSpec, seed: number | Rng): Model {
  const rng = typeof seed === 'number' ? new Rng(seed) : seed;
  const model = build(config, data, rng);
  try {
    model.checkMoeLayers();
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

function build(config: ModelConfig, data: DataSpec, rng: Rng): Net {
  switch (config.backbone) {
    case 'resnet18':
      return new ResNet(config, data, rng);
    case 'vgg16':
      return new Vgg(config, data, rng);
    case 'wrn28_10':
      return new WideResNet(config, data, rng);
    case 'densenet':
      return new DenseNet(config, data, rng);
    default:
      throw new RangeError(`backbone "${(config as ModelConfig).backbone}" is not implemented`);
  }
}
