import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { configWarnings, loadConfigFile, resolveConfig } from '../../../engine/config/load';
import schema from '../../../engine/config/schema.json';
import { isAdvMoEError } from '../../../engine/util/errors';

function invalid(raw: unknown): string {
  try {
    resolveConfig(raw);
  } catch (e) {
    assert.ok(isAdvMoEError(e, 'CONFIG_INVALID'), `expected CONFIG_INVALID, got ${e}`);
    return (e as Error).message;
  }
  assert.fail('config was accepted');
}

test('minimal config resolves with MNIST defaults', () => {
  const c = resolveConfig({ model: { backbone: 'resnet18' } }, { defaultName: 'demo' });
  assert.equal(c.name, 'demo');
  assert.equal(c.data.dataset, 'mnist');
  assert.equal(c.data.augment, false);
  assert.equal(c.method.kind, 'advmoe');
  assert.equal(c.eval.attack.eps, 0.3);
  assert.equal(c.eval.attack.steps, 20);
  assert.deepEqual(c.model.moe, { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, router: 'per-layer', layout: 'blocks', routerNorm: false, layers: 'all-blocks' });
  assert.equal(c.model.padding, 'same');
  assert.equal(c.model.inputNormalization, 'dataset');
  assert.equal(c.method.advmoe.loss, 'trades');
});

test('CIFAR defaults are PGD-10, 8/255, 2/255 (README "Metric definitions") and augmentation is on', () => {
  const c = resolveConfig({ model: { backbone: 'vgg16' }, data: { dataset: 'cifar10', root: '/data' } });
  assert.ok(Math.abs(c.eval.attack.eps - 8 / 255) < 1e-12);
  assert.ok(Math.abs(c.eval.attack.stepSize - 2 / 255) < 1e-12);
  assert.equal(c.eval.attack.steps, 10);
  assert.equal(c.data.augment, true);
  const o = resolveConfig({ model: { backbone: 'resnet18' }, method: { kind: 'official' }, data: { dataset: 'cifar10', root: '/d' } });
  assert.equal(o.method.attack.steps, 2);
  assert.ok(Math.abs(o.method.attack.stepSize - 5 / 255) < 1e-12);
  // official routes by the reference code's image-level router and gathers the chosen expert's channels, as the
  // reference code, unless the file says otherwise.
  assert.equal(o.model.moe.router, 'reference');
  assert.equal(o.model.moe.layout, 'gathered');
  const own = resolveConfig({ model: { backbone: 'resnet18', moe: { router: 'per-layer', layout: 'blocks' } }, method: { kind: 'official' } }).model.moe;
  assert.equal(own.router, 'per-layer');
  assert.equal(own.layout, 'blocks');
});

