/**
 * Reading, validating and resolving experiment files. Validation is the JSON Schema the editor also uses
 * (schema.json), plus the cross-field rules a schema cannot say well (k ≤ N, …). Every error names the
 * field, the value and what is allowed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import { AdvMoEError } from '../util/errors';
import { numberProblems, preview } from './numbers';
import schema from './schema.json';
import type { AttackConfig, DatasetName, ExperimentConfig } from './types';

let validator: ReturnType<Ajv['compile']> | null = null;

/**
 * Validates `value` against schema.json and fills the schema's defaults into it (Ajv `useDefaults`): the schema
 * is the one source of the dataset-independent defaults (nested sections default to `{}`, so their fields are
 * filled too). Mutates `value`; callers pass a copy.
 */
function validateFillingDefaults(value: unknown): ErrorObject[] {
  if (!validator) {
    // strictNumbers: NaN and ±Infinity are not numbers (numbers.ts names them first; this is the backstop).
    const ajv = new Ajv({ allErrors: true, strict: false, verbose: true, strictNumbers: true, useDefaults: true });
    validator = ajv.compile(schema);
  }
  return validator(value) ? [] : (validator.errors ?? []);
}

/** "model.moe.topK" from "/model/moe/topK". */
function fieldName(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  // A key that is not a plain name (an unknown field " x{") is quoted, so the message still starts with it.
  return parts.length ? parts.map((p) => (/^[\w$-]+$/.test(p) ? p : JSON.stringify(p))).join('.') : '(top level)';
}

