/**
 * One training step of each method (README "Config format": the methods, and `official` as the reference code's loop step for step).
 *
 * Conventions shared by every method:
 * - Adversarial examples come from an injected `AdversaryFn` (the trainer builds it from the method's
 *   attack at the current ε, see `adversary.ts`); it is called outside any gradient tape, and every call
 *   attacks the model as it is at that moment ("fresh" examples after an update).
 * - Every forward whose loss is differentiated for an update runs BN on batch statistics. Those of
 *   updates of the experts (and of the joint methods) also fold them into the running statistics, as a
 *   PyTorch model in train() mode does; router updates do not: with experts frozen, nothing of theirs
 *   changes, not even BN statistics, and every batch is still folded in once by its expert update
 *   (which also runs the shared router's BN). Attack forwards never touch the running statistics.
 * - Gradients come from `tf.variableGrads` restricted to the variables of the optimizer(s) being
 *   stepped, so a router step cannot move an expert weight and vice versa.
 * - NaN guard without extra round trips: each update is applied under a device-side condition
 *   "this loss, its gradient norm and every earlier update of this step are finite" (`tf.where` in
 *   the optimizer), so a non-finite update leaves weights and momentum as they were. The step then reads
 *   every metric in ONE transfer; if a check failed it restores the snapshot taken at the start of the
 *   step (parameters, BN running statistics, momentum) and throws NAN_LOSS naming the step and the
 *   loss — the model is left exactly as it was before the step (last good parameters).
 *
 * Metrics (all numbers, read once): `loss`, `trainAcc` (argmax accuracy of the pass the model was
 * updated on: the adversarial batch for AT methods), `lr`, `gradNorm` (of the classification update);
 * advmoe/official add `expertLoss`, `routerLoss` (absent on batches without a router step), `routerLr`
 * and `routerGradNorm`.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../util/registerGradients';
import type { MethodConfig, MethodName, ScheduleConfig } from '../config/types';
import { tieExperts } from '../models/tying';
import type { ExpertTie, ForwardOptions, LayerRouting, Model } from '../models/types';
import { AdvMoEError } from '../util/errors';
import type { CollapseDetector } from './collapse';
import { accuracy, crossEntropy, routerBalanceLoss, routerCrossEntropy, routerEntropyLoss, routerKl, tradesKl } from './losses';
import { SgdMomentum } from './optimizer';

/** Which loss the attack maximises: CE on the labels, TRADES' KL(f(x) ‖ f(x')), or the reference code's attack
 * (evaluation-mode KL of model and router outputs, see `referenceTradesAttack`). */
export type AdversaryLoss = 'ce' | 'trades-kl' | 'reference-trades';

/**
 * Makes adversarial examples of a batch against the model's current weights (pixel space, clamped).
 * Returns a new tensor that the step owns and disposes. Async because attacks yield between steps.
 */
export type AdversaryFn = (x: tf.Tensor4D, y: tf.Tensor1D, loss: AdversaryLoss) => Promise<tf.Tensor4D>;

/** One optimizer per parameter group. Joint methods step both at the same lr; AdvMoE alternates them. */
export interface Optimizers {
  router: SgdMomentum;
  expert: SgdMomentum;
}

export function createOptimizers(model: Model, schedule: Pick<ScheduleConfig, 'momentum' | 'weightDecay'>): Optimizers {
  const opts = { momentum: schedule.momentum, weightDecay: schedule.weightDecay };
  return {
    router: new SgdMomentum('router', model.params.filter((p) => p.group === 'router'), opts),
    expert: new SgdMomentum('expert', model.params.filter((p) => p.group === 'expert'), opts),
  };
}

const NEEDS_ROUTERS: readonly MethodName[] = ['advmoe', 'official'];
const ADVERSARIAL: readonly MethodName[] = ['pgd-at', 'trades', 'advmoe', 'official'];

/** Throws CONFIG_INVALID when the method cannot train this model (call it before the first batch). */
export function checkMethodSupported(method: MethodName, model: Model): void {
  if (NEEDS_ROUTERS.includes(method) && (model.moeLayers.length === 0 || model.trainableVariables('router').length === 0)) {
    throw new AdvMoEError(
      'CONFIG_INVALID',
      `method "${method}" trains routers and experts separately, but this model is dense (model.moe.enabled is false): ` +
        `there is nothing to route. Enable model.moe, or use "pgd-at" or "trades" for a dense baseline.`,
      { method },
    );
  }
}

