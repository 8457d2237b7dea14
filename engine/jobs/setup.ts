/** Shared set-up of jobs: datasets, the model's data spec, the model itself. */
import type { ExperimentConfig } from '../config/types';
import { type Dataset, loadDataset } from '../data';
import { createModel } from '../models/factory';
import type { DataSpec } from '../models/net';
import type { Model } from '../models/types';

/** Per-channel mean/std of the standard datasets' training sets. */
const NORMALIZATION: Record<string, { mean: number[]; std: number[] }> = {
  mnist: { mean: [0.1307], std: [0.3081] },
  'fashion-mnist': { mean: [0.286], std: [0.353] },
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  cifar100: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
};

/** Mean/std measured on (up to 2,000 images of) a dataset, for image folders. */
function measureNormalization(ds: Dataset): { mean: number[]; std: number[] } {
  const [h, w, c] = ds.shape;
  const per = h * w * c;
  const n = Math.min(ds.count, 2000);
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  for (let i = 0; i < n * per; i++) {
    const v = ds.images[i] / 255;
    sum[i % c] += v;
    sq[i % c] += v * v;
  }
  const count = n * h * w;
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sq, (s, k) => Math.sqrt(Math.max(1e-6, s / count - mean[k] * mean[k])));
  return { mean, std };
}

export function dataSpecFor(cfg: ExperimentConfig, train: Dataset): DataSpec {
  const [, , channels] = train.shape;
  // Models trained with the reference code take raw [0,1] pixels (README "Analyse a model trained with the reference code").
  const norm =
    cfg.model.inputNormalization === 'none'
      ? { mean: new Array<number>(channels).fill(0), std: new Array<number>(channels).fill(1) }
      : (NORMALIZATION[cfg.data.dataset] ?? measureNormalization(train));
  return { inputShape: train.shape, numClasses: train.numClasses, mean: norm.mean, std: norm.std };
}

export async function loadSplits(cfg: ExperimentConfig, baseDir: string, splits: { train: boolean }): Promise<{ train: Dataset | null; test: Dataset }> {
  const [train, test] = await Promise.all([
    splits.train ? loadDataset(cfg.data, 'train', { baseDir, seed: cfg.seed }) : Promise.resolve(null),
    loadDataset(cfg.data, 'test', { baseDir, seed: cfg.seed }),
  ]);
  return { train, test };
}

export function buildModel(cfg: ExperimentConfig, spec: DataSpec): Model {
  return createModel(cfg.model, spec, cfg.seed);
}
