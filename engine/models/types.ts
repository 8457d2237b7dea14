/**
 * The contract every model (dense or MoE, any backbone) fulfils. Attacks, training and analysis are
 * written against this interface only.
 *
 * Conventions: inputs are NHWC float32 in [0,1] (normalisation happens inside the model, so attacks
 * clamp in pixel space); logits are [B, classes]. Routing is reported per MoE layer, in forward order.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../config/types';

/** Router parameters vs everything else. AdvMoE updates the two groups with separate optimizers. */
export type ParamGroup = 'router' | 'expert';

export interface Param {
  name: string;
  variable: tf.Variable;
  group: ParamGroup;
  /** false for BatchNorm running statistics and routers' selection biases (saved in checkpoints, never differentiated). */
  trainable: boolean;
  /** A zero-initialised buffer that a checkpoint written before it existed may lack (loaded as zeros). */
  optional?: boolean;
  /** Weight decay applies (conv/linear kernels), not to biases and BN affine parameters. */
  decay: boolean;
}

/** How the MoE layers pick their experts in one forward pass. */
export type RoutingMode =
  /** The routers decide (top-k of their scores). */
  | { kind: 'router' }
  /** Routing frozen to given 0/1 masks, one [B, N] tensor per MoE layer (expert attack, expert robustness). */
  | { kind: 'fixed'; masks: tf.Tensor2D[] }
  /** Every MoE layer uses expert `expert` alone (per-expert robustness). */
  | { kind: 'force'; expert: number };

export interface ForwardOptions {
  /** BatchNorm uses batch statistics (true) or running statistics (false). */
  training: boolean;
  /** With `training`, fold the batch statistics into the running ones (only in the weight-update pass). */
  updateBnStats?: boolean;
  routing?: RoutingMode;
  /**
   * Sparse inference (needs `training: false`): inactive experts are not computed. Each MoE conv runs only the
   * output channels of the chosen experts, samples grouped by their choice, and where its input comes straight
   * from another MoE conv, only the weight rows of that conv's active experts. Same logits as the masked dense
   * forward up to float rounding; not differentiable with respect to the routing (inference only).
   */
  sparse?: boolean;
  /**
   * Noisy top-k gating (training update passes only): Gaussian noise of this standard deviation is added to every
   * router's logits before the softmax and top-k, drawn from `seed` (one stream per router), so a seed reproduces
   * the step. The routing reported for the pass carries the noisy logits.
   */
  routerNoise?: { std: number; seed: number };
  /**
   * Auxiliary-loss-free balancing (training update passes, or the balancing pass of `balanceBiasOn` 'clean' /
   * 'clean-inference'; never sparse inference): after this pass's routing is decided, every
   * router's selection bias moves by rate × N × (k/N − load of each expert in this batch). See
   * `method.routing.balanceBias`.
   */
  selectionBiasRate?: number;
  /** Frozen routers (`method.routing.freezeRoutersAfterEpochs`): their BatchNorm layers (image-level routers,
   * `routerNorm`) do not fold this pass's statistics into their running ones, so no pass changes a router. */
  routersFrozen?: boolean;
  /**
   * How the hard routing mask is differentiated: 'straight-through' (default) hands d loss / d mask to the router's
   * probabilities, which is how a router learns from the task; 'none' treats the routing as a constant of the pass,
   * the true derivative of a discrete choice. The straight-through term is not a derivative of the model's output:
   * where a router is undecided (balanced routing), it is large, and it reaches the input and the layers below the
   * router too (`method.routing.straightThrough`, docs/architecture.md "Routing gradients").
   */
  routingGradient?: 'straight-through' | 'none';
}

/** One MoE layer's routing in one forward pass. */
export interface LayerRouting {
  /** Router logits [B, N] (for a shared router, the same tensor in every layer). */
  logits: tf.Tensor2D;
  /** softmax(logits) [B, N]. */
  probs: tf.Tensor2D;
  /** The hard 0/1 mask actually applied [B, N]: exactly k ones per row. Its gradient is straight-through:
   * d mask / d probs = identity (d mask / d logits = identity for the `reference` router, as the reference code),
   * so the router learns from the loss although the mask is discrete. */
  mask: tf.Tensor2D;
}

export interface ForwardResult {
  logits: tf.Tensor2D;
  /** One entry per MoE layer (empty for a dense model). */
  routing: LayerRouting[];
}

export interface MoeLayerInfo {
  /** Stable name, e.g. `layer2.0.conv1`. */
  name: string;
  /** Index of the router that decides this layer (0 for every layer with a shared router). */
  router: number;
  /** Channels the layer hands on: N·c in the `blocks` layout, c in the `gathered` one. */
  outChannels: number;
  /** Channels of one expert. */
  expertChannels: number;
}

export interface FlopsReport {
  /** Multiply-accumulates ×2 of the dense model of the same backbone, per image. */
  dense: number;
  /** FLOPs the MoE model really needs per image when inactive experts are skipped (routers included). */
  active: number;
  /** Router FLOPs included in `active`. */
  router: number;
}

/**
 * A parameter made of one block per expert along `axis` (`blocks` equal slices) that tied training keeps equal
 * (`method.routing.tieExpertsEpochs`): an MoE conv's output channels, and in the blocks layout its BN's channels and
 * the input rows of the one layer that reads its output.
 */
export interface ExpertTie {
  name: string;
  variable: tf.Variable;
  axis: number;
  blocks: number;
  /** How a step's changes become one: 'sum' of the copies' updates for trained weights (one shared weight would get
   * every copy's gradient), 'mean' for BN running statistics (every copy folds in the same batch statistics). */
  combine: 'sum' | 'mean';
}

export interface Model {
  readonly config: ModelConfig;
  readonly inputShape: [number, number, number];
  readonly numClasses: number;
  /** Number of experts N (1 for a dense model). */
  readonly numExperts: number;
  readonly topK: number;
  readonly moeLayers: readonly MoeLayerInfo[];
  /** Every parameter and BN statistic, in a fixed order (the checkpoint order). */
  readonly params: readonly Param[];

  forward(x: tf.Tensor4D, opts: ForwardOptions): ForwardResult;
  /** Trainable variables of a group (what an optimizer updates). */
  trainableVariables(group?: ParamGroup): tf.Variable[];
  flops(): FlopsReport;
  /** The expert-indexed parameters to keep equal while experts are tied; throws CONFIG_INVALID (naming the layer)
   * where tying cannot keep the experts interchangeable. Absent on models without MoE layers. */
  expertTies?(): ExpertTie[];
  dispose(): void;
}
