/**
 * Restricted Mode: every entry point of a command that runs the engine (palette, menus, editor title, CodeLens) is
 * hidden until the workspace is trusted. Read from the manifest as VS Code reads it; the real-VS-Code suite
 * (test/integration/suite/untrusted.test.ts) checks that an untrusted window gets no CodeLens.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

const ROOT = path.join(__dirname, '..', '..', '..', '..');
const ENGINE_COMMANDS = ['advmoe.train', 'advmoe.resumeRun', 'advmoe.evaluate', 'advmoe.inspectRouting'];

interface MenuItem {
  command: string;
  when?: string;
}

test('palette and menu entries of engine commands need a trusted workspace', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const menus: Record<string, MenuItem[]> = pkg.contributes.menus;
  for (const cmd of ENGINE_COMMANDS) {
    const palette = menus.commandPalette.filter((m) => m.command === cmd);
    assert.equal(palette.length, 1, `${cmd} has a palette entry with a when clause`);
    assert.match(palette[0].when ?? '', /\bisWorkspaceTrusted\b/, `${cmd} in the palette`);
    for (const [where, items] of Object.entries(menus)) {
      if (where === 'commandPalette') continue;
      for (const m of items.filter((x) => x.command === cmd)) assert.match(m.when ?? '', /\bisWorkspaceTrusted\b/, `${cmd} in ${where}`);
    }
  }
});
