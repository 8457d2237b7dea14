/**
 * Learning-rate and ε schedules, as pure functions of the position in training, so that a resumed run
 * needs no schedule state in its checkpoint.
 *
 * Positions: `epoch` (0-based) and `step` (0-based index of the batch within the epoch); the global
 * step is g = epoch·stepsPerEpoch + step, and T = epochs·stepsPerEpoch steps in all.
 *
 * - Warm-up: over W = round(warmupEpochs·stepsPerEpoch) steps the lr rises linearly, lr·(g+1)/W, so the
 *   first step already moves (a zero first step would waste a batch) and step W−1 reaches the full lr.
 * - cosine (per step, after warm-up): lr·½(1 + cos(π·(g−W)/(T−W))), PyTorch's CosineAnnealingLR with
 *   η_min = 0 stepped every batch.
 * - step: lr·γ^m where m counts milestones ≤ epoch (MultiStepLR stepped per epoch); multiplied by the
 *   warm-up factor during warm-up.
 * - constant: lr (times the warm-up factor).
 */
import type { AttackConfig, MethodConfig, ScheduleConfig } from '../config/types';

export function learningRate(s: ScheduleConfig, epoch: number, step: number, stepsPerEpoch: number): number {
  checkPosition(epoch, step, stepsPerEpoch);
  const g = epoch * stepsPerEpoch + step;
  const total = Math.max(1, s.epochs * stepsPerEpoch);
  const warm = warmupSteps(s.warmupEpochs, stepsPerEpoch);
  if (g < warm) {
    // During warm-up every schedule starts from its initial value (for `step`, milestones inside the
    // warm-up still apply: they are part of the user's schedule).
    const base = s.lrSchedule === 'step' ? s.lr * Math.pow(s.gamma, passedMilestones(s.milestones, epoch)) : s.lr;
    return (base * (g + 1)) / warm;
  }
  switch (s.lrSchedule) {
    case 'constant':
      return s.lr;
    case 'step':
      return s.lr * Math.pow(s.gamma, passedMilestones(s.milestones, epoch));
    case 'cosine': {
      const span = Math.max(1, total - warm);
      const t = Math.min(1, (g - warm) / span);
      return 0.5 * s.lr * (1 + Math.cos(Math.PI * t));
    }
  }
}

/** Fraction of the full ε used at a position: linear from (1/W) to 1 over W = epsWarmupEpochs epochs. */
export function epsFactor(m: MethodConfig, epoch: number, step: number, stepsPerEpoch: number): number {
  checkPosition(epoch, step, stepsPerEpoch);
  const warm = warmupSteps(m.epsWarmupEpochs, stepsPerEpoch);
  if (warm === 0) return 1;
  return Math.min(1, (epoch * stepsPerEpoch + step + 1) / warm);
}

/**
 * The training attack at a position: ε and the step size scaled together by the ε warm-up factor.
 * Scaling α with ε keeps the number of steps meaningful while ε is small (with a fixed α, every
 * step would overshoot the ball and PGD would degenerate to FGSM-with-clipping).
 */
export function attackAt(m: MethodConfig, epoch: number, step: number, stepsPerEpoch: number): AttackConfig {
  const f = epsFactor(m, epoch, step, stepsPerEpoch);
  return f === 1 ? m.attack : { ...m.attack, eps: m.attack.eps * f, stepSize: m.attack.stepSize * f };
}

function warmupSteps(epochs: number, stepsPerEpoch: number): number {
  return epochs > 0 ? Math.max(1, Math.round(epochs * stepsPerEpoch)) : 0;
}

function passedMilestones(milestones: readonly number[], epoch: number): number {
  return milestones.filter((m) => m <= epoch).length;
}

function checkPosition(epoch: number, step: number, stepsPerEpoch: number): void {
  if (!(Number.isInteger(stepsPerEpoch) && stepsPerEpoch > 0)) throw new RangeError(`stepsPerEpoch must be a positive integer, got ${stepsPerEpoch}`);
  if (!(Number.isInteger(epoch) && epoch >= 0)) throw new RangeError(`epoch must be an integer ≥ 0, got ${epoch}`);
  if (!(Number.isInteger(step) && step >= 0 && step < stepsPerEpoch)) throw new RangeError(`step must be an integer in [0, ${stepsPerEpoch}), got ${step}`);
}
