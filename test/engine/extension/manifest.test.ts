/**
 * The extension manifest (package.json) holds what the Marketplace and the walkthrough need: checked here so a
 * missing picture, an undescribed setting or a walkthrough step that can never complete fails fast, in Node
 * (the walkthrough itself is walked in VS Code by test/integration/suite/walkthrough.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';

// out/test/engine/extension/ → the repository root.
const ROOT = path.resolve(__dirname, '../../../..');
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

interface Step {
  id: string;
  title: string;
  description: string;
  media: { image: Record<string, string>; altText: string };
  completionEvents: string[];
}

test('Marketplace metadata: repository, licence file, 128 px icon, banner, categories and keywords', () => {
  assert.match(manifest.repository?.url ?? '', /^https:\/\/github\.com\/advmoe\/advmoe-studio/);
  assert.equal(manifest.license, 'MIT');
  assert.match(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/);
  assert.match(fs.readFileSync(path.join(ROOT, 'CHANGELOG.md'), 'utf8'), new RegExp(`## \\[${manifest.version.replace(/\./g, '\\.')}\\]`), 'CHANGELOG has the version');
  const icon = PNG.sync.read(fs.readFileSync(path.join(ROOT, manifest.icon)));
  assert.deepEqual([icon.width, icon.height], [128, 128]);
  assert.match(manifest.galleryBanner.color, /^#[0-9a-f]{6}$/i);
  assert.ok(['dark', 'light'].includes(manifest.galleryBanner.theme));
  assert.ok(manifest.categories.includes('Machine Learning'));
  // The Marketplace keeps at most 30 keywords.
  assert.ok(manifest.keywords.length > 0 && manifest.keywords.length <= 30);
  for (const k of ['machine learning', 'adversarial robustness', 'mixture of experts']) assert.ok(manifest.keywords.includes(k), k);
});

test('every setting is described', () => {
  const props = manifest.contributes.configuration.properties as Record<string, { description?: string; markdownDescription?: string }>;
  assert.ok(Object.keys(props).length > 0);
  for (const [key, p] of Object.entries(props)) assert.ok((p.description ?? p.markdownDescription ?? '').length > 20, `${key} has a description`);
});

test('the walkthrough: four steps, each with existing pictures, a contributed command and a context completion event', () => {
  const walkthroughs = manifest.contributes.walkthroughs as { id: string; steps: Step[] }[];
  assert.equal(walkthroughs.length, 1);
  const steps = walkthroughs[0].steps;
  assert.deepEqual(steps.map((s) => s.id), ['createExperiment', 'train', 'robustness', 'inspectRouting']);
  const commands = new Set((manifest.contributes.commands as { command: string }[]).map((c) => c.command));
  // The keys extension/walkthrough.ts sets (it imports vscode, so its source is read here).
  const source = fs.readFileSync(path.join(ROOT, 'extension', 'walkthrough.ts'), 'utf8');
  const keys = new Set([...source.matchAll(/'(advmoe\.walkthrough\.\w+)'/g)].map((m) => m[1]));
  assert.equal(keys.size, 4);
  for (const s of steps) {
    for (const theme of ['light', 'dark']) {
      const file = s.media.image[theme];
      assert.ok(file && fs.existsSync(path.join(ROOT, file)), `${s.id}: ${theme} picture ${file}`);
      assert.ok(PNG.sync.read(fs.readFileSync(path.join(ROOT, file))).width >= 800, `${file} is a full screenshot`);
    }
    assert.ok(s.media.altText.length > 0, `${s.id} has alt text`);
    const linked = [...s.description.matchAll(/\(command:([\w.]+)\)/g)].map((m) => m[1]);
    assert.ok(linked.length > 0, `${s.id} has a button`);
    for (const c of linked) assert.ok(commands.has(c), `${s.id}: ${c} is contributed`);
    assert.equal(s.completionEvents.length, 1);
    const key = /^onContext:(.+)$/.exec(s.completionEvents[0])?.[1];
    assert.ok(key && keys.has(key), `${s.id}: ${s.completionEvents[0]} is a key walkthrough.ts sets`);
  }
  assert.equal(new Set(steps.map((s) => s.completionEvents[0])).size, 4, 'each step waits for its own event');
});

test('npm ci leaves the CLI runnable: a prepare script that compiles', () => {
  assert.equal(manifest.scripts.prepare, 'node scripts/compile.js');
  assert.ok(fs.existsSync(path.join(ROOT, 'scripts', 'compile.js')));
  assert.equal(manifest.bin.advmoe, './bin/advmoe.js');
});
