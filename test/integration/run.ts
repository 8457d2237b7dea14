/**
 * `npm run test:integration` (after `npm run package`): unpacks the .vsix and checks its engine bundle starts
 * on the files the package carries, then runs the suite with that packaged extension under desktop VS Code
 * (@vscode/test-electron; skipped with a message where VS Code cannot be had) and under code-server, then the
 * Getting Started walkthrough suite in an empty workspace and the Restricted Mode suite with workspace trust on,
 * each in its own code-server session.
 * Without a .vsix (ADVMOE_IT_VSIX='' ) it uses the checkout itself.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ROOT } from './common';
import { checkManifestFiles, smokeEngine, unpackVsix } from './packaged';
import { runInCodeServer } from './runCodeServer';
import { runInElectron } from './runElectron';

async function main(): Promise<number> {
  const only = process.env.ADVMOE_IT_ONLY; // 'electron' | 'code-server'
  const vsix = process.env.ADVMOE_IT_VSIX ?? path.join(ROOT, 'advmoe-studio.vsix');
  let extensionDir = ROOT;
  let unpacked: string | undefined;
  if (vsix) {
    if (!fs.existsSync(vsix)) throw new Error(`${vsix} not found: run \`npm run package\` (or set ADVMOE_IT_VSIX='' to test the checkout)`);
    unpacked = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-vsix-'));
    extensionDir = await unpackVsix(vsix, unpacked);
    console.log(`[integration] testing the packaged extension ${path.relative(ROOT, vsix)} (unpacked to ${extensionDir})`);
    console.log(`[integration] the package holds the ${checkManifestFiles(extensionDir).length} files its manifest names`);
  }
  try {
    const t0 = Date.now();
    const info = await smokeEngine(extensionDir);
    console.log(`[integration] engine bundle answers: backend ${info.name} (threads ${info.threads}, SIMD ${info.simd}, tfjs ${info.tfjsVersion}) in ${Date.now() - t0} ms`);
    let failed = false;
    if (only !== 'code-server') {
      const r = await runInElectron(extensionDir);
      console.log(`[integration] test-electron: ${r}`);
      failed ||= r === 'failed';
    }
    if (only !== 'electron') {
      const t1 = Date.now();
      const r = await runInCodeServer(extensionDir);
      console.log(`[integration] code-server: ${r} (${((Date.now() - t1) / 1000).toFixed(0)} s)`);
      failed ||= r === 'failed';
      const tw = Date.now();
      const w = await runInCodeServer(extensionDir, { suite: 'walkthrough', populate: () => undefined });
      console.log(`[integration] code-server, Getting Started walkthrough: ${w} (${((Date.now() - tw) / 1000).toFixed(0)} s)`);
      failed ||= w === 'failed';
      const t2 = Date.now();
      const u = await runInCodeServer(extensionDir, { untrusted: true });
      console.log(`[integration] code-server, Restricted Mode: ${u} (${((Date.now() - t2) / 1000).toFixed(0)} s)`);
      failed ||= u === 'failed';
    }
    return failed ? 1 : 0;
  } finally {
    if (unpacked) fs.rmSync(unpacked, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`[integration] ERROR: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
