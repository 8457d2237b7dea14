/**
 * Router-collapse detector. The official code's issues report routers that send (almost) every input to
 * one expert; the other experts then stop learning and the MoE degenerates to a narrow dense net.
 * Training reports it (a warning in the run's state and log) but does not stop: a collapse can be
 * transient, and the user decides.
 *
 * Input per step: the expert load of each MoE layer, load[l][e] = fraction of the batch's routing
 * selections in layer l that went to expert e (mean of the 0/1 mask over the batch, divided by k so the
 * row sums to 1; for k = 1 it is the fraction of inputs). Over a sliding window of steps the loads are
 * averaged; a router that gives (nearly) every input the same decision — its k most chosen experts each
 * taken by more than `threshold` of the inputs — is reported once when it crosses, and again only after it
 * has recovered and collapsed anew. The analysis (LayerRoutingStats.collapsed) uses the same rule on exact
 * per-input decisions.
 */
import type { MoeLayerInfo } from '../models/types';

/** What a collapse warning tells the user to turn on (README "Routing that does not collapse"). */
export const COLLAPSE_REMEDY_HINT =
  'method.routing (balanceBias, tieExpertsEpochs, classTarget, balance, entropy, noise) and model.moe.routerNorm counter it; README "Routing that does not collapse" gives their measured cost';

export interface CollapseOptions {
  /** Steps averaged (default 20). A report needs a full window, so one odd batch never triggers it. */
  window?: number;
  /** Fraction of inputs given the same decision above which a router counts as collapsed (default 0.9). */
  threshold?: number;
}

interface RouterTrack {
  /** First MoE layer decided by this router (its load stands for all layers it decides in router mode). */
  layer: number;
  layers: string[];
  history: number[][];
  collapsed: boolean;
}

export class CollapseDetector {
  readonly window: number;
  readonly threshold: number;
  private readonly routers: RouterTrack[] = [];

  constructor(
    private readonly layers: readonly MoeLayerInfo[],
    private readonly topK: number,
    private readonly numExperts: number,
    options: CollapseOptions = {},
  ) {
    this.window = options.window ?? 20;
    this.threshold = options.threshold ?? 0.9;
    if (!(Number.isInteger(this.window) && this.window >= 1)) throw new RangeError(`collapse window must be a positive integer, got ${this.window}`);
    if (!(this.threshold > 0 && this.threshold <= 1)) throw new RangeError(`collapse threshold must be in (0, 1], got ${this.threshold}`);
    const byRouter = new Map<number, RouterTrack>();
    layers.forEach((l, i) => {
      let t = byRouter.get(l.router);
      if (!t) {
        t = { layer: i, layers: [], history: [], collapsed: false };
        byRouter.set(l.router, t);
        this.routers.push(t);
      }
      t.layers.push(l.name);
    });
  }

  /**
   * Feeds one step's loads ([layer][expert], rows summing to 1) and returns the warnings this step
   * raises (usually none). With k = N there is no choice to collapse, and nothing is ever reported.
   */
  observe(step: number, load: readonly (readonly number[])[]): string[] {
    if (load.length !== this.layers.length) throw new RangeError(`expected loads of ${this.layers.length} MoE layers, got ${load.length}`);
    if (this.topK >= this.numExperts) return [];
    const warnings: string[] = [];
    for (const r of this.routers) {
      r.history.push([...load[r.layer]]);
      if (r.history.length > this.window) r.history.shift();
      if (r.history.length < this.window) continue;
      const mean = new Array<number>(this.numExperts).fill(0);
      for (const h of r.history) h.forEach((v, e) => (mean[e] += v / r.history.length));
      // Collapsed = (nearly) every input gets the same decision. From loads alone: the k most chosen experts
      // are each in more than `threshold` of the decisions (share·k = fraction of inputs choosing that expert).
      // For k = 1 this is "more than 90% of inputs to one expert".
      const order = mean.map((v, e) => e).sort((a, b) => mean[b] - mean[a] || a - b);
      const chosen = order.slice(0, this.topK).sort((a, b) => a - b);
      const inputsFraction = mean[order[this.topK - 1]] * this.topK;
      const isCollapsed = inputsFraction > this.threshold;
      if (isCollapsed && !r.collapsed) {
        const who = r.layers.length === 1 ? `the router of ${r.layers[0]}` : `the shared router (${r.layers.length} MoE layers)`;
        const what = this.topK === 1 ? `expert ${chosen[0]}` : `experts ${chosen.join(' and ')} together`;
        warnings.push(
          `router collapse at step ${step}: ${who} sent ${(100 * inputsFraction).toFixed(1)}% of its inputs to ${what} ` +
            `over the last ${this.window} steps (threshold ${(100 * this.threshold).toFixed(0)}%); ${COLLAPSE_REMEDY_HINT}`,
        );
      }
      r.collapsed = isCollapsed;
    }
    return warnings;
  }

  /** Names of the MoE layers whose router is currently collapsed. */
  collapsedLayers(): string[] {
    return this.routers.filter((r) => r.collapsed).flatMap((r) => r.layers);
  }
}
