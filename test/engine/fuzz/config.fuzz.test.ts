/**
 * Mutated experiment configs: any mix of wrong types, out-of-range and non-finite numbers, missing and unknown
 * fields and deep nesting either resolves to a config whose every number is finite, or fails with
 * CONFIG_INVALID and one message per problem, each starting with the field it is about.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { configWarnings, resolveConfig } from '../../../engine/config/load';
import { isAdvMoEError } from '../../../engine/util/errors';
import { fuzzParams } from './settings';

const ROOT = path.join(__dirname, '..', '..', '..', '..');
const BASE: Record<string, unknown> = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples', 'mnist-advmoe.advmoe.json'), 'utf8'));

/** Every path to a value in `v` (objects and arrays), the root included. */
function paths(v: unknown, at: string[] = []): string[][] {
  const out = [at];
  if (v !== null && typeof v === 'object') for (const [k, c] of Object.entries(v)) out.push(...paths(c, [...at, k]));
  return out;
}
const BASE_PATHS = paths(BASE).filter((p) => p.length > 0);
/** Fields the base leaves out, so that mutations reach them too. */
const EXTRA_PATHS = [
  'schedule.lr', 'schedule.weightDecay', 'schedule.milestones', 'schedule.warmupEpochs', 'schedule.gamma', 'method.advmoe.routerLrScale',
  'method.advmoe.period', 'method.tradesBeta', 'method.routerBalance', 'eval.epsCurve', 'eval.attack.eps', 'eval.attack.stepSize',
  'eval.attack.steps', 'checkpointEveryEpochs', 'logEverySteps', 'model.moe.layers', 'data.trainSamples', 'data.imageSize', 'seed',
].map((p) => p.split('.'));

const deep = (n: number): unknown => JSON.parse('['.repeat(n) + ']'.repeat(n));
// 1e999 is meant: JSON.parse reads it as Infinity, which the config must refuse by name.
/* eslint-disable no-loss-of-precision */
const value = fc.oneof(
  fc.constantFrom<unknown>(Infinity, -Infinity, 1e999 as number, 1e9, 1e300, -1, 0, 0.5, 2 ** 53, -0, 65, 4097, 999, NaN),
  fc.double(),
  fc.integer(),
  fc.string({ maxLength: 12 }),
  fc.constantFrom<unknown>(null, true, false, [], {}, [1e999], ['x'], [0, 999], { x: 1 }, 'all-blocks', 'advmoe', 'cifar10'),
  fc.integer({ min: 40, max: 3000 }).map(deep),
);
/* eslint-enable no-loss-of-precision */

type Mutation = { kind: 'set'; at: string[]; value: unknown } | { kind: 'delete'; at: string[] } | { kind: 'unknown'; at: string[]; key: string };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.constantFrom(...BASE_PATHS, ...EXTRA_PATHS), value }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.constantFrom(...BASE_PATHS) }),
  fc.record({ kind: fc.constant('unknown' as const), at: fc.constantFrom<string[]>([], ['model'], ['method', 'attack'], ['eval']), key: fc.string({ minLength: 1, maxLength: 8 }) }),
);

function apply(cfg: Record<string, unknown>, m: Mutation): void {
  let o: Record<string, unknown> = cfg;
  const at = m.kind === 'unknown' ? [...m.at, m.key] : m.at;
  for (const k of at.slice(0, -1)) {
    if (o[k] === null || typeof o[k] !== 'object') o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  const last = at[at.length - 1];
  if (m.kind === 'delete') delete o[last];
  else o[last] = m.kind === 'set' ? m.value : 1;
}

/** A message line names a field: "a.b.c: …", "(top level): …". */
const SEGMENT = String.raw`([\w$-]+|"(?:[^"\\]|\\.)*")`;
const NAMES_FIELD = new RegExp(String.raw`^(\(top level\)|${SEGMENT}(\.${SEGMENT})*)(: | )`);

test('mutated configs resolve to finite settings or fail naming every field', () => {
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
      const cfg = structuredClone(BASE);
      for (const m of mutations) apply(cfg, m);
      let resolved;
      try {
        resolved = resolveConfig(cfg, { source: 'fuzz.advmoe.json' });
      } catch (e) {
        assert.ok(isAdvMoEError(e, 'CONFIG_INVALID'), `not CONFIG_INVALID: ${(e as Error)?.stack ?? e}`);
        const lines = (e.details?.errors as string[] | undefined) ?? [];
        assert.ok(lines.length > 0, `no problems listed: ${e.message}`);
        for (const line of lines) assert.match(line, NAMES_FIELD);
        assert.ok(e.message.length < 20_000, 'message of bounded size');
        return;
      }
      // Accepted: every number finite, and warnings computable.
      for (const at of paths(resolved)) {
        const v = at.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], resolved);
        if (typeof v === 'number') assert.ok(Number.isFinite(v), `${at.join('.')} = ${v} was accepted`);
      }
      configWarnings(resolved);
    }),
    fuzzParams(250),
  );
});
