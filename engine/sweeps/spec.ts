/**
 * Sweep files (`*.advmoe-sweep.json`, README "Sweeps"): a base experiment plus axes, expanded into one run per
 * combination of the axes' values (the grid). Every run gets a stable id, `<sweep name>-<hash of its axis
 * values>`, so expanding the same file again names the same runs and a rerun finds what is already done.
 * Errors name the sweep file, the axis and the value, and quote the experiment schema's own message.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import experimentSchema from '../config/schema.json';
import { experimentSchemaProblems, readJsonFile, resolveConfig } from '../config/load';
import type { ExperimentConfig } from '../config/types';
import { AdvMoEError } from '../util/errors';
import sweepSchema from './schema.json';
import type { AxisValue } from '../../contract/sweepTable';

export const SWEEP_FILE_SUFFIX = '.advmoe-sweep.json';

export type { AxisValue };

export interface SweepAxis {
  key: string;
  values: AxisValue[];
}

export interface SweepRunSpec {
  /** Position in the grid (first axis slowest); the Slurm array index. */
  index: number;
  id: string;
  /** This run's value of every axis, in axis order. */
  values: Record<string, AxisValue>;
  config: ExperimentConfig;
}

export interface SweepPlan {
  name: string;
  /** The sweep file (absolute), when it came from one. */
  source?: string;
  axes: SweepAxis[];
  runs: SweepRunSpec[];
}

/** More runs than this is almost certainly a typo in an axis (and would flood the runs folder). */
export const MAX_SWEEP_RUNS = 10_000;

let validator: ReturnType<Ajv['compile']> | null = null;

/** The sweep schema as the engine checks it: an inline base is only required to be an object here, because
 * resolveConfig checks it as an experiment with messages that name its fields. */
function validateSweep(value: unknown): ErrorObject[] {
  if (!validator) {
    const schema = JSON.parse(JSON.stringify(sweepSchema)) as { properties: { base: { oneOf: object[] } } };
    schema.properties.base.oneOf[1] = { type: 'object' };
    validator = new Ajv({ allErrors: true, strict: false, strictNumbers: true }).compile(schema);
  }
  return validator(value) ? [] : (validator.errors ?? []);
}

