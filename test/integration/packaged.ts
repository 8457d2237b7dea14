/**
 * The packaged extension: unpacks the .vsix (its `extension/` folder is what VS Code installs) and checks that
 * the engine bundle inside it starts and answers, with only the files the package carries.
 */
import { fork } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter } from 'vscode-jsonrpc/node';
import * as yauzl from 'yauzl';
import { Requests, type BackendInfo } from '../../engine/protocol';

export async function unpackVsix(vsix: string, dest: string): Promise<string> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(vsix, { lazyEntries: true }, (err, z) => (err || !z ? reject(err) : resolve(z))),
  );
  await new Promise<void>((resolve, reject) => {
    zip.on('error', reject);
    zip.on('end', () => resolve());
    zip.on('entry', (entry: yauzl.Entry) => {
      const target = path.join(dest, entry.fileName);
      if (!target.startsWith(dest + path.sep)) return reject(new Error(`bad path in vsix: ${entry.fileName}`));
      if (entry.fileName.endsWith('/')) {
        fs.mkdirSync(target, { recursive: true });
        zip.readEntry();
        return;
      }
      fs.mkdirSync(path.dirname(target), { recursive: true });
      zip.openReadStream(entry, (err, stream) => {
        if (err || !stream) return reject(err);
        stream.pipe(fs.createWriteStream(target)).on('finish', () => zip.readEntry()).on('error', reject);
      });
    });
    zip.readEntry();
  });
  const ext = path.join(dest, 'extension');
  if (!fs.existsSync(path.join(ext, 'package.json'))) throw new Error(`${vsix} has no extension/package.json`);
  return ext;
}

/** Forks `<extensionDir>/dist/engine.js` as the extension does and asks it for its backend and runs. */
export async function smokeEngine(extensionDir: string): Promise<BackendInfo> {
  const engine = path.join(extensionDir, 'dist', 'engine.js');
  const proc = fork(engine, ['--backend', 'auto'], {
    execArgv: [],
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    // Resolve node_modules from the unpacked package only, not from a checkout around it.
    cwd: extensionDir,
  });
  let stderr = '';
  proc.stderr?.on('data', (d) => (stderr += String(d)));
  const conn = createMessageConnection(new IPCMessageReader(proc), new IPCMessageWriter(proc));
  conn.listen();
  const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-smoke-'));
  try {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`engine did not answer in 60 s; stderr: ${stderr}`)), 60_000));
    const exited = new Promise<never>((_, reject) => proc.once('exit', (c) => reject(new Error(`engine exited with ${c}; stderr: ${stderr}`))));
    const info = await Promise.race([conn.sendRequest(Requests.backendInfo), timeout, exited]);
    // A job request reaches the run store: evaluating a run that is not there is a typed RUN_NOT_FOUND.
    const answer = await Promise.race([
      conn.sendRequest(Requests.evaluate, { jobId: 'smoke', runsDir, runId: 'missing' }).then((r) => ({ answered: r }), (e: unknown) => e),
      timeout,
      exited,
    ]);
    const code = (answer as { data?: { code?: string } }).data?.code;
    if (code !== 'RUN_NOT_FOUND') throw new Error(`evaluate of a missing run answered ${JSON.stringify(answer)}`);
    return info;
  } finally {
    conn.dispose();
    proc.kill();
    fs.rmSync(runsDir, { recursive: true, force: true });
  }
}

/**
 * Every file the manifest names (main, icon, activity-bar icons, JSON schema, walkthrough pictures) is inside the
 * package: `.vscodeignore` lists what ships, and a path it misses would only show as a broken picture or view.
 */
export function checkManifestFiles(extensionDir: string): string[] {
  const m = JSON.parse(fs.readFileSync(path.join(extensionDir, 'package.json'), 'utf8'));
  const c = m.contributes ?? {};
  const named: string[] = [m.main, m.icon];
  for (const v of c.viewsContainers?.activitybar ?? []) named.push(v.icon);
  for (const views of Object.values(c.views ?? {}) as { icon?: string }[][]) for (const v of views) if (v.icon) named.push(v.icon);
  for (const j of c.jsonValidation ?? []) named.push(j.url);
  for (const w of c.walkthroughs ?? []) {
    for (const s of w.steps) {
      const image = s.media?.image;
      named.push(...(typeof image === 'string' ? [image] : Object.values(image ?? {}) as string[]));
    }
  }
  const files = [...new Set(named.filter(Boolean).map((f) => path.normalize(f)))];
  const missing = files.filter((f) => !fs.existsSync(path.join(extensionDir, f)));
  if (missing.length) throw new Error(`the package lacks files its manifest names: ${missing.join(', ')} (see .vscodeignore)`);
  return files;
}