export interface StepContext {
  model: Model;
  optimizers: Optimizers;
  /** Batch in [0,1], NHWC. */
  x: tf.Tensor4D;
  /** Integer labels [B]. */
  y: tf.Tensor1D;
  /** Learning rate of this step (from the schedule); the router's is lr × advmoe.routerLrScale in advmoe/official. */
  lr: number;
  /** Global step index: names the step in errors and decides AdvMoE's router turns. */
  step: number;
  /** Required by the adversarial methods. */
  adversary?: AdversaryFn;
  /** When given, the step's expert loads are fed to it and its warnings returned. */
  collapse?: CollapseDetector;
  /** Seeds of the router noise (`method.routing.noise`), one draw per noisy pass; the trainer's checkpointed
   * stream, so a resumed run draws the same noise. Default: the step index. */
  noiseSeed?: () => number;
  /** While the experts are tied (`method.routing.tieExpertsEpochs`): the parameters to tie after the step's updates. */
  tiedExperts?: readonly ExpertTie[];
  /** From `method.routing.freezeRoutersAfterEpochs` on: no update changes a router, its selection bias or its BN statistics. */
  routersFrozen?: boolean;
}

export interface StepResult {
  metrics: Record<string, number>;
  /** Expert load of the update pass ([MoE layer][expert], rows sum to 1); empty for a dense model. */
  expertLoad: number[][];
  /** Collapse warnings raised by this step. */
  warnings: string[];
}

const UPDATE_PASS: ForwardOptions = { training: true, updateBnStats: true };
/** Router updates: batch statistics, running statistics left alone (experts frozen). */
const ROUTER_PASS: ForwardOptions = { training: true, updateBnStats: false };
/** The update pass once the routers are frozen: their own BN layers (if any) keep their running statistics. */
const FROZEN_ROUTERS_UPDATE_PASS: ForwardOptions = { ...UPDATE_PASS, routersFrozen: true };

export async function trainStep(method: MethodConfig, ctx: StepContext): Promise<StepResult> {
  const { model } = ctx;
  checkMethodSupported(method.kind, model);
  if (ADVERSARIAL.includes(method.kind) && !ctx.adversary) {
    throw new AdvMoEError('INVALID_ARGUMENT', `method "${method.kind}" needs an adversary to make its training examples`);
  }
  if (ctx.x.shape[0] !== ctx.y.shape[0]) {
    throw new RangeError(`batch has ${ctx.x.shape[0]} inputs but ${ctx.y.shape[0]} labels`);
  }
  // Rollback point. Clones share data with the variables (no copy) and assign() gives a variable new
  // data, so these hold the values from before the step at no cost. The device-side guard already keeps
  // a non-finite update from being applied; the snapshot also undoes what the guard cannot: the BN
  // running statistics folded in by a NaN forward, and an earlier, finite update of the same step
  // (AdvMoE's router step before a failing expert step), so a failed step is atomic.
  const snapshot = model.params.map((p) => ({ p, before: tf.clone(p.variable) }));
  const optimizerState = { ...ctx.optimizers.router.getState(), ...ctx.optimizers.expert.getState() };
  const rec = new Recorder(ctx);
  try {
    await runMethod(method, ctx, rec);
    if (ctx.tiedExperts?.length) tieExperts(ctx.tiedExperts, new Map(snapshot.map(({ p, before }) => [p.variable, before])));
    const packed = tf.tidy(() => rec.pack());
    let values: Float32Array;
    try {
      values = (await packed.data()) as Float32Array;
    } finally {
      packed.dispose();
    }
    const result = rec.unpack(values);
    if (result.failure) {
      tf.tidy(() => snapshot.forEach(({ p, before }) => p.variable.assign(before)));
      ctx.optimizers.router.setState(optimizerState);
      ctx.optimizers.expert.setState(optimizerState);
      throw new AdvMoEError(
        'NAN_LOSS',
        `step ${ctx.step} (${method.kind}): ${result.failure}; the update was not applied, parameters keep their values from before this step`,
        { step: ctx.step, method: method.kind },
      );
    }
    result.metrics.lr = ctx.lr;
    if (method.kind === 'advmoe' || method.kind === 'official') result.metrics.routerLr = ctx.lr * method.advmoe.routerLrScale;
    const warnings = ctx.collapse && result.expertLoad.length ? ctx.collapse.observe(ctx.step, result.expertLoad) : [];
    return { metrics: result.metrics, expertLoad: result.expertLoad, warnings };
  } finally {
    rec.dispose();
    for (const s of snapshot) s.before.dispose();
    for (const t of Object.values(optimizerState)) t.dispose();
  }
}