function describeSweepError(e: ErrorObject): string {
  const parts = e.instancePath.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  // Axis keys hold dots, so a path is printed as its parts: axes."method.kind".
  const where = parts.length ? parts.map((p, i) => (i > 0 || !/^[\w$]+$/.test(p) ? JSON.stringify(p) : p)).join('.') : '(top level)';
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') return `${where === '(top level)' ? '' : where + '.'}${String(p.additionalProperty)}: unknown field (allowed: name, base, axes)`;
  if (e.keyword === 'required') return `${String(p.missingProperty)}: required field is missing`;
  if (e.keyword === 'minItems' && parts[0] === 'axes') return `${where}: an axis needs at least one value`;
  if (e.keyword === 'minProperties') return 'axes: a sweep needs at least one axis';
  if (e.keyword === 'uniqueItems') {
    const [a, b] = [Number(p.i), Number(p.j)].sort((x, y) => x - y);
    return `${where}: entries ${a + 1} and ${b + 1} are the same value; give each value once`;
  }
  if (e.keyword === 'propertyNames' || (e.keyword === 'pattern' && e.propertyName !== undefined)) {
    return `axes: ${JSON.stringify(e.propertyName ?? p.propertyName)} is not a dotted field name such as "model.moe.experts"`;
  }
  if (e.keyword === 'enum') return `${where}: ${JSON.stringify((e as { data?: unknown }).data ?? '')} is not allowed; use one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  return `${where}: ${e.message ?? 'is invalid'}`;
}

interface SchemaNode {
  $ref?: string;
  properties?: Record<string, SchemaNode>;
  definitions?: Record<string, SchemaNode>;
}

/** The experiment schema's node for a dotted key, or a message naming the first part that is not a field. */
function schemaNodeFor(key: string): SchemaNode | string {
  const root = experimentSchema as unknown as SchemaNode;
  let node: SchemaNode = root;
  const seen: string[] = [];
  for (const part of key.split('.')) {
    if (node.$ref?.startsWith('#/definitions/')) node = root.definitions![node.$ref.slice('#/definitions/'.length)];
    const props = node.properties;
    if (!props || !(part in props) || part === '$schema') {
      const here = seen.length ? seen.join('.') : 'the top level';
      return props
        ? `unknown experiment field "${part}" in ${here} (fields there: ${Object.keys(props).filter((k) => k !== '$schema').join(', ')})`
        : `${here} is not an object, so it has no field "${part}"`;
    }
    node = props[part];
    seen.push(part);
  }
  return node;
}

/** A deep copy of `raw` with the dotted `key` set to `value` (missing objects on the way are made). */
export function withValue(raw: Record<string, unknown>, key: string, value: AxisValue): Record<string, unknown> {
  const out = JSON.parse(JSON.stringify(raw)) as Record<string, unknown>;
  const parts = key.split('.');
  let o = out;
  for (const p of parts.slice(0, -1)) {
    if (o[p] === null || typeof o[p] !== 'object' || Array.isArray(o[p])) o[p] = {};
    o = o[p] as Record<string, unknown>;
  }
  o[parts[parts.length - 1]] = JSON.parse(JSON.stringify(value));
  return out;
}

/** Key-order independent JSON: the run id hashes it, so reordering a file's axes keeps every id. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    // An undefined field is an absent one, as in the JSON written to disk.
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** `<sweep>-<10 hex digits of SHA-256 over the run's axis values>`. */
export function sweepRunId(sweepName: string, values: Record<string, AxisValue>): string {
  return `${sweepName}-${createHash('sha256').update(canonical(values)).digest('hex').slice(0, 10)}`;
}

/** "method.kind=pgd-at seed=1": a run's axis values, as run names and tables print them. */
export function valuesLabel(values: Record<string, AxisValue>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

export interface ExpandOptions {
  /** Named in every error; the sweep file. */
  source?: string;
  /** Name when the sweep sets none (the file name). */
  defaultName?: string;
  /** A base given as a path, and an inline base's data.root, are resolved against this folder. */
  baseDir: string;
}

/** Reads and expands a sweep file. */
export function loadSweepFile(file: string): SweepPlan {
  const abs = path.resolve(file);
  const raw = readJsonFile(abs, 'sweep file');
  const base = path.basename(abs);
  const defaultName = (base.endsWith(SWEEP_FILE_SUFFIX) ? base.slice(0, -SWEEP_FILE_SUFFIX.length) : base.replace(/\.json$/, '')).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'sweep';
  return { ...expandSweep(raw, { source: abs, defaultName, baseDir: path.dirname(abs) }), source: abs };
}

function invalid(where: string, problems: string[]): never {
  throw new AdvMoEError('CONFIG_INVALID', `${where}invalid sweep:\n  - ${problems.join('\n  - ')}`, { errors: problems });
}

/** Validates a parsed sweep and expands it into its runs, each with its resolved experiment. */
export function expandSweep(raw: unknown, opts: ExpandOptions): SweepPlan {
  const where = opts.source ? `${opts.source}: ` : '';
  const schemaErrors = validateSweep(raw);
  if (schemaErrors.length) invalid(where, [...new Set(schemaErrors.filter((e) => e.keyword !== 'oneOf').map(describeSweepError))]);
  const r = raw as { name?: string; base: string | Record<string, unknown>; axes: Record<string, AxisValue[]> };
  const name = r.name ?? opts.defaultName ?? 'sweep';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) invalid(where, [`name: "${name}" must start with a letter or digit and hold only letters, digits, ".", "_", "-"`]);

  // The base experiment, raw (axes are applied before defaults are filled: defaults depend on dataset and method).
  let base: Record<string, unknown>;
  let baseDir = opts.baseDir;
  let baseWhere = 'base (inline)';
  if (typeof r.base === 'string') {
    const file = path.resolve(opts.baseDir, r.base);
    baseWhere = `base ${file}`;
    try {
      base = readJsonFile(file, 'the experiment file') as Record<string, unknown>;
    } catch (e) {
      invalid(where, [`base: ${(e as Error).message}`]);
    }
    if (base === null || typeof base !== 'object' || Array.isArray(base)) invalid(where, [`base: ${file} does not hold an experiment object`]);
    baseDir = path.dirname(file);
  } else {
    base = r.base;
  }
  const baseProblems = experimentSchemaProblems(base);
  if (baseProblems.length) invalid(where, baseProblems.map((p) => `${baseWhere}: ${p}`));

  // Axes: known fields, and every value accepted by the schema on its own.
  const axes: SweepAxis[] = Object.entries(r.axes).map(([key, values]) => ({ key, values }));
  const problems: string[] = [];
  for (const { key, values } of axes) {
    if (key === 'name' || key === '$schema') {
      problems.push(`axes."${key}": not an axis (run names come from the sweep name and the axis values)`);
      continue;
    }
    const node = schemaNodeFor(key);
    if (typeof node === 'string') {
      problems.push(`axes."${key}": ${node}`);
      continue;
    }
    for (const v of values) {
      // The base passed on its own, so whatever the schema says now is about this value.
      const own = experimentSchemaProblems(withValue(base, key, v));
      if (own.length) problems.push(`axes."${key}": value ${JSON.stringify(v)} is rejected by the experiment schema: ${own.join('; ')}`);
    }
  }
  if (problems.length) invalid(where, problems);
  const total = axes.reduce((n, a) => n * a.values.length, 1);
  if (total > MAX_SWEEP_RUNS) invalid(where, [`axes: the grid has ${total} runs, more than ${MAX_SWEEP_RUNS}; split the sweep`]);

  // The grid, first axis slowest; each combination resolved as an experiment (cross-field rules included).
  const runs: SweepRunSpec[] = [];
  const comboProblems: string[] = [];
  for (let index = 0; index < total; index++) {
    const values: Record<string, AxisValue> = {};
    let rest = index;
    for (let a = axes.length - 1; a >= 0; a--) {
      const n = axes[a].values.length;
      values[axes[a].key] = axes[a].values[rest % n];
      rest = Math.floor(rest / n);
    }
    const ordered = Object.fromEntries(axes.map((a) => [a.key, values[a.key]])) as Record<string, AxisValue>;
    let exp = base;
    for (const [k, v] of Object.entries(ordered)) exp = withValue(exp, k, v);
    const label = valuesLabel(ordered);
    exp.name = `${name} ${label}`.slice(0, 120);
    try {
      const config = resolveConfig(exp, { baseDir });
      runs.push({ index, id: sweepRunId(name, ordered), values: ordered, config });
    } catch (e) {
      const details = (e as AdvMoEError).details?.errors as string[] | undefined;
      comboProblems.push(`run ${label}: ${details ? details.join('; ') : (e as Error).message}`);
    }
  }
  if (comboProblems.length) invalid(where, comboProblems);
  return { name, source: opts.source, axes, runs };
}

/**
 * The first field where two resolved experiments differ ("method.attack.eps: 0.3 vs 0.1"), or null when equal.
 * A sweep run that exists with another experiment was made from an older version of the sweep.
 */
export function firstDifference(a: unknown, b: unknown, at = ''): string | null {
  if (canonical(a) === canonical(b)) return null;
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort()) {
      const d = firstDifference(ao[k], bo[k], at ? `${at}.${k}` : k);
      if (d) return d;
    }
  }
  const show = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v).slice(0, 60));
  return `${at || '(top level)'}: ${show(a)} vs ${show(b)}`;
}
