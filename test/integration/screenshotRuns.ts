/**
 * The three experiments `npm run screenshots` trains before it photographs the views (the comparison the
 * Robustness view is made for: dense PGD-AT, MoE + PGD-AT, AdvMoE). Small on purpose — tens of seconds each on
 * two cores — and at ε 0.1, where such short runs keep some robust accuracy to show. The MoE runs normalise the
 * router input (README "Routing that does not collapse"), so their routing heatmaps show a split, not one expert.
 * Shared by the script and the suite; imports nothing.
 */
export type ShotRunKey = 'dense' | 'moe' | 'advmoe';

const ATTACK = { norm: 'linf', eps: 0.1, steps: 1, stepSize: 0.125, randomStart: true };
const BASE = {
  data: { dataset: 'mnist', trainSamples: 2048, testSamples: 64 },
  schedule: { epochs: 1, batchSize: 64, lr: 0.05, lrSchedule: 'cosine' },
  eval: { samples: 64, everyEpochs: 0.25, attack: { norm: 'linf', eps: 0.1, steps: 10, stepSize: 0.025, randomStart: true }, epsCurve: [0, 0.05, 0.1, 0.2] },
  logEverySteps: 1,
};
const MOE = { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, routerNorm: true };

export const SHOT_EXPERIMENTS: readonly { key: ShotRunKey; name: string; config: Record<string, unknown> }[] = [
  {
    key: 'dense',
    name: 'dense-pgd-at',
    config: { name: 'dense-pgd-at', model: { backbone: 'vgg16', preset: 'tiny', widthMultiplier: 0.5, moe: { enabled: false } }, method: { kind: 'pgd-at', attack: ATTACK }, ...BASE },
  },
  {
    key: 'moe',
    name: 'moe-pgd-at',
    config: { name: 'moe-pgd-at', model: { backbone: 'vgg16', preset: 'tiny', widthMultiplier: 0.5, moe: MOE }, method: { kind: 'pgd-at', attack: ATTACK }, ...BASE },
  },
  {
    key: 'advmoe',
    name: 'advmoe',
    config: { name: 'advmoe', model: { backbone: 'vgg16', preset: 'tiny', widthMultiplier: 0.5, moe: MOE }, method: { kind: 'advmoe', attack: ATTACK }, ...BASE },
  },
];