/**
 * The methods. Attacks are async (they yield to the event loop so a cancel can arrive), so tf.tidy cannot
 * span a step: each update is its own tidy, adversarial batches are held by the recorder, and the
 * recorder disposes everything it holds when the step ends, however it ends.
 */
async function runMethod(method: MethodConfig, ctx: StepContext, rec: Recorder): Promise<void> {
  const { model, x, y, lr, optimizers } = ctx;
  const frozen = !!ctx.routersFrozen;
  const beta = method.tradesBeta;
  const { all, remedies, routerUpdatePass, updatePass, expertPass } = stepPasses(method, ctx);
  const attack = async (loss: AdversaryLoss): Promise<tf.Tensor4D> => {
    const xAdv = await ctx.adversary!(x, y, loss);
    // The step disposes what the adversary returns; an adversary that hands back x itself (ε = 0) must
    // not cost the caller its batch.
    return rec.hold(xAdv === x ? tf.clone(x) : xAdv);
  };
  switch (method.kind) {
    case 'standard': {
      rec.main(update(rec, 'loss', all, () => remedies(classify(model.forward(x, routerUpdatePass(updatePass)), y))));
      return;
    }
    case 'pgd-at': {
      const xAdv = await attack('ce');
      rec.main(update(rec, 'loss', all, () => remedies(classify(model.forward(xAdv, routerUpdatePass(updatePass)), y))));
      return;
    }
    case 'trades': {
      const xAdv = await attack('trades-kl');
      rec.main(update(rec, 'loss', all, () => remedies(tradesPass(model, x, xAdv, y, beta, routerUpdatePass(updatePass)))));
      return;
    }
    case 'advmoe': {
      const { period, order, routerLrScale, loss } = method.advmoe;
      if (!(Number.isInteger(period) && period >= 1)) throw new AdvMoEError('CONFIG_INVALID', `method.advmoe.period must be an integer ≥ 1, got ${period}`);
      // Period p: the router step runs on every p-th batch (steps 0, p, 2p, …), the expert step on every
      // batch. Each step attacks the model as the previous step left it ("fresh" examples). Both steps minimise
      // the same robust loss, each over its own parameters: TRADES' (default) or PGD-AT's CE.
      // Tied experts compute the same function, so the task gives the routers nothing real to learn (in the blocks
      // layout the straight-through estimator would only reward whichever expert was chosen): their step is skipped
      // then, unless a loss remedy trains them.
      const { classTarget, balance, entropy } = method.routing;
      const routersIdle = !!ctx.tiedExperts?.length && classTarget === 0 && balance === 0 && entropy === 0;
      const routerTurn = ctx.step % period === 0 && !routersIdle && !frozen;
      const robustPass = async (pass: ForwardOptions): Promise<() => PassOutput> => {
        if (loss === 'trades') {
          const xAdv = await attack('trades-kl');
          return () => tradesPass(model, x, xAdv, y, beta, pass);
        }
        const xAdv = await attack('ce');
        return () => classify(model.forward(xAdv, pass), y);
      };
      const routerStep = async (): Promise<void> => {
        const lossFn = await robustPass(routerUpdatePass(ROUTER_PASS));
        const u = update(rec, 'router loss', [{ opt: optimizers.router, lr: lr * routerLrScale }], () => remedies(lossFn()));
        rec.value('routerLoss', u.loss);
        rec.value('routerGradNorm', u.gradNorm);
      };
      const expertStep = async (): Promise<void> => {
        const lossFn = await robustPass(expertPass);
        const u = update(rec, 'expert loss', [{ opt: optimizers.expert, lr }], lossFn);
        rec.main(u);
        rec.value('expertLoss', u.loss);
      };
      if (order === 'router-first') {
        if (routerTurn) await routerStep();
        await expertStep();
      } else {
        await expertStep();
        if (routerTurn) await routerStep();
      }
      return;
    }
    case 'official': {
      // The reference code's loop (README "Methods"): attack → expert update CE(f(x), y) + β·KL(f(x) ‖ f(x′)) →
      // fresh attack against the updated model → router update CE(r(x), y mod N) + α·KL(r(x) ‖ r(x′)), r(x) on
      // the clean batch. The class-partitioned target is built in; the other remedies add to the router loss.
      const xAdv1 = await attack('reference-trades');
      const e = update(rec, 'expert loss', [{ opt: optimizers.expert, lr }], () => tradesPass(model, x, xAdv1, y, beta, updatePass));
      rec.main(e);
      rec.value('expertLoss', e.loss);
      if (frozen) return;
      const xAdv2 = await attack('reference-trades');
      const alpha = method.officialRouterAlpha;
      const pass = routerUpdatePass(ROUTER_PASS);
      const r = update(rec, 'router loss', [{ opt: optimizers.router, lr: lr * method.advmoe.routerLrScale }], () => {
        const clean = model.forward(x, pass);
        const adv = model.forward(xAdv2, pass);
        const loss = tf.add(
          routerCrossEntropy(clean.routing, model.moeLayers, y, model.numExperts),
          tf.mul(routerKl(clean.routing, adv.routing, model.moeLayers), alpha),
        ) as tf.Scalar;
        return remedies({ loss, routing: clean.routing }, { classTarget: false });
      });
      rec.value('routerLoss', r.loss);
      rec.value('routerGradNorm', r.gradNorm);
      return;
    }
  }
}

