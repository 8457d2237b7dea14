/**
 * Entry point VS Code loads inside the extension host (`--extensionTestsPath`): runs the mocha suite.
 * Used by both runners (desktop VS Code via @vscode/test-electron, and code-server in a browser).
 */
import * as path from 'path';

export function run(): Promise<void> {
  // mocha 12 is ESM-only; Node ≥ 20.19 can require() it, and the default export is the class.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require('mocha');
  const Mocha: typeof import('mocha') = mod.default ?? mod;
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 15 * 60_000, reporter: 'spec' });
  if (process.env.ADVMOE_IT_GREP) mocha.grep(process.env.ADVMOE_IT_GREP);
  // Each suite runs in its own session (runCodeServer.ts): `untrusted` with workspace trust on, `walkthrough` in an
  // empty workspace, `screenshots` (npm run screenshots) on freshly trained runs; the main suite otherwise.
  const suite = process.env.ADVMOE_IT_SUITE ?? 'training';
  if (!['training', 'untrusted', 'walkthrough', 'screenshots'].includes(suite)) throw new Error(`unknown ADVMOE_IT_SUITE ${suite}`);
  mocha.addFile(path.join(__dirname, `${suite}.test.js`));
  return new Promise((resolve, reject) => {
    try {
      mocha.run((failures) => (failures > 0 ? reject(new Error(`${failures} integration test(s) failed`)) : resolve()));
    } catch (e) {
      reject(e);
    }
  });
}
