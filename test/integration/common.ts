/** Shared by the integration runners: paths and a fresh scratch workspace per run. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** Repository root (this file runs from out/ui/test/integration/). */
export const ROOT = path.resolve(__dirname, '../../../..');
export const RESULTS = path.join(ROOT, 'test-results');
export const SUITE_INDEX = path.join(__dirname, 'suite', 'index.js');

export interface Scratch {
  dir: string;
  workspace: string;
  userData: string;
  extensions: string;
  home: string;
  tmp: string;
  remove(): void;
}

/**
 * A scratch folder with a workspace, user data and extension folders. By default the workspace holds the
 * integration experiment and two recorded runs; `populate` fills it instead (an empty workspace when it does
 * nothing). `settings` are added to the user settings (e.g. a colour theme).
 */
export function makeScratch(
  prefix: string,
  trusted = true,
  opts: { populate?: (workspace: string) => void; settings?: Record<string, unknown> } = {},
): Scratch {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const sub = (name: string) => {
    const p = path.join(dir, name);
    fs.mkdirSync(p, { recursive: true });
    return p;
  };
  const workspace = sub('workspace');
  if (opts.populate) opts.populate(workspace);
  else {
    fs.cpSync(path.join(ROOT, 'test/integration/workspace'), workspace, { recursive: true });
    // Two recorded runs (one finished, one interrupted) as if trained earlier: the views must show them.
    fs.cpSync(path.join(ROOT, 'test/webview/fixtures/runs'), path.join(workspace, '.advmoe', 'runs'), { recursive: true });
  }
  const userData = sub('user-data');
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.writeFileSync(
    path.join(userData, 'User', 'settings.json'),
    JSON.stringify(
      {
        'workbench.startupEditor': 'none',
        'security.workspace.trust.enabled': !trusted,
        'security.workspace.trust.startupPrompt': 'never',
        'telemetry.telemetryLevel': 'off',
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'update.mode': 'none',
        'workbench.tips.enabled': false,
        'advmoe.backend': process.env.ADVMOE_IT_BACKEND ?? 'auto',
        ...opts.settings,
      },
      null,
      2,
    ),
  );
  return {
    dir,
    workspace,
    userData,
    extensions: sub('extensions'),
    home: sub('home'),
    tmp: sub('tmp'),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** The build the suite needs; a clear message instead of a confusing failure later. */
export function checkBuilt(extensionDir: string): void {
  for (const f of ['dist/extension.js', 'dist/engine.js', 'dist/webview/training.js']) {
    if (!fs.existsSync(path.join(extensionDir, f))) {
      throw new Error(`${path.join(extensionDir, f)} is missing: run \`npm run build\` first`);
    }
  }
  if (!fs.existsSync(SUITE_INDEX)) throw new Error(`${SUITE_INDEX} is missing: run \`tsc -p test/integration\``);
}
