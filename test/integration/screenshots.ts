/**
 * `npm run screenshots`: regenerates media/screenshots/ from the real views in code-server, so the README's and
 * the walkthrough's pictures stay true as the views change.
 *  1. trains the three small experiments of screenshotRuns.ts with the CLI, inside a fresh workspace;
 *  2. runs suite/screenshots.test.ts in code-server on it: the main loop's frames (dark theme), then every view in
 *     the light and the dark theme, each photographed once the view reports it is drawn;
 *  3. shrinks the stills with pngquant and assembles the frames into media/screenshots/main-loop.gif with ffmpeg.
 * media/screenshots/ is replaced only when all of that worked. Needs what scripts/setup-ui-tests.sh installs, the
 * build (`npm run screenshots` runs webpack and tsc first), and Debian's ffmpeg and pngquant.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ROOT } from './common';
import { runInCodeServer } from './runCodeServer';
import { SHOT_EXPERIMENTS } from './screenshotRuns';

const OUT = path.join(ROOT, 'media', 'screenshots');
const VIEWS = ['new-experiment', 'training', 'robustness', 'routing', 'inspector'];
const THEMES = ['light', 'dark'];
const GIF = 'main-loop.gif';
/** Seconds each GIF frame stays; the last one longer, before the loop starts again. */
const FRAME_S = 1.6;
const LAST_FRAME_S = 3.5;
const GIF_WIDTH = 960;

function need(tool: string, pkg: string): void {
  const r = spawnSync(tool, ['--version'], { stdio: 'ignore' });
  if (r.error) throw new Error(`${tool} not found: install Debian's ${pkg} (apt-get install -y ${pkg})`);
}

function run(cmd: string, args: string[], what: string): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error || r.status !== 0) throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}): ${cmd} ${args.join(' ')}`);
}

/** Trains the experiments with the CLI where the workspace will be, so the runs' paths are the workspace's. */
function trainRuns(workspace: string): void {
  for (const x of SHOT_EXPERIMENTS) {
    const file = path.join(workspace, `${x.name}.advmoe.json`);
    fs.writeFileSync(file, JSON.stringify(x.config, null, 2) + '\n');
    console.log(`[screenshots] training ${x.name} (${x.key})`);
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'advmoe.js'), 'train', file, '--runs-dir', path.join(workspace, '.advmoe', 'runs')], {
      cwd: workspace,
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`training ${x.name} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
    console.log(`[screenshots] ${x.name} trained in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
}

function makeGif(frames: string[], dest: string, work: string): void {
  // ffmpeg's concat list gives each frame its duration; the GIF muxer ignores the last one, so -final_delay sets it.
  const list = path.join(work, 'frames.txt');
  fs.writeFileSync(list, frames.flatMap((f) => [`file '${f}'`, `duration ${FRAME_S}`, '']).join('\n'));
  // One palette for the whole animation; frames are mostly the same UI, so only changed rectangles are stored.
  const filter = `scale=${GIF_WIDTH}:-1:flags=lanczos,split[a][b];[a]palettegen=max_colors=128:stats_mode=full[p];[b][p]paletteuse=dither=bayer:bayer_scale=4:diff_mode=rectangle`;
  run('ffmpeg', ['-v', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', list, '-filter_complex', filter, '-fps_mode', 'vfr', '-loop', '0', '-final_delay', String(Math.round(LAST_FRAME_S * 100)), dest], 'ffmpeg (GIF)');
}

async function main(): Promise<number> {
  need('ffmpeg', 'ffmpeg');
  need('pngquant', 'pngquant');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-screenshots-'));
  const shots = path.join(work, 'shots');
  const out = path.join(work, 'out');
  fs.mkdirSync(shots);
  fs.mkdirSync(out);
  try {
    const t0 = Date.now();
    const result = await runInCodeServer(ROOT, {
      suite: 'screenshots',
      populate: trainRuns,
      shots: { dir: shots, prefix: '' },
      viewport: { width: 1280, height: 800 },
      settings: { 'workbench.colorTheme': 'Default Dark Modern', 'editor.minimap.enabled': false, 'chat.commandCenter.enabled': false },
    });
    if (result !== 'passed') {
      console.error('[screenshots] the screenshot suite failed; media/screenshots/ is left as it was');
      return 1;
    }
    for (const view of VIEWS) {
      for (const theme of THEMES) {
        const name = `${view}-${theme}.png`;
        const src = path.join(shots, name);
        if (!fs.existsSync(src)) throw new Error(`the suite took no ${name}`);
        run('pngquant', ['--quality=60-90', '--speed', '1', '--strip', '--force', '--output', path.join(out, name), src], `pngquant ${name}`);
      }
    }
    const frames = fs.readdirSync(shots).filter((f) => /^loop-\d+.*\.png$/.test(f)).sort().map((f) => path.join(shots, f));
    if (frames.length < 5) throw new Error(`the suite took ${frames.length} main-loop frames`);
    makeGif(frames, path.join(out, GIF), work);

    // Replace the folder's pictures only now that every one of them was made.
    fs.mkdirSync(OUT, { recursive: true });
    for (const f of fs.readdirSync(OUT)) if (/\.(png|gif)$/.test(f)) fs.rmSync(path.join(OUT, f));
    let total = 0;
    for (const f of fs.readdirSync(out).sort()) {
      fs.copyFileSync(path.join(out, f), path.join(OUT, f));
      const size = fs.statSync(path.join(OUT, f)).size;
      total += size;
      console.log(`[screenshots] ${path.relative(ROOT, path.join(OUT, f))}  ${(size / 1024).toFixed(0)} KB`);
    }
    console.log(`[screenshots] ${fs.readdirSync(out).length} files, ${(total / 1024).toFixed(0)} KB in all (${frames.length} GIF frames), in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    return 0;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`[screenshots] ERROR: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
