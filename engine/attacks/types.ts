/**
 * Shared types of the attacks. Every attack has the signature
 * `(model, x, y, cfg: AttackConfig, opts: AttackOptions) => Promise<AttackOutput>`, works in [0,1] pixel
 * space (the model normalises inside), and returns x_adv inside the ε-ball around x and inside [0,1].
 *
 * The attacks are async so that they can yield to the event loop between steps: a `cancel` request that
 * arrives over RPC is only seen if the loop runs, and `signal.aborted` is checked before every step.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ForwardOptions, ForwardResult, RoutingMode } from '../models/types';
import type { Rng } from '../util/rng';

/** Anything with an `aborted` flag: an AbortSignal, or the engine's own cancellation token. */
export interface CancelSignal {
  readonly aborted: boolean;
}

/**
 * Per-sample loss the attack maximises, from one forward pass. `y` are the int32 labels given to the
 * attack. Must be differentiable w.r.t. the input through `out` (no gather/comparisons on that path).
 */
export type AttackLoss = (out: ForwardResult, y: tf.Tensor1D) => tf.Tensor1D;

export interface AttackOptions {
  /** Source of random starts (one draw per restart), so that a seed reproduces the attack. */
  rng: Rng;
  /** BatchNorm mode of every forward pass of the attack. Attacks made during training pass `true`
   * (batch statistics); the running statistics are never updated by an attack. Default false. */
  training?: boolean;
  /** Replaces the attack's loss (e.g. TRADES: KL(f(x) ‖ f(x')), see `klLoss`). With an override the
   * attack keeps, per sample, the point of highest loss (no "first misclassification" rule, since the
   * override need not be about the label). Not used by the router attack. */
  loss?: AttackLoss;
  /** Routing of every forward pass (default: the routers decide). `force` gives per-expert RA; the
   * expert attack sets `fixed` itself. Ignored by the router attack, which attacks the routers. */
  routing?: RoutingMode;
  /** How the input gradient treats the hard routing (`ForwardOptions.routingGradient`; default straight through).
   * Training attacks pass 'none' under `method.routing.straightThrough: "router-updates"`. */
  routingGradient?: ForwardOptions['routingGradient'];
  signal?: CancelSignal;
}

export interface AttackOutput {
  /** Adversarial inputs, same shape as x; the caller disposes them. */
  xAdv: tf.Tensor4D;
  /** The attack's objective (its loss) at xAdv, per sample. */
  loss: Float32Array;
  /** Per sample, 1 where the attack succeeded at xAdv: misclassified (CE attacks, under the attack's
   * routing), or routing changed in at least one MoE layer (router attack). Always 0 with a loss override. */
  success: Uint8Array;
}
