/**
 * `npm run test:integration`: the suite under desktop VS Code (@vscode/test-electron; skipped with a
 * message where VS Code cannot be had) and under code-server (always, here). Fails if either fails.
 */
import { runInCodeServer } from './runCodeServer';
import { runInElectron } from './runElectron';

async function main(): Promise<number> {
  const only = process.env.ADVMOE_IT_ONLY; // 'electron' | 'code-server'
  let failed = false;
  if (only !== 'code-server') {
    const r = await runInElectron();
    console.log(`[integration] test-electron: ${r}`);
    failed ||= r === 'failed';
  }
  if (only !== 'electron') {
    const t0 = Date.now();
    const r = await runInCodeServer();
    console.log(`[integration] code-server: ${r} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    failed ||= r === 'failed';
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`[integration] ERROR: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