test('the gathered layout and the reference router need topK 1; padding and inputNormalization take their enums only', () => {
  const err = (model: object) => {
    try {
      resolveConfig({ model: { backbone: 'resnet18', ...model } });
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  assert.match(err({ moe: { experts: 4, topK: 2, layout: 'gathered' } }), /model\.moe\.topK: 2 with layout "gathered"/);
  assert.match(err({ moe: { experts: 4, topK: 2, router: 'reference' } }), /model\.moe\.topK: 2 with router "reference"/);
  assert.match(err({ padding: 'valid' }), /model\.padding: "valid" is not allowed; use one of "same", "symmetric"/);
  assert.match(err({ inputNormalization: 'imagenet' }), /model\.inputNormalization: "imagenet" is not allowed/);
  assert.match(err({ moe: { layout: 'compact' } }), /model\.moe\.layout: "compact" is not allowed; use one of "blocks", "gathered"/);
  assert.equal(err({ padding: 'symmetric', inputNormalization: 'none', moe: { layout: 'gathered', router: 'reference' } }), '');
});

test('method.routing: remedies resolve, and the old routerBalance is read as routing.balance', () => {
  const c = resolveConfig({ model: { backbone: 'resnet18' }, method: { routing: { entropy: 0.5 } } });
  assert.equal(c.method.routing.entropy, 0.5);
  assert.equal(resolveConfig({ model: { backbone: 'resnet18' }, method: { routerBalance: 0.2 } }).method.routing.balance, 0.2);
  assert.equal('routerBalance' in c.method, false);
  // Every remedy is off unless the file asks.
  assert.deepEqual(resolveConfig({ model: { backbone: 'resnet18' } }).method.routing, { classTarget: 0, balance: 0, entropy: 0, noise: 0, balanceBias: 0, balanceBiasOn: 'update-passes', tieExpertsEpochs: 0, freezeRoutersAfterEpochs: 0, straightThrough: 'every-pass' });
  const m = invalid({ model: { backbone: 'resnet18' }, method: { routing: { noise: -1 } } });
  assert.match(m, /method\.routing\.noise: -1 must be >= 0/);
  // Experts tied to the end would stay copies; a dense model has none to tie.
  assert.match(invalid({ model: { backbone: 'vgg16' }, method: { routing: { tieExpertsEpochs: 4 } }, schedule: { epochs: 4 } }), /tieExpertsEpochs: 4 must be less than schedule\.epochs \(4\)/);
  assert.match(invalid({ model: { backbone: 'vgg16', moe: { enabled: false } }, method: { kind: 'pgd-at', routing: { tieExpertsEpochs: 1 } } }), /tieExpertsEpochs: ties the experts of MoE layers, but model\.moe\.enabled is false/);
  assert.equal(resolveConfig({ model: { backbone: 'vgg16' }, method: { routing: { tieExpertsEpochs: 1.5 } }, schedule: { epochs: 3 } }).method.routing.tieExpertsEpochs, 1.5);
  assert.match(invalid({ model: { backbone: 'vgg16' }, method: { routing: { freezeRoutersAfterEpochs: 3 } }, schedule: { epochs: 3 } }), /freezeRoutersAfterEpochs: 3 must be less than schedule\.epochs \(3\)/);
  assert.match(invalid({ model: { backbone: 'vgg16', moe: { enabled: false } }, method: { kind: 'pgd-at', routing: { freezeRoutersAfterEpochs: 1 } } }), /freezeRoutersAfterEpochs: freezes the routers of MoE layers, but model\.moe\.enabled is false/);
  assert.match(invalid({ model: { backbone: 'vgg16' }, method: { routing: { tieExpertsEpochs: 1, freezeRoutersAfterEpochs: 1 } }, schedule: { epochs: 3 } }), /freezeRoutersAfterEpochs: 1 must be more than tieExpertsEpochs \(1\)/);
  assert.equal(resolveConfig({ model: { backbone: 'vgg16' }, method: { routing: { freezeRoutersAfterEpochs: 0.5 } }, schedule: { epochs: 3 } }).method.routing.freezeRoutersAfterEpochs, 0.5);
  // The reference method keeps the reference code's gradients; the inference-mode balancing pass is a choice like the others.
  assert.match(invalid({ model: { backbone: 'resnet18' }, method: { kind: 'official', routing: { straightThrough: 'router-updates' } } }), /straightThrough: "router-updates" is not for method "official"/);
  assert.match(invalid({ model: { backbone: 'resnet18' }, method: { routing: { straightThrough: 'attacks' } } }), /method\.routing\.straightThrough: "attacks" is not allowed; use one of "every-pass", "router-updates"/);
  assert.equal(resolveConfig({ model: { backbone: 'resnet18' }, method: { routing: { balanceBiasOn: 'clean-inference' } } }).method.routing.balanceBiasOn, 'clean-inference');
});

test('user values override defaults, partially inside attack objects', () => {
  const c = resolveConfig({ model: { backbone: 'resnet18', moe: { experts: 4, topK: 2 } }, eval: { attack: { steps: 50 } } });
  assert.equal(c.model.moe.experts, 4);
  assert.equal(c.model.moe.topK, 2);
  assert.equal(c.eval.attack.steps, 50);
  assert.equal(c.eval.attack.eps, 0.3);
});

test('errors name the field, the value and what is allowed', () => {
  let m = invalid({ model: { backbone: 'resnet50' } });
  assert.match(m, /model\.backbone: "resnet50" is not allowed; use one of "resnet18", "vgg16", "wrn28_10", "densenet"/);
  m = invalid({ model: { backbone: 'resnet18', moe: { experts: 2, topK: 3 } } });
  assert.match(m, /model\.moe\.topK: 3 must be ≤ model\.moe\.experts \(2\)/);
  m = invalid({ model: { backbone: 'resnet18' }, schedule: { batchSize: 0 } });
  assert.match(m, /schedule\.batchSize: 0 must be >= 1/);
  m = invalid({ model: { backbone: 'resnet18' }, schedual: {} });
  assert.match(m, /schedual: unknown field \(allowed here: .*schedule/);
  m = invalid({});
  assert.match(m, /model: required field is missing/);
  m = invalid({ model: { backbone: 'resnet18', moe: { enabled: false } }, method: { kind: 'advmoe' } });
  assert.match(m, /method\.kind: "advmoe" trains routers, but model\.moe\.enabled is false/);
  m = invalid({ model: { backbone: 'resnet18' }, data: { dataset: 'image-folder' } });
  assert.match(m, /data\.root: the image-folder dataset needs the folder holding train\/ and val\//);
  m = invalid({ model: { backbone: 'resnet18' }, seed: 'abc' });
  assert.match(m, /seed: "abc" must be integer/);
});

test('files: missing file, bad JSON, relative data.root', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-cfg-'));
  assert.throws(() => loadConfigFile(path.join(dir, 'nope.advmoe.json')), (e) => isAdvMoEError(e, 'CONFIG_NOT_FOUND') && /nope\.advmoe\.json/.test((e as Error).message));
  fs.writeFileSync(path.join(dir, 'bad.advmoe.json'), '{ "model": ');
  assert.throws(() => loadConfigFile(path.join(dir, 'bad.advmoe.json')), (e) => isAdvMoEError(e, 'CONFIG_INVALID') && /bad\.advmoe\.json is not valid JSON/.test((e as Error).message));
  fs.writeFileSync(path.join(dir, 'c10.advmoe.json'), JSON.stringify({ model: { backbone: 'resnet18' }, data: { dataset: 'cifar10', root: 'data/cifar' } }));
  const c = loadConfigFile(path.join(dir, 'c10.advmoe.json'));
  assert.equal(c.name, 'c10');
  assert.equal(c.data.root, path.join(dir, 'data/cifar'));
  fs.writeFileSync(path.join(dir, 'c100.advmoe.json'), JSON.stringify({ model: { backbone: 'resnet18' }, data: { dataset: 'cifar100' } }));
  assert.equal(loadConfigFile(path.join(dir, 'c100.advmoe.json')).data.root, path.join(dir, 'data'));
});

test('every field of the resolved config is described in the schema', () => {
  const c = resolveConfig({ model: { backbone: 'resnet18' }, data: { dataset: 'image-folder', root: '/x' } });
  const missing: string[] = [];
  const walk = (value: unknown, node: any, at: string): void => {
    if (node?.$ref) node = (schema as any).definitions[node.$ref.split('/').pop()];
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
    for (const [k, v] of Object.entries(value)) {
      const child = node?.properties?.[k];
      if (!child) missing.push(`${at}${k}`);
      else if (!child.description && !(child.$ref)) missing.push(`${at}${k} (no description)`);
      walk(v, child, `${at}${k}.`);
    }
  };
  walk(c, schema, '');
  assert.deepEqual(missing, []);
});

test('a PGD whose steps cannot travel ε is warned about; the defaults and the example are not', () => {
  for (const raw of [
    { model: { backbone: 'resnet18' } },
    { model: { backbone: 'resnet18' }, data: { dataset: 'cifar10' } },
    { model: { backbone: 'resnet18' }, data: { dataset: 'cifar10' }, method: { kind: 'official' } },
    JSON.parse(fs.readFileSync(path.join(__dirname, '../../../../examples/mnist-advmoe.advmoe.json'), 'utf8')),
  ]) {
    assert.deepEqual(configWarnings(resolveConfig(raw)), [], JSON.stringify(raw).slice(0, 120));
  }
  // steps lowered to 5, stepSize left at the MNIST default 0.0375: 0.1875 < 0.3.
  const w = configWarnings(resolveConfig({ model: { backbone: 'resnet18' }, eval: { attack: { steps: 5 } } }));
  assert.equal(w.length, 1);
  assert.match(w[0], /^eval\.attack: 5 step\(s\) of 0\.0375 move at most 0\.1875, less than ε = 0\.3; .* stepSize 0\.15\)$/);
});

test('numbers that JSON reads as Infinity are refused, naming the field, and so are absurd ones', () => {
  const base = '"model": { "backbone": "vgg16" }';
  const cases: [string, RegExp][] = [
    ['"schedule": { "lr": 1e999 }', /schedule\.lr: Infinity is not a finite number/],
    ['"method": { "attack": { "eps": 1e999 } }', /method\.attack\.eps: Infinity is not a finite number/],
    ['"method": { "advmoe": { "routerLrScale": 1e999 } }', /method\.advmoe\.routerLrScale: Infinity/],
    ['"method": { "attack": { "stepSize": 1e999 } }', /method\.attack\.stepSize: Infinity/],
    ['"method": { "epsWarmupEpochs": 1e999 }', /method\.epsWarmupEpochs: Infinity/],
    ['"checkpointEveryEpochs": 1e999', /checkpointEveryEpochs: Infinity/],
    ['"eval": { "epsCurve": [0.1, 1e999] }', /eval\.epsCurve\.1: Infinity/],
    ['"schedule": { "lr": -1e999 }', /schedule\.lr: -Infinity is not a finite number/],
    ['"method": { "attack": { "eps": 1e9 } }', /method\.attack\.eps: 1000000000 must be ≤ 1000/],
    ['"method": { "epsWarmupEpochs": 1e300 }', /method\.epsWarmupEpochs: 1e\+300 must be ≤ 10000/],
    ['"schedule": { "lr": 1e6 }', /schedule\.lr: 1000000 must be ≤ 100/],
  ];
  for (const [field, message] of cases) {
    const raw: unknown = JSON.parse(`{ ${base}, ${field} }`);
    assert.match(invalid(raw), message, field);
  }
});

test('an ε that covers the whole pixel range is a warning', () => {
  const c = resolveConfig({ model: { backbone: 'vgg16' }, method: { attack: { eps: 8, stepSize: 2 } } });
  assert.ok(configWarnings(c).some((w) => /method\.attack\.eps: ε = 8 covers the whole \[0, 1\] pixel range/.test(w)));
  assert.ok(!configWarnings(resolveConfig({ model: { backbone: 'vgg16' } })).some((w) => /pixel range/.test(w)));
});

test('deeply nested input is refused with a message, not a stack overflow', () => {
  const deep = '['.repeat(10_000) + ']'.repeat(10_000);
  for (const text of [deep, `{ "model": { "backbone": "vgg16", "moe": { "layers": ${deep} } } }`, `{ "model": ${deep} }`]) {
    const message = invalid(JSON.parse(text));
    assert.doesNotMatch(message, /call stack/);
    assert.ok(message.length < 2000);
  }
  assert.match(invalid(JSON.parse(deep)), /\(top level\).*must be object|nested more than/);
});

test('MoE settings whose cost grows with the square of experts × expertWidth are warned about', () => {
  const big = resolveConfig({ model: { backbone: 'vgg16', moe: { experts: 64, topK: 64 } } });
  assert.ok(configWarnings(big).some((w) => /^model\.moe: experts × expertWidth = 32, .* grow about 1024×/.test(w)), configWarnings(big).join('\n'));
  const paper = resolveConfig({ model: { backbone: 'vgg16', moe: { experts: 4, topK: 2 } } });
  assert.ok(!configWarnings(paper).some((w) => w.startsWith('model.moe')));
});

test('every default the schema states is the resolved value, and the input object is left as it was', () => {
  const raw = { model: { backbone: 'vgg16' } };
  const before = JSON.stringify(raw);
  const c = resolveConfig(raw) as unknown as Record<string, unknown>;
  assert.equal(JSON.stringify(raw), before);
  // Walk the schema: each property with a `default` (outside definitions) must resolve to it when the file omits it.
  let checked = 0;
  const walk = (node: Record<string, any>, value: Record<string, unknown>, where: string) => {
    for (const [key, sub] of Object.entries<Record<string, any>>(node.properties ?? {})) {
      if (key === 'routerBalance' || key === '$schema') continue; // read as routing.balance; not a setting
      if (sub.default !== undefined && (typeof sub.default !== 'object' || Array.isArray(sub.default))) {
        assert.deepEqual(value[key], sub.default, `${where}${key}`);
        checked++;
      }
      if (sub.properties && value[key] && typeof value[key] === 'object') walk(sub, value[key] as Record<string, unknown>, `${where}${key}.`);
    }
  };
  walk(schema as Record<string, any>, c, '');
  assert.ok(checked >= 25, `only ${checked} defaults checked`);
});
