/**
 * The point of adversarial training, checked end to end on a small task: a model trained with PGD-AT (and one
 * trained with AdvMoE) is clearly more robust under the engine's real PGD than the same model trained on
 * clean data, while both still classify clean inputs. Once on the MLP fixture, once on a real MoE-CNN of the
 * engine's own (a ResNet-18 `tiny` with BatchNorm and sparse MoE convs).
 */
import assert from 'node:assert/strict';
import { before, it } from 'node:test';
import { quickEval } from '../../../engine/analysis';
import type { AttackConfig, MethodName } from '../../../engine/config/types';
import { createModel } from '../../../engine/models/factory';
import type { DataSpec } from '../../../engine/models/net';
import type { Model } from '../../../engine/models/types';
import { makeAdversary } from '../../../engine/training/adversary';
import { createOptimizers, trainStep } from '../../../engine/training/methods';
import { Rng } from '../../../engine/util/rng';
import { setupTestBackend } from '../helpers';
import { modelConfig, moe } from '../models/fixtures';
import { methodConfig, quadrantBatch, TinyMoe } from './fixtures';

const EPS = 0.25;
const TRAIN_ATTACK: AttackConfig = { norm: 'linf', eps: EPS, stepSize: 0.1, steps: 3, randomStart: true, restarts: 1 };
const EVAL_ATTACK: AttackConfig = { norm: 'linf', eps: EPS, stepSize: 0.05, steps: 10, randomStart: true, restarts: 1 };

interface Setup {
  model: Model;
  steps: number;
  side: number;
  lr: number;
  /** Test samples. */
  samples: number;
}

async function trainAndEvaluate(kind: MethodName, setup: Setup = { model: new TinyMoe({ seed: 3, hidden: 32 }), steps: 250, side: 4, lr: 0.05, samples: 256 }): Promise<{ sa: number; ra: number }> {
  const { model, steps, side, lr, samples } = setup;
  const optimizers = createOptimizers(model, { momentum: 0.9, weightDecay: 0 });
  const method = methodConfig(kind, { attack: TRAIN_ATTACK });
  const rng = new Rng(11);
  try {
    for (let step = 0; step < steps; step++) {
      const { x, y } = quadrantBatch(32, side, 5000 + step);
      const adversary = kind === 'standard' ? undefined : makeAdversary(model, TRAIN_ATTACK, { rng });
      await trainStep(method, { model, optimizers, x, y, lr, step, adversary });
      x.dispose();
      y.dispose();
    }
    const test = quadrantBatch(samples, side, 99);
    const r = await quickEval(model, test.x, test.y, EVAL_ATTACK, { rng: new Rng(5) });
    test.x.dispose();
    test.y.dispose();
    return r;
  } finally {
    optimizers.router.dispose();
    optimizers.expert.dispose();
    model.dispose();
  }
}

before(setupTestBackend);

it('PGD-AT and AdvMoE give clearly higher RA than standard training, at similar SA', async () => {
  const standard = await trainAndEvaluate('standard');
  const pgdAt = await trainAndEvaluate('pgd-at');
  const advmoe = await trainAndEvaluate('advmoe');
  const msg = `standard ${JSON.stringify(standard)}, pgd-at ${JSON.stringify(pgdAt)}, advmoe ${JSON.stringify(advmoe)}`;
  console.log(msg);
  assert.ok(standard.sa > 0.9 && pgdAt.sa > 0.9 && advmoe.sa > 0.9, `every model learns the task: ${msg}`);
  assert.ok(pgdAt.ra > standard.ra + 0.2, `PGD-AT must be clearly more robust: ${msg}`);
  assert.ok(advmoe.ra > standard.ra + 0.2, `AdvMoE must be clearly more robust: ${msg}`);
});

/** An MoE ResNet-18 `tiny` at quarter width (BatchNorm after every conv, 2 experts top-1 in every block conv) on 8×8 quadrant images. */
function convNet(): Setup {
  const spec: DataSpec = { inputShape: [8, 8, 1], numClasses: 4, mean: [0.45], std: [0.25] };
  return { model: createModel(modelConfig('resnet18', moe(), 'tiny', 0.25), spec, 3), steps: CONV_STEPS, side: 8, lr: 0.05, samples: 128 };
}
const CONV_STEPS = 40;

it('on a real MoE-CNN with BatchNorm, PGD-AT gives clearly higher RA than standard training', async () => {
  const standard = await trainAndEvaluate('standard', convNet());
  const pgdAt = await trainAndEvaluate('pgd-at', convNet());
  const msg = `standard ${JSON.stringify(standard)}, pgd-at ${JSON.stringify(pgdAt)}`;
  console.log(`conv net: ${msg}`);
  assert.ok(standard.sa > 0.9 && pgdAt.sa > 0.9, `both learn the task: ${msg}`);
  assert.ok(pgdAt.ra > standard.ra + 0.2, `PGD-AT must be clearly more robust: ${msg}`);
});
