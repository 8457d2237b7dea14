/**
 * Binds the training pieces of engine/training (method step, optimizers, schedule, adversary, collapse
 * detector) to one model and experiment, with the state a checkpoint must hold to resume exactly.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ExperimentConfig } from '../config/types';
import { copyFirstExpert } from '../models/tying';
import type { ExpertTie, Model } from '../models/types';
import { makeAdversary } from '../training/adversary';
import { CollapseDetector } from '../training/collapse';
import { checkMethodSupported, createOptimizers, trainStep } from '../training/methods';
import { attackAt, learningRate } from '../training/schedule';
import type { CancelSignal } from '../attacks/types';
import type { AdversaryFn } from '../training/methods';
import { AdvMoEError, isAdvMoEError } from '../util/errors';
import { Rng, type RngState } from '../util/rng';

export interface Trainer {
  /**
   * One optimizer step on a batch; `step` is the global step index (0-based). Returns its metrics. A cancel that
   * arrives during the step's first attack (before any parameter update) abandons the step: it throws CANCELLED
   * with the model, the optimizers and the RNG as they were before the step, so a checkpoint taken then resumes
   * exactly. A later cancel lets the step finish.
   */
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

export function createTrainer(model: Model, cfg: ExperimentConfig, stepsPerEpoch: number, signal?: CancelSignal): Trainer {
  checkMethodSupported(cfg.method.kind, model);
  const optimizers = createOptimizers(model, cfg.schedule);
  // Attack random starts draw from this stream; its state is checkpointed.
  const rng = new Rng(cfg.seed ^ 0x5eed_a77c);
  const collapse = model.moeLayers.length ? new CollapseDetector(model.moeLayers, model.topK, model.numExperts) : undefined;
  const warnings: string[] = [];
  const adversarial = cfg.method.kind !== 'standard';
  const tied = tiedExperts(model, cfg, stepsPerEpoch);
  // Training attacks differentiate through the routing only when every pass does (docs/architecture.md "Routing gradients").
  const routingGradient = cfg.method.routing.straightThrough === 'router-updates' ? 'none' : 'straight-through';
  const freezeAt = cfg.method.routing.freezeRoutersAfterEpochs > 0 ? Math.round(cfg.method.routing.freezeRoutersAfterEpochs * stepsPerEpoch) : Infinity;

  return {
    async step(x, y, step) {
      const epoch = Math.floor(step / stepsPerEpoch);
      const inEpoch = step - epoch * stepsPerEpoch;
      const lr = learningRate(cfg.schedule, epoch, inEpoch, stepsPerEpoch);
      const rngAtStart = rng.getState();
      const adversary = adversarial ? firstAttackCancellable(signal, (s) => makeAdversary(model, attackAt(cfg.method, epoch, inEpoch, stepsPerEpoch), { rng, signal: s, routingGradient })) : undefined;
      let r;
      try {
        r = await trainStep(cfg.method, { model, optimizers, x, y, lr, step, adversary, collapse, noiseSeed: () => rng.seed(), tiedExperts: tied.at(step), routersFrozen: step >= freezeAt });
      } catch (e) {
        if (isAdvMoEError(e, 'CANCELLED')) rng.setState(rngAtStart); // the abandoned step's random starts are drawn again
        throw e;
      }
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

/**
 * `method.routing.tieExpertsEpochs`: the ties for steps before `until` (none after). The first tied step starts
 * from expert 0's weights in every copy (a no-op on a run resumed while tied, whose copies are equal already).
 */
function tiedExperts(model: Model, cfg: ExperimentConfig, stepsPerEpoch: number): { at(step: number): ExpertTie[] | undefined } {
  const until = Math.round(cfg.method.routing.tieExpertsEpochs * stepsPerEpoch);
  if (until <= 0 || !model.moeLayers.length) return { at: () => undefined };
  if (!model.expertTies) throw new AdvMoEError('CONFIG_INVALID', 'method.routing.tieExpertsEpochs: this model cannot tie its experts');
  const ties = model.expertTies();
  let started = false;
  return {
    at(step) {
      if (step >= until) return undefined;
      if (!started) copyFirstExpert(ties);
      started = true;
      return ties;
    },
  };
}

/**
 * An adversary whose first call sees `signal` and whose later calls do not: every method attacks before its first
 * parameter update, so a cancel seen then leaves the model untouched, while a cancel after an update (AdvMoE's
 * expert step follows its router step) must let the step finish to keep the model at a step boundary.
 */
function firstAttackCancellable(signal: CancelSignal | undefined, make: (s: CancelSignal) => AdversaryFn): AdversaryFn {
  let first = true;
  const gated: CancelSignal = { get aborted() { return first && !!signal?.aborted; } };
  const adversary = make(gated);
  return async (x, y, loss) => {
    try {
      return await adversary(x, y, loss);
    } finally {
      first = false;
    }
  };
}
