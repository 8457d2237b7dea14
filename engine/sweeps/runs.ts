/** What the sweep commands need to know about a sweep's runs, read from the runs folder; and the CLI to start. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readState, runDir } from '../runs/store';
import type { RunState } from '../runs/types';
import { AdvMoEError } from '../util/errors';

export type SweepRunStatus = RunState['status'] | 'missing' | 'unreadable';

/** A sweep run's status: `missing` until its process created it, `unreadable` when its folder is damaged. */
export function sweepRunStatus(runsDir: string, runId: string): { status: SweepRunStatus; state?: RunState; error?: string } {
  if (!fs.existsSync(runDir(runsDir, runId))) return { status: 'missing' };
  try {
    const state = readState(runsDir, runId);
    return { status: state.status, state, error: state.error };
  } catch (e) {
    return { status: 'unreadable', error: (e as Error).message };
  }
}

/**
 * The `advmoe` script the executors start (`bin/advmoe.js` of this checkout or package); ADVMOE_CLI overrides it.
 * Searched from here: out/engine/sweeps (tsc) and dist/ (the bundle).
 */
export function cliScript(): string {
  const given = process.env.ADVMOE_CLI;
  if (given) return path.resolve(given);
  const candidates = [path.join(__dirname, '..', '..', '..', 'bin', 'advmoe.js'), path.join(__dirname, '..', 'bin', 'advmoe.js')];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new AdvMoEError('INVALID_ARGUMENT', `cannot find bin/advmoe.js (looked in ${candidates.join(', ')}); set ADVMOE_CLI to its path`);
  return found;
}
