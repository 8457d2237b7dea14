/** Adversarial attacks (FGSM, PGD, APGD-CE, router, expert), all with the same signature. */
import type * as tf from '@tensorflow/tfjs-core';
import type { AttackConfig, AttackName } from '../config/types';
import type { Model } from '../models/types';
import { AdvMoEError } from '../util/errors';
import { apgdCe } from './apgd';
import { fgsm, pgd } from './pgd';
import { expertAttack, routerAttack } from './routing';
import type { AttackOptions, AttackOutput } from './types';

export * from './types';
export { apgdCe, apgdSchedule } from './apgd';
export { ceLoss, crossEntropy, klLoss, project } from './common';
export { fgsm, pgd } from './pgd';
export { changedLayers, expertAttack, routerAttack, routerLoss, routingMasks } from './routing';

export type AttackFn = (model: Model, x: tf.Tensor4D, y: tf.Tensor1D, cfg: AttackConfig, opts: AttackOptions) => Promise<AttackOutput>;

export const ATTACKS: Readonly<Record<AttackName, AttackFn>> = {
  fgsm,
  pgd,
  'apgd-ce': apgdCe,
  router: routerAttack,
  expert: expertAttack,
};

/** Runs an attack by name (the names of `AttackName`). */
export function runAttack(name: AttackName, model: Model, x: tf.Tensor4D, y: tf.Tensor1D, cfg: AttackConfig, opts: AttackOptions): Promise<AttackOutput> {
  const fn = ATTACKS[name];
  if (!fn) throw new AdvMoEError('INVALID_ARGUMENT', `unknown attack "${name}" (expected one of ${Object.keys(ATTACKS).join(', ')})`);
  return fn(model, x, y, cfg, opts);
}