/**
 * What a step's updates run with: the optimizers of a joint update, the remedy terms, the options of passes that
 * update routers (noisy gating when asked), of the update pass (selection-bias moves when asked) and of AdvMoE's
 * expert step. Frozen routers (`routersFrozen`): only the experts' optimizer steps, and nothing that exists to
 * train routers runs.
 */
function stepPasses(method: MethodConfig, ctx: StepContext) {
  const { model, x, y, lr, optimizers } = ctx;
  const frozen = !!ctx.routersFrozen;
  const all = frozen ? [{ opt: optimizers.expert, lr }] : [
    { opt: optimizers.expert, lr },
    { opt: optimizers.router, lr },
  ];
  const remedies: ReturnType<typeof routingRemedies> = frozen ? (pass) => pass : routingRemedies(method, model, y);
  const routerUpdatePass = (base: ForwardOptions): ForwardOptions =>
    method.routing.noise > 0 && model.moeLayers.length && !frozen ? { ...base, routerNoise: { std: method.routing.noise, seed: ctx.noiseSeed?.() ?? ctx.step } } : base;
  const onlyRouterUpdates = method.routing.straightThrough === 'router-updates';
  const pass = frozen ? FROZEN_ROUTERS_UPDATE_PASS : balanceSelectionBiases(method, model, x);
  // Under "router-updates" the straight-through gradient runs only in passes whose update trains routers
  // (docs/architecture.md "Routing gradients"): AdvMoE's expert step never does, a joint update not once frozen.
  const detached: ForwardOptions = { ...pass, routingGradient: 'none' };
  const updatePass = onlyRouterUpdates && frozen ? detached : pass;
  const expertPass = onlyRouterUpdates ? detached : pass;
  return { all, remedies, routerUpdatePass, updatePass, expertPass };
}

/**
 * Auxiliary-loss-free balancing moves the selection biases once per batch: by default on the passes that also fold BN
 * statistics (per forward of the batch, on the inputs the model is trained on: adversarial ones in adversarial
 * training), whose options this returns; with balanceBiasOn "clean", by the routing of the clean batch, from a
 * forward of its own that this runs ("clean-inference": that forward in inference mode).
 */
function balanceSelectionBiases(method: MethodConfig, model: Model, x: tf.Tensor4D): ForwardOptions {
  const { balanceBias, balanceBiasOn } = method.routing;
  if (!(balanceBias > 0 && model.moeLayers.length > 0)) return UPDATE_PASS;
  if (balanceBiasOn === 'update-passes') return { ...UPDATE_PASS, selectionBiasRate: balanceBias };
  // "clean-inference" routes as inference does (running BN statistics): with batch statistics the clean routing
  // of training can be balanced while that of inference sends every input to one expert.
  const balancing: ForwardOptions = balanceBiasOn === 'clean-inference' ? { training: false } : ROUTER_PASS;
  tf.tidy(() => void model.forward(x, { ...balancing, selectionBiasRate: balanceBias }));
  return UPDATE_PASS;
}

