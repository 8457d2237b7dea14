/**
 * Training checkpoints: model parameters (BN statistics included), the trainer's state (optimizer slots,
 * RNG), the data position and the resolved config, in one atomically written file (models/checkpoint.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ExperimentConfig } from '../config/types';
import type { BatchPosition } from '../data';
import { loadModelTensors, modelTensors, readCheckpoint, writeCheckpoint } from '../models/checkpoint';
import type { DataSpec } from '../models/net';
import type { Model } from '../models/types';
import { AdvMoEError } from '../util/errors';
import type { RngState } from '../util/rng';
import type { Trainer } from './trainer';
import { upgradeLegacyConfig } from '../runs/legacyConfig';

export interface TrainingCheckpointMeta {
  /** The next batch to train. */
  position: BatchPosition;
  /** Optimizer steps done. */
  step: number;
  /** Fractional epochs done. */
  epoch: number;
  /** Training seconds so far. */
  elapsed: number;
}

interface StoredMeta extends TrainingCheckpointMeta {
  kind: 'training';
  rng: RngState;
  dataSpec: DataSpec;
}

export async function saveTrainingCheckpoint(
  file: string,
  model: Model,
  trainer: Trainer,
  cfg: ExperimentConfig,
  spec: DataSpec,
  meta: TrainingCheckpointMeta,
): Promise<void> {
  const stored: StoredMeta = { kind: 'training', ...meta, rng: trainer.getRngState(), dataSpec: spec };
  await writeCheckpoint(file, { tensors: { ...modelTensors(model), ...trainer.stateTensors() }, meta: stored, config: cfg });
}

function disposeAll(tensors: Record<string, tf.Tensor>): void {
  for (const t of Object.values(tensors)) t.dispose();
}

/**
 * Restores model and trainer from a training checkpoint; returns where training stood. The header's hash only
 * proves it is intact, not that it is sane: a step past `totalSteps` would mark the run finished untrained.
 */
export async function loadTrainingCheckpoint(file: string, model: Model, trainer: Trainer, cfg: ExperimentConfig, totalSteps: number): Promise<TrainingCheckpointMeta> {
  const ck = await readCheckpoint(file);
  try {
    const meta = ck.meta as StoredMeta;
    if (meta?.kind !== 'training' || !Array.isArray(meta.rng) || typeof meta.step !== 'number') {
      throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file} is not a training checkpoint (its meta has no step/RNG state)`);
    }
    const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
    if (!count(meta.step) || meta.step > totalSteps) {
      throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: meta.step ${meta.step} is not a step of this run (0–${totalSteps})`);
    }
    if (!count(meta.position?.epoch) || !count(meta.position?.batch) || !(typeof meta.elapsed === 'number' && Number.isFinite(meta.elapsed))) {
      throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: meta.position or meta.elapsed is not a valid data position and time`);
    }
    const stored = upgradeLegacyConfig(ck.config as ExperimentConfig | undefined);
    if (JSON.stringify(stored?.model) !== JSON.stringify(cfg.model)) {
      throw new AdvMoEError('CHECKPOINT_MISMATCH', `${file} was written for another model configuration than the run's config.json`);
    }
    loadModelTensors(model, ck.tensors);
    trainer.loadStateTensors(ck.tensors);
    trainer.setRngState(meta.rng);
    return { position: meta.position, step: meta.step, epoch: meta.epoch, elapsed: meta.elapsed };
  } finally {
    disposeAll(ck.tensors);
  }
}

/** Loads only the model of a checkpoint (evaluation, inspection), with the data spec it was trained with. */
export async function loadModelCheckpoint(file: string, build: (spec: DataSpec, cfg: ExperimentConfig) => Model): Promise<{ model: Model; spec: DataSpec; cfg: ExperimentConfig; meta: TrainingCheckpointMeta }> {
  const ck = await readCheckpoint(file);
  try {
    const meta = ck.meta as StoredMeta;
    const cfg = upgradeLegacyConfig(ck.config as ExperimentConfig);
    if (!meta?.dataSpec || !cfg?.model) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file} lacks the data spec or config needed to rebuild its model`);
    const model = build(meta.dataSpec, cfg);
    try {
      loadModelTensors(model, ck.tensors);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return { model, spec: meta.dataSpec, cfg, meta: { position: meta.position, step: meta.step, epoch: meta.epoch, elapsed: meta.elapsed } };
  } finally {
    disposeAll(ck.tensors);
  }
}
