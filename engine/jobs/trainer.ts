/**
 * Binds the training pieces of engine/training (method step, optimizers, schedule, adversary, collapse
 * detector) to one model and experiment, with the state a checkpoint must hold to resume exactly.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ExperimentConfig } from '../config/types';
import type { Model } from '../models/types';
import { makeAdversary } from '../training/adversary';
import { CollapseDetector } from '../training/collapse';
import { checkMethodSupported, createOptimizers, trainStep } from '../training/methods';
import { attackAt, learningRate } from '../training/schedule';
import { Rng, type RngState } from '../util/rng';

export interface Trainer {
  /** One optimizer step on a batch; `step` is the global step index (0-based). Returns its metrics. */
  step(x: tf.Tensor4D, y: tf.Tensor1D, step: number): Promise<Record<string, number>>;
  /** Optimizer slots, named `optim/...` (disjoint from parameter names). The caller disposes them. */
  stateTensors(): Record<string, tf.Tensor>;
  loadStateTensors(tensors: Record<string, tf.Tensor>): void;
  getRngState(): RngState;
  setRngState(state: RngState): void;
  /** Warnings raised since the last call (router collapse). */
  takeWarnings(): string[];
  dispose(): void;
}

export function createTrainer(model: Model, cfg: ExperimentConfig, stepsPerEpoch: number, signal?: AbortSignal): Trainer {
  checkMethodSupported(cfg.method.kind, model);
  const optimizers = createOptimizers(model, cfg.schedule);
  // Attack random starts draw from this stream; its state is checkpointed.
  const rng = new Rng(cfg.seed ^ 0x5eed_a77c);
  const collapse = model.moeLayers.length ? new CollapseDetector(model.moeLayers, model.topK, model.numExperts) : undefined;
  const warnings: string[] = [];
  const adversarial = cfg.method.kind !== 'standard';

  return {
    async step(x, y, step) {
      const epoch = Math.floor(step / stepsPerEpoch);
      const inEpoch = step - epoch * stepsPerEpoch;
      const lr = learningRate(cfg.schedule, epoch, inEpoch, stepsPerEpoch);
      const adversary = adversarial
        ? makeAdversary(model, attackAt(cfg.method, epoch, inEpoch, stepsPerEpoch), { rng, signal })
        : undefined;
      const r = await trainStep(cfg.method, { model, optimizers, x, y, lr, step, adversary, collapse, noiseSeed: () => rng.seed() });
      warnings.push(...r.warnings);
      if (adversarial) r.metrics.trainEps = attackAt(cfg.method, epoch, inEpoch, stepsPerEpoch).eps;
      return r.metrics;
    },
    stateTensors() {
      return { ...optimizers.router.getState(), ...optimizers.expert.getState() };
    },
    loadStateTensors(tensors) {
      optimizers.router.setState(tensors);
      optimizers.expert.setState(tensors);
    },
    getRngState: () => rng.getState(),
    setRngState: (s) => rng.setState(s),
    takeWarnings: () => warnings.splice(0),
    dispose() {
      optimizers.router.dispose();
      optimizers.expert.dispose();
    },
  };
}
