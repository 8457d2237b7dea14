/** Sweep files: grid expansion, stable run ids, and errors that name the axis and the value (README "Sweeps"). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkExistingRuns, defaultSweepsDir, findSweepDir, readSweepManifest, writeSweepFolder } from '../../../engine/sweeps/folder';
import { expandSweep, firstDifference, loadSweepFile, sweepRunId } from '../../../engine/sweeps/spec';
import { isAdvMoEError } from '../../../engine/util/errors';
import { TINY_BASE, tinySweep } from './fixtures';

const baseDir = os.tmpdir();

function problems(raw: unknown): string {
  try {
    expandSweep(raw, { baseDir, source: 'x.advmoe-sweep.json', defaultName: 'x' });
  } catch (e) {
    assert.ok(isAdvMoEError(e, 'CONFIG_INVALID'), String(e));
    return (e as Error).message;
  }
  assert.fail('expected the sweep to be refused');
}

test('the grid: every combination, first axis slowest, each resolved with its own defaults', () => {
  const plan = expandSweep({ name: 's', base: TINY_BASE, axes: { 'method.kind': ['pgd-at', 'official'], seed: [0, 1, 2] } }, { baseDir });
  assert.equal(plan.runs.length, 6);
  assert.deepEqual(
    plan.runs.map((r) => [r.values['method.kind'], r.values.seed]),
    [['pgd-at', 0], ['pgd-at', 1], ['pgd-at', 2], ['official', 0], ['official', 1], ['official', 2]],
  );
  assert.deepEqual(plan.runs.map((r) => r.index), [0, 1, 2, 3, 4, 5]);
  for (const r of plan.runs) {
    assert.equal(r.config.method.kind, r.values['method.kind']);
    assert.equal(r.config.seed, r.values.seed);
    assert.match(r.config.name, /^s method\.kind=\w[\w-]* seed=\d$/);
  }
  // Defaults follow the axis value, not the base: `official` routes with the reference code's router and layout
  // unless told otherwise.
  assert.equal(plan.runs[0].config.model.moe.router, 'per-layer');
  assert.equal(plan.runs[3].config.model.moe.router, 'reference');
  assert.equal(plan.runs[3].config.model.moe.layout, 'gathered');
  assert.equal(new Set(plan.runs.map((r) => r.id)).size, 6);
});

test('run ids are stable: same values, same id, whatever the order of the axes; another value, another id', () => {
  const a = expandSweep({ name: 's', base: TINY_BASE, axes: { 'method.kind': ['pgd-at', 'advmoe'], seed: [0, 1] } }, { baseDir });
  const b = expandSweep({ name: 's', base: TINY_BASE, axes: { seed: [1, 0], 'method.kind': ['advmoe', 'pgd-at'] } }, { baseDir });
  const idOf = (plan: typeof a, kind: string, seed: number) => plan.runs.find((r) => r.values['method.kind'] === kind && r.values.seed === seed)!.id;
  for (const kind of ['pgd-at', 'advmoe']) for (const seed of [0, 1]) assert.equal(idOf(a, kind, seed), idOf(b, kind, seed));
  assert.equal(idOf(a, 'advmoe', 1), sweepRunId('s', { seed: 1, 'method.kind': 'advmoe' }));
  assert.match(idOf(a, 'advmoe', 1), /^s-[0-9a-f]{10}$/);
  assert.notEqual(sweepRunId('s', { seed: 1 }), sweepRunId('s', { seed: 2 }));
  assert.notEqual(sweepRunId('s', { seed: 1 }), sweepRunId('t', { seed: 1 }));
});

test('a base given as a path is read relative to the sweep file; the sweep name defaults to the file name', () => {
  const { file } = tinySweep();
  const plan = loadSweepFile(file);
  assert.equal(plan.name, 'methods-seeds');
  assert.equal(plan.source, file);
  assert.equal(plan.runs.length, 4);
  assert.equal(plan.runs[0].config.data.trainSamples, 32);
});

test('errors name the problem: unknown axis key, empty axis, rejected value, impossible combination, bad base', () => {
  assert.match(problems({ base: TINY_BASE, axes: { 'model.moe.expert': [2, 4] } }), /axes\."model\.moe\.expert": unknown experiment field "expert" in model\.moe \(fields there: enabled, experts/);
  assert.match(problems({ base: TINY_BASE, axes: { 'method.kindd': ['pgd-at'] } }), /axes\."method\.kindd": unknown experiment field "kindd" in method/);
  assert.match(problems({ base: TINY_BASE, axes: { 'seed.x': [1] } }), /axes\."seed\.x": seed is not an object/);
  assert.match(problems({ base: TINY_BASE, axes: { seed: [] } }), /axes\."seed": an axis needs at least one value/);
  assert.match(problems({ base: TINY_BASE, axes: { 'schedule.lr': [] } }), /axes\."schedule\.lr": an axis needs at least one value/);
  assert.match(problems({ base: TINY_BASE, axes: {} }), /a sweep needs at least one axis/);
  assert.match(problems({ base: TINY_BASE, axes: { 'method.attack.steps': [1, 0] } }), /axes\."method\.attack\.steps": value 0 is rejected by the experiment schema: method\.attack\.steps: 0 must be >= 1/);
  assert.match(problems({ base: TINY_BASE, axes: { 'model.moe.router': ['per-layer', 'global'] } }), /axes\."model\.moe\.router": value "global" is rejected by the experiment schema: .*use one of "per-layer", "shared"/);
  assert.match(problems({ base: TINY_BASE, axes: { 'model.moe.topK': [1, 3] } }), /run model\.moe\.topK=3: model\.moe\.topK: 3 must be ≤ model\.moe\.experts \(2\)/);
  assert.match(problems({ base: TINY_BASE, axes: { seed: [1, 1] } }), /axes\."seed": entries 1 and 2 are the same value/);
  assert.match(problems({ base: TINY_BASE, axes: { name: ['a'] } }), /axes\."name": not an axis/);
  assert.match(problems({ base: 'missing.advmoe.json', axes: { seed: [0] } }), /base: cannot read the experiment file .*missing\.advmoe\.json: ENOENT/);
  assert.match(problems({ base: { ...TINY_BASE, model: { backbone: 'vgg17' } }, axes: { seed: [0] } }), /base \(inline\): model\.backbone: "vgg17" is not allowed/);
  assert.match(problems({ base: TINY_BASE, axes: { seed: [0] }, grid: true }), /grid: unknown field/);
  assert.match(problems({ axes: { seed: [0] } }), /base: required field is missing/);
  assert.match(problems({ name: '../up', base: TINY_BASE, axes: { seed: [0] } }), /name/);
  // Every problem at once, not the first only.
  const many = problems({ base: TINY_BASE, axes: { 'model.moe.expert': [2], 'method.attack.steps': [0] } });
  assert.match(many, /model\.moe\.expert/);
  assert.match(many, /method\.attack\.steps/);
});

test('the sweep folder: manifest and configs beside the runs folder; another sweep file of the same name is refused', () => {
  const { dir, file, runsDir } = tinySweep();
  const sweepsDir = defaultSweepsDir(runsDir);
  assert.equal(sweepsDir, path.join(dir, '.advmoe', 'sweeps'));
  const plan = loadSweepFile(file);
  const { dir: sd, manifest } = writeSweepFolder(sweepsDir, plan, runsDir);
  assert.equal(sd, path.join(sweepsDir, 'methods-seeds'));
  assert.deepEqual(readSweepManifest(sd), manifest);
  for (const r of manifest.runs) {
    const cfg = JSON.parse(fs.readFileSync(path.join(sd, r.config), 'utf8'));
    assert.equal(firstDifference(cfg, plan.runs[r.index].config), null);
  }
  assert.equal(findSweepDir(sweepsDir, 'methods-seeds'), sd);
  assert.equal(findSweepDir(sweepsDir, file), sd);
  assert.equal(findSweepDir(sweepsDir, sd), sd);
  assert.throws(() => findSweepDir(sweepsDir, 'nope'), /no sweep "nope"/);
  const other = path.join(dir, 'copy', 'methods-seeds.advmoe-sweep.json');
  fs.mkdirSync(path.dirname(other));
  fs.writeFileSync(other, JSON.stringify({ base: TINY_BASE, axes: { seed: [0] } }));
  assert.throws(() => writeSweepFolder(sweepsDir, loadSweepFile(other), runsDir), /was made from .*methods-seeds\.advmoe-sweep\.json, not .*copy.*; give this sweep another "name"/);
  fs.writeFileSync(path.join(sd, 'sweep.json'), '{"version":1,"name":"x","runsDir":"/r","axes":[],"runs":[{"id":"../x"}]}');
  assert.throws(() => readSweepManifest(sd), /sweep\.json is damaged: runs\[0\]\.id is not a run id/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('firstDifference names the first differing field', () => {
  assert.equal(firstDifference({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 }), null);
  assert.equal(firstDifference({ a: 1, b: { c: 0.3 } }, { a: 1, b: { c: 0.1 } }), 'b.c: 0.3 vs 0.1');
  assert.equal(firstDifference({ a: 1 }, { a: 1, z: 'x' }), 'z: (unset) vs "x"');
});

test('a sweep whose runs exist with another experiment is refused, naming each run and the field', () => {
  const { dir, file, runsDir } = tinySweep();
  const plan = loadSweepFile(file);
  checkExistingRuns(plan, runsDir); // nothing exists yet
  const run = plan.runs[1];
  fs.mkdirSync(path.join(runsDir, run.id), { recursive: true });
  fs.writeFileSync(path.join(runsDir, run.id, 'config.json'), JSON.stringify(run.config));
  checkExistingRuns(plan, runsDir); // the same experiment: fine
  fs.writeFileSync(path.join(runsDir, run.id, 'config.json'), JSON.stringify({ ...run.config, schedule: { ...run.config.schedule, lr: 0.5 } }));
  assert.throws(
    () => checkExistingRuns(plan, runsDir),
    (e: Error) => e.message.includes(`${run.id} (method.kind=pgd-at seed=1): schedule.lr: 0.5 vs 0.05`) && /give the sweep another "name"/.test(e.message),
  );
  fs.rmSync(dir, { recursive: true, force: true });
});
