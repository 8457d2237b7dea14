/**
 * SGD with momentum and weight decay, PyTorch semantics (torch.optim.SGD, dampening 0, no Nesterov):
 *
 *   d = g + wd·w        (wd only on params with `decay: true`: conv/linear kernels)
 *   v = μ·v + d         (v starts at 0, so the first step gives v = d exactly, as PyTorch's lazy buffer)
 *   w = w − lr·v
 *
 * The learning rate is an argument of every step (the schedule decides it), not optimizer state, so
 * the router and expert optimizers of AdvMoE can run at different rates from one schedule.
 *
 * Momentum buffers are variables owned by the optimizer; `getState`/`setState` move them in and out of
 * checkpoints as a name → tensor map, so a resumed run continues bit-identically (the update is a pure
 * function of w, v, g and lr).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Param } from '../models/types';
import { AdvMoEError } from '../util/errors';

export interface SgdOptions {
  momentum: number;
  weightDecay: number;
}

export class SgdMomentum {
  /** The trainable params this optimizer updates, in model order. */
  readonly params: readonly Param[];
  /** Momentum buffer of params[i] (empty when momentum is 0: plain SGD keeps no state). */
  private readonly buffers: tf.Variable[];

  /**
   * @param name prefix of the state tensors' names (e.g. `router`, `expert`), so that the states of
   *   several optimizers can share one checkpoint.
   */
  constructor(
    readonly name: string,
    params: readonly Param[],
    readonly options: SgdOptions,
  ) {
    const { momentum, weightDecay } = options;
    if (!(momentum >= 0 && momentum < 1)) throw new RangeError(`momentum must be in [0, 1), got ${momentum}`);
    if (!(weightDecay >= 0)) throw new RangeError(`weight decay must be ≥ 0, got ${weightDecay}`);
    this.params = params.filter((p) => p.trainable);
    this.buffers =
      momentum > 0
        ? this.params.map((p) => {
            const zeros = tf.zerosLike(p.variable);
            const v = tf.variable(zeros, false);
            zeros.dispose();
            return v;
          })
        : [];
  }

  /** Variables to differentiate for this optimizer (what `tf.variableGrads` should be restricted to). */
  variables(): tf.Variable[] {
    return this.params.map((p) => p.variable);
  }

  /**
   * One update. `grads` is keyed by tfjs variable name, as `tf.variableGrads` returns it; a param
   * without a gradient is skipped entirely (no decay, no momentum), as PyTorch skips `grad is None`.
   *
   * `ok` (a boolean scalar), when given, makes the update conditional without reading it back: where it
   * is false, weights and buffers keep their values. Training uses it to refuse a step whose loss or
   * gradient is not finite while still reading all metrics in one transfer at the end of the step.
   */
  applyGradients(grads: tf.NamedTensorMap, lr: number, ok?: tf.Scalar): void {
    if (!Number.isFinite(lr) || lr < 0) throw new RangeError(`learning rate must be finite and ≥ 0, got ${lr}`);
    const { momentum, weightDecay } = this.options;
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        const g = grads[p.variable.name];
        if (!g) return;
        const w = p.variable;
        const d = p.decay && weightDecay > 0 ? tf.add(g, tf.mul(w, weightDecay)) : g;
        let v = momentum > 0 ? tf.add(tf.mul(this.buffers[i], momentum), d) : d;
        let next = tf.sub(w, tf.mul(v, lr));
        if (ok) {
          next = tf.where(ok, next, w);
          if (momentum > 0) v = tf.where(ok, v, this.buffers[i]);
        }
        if (momentum > 0) this.buffers[i].assign(v);
        w.assign(next);
      });
    });
  }

  /**
   * Copies of the momentum buffers, named `optim/<optimizer>/<param>/momentum` (no clash with model
   * parameter names, so both can share one checkpoint map). The caller owns the tensors.
   */
  getState(): tf.NamedTensorMap {
    const out: tf.NamedTensorMap = {};
    this.buffers.forEach((b, i) => (out[this.stateName(i)] = tf.clone(b)));
    return out;
  }

  /**
   * Restores buffers saved by `getState`. Tensors of other optimizers (other name prefix) are ignored,
   * so one list can hold every optimizer's state; a missing, unknown or misshapen buffer of this one is
   * an error rather than a silent reset (a reset would make a resumed run diverge).
   */
  setState(state: tf.NamedTensorMap): void {
    const prefix = `optim/${this.name}/`;
    const mine = new Map(Object.entries(state).filter(([name]) => name.startsWith(prefix)));
    const expected = new Set(this.buffers.map((_, i) => this.stateName(i)));
    const unknown = [...mine.keys()].filter((n) => !expected.has(n));
    const missing = [...expected].filter((n) => !mine.has(n));
    if (unknown.length || missing.length) {
      throw new AdvMoEError(
        'CHECKPOINT_MISMATCH',
        `optimizer "${this.name}" state does not match the model: ` +
          [missing.length ? `missing ${list(missing)}` : '', unknown.length ? `unknown ${list(unknown)}` : '']
            .filter(Boolean)
            .join('; '),
        { missing, unknown },
      );
    }
    this.buffers.forEach((b, i) => {
      const t = mine.get(this.stateName(i))!;
      if (!tf.util.arraysEqual(t.shape, b.shape)) {
        throw new AdvMoEError(
          'CHECKPOINT_MISMATCH',
          `optimizer state ${this.stateName(i)} has shape [${t.shape.join(', ')}], the model needs [${b.shape.join(', ')}]`,
        );
      }
    });
    tf.tidy(() => this.buffers.forEach((b, i) => b.assign(tf.cast(mine.get(this.stateName(i))!, 'float32'))));
  }

  dispose(): void {
    for (const b of this.buffers) b.dispose();
  }

  private stateName(i: number): string {
    return `optim/${this.name}/${this.params[i].name}/momentum`;
  }
}

function list(names: string[]): string {
  return names.length <= 3 ? names.join(', ') : `${names.slice(0, 3).join(', ')} and ${names.length - 3} more`;
}
