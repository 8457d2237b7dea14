/** A sweep of tiny runs (real MNIST, a few samples, seconds each) in a fresh temporary folder. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const BIN = path.join(__dirname, '..', '..', '..', '..', 'bin', 'advmoe.js');

export const TINY_BASE = {
  name: 'tiny',
  model: { backbone: 'resnet18', preset: 'tiny', widthMultiplier: 0.25, moe: { enabled: true, experts: 2, topK: 1 } },
  method: { kind: 'advmoe', attack: { steps: 1, stepSize: 0.3 }, epsWarmupEpochs: 0 },
  data: { dataset: 'mnist', trainSamples: 32, testSamples: 16 },
  schedule: { epochs: 1, batchSize: 16 },
  eval: { samples: 8, attack: { steps: 2, stepSize: 0.15 }, everyEpochs: 1, epsCurve: [0, 0.3] },
  logEverySteps: 1,
};

/** `methods-seeds.advmoe-sweep.json`: method.kind ∈ {pgd-at, advmoe} × seed ∈ {0, 1} over TINY_BASE (a file beside it). */
export function tinySweep(opts: { trainSamples?: number } = {}): { dir: string; file: string; runsDir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-sweep-'));
  const base = { ...TINY_BASE, data: { ...TINY_BASE.data, trainSamples: opts.trainSamples ?? TINY_BASE.data.trainSamples } };
  fs.writeFileSync(path.join(dir, 'tiny.advmoe.json'), JSON.stringify(base, null, 2));
  const file = path.join(dir, 'methods-seeds.advmoe-sweep.json');
  fs.writeFileSync(file, JSON.stringify({ base: 'tiny.advmoe.json', axes: { 'method.kind': ['pgd-at', 'advmoe'], seed: [0, 1] } }, null, 2));
  return { dir, file, runsDir: path.join(dir, '.advmoe', 'runs') };
}

/**
 * The end-to-end executor tests start `advmoe train` processes on wasm whatever suite runs them; the unit suite's
 * second pass on tensorflow (README "Backends") would only repeat them, so it skips them with this reason.
 */
export function repeatedPassSkip(): string | false {
  const b = process.env.ADVMOE_TEST_BACKEND;
  return b && b !== 'wasm' ? `the executors' processes train on wasm; already run in the wasm pass (ADVMOE_TEST_BACKEND=${b})` : false;
}