/**
 * The collapse remedies of `method.routing` as a function that adds their terms to a pass's loss, computed on the
 * pass's routing (README "Routing that does not collapse"). A dense model has no router: the loss passes through.
 */
function routingRemedies(method: MethodConfig, model: Model, y: tf.Tensor1D): (pass: PassOutput, opts?: { classTarget: boolean }) => PassOutput {
  const { classTarget, balance, entropy } = method.routing;
  const moe = model.moeLayers.length > 0;
  return (pass, opts = { classTarget: true }) => {
    const routing = pass.routing;
    if (!moe || !routing?.length) return pass;
    const terms: tf.Scalar[] = [];
    if (classTarget > 0 && opts.classTarget) terms.push(tf.mul(routerCrossEntropy(routing, model.moeLayers, y, model.numExperts), classTarget));
    if (balance > 0) terms.push(tf.mul(routerBalanceLoss(routing, model.moeLayers, model.numExperts, model.topK), balance));
    if (entropy > 0) terms.push(tf.mul(routerEntropyLoss(routing, model.moeLayers, model.numExperts), entropy));
    return terms.length ? { ...pass, loss: tf.addN([pass.loss, ...terms]) as tf.Scalar } : pass;
  };
}

interface PassOutput {
  loss: tf.Scalar;
  /** Logits and routing of the pass whose accuracy and expert load the step reports. */
  logits?: tf.Tensor2D;
  routing?: LayerRouting[];
}

function classify(f: { logits: tf.Tensor2D; routing: LayerRouting[] }, y: tf.Tensor1D): PassOutput {
  return { loss: crossEntropy(f.logits, y), logits: f.logits, routing: f.routing };
}

/**
 * TRADES: CE(f(x), y) + β·KL(f(x) ‖ f(x')), gradients through both passes. Reports the adversarial pass's
 * accuracy and the clean pass's routing (the remedies act on how clean inputs are routed, as the reference's
 * router target does).
 */
function tradesPass(model: Model, x: tf.Tensor4D, xAdv: tf.Tensor4D, y: tf.Tensor1D, beta: number, pass: ForwardOptions): PassOutput {
  const clean = model.forward(x, pass);
  const adv = model.forward(xAdv, pass);
  const loss = tf.add(crossEntropy(clean.logits, y), tf.mul(tradesKl(clean.logits, adv.logits), beta)) as tf.Scalar;
  return { loss, logits: adv.logits, routing: clean.routing };
}

interface UpdateTensors {
  loss: tf.Scalar;
  gradNorm: tf.Scalar;
  acc: tf.Scalar | null;
  load: tf.Tensor2D | null;
}

/**
 * Differentiates `lossFn` w.r.t. the targets' variables and steps each target's optimizer at its lr,
 * guarded by "everything so far in this step is finite". Its tensors outlive the update only through
 * the recorder, which disposes them at the end of the step.
 */
function update(rec: Recorder, what: string, targets: Array<{ opt: SgdMomentum; lr: number }>, lossFn: () => PassOutput): UpdateTensors {
  const vars = targets.flatMap((t) => t.opt.variables());
  if (vars.length === 0) throw new AdvMoEError('INVALID_ARGUMENT', `${what}: the model has no trainable parameters in this group`);
  const y = rec.ctx.y;
  const out = tf.tidy(() => {
    // variableGrads disposes everything its function made except the returned loss, so the pass's
    // accuracy and load are kept explicitly and handed back to this tidy just after.
    let kept: tf.Tensor[] = [];
    let acc: tf.Tensor | null = null;
    let load: tf.Tensor | null = null;
    let result: ReturnType<typeof tf.variableGrads>;
    try {
      result = tf.variableGrads(() => {
        const pass = lossFn();
        if (pass.logits) kept.push((acc = tf.keep(accuracy(pass.logits, y))));
        if (pass.routing?.length) kept.push((load = tf.keep(expertLoad(pass.routing))));
        return pass.loss;
      }, vars);
    } catch (e) {
      for (const t of kept) t.dispose();
      throw e;
    }
    // Re-home the kept tensors in this tidy's scope (clone shares data; the kept originals go).
    const accT = acc ? tf.clone(acc as tf.Tensor) : null;
    const loadT = load ? tf.clone(load as tf.Tensor) : null;
    for (const t of kept) t.dispose();
    kept = [];
    const { value, grads } = result;
    const gradSq = tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))));
    const finite = tf.logicalAnd(tf.isFinite(value), tf.isFinite(gradSq));
    const ok = tf.logicalAnd(rec.ok, finite) as tf.Scalar;
    for (const t of targets) t.opt.applyGradients(grads, t.lr, ok);
    return { ok, loss: value, gradNorm: tf.sqrt(gradSq), ...(accT ? { acc: accT } : {}), ...(loadT ? { load: loadT } : {}) };
  });
  rec.setOk(out.ok as tf.Scalar);
  const u: UpdateTensors = {
    loss: rec.hold(out.loss as tf.Scalar),
    gradNorm: rec.hold(out.gradNorm as tf.Scalar),
    acc: out.acc ? rec.hold(out.acc as tf.Scalar) : null,
    load: out.load ? rec.hold(out.load as tf.Tensor2D) : null,
  };
  rec.check(what, u.loss, u.gradNorm);
  return u;
}

