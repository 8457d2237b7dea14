/**
 * Checks on an experiment's numbers and shape that JSON Schema leaves open (README "Config format": an error
 * names the field, the value and what is allowed). JSON reads `1e999` as Infinity, which the schema's
 * `type: number` lets through and which then fails far away without a field name, or is stored as `null`.
 * Runs on the raw parsed value, before validation, so nothing downstream ever sees such a number.
 */

/** Deeper than any experiment needs; deeper values are refused before anything recurses into them. */
export const MAX_DEPTH = 32;

/**
 * Upper bounds for fields the schema leaves unbounded: far above any sensible setting, low enough that
 * schedules and step counts stay finite. `*` matches any key or index.
 */
const MAXIMUM: [pattern: string, max: number][] = [
  ['schedule.lr', 100],
  ['schedule.weightDecay', 1],
  ['schedule.warmupEpochs', 10000],
  ['schedule.milestones.*', 10000],
  ['method.advmoe.routerLrScale', 10000],
  ['method.advmoe.period', 1e6],
  ['method.epsWarmupEpochs', 10000],
  ['method.tradesBeta', 10000],
  ['method.officialRouterAlpha', 10000],
  ['method.routerBalance', 10000],
  ['method.attack.eps', 1000],
  ['method.attack.stepSize', 1000],
  ['eval.attack.eps', 1000],
  ['eval.attack.stepSize', 1000],
  ['eval.epsCurve.*', 1000],
  ['eval.everyEpochs', 10000],
  ['eval.samples', 1e9],
  ['data.trainSamples', 1e9],
  ['data.testSamples', 1e9],
  ['model.moe.layers.*', 10000],
  ['checkpointEveryEpochs', 10000],
  ['logEverySteps', 1e9],
];

function matches(pattern: string, field: string[]): boolean {
  const p = pattern.split('.');
  return p.length === field.length && p.every((part, i) => part === '*' || part === field[i]);
}

/** A short rendering of a value for messages: never recursive over the whole input, never long. */
export function preview(value: unknown): string {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (Array.isArray(value)) return value.length ? `[…${value.length} item(s)]` : '[]';
  if (value !== null && typeof value === 'object') return '{…}';
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 80 ? `${s.slice(0, 77)}…` : s;
}

/** Problems with numbers and nesting, each naming its field; empty when there are none. */
export function numberProblems(raw: unknown): string[] {
  const problems: string[] = [];
  // Iterative walk: a 10,000-deep input must not overflow the stack here either.
  const stack: { value: unknown; field: string[] }[] = [{ value: raw, field: [] }];
  while (stack.length) {
    const { value, field } = stack.pop()!;
    const name = field.length ? field.map((p) => (/^[\w$-]+$/.test(p) ? p : JSON.stringify(p))).join('.') : '(top level)';
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) {
        problems.push(`${name}: ${preview(value)} is not a finite number (a literal such as 1e999 is too large to represent)`);
        continue;
      }
      const limit = MAXIMUM.find(([p]) => matches(p, field));
      if (limit && value > limit[1]) problems.push(`${name}: ${value} must be ≤ ${limit[1]}`);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (field.length >= MAX_DEPTH) {
      problems.push(`${name}: nested more than ${MAX_DEPTH} levels deep; an experiment has no such structure`);
      continue;
    }
    for (const [k, v] of Object.entries(value)) stack.push({ value: v, field: [...field, k] });
  }
  return problems.reverse();
}
