/**
 * Results of robustness analysis, as stored in `analysis/*.json` and sent over RPC.
 * Every figure follows README "Metric definitions" (summarised in docs/architecture.md).
 * Fractions and accuracies are in [0,1].
 */
import type { AttackConfig, AttackName } from '../config/types';

export interface AttackResult {
  name: AttackName;
  settings: AttackConfig;
  /** Accuracy of the whole model on this attack's adversarial examples. */
  accuracy: number;
}

export interface RouterRobustness {
  /** Attack on the routers alone (maximises routing change). */
  settings: AttackConfig;
  /** Fraction of (sample, MoE layer) routing decisions unchanged by the router attack. */
  decisionsKept: number;
  /** Accuracy of the model on the router-attacked inputs. */
  accuracy: number;
}

export interface ExpertRobustness {
  settings: AttackConfig;
  /** Accuracy under PGD with every routing decision frozen to its clean value. */
  accuracy: number;
}

export interface PerExpertRobustness {
  expert: number;
  /** SA / RA with every MoE layer forced to this one expert. */
  sa: number;
  ra: number;
}

export interface LayerRoutingStats {
  layer: string;
  /** Fraction of samples whose routing in this layer changes under the full attack. */
  changeRate: number;
  /** Selection frequency of each expert (sums to k), clean and adversarial. */
  loadClean: number[];
  loadAdv: number[];
  /** class × expert selection counts, clean and adversarial. */
  perClassClean: number[][];
  perClassAdv: number[][];
  /**
   * A degenerate router: more than 90% of clean inputs get the same routing decision (the same set of k experts;
   * for k = 1, the same expert), or its probabilities are not finite.
   */
  collapsed: boolean;
  /** Largest share of clean inputs that get the same routing decision (expert set). */
  decisionShare?: number;
  /** Entropy of the clean routing decisions (expert sets) over log C(N, k), in [0, 1]: 1 when every possible
   * decision is equally frequent, 0 when every input gets the same one. */
  decisionEntropy?: number;
  /** Largest share of clean inputs whose top-1 expert (highest router probability) is the same expert. */
  top1Share?: number;
  /** Clean inputs whose router probabilities were not finite (NaN/Inf): a degenerate router. */
  nonFinite?: number;
}

/** The four cells of router-expert mismatch: routing kept (in every MoE layer) or changed, × prediction
 * right or wrong under the full attack. Values are sample ids (indices into the evaluated test subset). */
export interface MismatchCells {
  keptRight: number[];
  keptWrong: number[];
  changedRight: number[];
  changedWrong: number[];
}

export interface InferenceCost {
  denseFlops: number;
  activeFlops: number;
  /** 1 − active / dense. */
  reduction: number;
  /**
   * Measured ms per image at the stated batch (medians), where measured: `moe` with inactive experts skipped,
   * `moeMasked` the same MoE computed densely with the mask, `dense` the dense counterpart (same backbone and
   * width, MoE off; random weights: latency does not depend on them).
   */
  latencyMs?: { dense?: number; moe?: number; moeMasked?: number; batch: number };
}

/**
 * Per-sample results of the full attack (the one that defines RA), column by column so that 10,000 samples stay
 * compact. Index i of every column is the i-th evaluated sample; `ids[i]` is its index in the run's test split
 * (what `inspect` and `samples` take).
 */
export interface PerSampleData {
  ids: number[];
  labels: number[];
  predClean: number[];
  /** Max softmax probability on the clean input. */
  confClean: number[];
  predAdv: number[];
  confAdv: number[];
  /** `k` = experts chosen per layer. */
  k: number;
  /** Per MoE layer (order of `layers`): the chosen experts, ascending, k per sample: sample i at [i·k, (i+1)·k). */
  routeClean: number[][];
  routeAdv: number[][];
}

export interface RobustnessReport {
  /** Number of test samples evaluated. */
  samples: number;
  sa: number;
  ra: number;
  /** Attack that defines RA. */
  attack: AttackConfig;
  routerRobustness: RouterRobustness | null;
  expertRobustness: ExpertRobustness | null;
  perExpert: PerExpertRobustness[];
  /** Why `perExpert` is empty although asked for (a k > 1 model: one expert alone is not a configuration it was
   * trained for). */
  perExpertNote?: string;
  attacks: AttackResult[];
  raCurve: { eps: number; ra: number }[];
  layers: LayerRoutingStats[];
  mismatch: MismatchCells | null;
  cost: InferenceCost;
  /** Per-sample predictions and routing under the full attack (absent in reports written before it existed). */
  perSample?: PerSampleData;
  /** Wall time of the analysis, seconds. */
  seconds: number;
}

/** One sample, as the Inspector shows it. Images are HWC float arrays in [0,1]. */
export interface SampleInspection {
  id: number;
  label: number;
  shape: [number, number, number];
  clean: number[];
  adversarial: number[];
  predClean: number;
  confClean: number;
  predAdv: number;
  confAdv: number;
  /** Per MoE layer: router probabilities and chosen experts, clean vs adversarial. */
  routing: {
    layer: string;
    probsClean: number[];
    probsAdv: number[];
    expertsClean: number[];
    expertsAdv: number[];
    changed: boolean;
  }[];
  attack: AttackName;
  eps: number;
  frozenRouting: boolean;
}
