/**
 * Fuzzing settings shared by the fuzz tests: deterministic by seed, a few hundred cases in all by default
 * (seconds in `npm test`); `ADVMOE_FUZZ_RUNS=<n>` runs n cases per property and `ADVMOE_FUZZ_SEED=<s>` picks
 * another seed (a failure prints the seed and path that reproduce it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Parameters as FcParameters } from 'fast-check';
import { AdvMoEError } from '../../../engine/util/errors';

export function fuzzParams<T>(defaultRuns: number): FcParameters<T> {
  const runs = Number(process.env.ADVMOE_FUZZ_RUNS);
  const seed = Number(process.env.ADVMOE_FUZZ_SEED);
  return { numRuns: Number.isSafeInteger(runs) && runs > 0 ? runs : defaultRuns, seed: Number.isSafeInteger(seed) ? seed : 20261129, endOnFailure: true, includeErrorInReport: true };
}

/**
 * The pass rule for an error (README "Tests"): an AdvMoEError with a code other than INTERNAL; messages must
 * name what was wrong (`names` is checked against the message).
 */
export function assertUserError(e: unknown, names: RegExp, context: string): void {
  if (!(e instanceof AdvMoEError)) throw new Error(`${context}: not a user-facing error (would be INTERNAL): ${(e as Error)?.stack ?? e}`);
  if (!names.test(e.message)) throw new Error(`${context}: the error does not name its field or file: ${e.message}`);
}

/** Every file and link under `dir` with its size or target, to show that nothing changed there. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isSymbolicLink()) out[p] = `-> ${fs.readlinkSync(p)}`;
      else if (e.isDirectory()) {
        out[p] = 'dir';
        walk(p);
      } else out[p] = fs.readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}
