/** The reproduction's experiments are valid experiment files, and its table averages over seeds (README
 * "Reproducing the paper's comparison"). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ARMS, EPS, experiment, type RunFigures, table } from '../../../bench/reproduce';
import { resolveConfig } from '../../../engine/config/load';

const BUDGET = { trainSamples: 100, epochs: 1, evalSamples: 10 };

test('every arm on every dataset resolves, with the dataset\'s ε for training and evaluation', () => {
  for (const dataset of ['mnist', 'fashion-mnist'] as const) {
    for (const arm of ARMS) {
      const cfg = resolveConfig(experiment(dataset, arm, 2, BUDGET));
      assert.equal(cfg.method.kind, arm.method);
      assert.equal(cfg.model.moe.enabled, arm.moe);
      assert.equal(cfg.method.attack.eps, EPS[dataset]);
      assert.equal(cfg.eval.attack.eps, EPS[dataset]);
      assert.equal(cfg.seed, 2);
      // The dense model has the MoE's total width: N · expertWidth = 1.
      assert.equal(cfg.model.moe.experts * cfg.model.moe.expertWidth, 1);
    }
  }
});

test('the table gives mean ± sample std over seeds, and — where a metric does not apply', () => {
  const run = (seed: number, sa: number): RunFigures => ({
    dataset: 'mnist', eps: 0.3, arm: 'dense-pgd-at', seed, runId: `r${seed}`, trainSeconds: 1, evalSeconds: 1,
    sa, ra: 0.5, raApgd: 0.4, routerRobustness: null, expertRobustness: null, activeMFlops: 1.9, denseMFlops: 1.9,
    maxDecisionShare: null, collapsedLayers: 0,
  });
  const rows = table([run(0, 0.9), run(1, 0.8)]).split('\n');
  assert.equal(rows.length, 3);
  // mean 85.0, sample std √((5² + 5²)/1) = 7.1
  assert.match(rows[2], /^\| mnist \(0\.3\) \| Dense \+ PGD-AT \| 2 \| 85\.0 ± 7\.1 \| 50\.0 ± 0\.0 \| 40\.0 ± 0\.0 \| — \| — \|/);
});