/** [layer][expert] share of the routing selections: mean of the 0/1 mask over the batch, divided by k. */
function expertLoad(routing: readonly LayerRouting[]): tf.Tensor2D {
  return tf.tidy(() => {
    const rows = routing.map((r) => {
      const m = tf.mean(r.mask, 0);
      return tf.div(m, tf.sum(m));
    });
    return tf.stack(rows) as tf.Tensor2D;
  });
}

/**
 * Collects the step's scalars on the device and packs them into one tensor, so the host reads
 * everything with a single transfer at the end of the step.
 */
class Recorder {
  /** "Every update of this step so far had a finite loss and gradient" (bool scalar). */
  ok: tf.Scalar = tf.scalar(true, 'bool');
  private readonly held: tf.Tensor[] = [];
  private readonly values: Array<{ name: string; t: tf.Scalar }> = [];
  private readonly checks: Array<{ what: string; loss: tf.Scalar; gradNorm: tf.Scalar }> = [];
  private load: tf.Tensor2D | null = null;
  private loadShape: [number, number] = [0, 0];

  constructor(readonly ctx: StepContext) {}

  /** Keeps a tensor until the step ends. */
  hold<T extends tf.Tensor>(t: T): T {
    this.held.push(t);
    return t;
  }

  setOk(ok: tf.Scalar): void {
    this.ok.dispose();
    this.ok = ok;
  }

  dispose(): void {
    this.ok.dispose();
    for (const t of this.held) t.dispose();
    this.held.length = 0;
  }

  value(name: string, t: tf.Scalar | null): void {
    if (t) this.values.push({ name, t });
  }

  /** The update the step's headline metrics describe. */
  main(u: UpdateTensors): void {
    this.value('loss', u.loss);
    this.value('trainAcc', u.acc);
    this.value('gradNorm', u.gradNorm);
    this.load = u.load;
  }

  check(what: string, loss: tf.Scalar, gradNorm: tf.Scalar): void {
    this.checks.push({ what, loss, gradNorm });
  }

  pack(): tf.Tensor1D {
    const parts: tf.Tensor[] = [
      ...this.values.map((v) => tf.reshape(tf.cast(v.t, 'float32'), [1])),
      ...this.checks.flatMap((c) => [tf.reshape(c.loss, [1]), tf.reshape(c.gradNorm, [1])]),
    ];
    if (this.load) {
      this.loadShape = [this.load.shape[0], this.load.shape[1]];
      parts.push(tf.reshape(this.load, [-1]));
    }
    return tf.concat(parts) as tf.Tensor1D;
  }

  unpack(v: Float32Array): { metrics: Record<string, number>; expertLoad: number[][]; failure: string | null } {
    let i = 0;
    const metrics: Record<string, number> = {};
    for (const { name } of this.values) metrics[name] = v[i++];
    let failure: string | null = null;
    for (const c of this.checks) {
      const loss = v[i++];
      const gradNorm = v[i++];
      if (failure) continue;
      if (!Number.isFinite(loss)) failure = `the ${c.what} is ${loss}`;
      else if (!Number.isFinite(gradNorm)) failure = `the ${c.what} is finite (${loss}) but its gradient is not (norm ${gradNorm})`;
    }
    const [layers, experts] = this.loadShape;
    const expertLoad: number[][] = [];
    for (let l = 0; l < layers; l++) expertLoad.push(Array.from(v.subarray(i + l * experts, i + (l + 1) * experts)));
    return { metrics, expertLoad, failure };
  }
}
