/**
 * Run folders keep the resolved experiment (`config.json`) they were trained with. Options added later are absent
 * from older ones and must read as the behaviour those runs were trained with, not as today's defaults — else
 * resume and evaluation would build another network or take another step:
 * - `model.moe.routerNorm` absent → false (routers read their pooled features as they are);
 * - `model.moe.layout` absent → 'blocks', `model.padding` absent → 'same', `model.inputNormalization` absent →
 *   'dataset' (the only network there was; `official` runs included, whose default is now the gathered layout);
 * - `method.advmoe.loss` absent → 'ce' (the AdvMoE steps minimised CE on PGD examples);
 * - `method.routing` absent → `routerBalance` as the balance weight, every other remedy off.
 */
import type { ExperimentConfig } from '../config/types';

export function upgradeLegacyConfig<T extends ExperimentConfig | undefined>(cfg: T): T {
  if (cfg === null || typeof cfg !== 'object') return cfg;
  const raw = cfg as unknown as {
    model?: { moe?: Record<string, unknown>; padding?: string; inputNormalization?: string };
    method?: { routerBalance?: number; routing?: unknown; advmoe?: Record<string, unknown> };
  };
  const moe = raw.model?.moe;
  if (moe && moe.routerNorm === undefined) moe.routerNorm = false;
  if (moe && moe.layout === undefined) moe.layout = 'blocks';
  const model = raw.model;
  if (model && typeof model === 'object') {
    if (model.padding === undefined) model.padding = 'same';
    if (model.inputNormalization === undefined) model.inputNormalization = 'dataset';
  }
  const method = raw.method;
  if (method) {
    if (method.advmoe && method.advmoe.loss === undefined) method.advmoe.loss = 'ce';
    if (method.routing === undefined) {
      method.routing = { classTarget: 0, balance: method.routerBalance ?? 0, entropy: 0, noise: 0 };
      delete method.routerBalance;
    }
  }
  return cfg;
}
