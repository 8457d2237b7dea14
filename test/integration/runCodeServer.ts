/**
 * Runs an integration suite inside the extension host of code-server 4.100.3 (VS Code 1.100.3 in a
 * browser), driven by headless Chromium. code-server takes the development extension and the test entry
 * point from the page address; the suite's exit code comes back through `window.codeAutomationExit`.
 * Screenshots are saved at the suite's `[advmoe-it] screenshot X` marks and at the end, under test-results/;
 * the suite's probes (probeProtocol.ts: screenshots on request, the walkthrough's checkboxes, clicks in
 * webviews) are answered on the page.
 *
 * Environment: CODE_SERVER (path of the code-server binary; default: where scripts/setup-ui-tests.sh puts
 * it), ADVMOE_IT_TIMEOUT_S (default 1200), CHROMIUM_PATH (default /usr/bin/chromium).
 */
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import * as util from 'util';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../webview/harness';
import { checkBuilt, makeScratch, RESULTS, ROOT, SUITE_INDEX } from './common';
import { PROBE_LINE } from './probeProtocol';
import { answerProbe, type ShotTarget } from './probes';


export function codeServerPath(): string {
  const cache = process.env.ADVMOE_UI_CACHE ?? path.join(os.homedir(), '.cache', 'advmoe-ui-tests');
  return process.env.CODE_SERVER ?? path.join(cache, 'code-server-4.100.3', 'node_modules', '.bin', 'code-server');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitHealthy(port: number, proc: ChildProcess, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (proc.exitCode !== null) throw new Error(`code-server exited with ${proc.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      http.get(`http://127.0.0.1:${port}/healthz`, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      }).on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error('code-server did not become healthy');
}

/** Keeps the extension's own log ("AdvMoE Engine" output channel) of the run under test-results/. */
function copyExtensionLogs(userData: string): void {
  const out = path.join(RESULTS, 'integration-logs');
  fs.rmSync(out, { recursive: true, force: true });
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/advmoe|exthost|remoteexthost/i.test(p) && e.name.endsWith('.log')) {
        fs.mkdirSync(out, { recursive: true });
        fs.copyFileSync(p, path.join(out, path.relative(userData, p).replace(/[\\/]/g, '__')));
      }
    }
  };
  try {
    walk(path.join(userData, 'logs'));
  } catch {
    // no logs folder
  }
}

export interface SessionOptions {
  /** The mocha file the extension host runs (suite/index.ts); default the main suite, `untrusted` with `untrusted`. */
  suite?: 'training' | 'untrusted' | 'walkthrough' | 'screenshots';
  /** Workspace trust on, so the workspace opens in Restricted Mode. */
  untrusted?: boolean;
  /** Fills the workspace instead of the default experiment and recorded runs (see makeScratch). */
  populate?: (workspace: string) => void;
  /** Added to the user settings. */
  settings?: Record<string, unknown>;
  /** Where probe screenshots go; default test-results/integration-<name>.png. */
  shots?: ShotTarget;
  viewport?: { width: number; height: number };
}