function valueAt(root: unknown, instancePath: string): unknown {
  let v: unknown = root;
  for (const p of instancePath.split('/').filter(Boolean)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

function describeError(e: ErrorObject, root: unknown): string {
  // A preview, not the whole value: the root of a 10,000-deep input would overflow JSON.stringify.
  const value = preview(valueAt(root, e.instancePath));
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${fieldName(e.instancePath, String(p.additionalProperty))}: unknown field (allowed here: ${allowedKeys(e)})`;
    case 'required':
      return `${fieldName(e.instancePath, String(p.missingProperty))}: required field is missing`;
    case 'enum':
      return `${fieldName(e.instancePath)}: ${value} is not allowed; use one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'type':
      return `${fieldName(e.instancePath)}: ${value} must be ${p.type}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `${fieldName(e.instancePath)}: ${value} must be ${p.comparison} ${p.limit}`;
    default:
      return `${fieldName(e.instancePath)}: ${value} ${e.message ?? 'is invalid'}`;
  }
}

function allowedKeys(e: ErrorObject): string {
  const props = (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return props ? Object.keys(props).filter((k) => k !== '$schema').join(', ') : 'see schema';
}

/**
 * The JSON a user's file holds (`what` names the kind of file in the error): CONFIG_NOT_FOUND when it cannot be
 * read, CONFIG_INVALID when it is not JSON.
 */
export function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new AdvMoEError('CONFIG_NOT_FOUND', `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new AdvMoEError('CONFIG_INVALID', `${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Reads and resolves an experiment file. */
export function loadConfigFile(file: string): ExperimentConfig {
  const raw = readJsonFile(file, 'experiment file');
  const defaultName = path.basename(file).replace(/\.advmoe\.json$|\.json$/, '');
  return resolveConfig(raw, { source: file, defaultName, baseDir: path.dirname(path.resolve(file)) });
}

export interface ResolveOptions {
  /** Named in error messages. */
  source?: string;
  defaultName?: string;
  /** data.root is resolved against this folder. */
  baseDir?: string;
}

/**
 * What the experiment schema (and the number checks) say about a raw experiment, without the cross-field rules:
 * one message per problem, each naming its field. Sweeps use it to blame one axis value on its own.
 */
export function experimentSchemaProblems(raw: unknown): string[] {
  const numbers = numberProblems(raw);
  if (numbers.length) return numbers;
  const errors = validateFillingDefaults(readLegacyRouterBalance(structuredClone(raw)));
  return [...new Set(errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'if').map((e) => describeError(e, raw)))];
}

/** Validates a parsed experiment object and fills every default. `raw` itself is not changed. */
export function resolveConfig(raw: unknown, opts: ResolveOptions = {}): ExperimentConfig {
  const where = opts.source ? `${opts.source}: ` : '';
  const numbers = numberProblems(raw);
  if (numbers.length) throw new AdvMoEError('CONFIG_INVALID', `${where}invalid experiment:\n  - ${numbers.join('\n  - ')}`, { errors: numbers });
  const filled = readLegacyRouterBalance(structuredClone(raw));
  const errors = validateFillingDefaults(filled);
  if (errors.length) {
    // oneOf branches report once per branch; keep the distinct messages.
    const messages = [...new Set(errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'if').map((e) => describeError(e, raw)))];
    throw new AdvMoEError('CONFIG_INVALID', `${where}invalid experiment:\n  - ${messages.join('\n  - ')}`, { errors: messages });
  }
  // Valid and filled: every field with a schema default is present. What remains here are the defaults the
  // schema cannot state: those that depend on the dataset, the method or the file's name.
  const r = filled as Record<string, any>;
  const dataset: DatasetName = r.data.dataset;
  const digits = dataset === 'mnist' || dataset === 'fashion-mnist';
  const d = digits ? DIGIT_DEFAULTS : CIFAR_DEFAULTS;
  const methodKind = r.method.kind;
  const trainAttackDefaults = methodKind === 'official' && !digits ? OFFICIAL_TRAIN_ATTACK : d.trainAttack;
  const moe = r.model.moe;

  const cfg: ExperimentConfig = {
    name: r.name ?? opts.defaultName ?? 'experiment',
    seed: r.seed,
    backend: r.backend,
    data: {
      ...r.data,
      root: dataRoot(dataset, r.data.root, opts.baseDir),
      augment: r.data.augment ?? !digits,
      imageSize: dataset === 'image-folder' ? (r.data.imageSize ?? 64) : r.data.imageSize,
    },
    model: {
      ...r.model,
      // The reference code routes every MoE layer by one image-level router and gathers the chosen expert's
      // channels; `official` follows it (schema.json states no default for these two).
      moe: {
        ...moe,
        router: moe.router ?? (methodKind === 'official' ? 'reference' : 'per-layer'),
        layout: moe.layout ?? (methodKind === 'official' ? 'gathered' : 'blocks'),
      },
    },
    method: {
      kind: methodKind,
      tradesBeta: r.method.tradesBeta,
      officialRouterAlpha: r.method.officialRouterAlpha,
      routing: r.method.routing,
      epsWarmupEpochs: r.method.epsWarmupEpochs ?? d.epsWarmupEpochs,
      attack: attack(r.method.attack, trainAttackDefaults),
      advmoe: r.method.advmoe,
    },
    schedule: {
      ...r.schedule,
      epochs: r.schedule.epochs ?? d.epochs,
      batchSize: r.schedule.batchSize ?? d.batchSize,
      lr: r.schedule.lr ?? d.lr,
      milestones: r.schedule.milestones ?? [],
    },
    eval: {
      ...r.eval,
      attack: attack(r.eval.attack, d.evalAttack),
      samples: r.eval.samples ?? d.evalSamples,
      epsCurve: r.eval.epsCurve ?? d.epsCurve,
    },
    checkpointEveryEpochs: r.checkpointEveryEpochs,
    logEverySteps: r.logEverySteps,
  };
  checkCrossField(cfg, where);
  return cfg;
}

/** data.root made absolute. CIFAR without a root defaults to `<experiment folder>/data`, where
 * `advmoe data download` puts it; MNIST is embedded and Fashion-MNIST may come from Debian's package. */
function dataRoot(dataset: DatasetName, root: string | undefined, baseDir: string | undefined): string | undefined {
  if (root !== undefined) return baseDir ? path.resolve(baseDir, root) : root;
  if ((dataset === 'cifar10' || dataset === 'cifar100') && baseDir) return path.resolve(baseDir, 'data');
  return undefined;
}

function attack(raw: Partial<AttackConfig> | undefined, defaults: AttackConfig): AttackConfig {
  return { ...defaults, ...(raw ?? {}) };
}

/**
 * Settings that are valid but probably not what the user meant; the jobs log them as warnings. Today: a PGD whose
 * steps cannot travel ε (steps · stepSize < ε), e.g. `steps` lowered while `stepSize` kept its default — the
 * attack is then weaker than its ε says, and RA is overestimated.
 */
export function configWarnings(cfg: ExperimentConfig): string[] {
  const out: string[] = [];
  const check = (where: string, a: AttackConfig) => {
    if (a.steps * a.stepSize < a.eps * (1 - 1e-9)) {
      out.push(
        `${where}: ${a.steps} step(s) of ${+a.stepSize.toPrecision(4)} move at most ${+(a.steps * a.stepSize).toPrecision(4)}, less than ε = ${+a.eps.toPrecision(4)}; ` +
          `the attack is weaker than its ε suggests (PGD usually has steps · stepSize ≥ ε, e.g. stepSize ${+((2.5 * a.eps) / a.steps).toPrecision(4)})`,
      );
    }
  };
  check('eval.attack', cfg.eval.attack);
  check('method.attack', cfg.method.attack);
  // Inputs are scaled to [0, 1]: an L∞ ball of radius ≥ 1 holds every image, so no accuracy survives it.
  const wide = (where: string, eps: number) => {
    if (eps >= 1) out.push(`${where}: ε = ${eps} covers the whole [0, 1] pixel range; pixels are scaled to [0, 1] (e.g. 8/255 ≈ 0.031, not 8)`);
  };
  wide('method.attack.eps', cfg.method.attack.eps);
  wide('eval.attack.eps', cfg.eval.attack.eps);
  const curveMax = Math.max(0, ...cfg.eval.epsCurve);
  if (curveMax >= 1) wide('eval.epsCurve', curveMax);
  // Measured (vgg16 tiny, batch 32, wasm, shared 2-core machine): one AdvMoE step takes 1.7 s at N = 2, 18 s at
  // N = k = 16, 54 s at N = k = 32 and 135 s at N = k = 64 (61.7 M parameters, 1.4 GFLOPs per image). Slow, not
  // stuck: training computes every expert.
  const moe = cfg.model.moe;
  const widen = moe.experts * moe.expertWidth;
  if (moe.enabled && widen >= 8) {
    out.push(
      `model.moe: experts × expertWidth = ${+widen.toPrecision(4)}, so every MoE conv has ${+widen.toPrecision(4)}× the channels of the dense conv and the next ` +
        `conv as many inputs: compute and parameters grow about ${Math.round(widen * widen)}×, and training computes every expert whatever topK is; ` +
        `expect steps of minutes on a CPU (expertWidth = 1/experts keeps the dense width)`,
    );
  }
  return out;
}

function checkCrossField(cfg: ExperimentConfig, where: string): void {
  const problems: string[] = [];
  const moe = cfg.model.moe;
  if (moe.enabled && moe.topK > moe.experts) problems.push(`model.moe.topK: ${moe.topK} must be ≤ model.moe.experts (${moe.experts})`);
  if (moe.enabled && moe.layout === 'gathered' && moe.topK !== 1) {
    problems.push(`model.moe.topK: ${moe.topK} with layout "gathered"; the gathered layout keeps one expert's channels (topK 1), use layout "blocks" for k > 1`);
  }
  if (moe.enabled && moe.router === 'reference' && moe.topK !== 1) {
    problems.push(`model.moe.topK: ${moe.topK} with router "reference"; the reference router picks one expert by argmax (topK 1)`);
  }
  if (!moe.enabled && (cfg.method.kind === 'advmoe' || cfg.method.kind === 'official')) {
    problems.push(`method.kind: "${cfg.method.kind}" trains routers, but model.moe.enabled is false; use "pgd-at" or "trades" for a dense model`);
  }
  const tie = cfg.method.routing.tieExpertsEpochs;
  if (tie > 0 && !moe.enabled) problems.push('method.routing.tieExpertsEpochs: ties the experts of MoE layers, but model.moe.enabled is false');
  if (tie > 0 && tie >= cfg.schedule.epochs) {
    problems.push(`method.routing.tieExpertsEpochs: ${tie} must be less than schedule.epochs (${cfg.schedule.epochs}); experts tied to the end would stay copies of each other`);
  }
  const freeze = cfg.method.routing.freezeRoutersAfterEpochs;
  if (freeze > 0 && !moe.enabled) problems.push('method.routing.freezeRoutersAfterEpochs: freezes the routers of MoE layers, but model.moe.enabled is false');
  if (freeze > 0 && freeze >= cfg.schedule.epochs) {
    problems.push(`method.routing.freezeRoutersAfterEpochs: ${freeze} must be less than schedule.epochs (${cfg.schedule.epochs}); routers frozen after the last step are never frozen`);
  }
  if (freeze > 0 && tie > 0 && freeze <= tie) {
    problems.push(`method.routing.freezeRoutersAfterEpochs: ${freeze} must be more than tieExpertsEpochs (${tie}); the routers would never learn on untied experts`);
  }
  if (cfg.method.routing.straightThrough === 'router-updates' && cfg.method.kind === 'official') {
    problems.push('method.routing.straightThrough: "router-updates" is not for method "official", which keeps the reference code\'s gradients; use "advmoe"');
  }
  if (cfg.schedule.lrSchedule === 'step' && cfg.schedule.milestones.length === 0) {
    problems.push('schedule.milestones: the "step" schedule needs at least one milestone epoch');
  }
  if (cfg.data.dataset === 'image-folder' && !cfg.data.root) {
    problems.push('data.root: the image-folder dataset needs the folder holding train/ and val/');
  }
  if (problems.length) throw new AdvMoEError('CONFIG_INVALID', `${where}invalid experiment:\n  - ${problems.join('\n  - ')}`, { errors: problems });
}

interface FamilyDefaults {
  trainAttack: AttackConfig;
  evalAttack: AttackConfig;
  epsCurve: number[];
  epsWarmupEpochs: number;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  evalSamples: number;
}

/** MNIST-like: ε = 0.3 (Madry et al.); eval PGD-20 with α = 2.5·ε/steps. */
const DIGIT_DEFAULTS: FamilyDefaults = {
  trainAttack: { norm: 'linf', eps: 0.3, stepSize: 0.1, steps: 5, randomStart: true, restarts: 1 },
  evalAttack: { norm: 'linf', eps: 0.3, stepSize: 0.0375, steps: 20, randomStart: true, restarts: 1 },
  epsCurve: [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4],
  epsWarmupEpochs: 1,
  epochs: 4,
  batchSize: 128,
  lr: 0.05,
  weightDecay: 5e-4,
  evalSamples: 1000,
};

/** CIFAR-like: ε = 8/255, PGD-10 α = 2/255 for training and for RA (README "Metric definitions"). */
const CIFAR_DEFAULTS: FamilyDefaults = {
  trainAttack: { norm: 'linf', eps: 8 / 255, stepSize: 2 / 255, steps: 10, randomStart: true, restarts: 1 },
  evalAttack: { norm: 'linf', eps: 8 / 255, stepSize: 2 / 255, steps: 10, randomStart: true, restarts: 1 },
  epsCurve: [0, 2 / 255, 4 / 255, 6 / 255, 8 / 255, 10 / 255, 12 / 255, 16 / 255],
  epsWarmupEpochs: 0,
  epochs: 100,
  batchSize: 128,
  lr: 0.1,
  weightDecay: 5e-4,
  evalSamples: 1000,
};

/**
 * The file's old `method.routerBalance` is read as `method.routing.balance` when that is absent. The collapse
 * remedies are each off by default (schema.json): none of them, nor `routerNorm`, kept the demo model both balanced
 * and as robust as without them in the budgets measured (README "Routing that does not collapse").
 */
function readLegacyRouterBalance(raw: unknown): unknown {
  const method = (raw as { method?: unknown } | null)?.method;
  if (typeof method !== 'object' || method === null || Array.isArray(method)) return raw;
  const m = method as Record<string, unknown>;
  if (m.routerBalance === undefined) return raw;
  const routing = m.routing ?? {};
  if (typeof routing !== 'object' || routing === null || Array.isArray(routing)) return raw;
  const r = routing as Record<string, unknown>;
  if (r.balance === undefined) m.routing = { ...r, balance: m.routerBalance };
  return raw;
}

/** The official code trains with PGD-2 at 5/255 (TRADES KL), ε = 8/255. */
const OFFICIAL_TRAIN_ATTACK: AttackConfig = { norm: 'linf', eps: 8 / 255, stepSize: 5 / 255, steps: 2, randomStart: true, restarts: 1 };