export async function runInCodeServer(extensionDir = ROOT, opts: SessionOptions = {}): Promise<'passed' | 'failed'> {
  checkBuilt(extensionDir);
  const bin = codeServerPath();
  if (!fs.existsSync(bin)) {
    throw new Error(`code-server not found at ${bin}: run scripts/setup-ui-tests.sh (or set CODE_SERVER)`);
  }
  fs.mkdirSync(RESULTS, { recursive: true });
  const scratch = makeScratch('advmoe-it-cs-', !opts.untrusted, { populate: opts.populate, settings: opts.settings });
  const suite = opts.suite ?? (opts.untrusted ? 'untrusted' : 'training');
  const probesDir = path.join(scratch.dir, 'probes');
  fs.mkdirSync(probesDir);
  const shotTarget = opts.shots ?? { dir: RESULTS, prefix: 'integration-' };
  const port = await freePort();
  const t0 = Date.now();
  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const configFile = path.join(scratch.dir, 'config.yaml');
  fs.writeFileSync(configFile, 'auth: none\ncert: false\n');
  const logFile = path.join(RESULTS, 'integration-code-server.log');
  const logStream = fs.createWriteStream(logFile);
  const cs = spawn(
    bin,
    [
      '--config', configFile,
      '--bind-addr', `127.0.0.1:${port}`,
      '--auth', 'none',
      '--disable-telemetry',
      '--disable-update-check',
      ...(opts.untrusted ? [] : ['--disable-workspace-trust']),
      '--user-data-dir', scratch.userData,
      '--extensions-dir', scratch.extensions,
      scratch.workspace,
    ],
    // The extension host inherits this environment: it tells the suite which file to run and where probes are answered.
    { env: { ...process.env, HOME: scratch.home, TMPDIR: scratch.tmp, ADVMOE_IT_SUITE: suite, ADVMOE_IT_PROBES: probesDir }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  cs.stdout?.pipe(logStream);
  cs.stderr?.pipe(logStream);
  const killServer = () => {
    try {
      if (cs.pid) process.kill(-cs.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
  try {
    await waitHealthy(port, cs, 60_000);
    console.log(`[code-server] up on port ${port} after ${elapsed()}`);
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: opts.viewport ?? { width: 1600, height: 1000 } });
    let resolveExit: (code: number) => void = () => undefined;
    const exited = new Promise<number>((r) => (resolveExit = r));
    await page.exposeFunction('codeAutomationExit', (code: number) => resolveExit(Number(code)));
    const shots: Promise<unknown>[] = [];
    page.on('console', (m) => {
      // Extension-host output arrives as format strings plus arguments (mocha's "%s" lines): format them.
      const print = async () => {
        let text = m.text();
        try {
          const args = await Promise.all(m.args().map((a) => a.jsonValue() as Promise<unknown>));
          // "%c INFO", "color: …" come first when the workbench relays extension-host logs.
          const rest = typeof args[0] === 'string' && args[0].startsWith('%c') ? args.slice(2) : args;
          if (typeof rest[0] === 'string') text = util.format(...(rest as [string, ...unknown[]]));
        } catch {
          // keep the plain text
        }
        text = text.replace(/^%c\s*\w+\s*color:\s*#\w+\s*/, '').replace(/^\s*(INFO|WARN|ERR)\s+color:\s*#\w+\s*/, '');
        if (!/open-vsx|ERR_NAME_NOT_RESOLVED|Failed to load resource|sandbox attribute|service worker/i.test(text)) {
          console.log(`[browser ${m.type()}] ${text.split('\n').filter((l) => !/^\s+at /.test(l)).slice(0, 20).join('\n')}`);
        }
        const shot = /\[advmoe-it\] screenshot (\S+)/.exec(text);
        if (shot) shots.push(page.screenshot({ path: path.join(RESULTS, `integration-${shot[1]}.png`) }).catch(() => undefined));
        const probe = PROBE_LINE.exec(text);
        if (probe) shots.push(answerProbe(page, probesDir, probe[1], probe[2], shotTarget).catch((e) => console.error(`[code-server] probe ${probe[1]}: ${String(e)}`)));
      };
      shots.push(print());
    });
    const remote = (p: string) => `vscode-remote://127.0.0.1:${port}${p}`;
    const payload = JSON.stringify([
      ['extensionDevelopmentPath', remote(extensionDir)],
      ['extensionTestsPath', remote(SUITE_INDEX)],
    ]);
    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(scratch.workspace)}&payload=${encodeURIComponent(payload)}`;
    await page.goto(url);
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    console.log(`[code-server] workbench loaded after ${elapsed()}; the suite runs in the extension host`);
    const timeoutS = Number(process.env.ADVMOE_IT_TIMEOUT_S ?? 1200);
    const code = await Promise.race([exited, new Promise<number>((r) => setTimeout(() => r(-1), timeoutS * 1000))]);
    await Promise.all(shots);
    await page.screenshot({ path: path.join(RESULTS, 'integration-end.png') }).catch(() => undefined);
    if (code === -1) console.error(`[code-server] TIMED OUT after ${timeoutS}s`);
    console.log(`[code-server] suite exit code ${code} after ${elapsed()} (code-server log: ${path.relative(ROOT, logFile)})`);
    return code === 0 ? 'passed' : 'failed';
  } finally {
    await browser?.close().catch(() => undefined);
    killServer();
    copyExtensionLogs(scratch.userData);
    logStream.end();
    scratch.remove();
  }
}

if (require.main === module) {
  runInCodeServer().then(
    (r) => process.exit(r === 'passed' ? 0 : 1),
    (e) => {
      console.error(`[code-server] ERROR: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
