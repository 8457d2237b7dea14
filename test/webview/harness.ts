/**
 * Loads a built webview in headless Chromium exactly as the extension serves it (same HTML shell and CSP),
 * with VS Code's webview API replaced by a recorder: messages the view posts land in `window.__sent`,
 * `setState` in `window.__state`. Themes are `--vscode-*` variables served as a stylesheet, plus the body
 * class VS Code sets.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import type { AddressInfo } from 'net';
import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { webviewHtml } from '../../extension/webviewHtml';

export const ROOT = path.resolve(__dirname, '../../../..');
export const RESULTS = path.join(ROOT, 'test-results');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-breakpad',
];

export type Theme = 'light' | 'dark' | 'high-contrast';
const THEMES: Record<Theme, { bodyClass: string; vars: Record<string, string> }> = {
  light: {
    bodyClass: 'vscode-light',
    vars: {
      foreground: '#3b3b3b', 'editor-background': '#ffffff', descriptionForeground: '#717171',
      'charts-blue': '#1a85ff', 'charts-orange': '#d18616', 'charts-green': '#388a34', 'charts-red': '#e51400',
      'charts-purple': '#652d90', 'charts-yellow': '#bf8803', 'button-background': '#005fb8',
      'button-foreground': '#ffffff', 'editorHoverWidget-background': '#f8f8f8', 'editorHoverWidget-border': '#c8c8c8',
      'font-family': 'sans-serif', 'font-size': '13px',
    },
  },
  dark: {
    bodyClass: 'vscode-dark',
    vars: {
      foreground: '#cccccc', 'editor-background': '#1f1f1f', descriptionForeground: '#9d9d9d',
      'charts-blue': '#3794ff', 'charts-orange': '#d18616', 'charts-green': '#89d185', 'charts-red': '#f14c4c',
      'charts-purple': '#b180d7', 'charts-yellow': '#cca700', 'button-background': '#0078d4',
      'button-foreground': '#ffffff', 'editorHoverWidget-background': '#202020', 'editorHoverWidget-border': '#454545',
      'font-family': 'sans-serif', 'font-size': '13px',
    },
  },
  'high-contrast': {
    bodyClass: 'vscode-high-contrast',
    vars: {
      foreground: '#ffffff', 'editor-background': '#000000', descriptionForeground: '#ffffff',
      'charts-blue': '#3794ff', 'charts-orange': '#d18616', 'charts-green': '#89d185', 'charts-red': '#f14c4c',
      'charts-purple': '#b180d7', 'charts-yellow': '#ffd700', 'button-background': '#000000',
      'button-foreground': '#ffffff', 'contrastBorder': '#6fc3df', 'editorHoverWidget-background': '#0c141f',
      'editorHoverWidget-border': '#6fc3df', 'font-family': 'sans-serif', 'font-size': '13px',
    },
  },
};

export function themeCss(theme: Theme): string {
  const vars = Object.entries(THEMES[theme].vars).map(([k, v]) => `--vscode-${k}: ${v};`);
  return `html { ${vars.join(' ')} }\n`;
}

export interface Harness {
  origin: string;
  browser: Browser;
  close(): Promise<void>;
  open(view: string, opts?: { theme?: Theme; state?: unknown; width?: number }): Promise<LoadedView>;
}

export interface LoadedView {
  page: Page;
  errors: string[];
  /** Messages the view posted so far. */
  sent(): Promise<{ type: string; [k: string]: unknown }[]>;
  post(message: unknown): Promise<void>;
  renders(): Promise<number>;
  /** Resolves after at least one more render than `after`. */
  waitRender(after: number): Promise<void>;
}

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json' };

/**
 * The harness of one test file: started before its tests (with test-results/ created), closed after them. Its
 * members may be used once the tests run.
 */
export function fileHarness(): Harness {
  let started: Harness | undefined;
  before(async () => {
    fs.mkdirSync(RESULTS, { recursive: true });
    started = await startHarness();
  });
  after(async () => {
    await started?.close();
  });
  const get = (): Harness => {
    if (!started) throw new Error('the webview harness is used before its tests started');
    return started;
  };
  return {
    get origin() {
      return get().origin;
    },
    get browser() {
      return get().browser;
    },
    close: () => get().close(),
    open: (view, opts) => get().open(view, opts),
  };
}

export async function startHarness(): Promise<Harness> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const origin = `http://${req.headers.host}`;
    if (url.pathname.startsWith('/view/')) {
      const view = url.pathname.slice('/view/'.length);
      const theme = (url.searchParams.get('theme') ?? 'light') as Theme;
      const html = webviewHtml({
        cspSource: origin,
        scriptUri: `${origin}/dist/webview/${view}.js`,
        styleUris: [`${origin}/media/base.css`, `${origin}/media/${view}.css`],
        title: view,
      })
        // As VS Code does: the theme's variables and body class are there before the view's script runs.
        .replace('<head>', `<head>\n<link rel="stylesheet" href="${origin}/theme/${theme}.css">`)
        .replace('<body>', `<body class="${THEMES[theme]?.bodyClass ?? 'vscode-light'}">`);
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html);
      return;
    }
    if (url.pathname === '/favicon.ico') return void res.writeHead(204).end();
    if (url.pathname.startsWith('/theme/')) {
      const theme = url.pathname.slice('/theme/'.length).replace(/\.css$/, '') as Theme;
      if (!(theme in THEMES)) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/css' });
      res.end(themeCss(theme));
      return;
    }
    const file = path.join(ROOT, path.normalize(url.pathname));
    if ((!url.pathname.startsWith('/dist/') && !url.pathname.startsWith('/media/')) || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Playwright gives the browser a fresh temporary profile of its own.
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  } catch (e) {
    server.close();
    throw e;
  }
  return {
    origin,
    browser,
    async close() {
      await browser.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async open(view, opts = {}) {
      const theme = opts.theme ?? 'light';
      const page = await browser.newPage({ viewport: { width: opts.width ?? 1000, height: 1400 } });
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.addInitScript(
        ({ state }) => {
          const w = window as unknown as Record<string, unknown>;
          w.__sent = [];
          w.__state = state;
          let acquired = false;
          w.acquireVsCodeApi = () => {
            if (acquired) throw new Error('acquireVsCodeApi called twice');
            acquired = true;
            return {
              postMessage: (m: unknown) => (w.__sent as unknown[]).push(JSON.parse(JSON.stringify(m))),
              getState: () => w.__state,
              setState: (s: unknown) => {
                w.__state = JSON.parse(JSON.stringify(s));
              },
            };
          };
        },
        { state: opts.state },
      );
      await page.goto(`${origin}/view/${view}?theme=${theme}`);
      await page.waitForFunction(() => (window as unknown as { __sent: { type: string }[] }).__sent.some((m) => m.type === 'ready'));
      const v: LoadedView = {
        page,
        errors,
        sent: () => page.evaluate(() => (window as unknown as { __sent: { type: string }[] }).__sent),
        post: (message) => page.evaluate((m) => window.postMessage(m, '*'), message),
        renders: () => page.evaluate(() => Number(document.body.dataset.renders ?? 0)),
        async waitRender(after) {
          await page.waitForFunction((n) => Number(document.body.dataset.renders ?? 0) > n, after);
        },
      };
      return v;
    },
  };
}

/** Body background and text colour each theme must give a view (from the --vscode-* variables above). */
export const THEME_COLORS: Record<Theme, [background: string, foreground: string]> = {
  light: ['rgb(255, 255, 255)', 'rgb(59, 59, 59)'],
  dark: ['rgb(31, 31, 31)', 'rgb(204, 204, 204)'],
  'high-contrast': ['rgb(0, 0, 0)', 'rgb(255, 255, 255)'],
};

/** A column beside the editor, and a full-width editor. */
export const SCREENSHOT_WIDTHS = [450, 1200] as const;

/**
 * One test per theme and width: the view opened by `open` (with its data) loads without errors, takes the theme's
 * colours, and is saved as `test-results/<view>-<theme>-<width>.png` for a person to look at. With `check`, one more
 * test per theme at the default width: the fill of the SVG text `check.text` is the theme's text colour, the
 * `check.thickLine` lines are 2.5 px wide in high contrast, `check.hover` shows a tooltip, saved as
 * `test-results/<view>-<theme>.png`.
 */
export function screenshotTests(
  view: string,
  open: (opts: { theme: Theme; width?: number }) => Promise<LoadedView>,
  check?: { text: string; thickLine?: string; hover: (v: LoadedView) => Promise<void> },
): void {
  for (const theme of Object.keys(THEMES) as Theme[]) {
    for (const width of SCREENSHOT_WIDTHS) {
      test(`screenshot: ${theme} at ${width} px`, async () => {
        const v = await open({ theme, width });
        const colors = await v.page.evaluate(() => [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]);
        if (colors[0] !== THEME_COLORS[theme][0] || colors[1] !== THEME_COLORS[theme][1]) throw new Error(`${view} ${theme}: colours ${colors.join(', ')}`);
        await v.page.screenshot({ path: path.join(RESULTS, `${view}-${theme}-${width}.png`), fullPage: true });
        if (v.errors.length) throw new Error(`${view} ${theme} ${width}px: ${v.errors.join('; ')}`);
        await v.page.close();
      });
    }
    if (check) themeTest(view, theme, () => open({ theme }), check);
  }
}

function themeTest(view: string, theme: Theme, open: () => Promise<LoadedView>, check: { text: string; thickLine?: string; hover: (v: LoadedView) => Promise<void> }): void {
  test(`themes: ${theme} takes its colours from --vscode-* variables (screenshot)`, async () => {
    const v = await open();
    const colors = await v.page.evaluate(
      ({ text, thickLine }) => ({
        bg: getComputedStyle(document.body).backgroundColor,
        fg: getComputedStyle(document.querySelector(text)!).fill,
        line: thickLine ? getComputedStyle(document.querySelector(thickLine)!).strokeWidth : undefined,
      }),
      { text: check.text, thickLine: check.thickLine },
    );
    assert.equal(colors.bg, THEME_COLORS[theme][0]);
    assert.equal(colors.fg, THEME_COLORS[theme][1]);
    if (theme === 'high-contrast' && check.thickLine) assert.equal(colors.line, '2.5px');
    await check.hover(v);
    await v.page.screenshot({ path: path.join(RESULTS, `${view}-${theme}.png`), fullPage: true });
    assert.deepEqual(v.errors, []);
    await v.page.close();
  });
}

/** Does `action` and waits for the render it causes. */
export async function rendered(v: LoadedView, action: () => Promise<unknown>): Promise<void> {
  const n = await v.renders();
  await action();
  await v.waitRender(n);
}

let nextDescribe = 1;
/** Asks the view what it drew: its `description` answers after every message posted before the `describe`. */
export async function describeView<D>(v: LoadedView): Promise<D> {
  const requestId = nextDescribe++;
  await v.post({ type: 'describe', requestId });
  await v.page.waitForFunction(
    (id) => (window as unknown as { __sent: { type: string; requestId?: number }[] }).__sent.some((m) => m.type === 'description' && m.requestId === id),
    requestId,
  );
  return (await v.sent()).find((m) => m.type === 'description' && m.requestId === requestId) as unknown as D;
}

/** Clicks the toolbar's Export button for `format`; returns the `export` message the view posted. */
export async function exported(v: LoadedView, format: string): Promise<{ format: string; fileName: string; data: string }> {
  const before = (await v.sent()).filter((m) => m.type === 'export').length;
  await v.page.click(`button.export[data-format="${format}"]`);
  await v.page.waitForFunction(
    (n) => (window as unknown as { __sent: { type: string }[] }).__sent.filter((m) => m.type === 'export').length > n,
    before,
  );
  const msg = (await v.sent()).filter((m) => m.type === 'export')[before] as unknown as { format: string; fileName: string; data: string };
  assert.equal(msg.format, format);
  return msg;
}

/** Exports the view as PNG: a real PNG image of more than `minBytes`, saved as `test-results/<file>` when named. */
export async function exportedPng(v: LoadedView, minBytes: number, file?: string): Promise<Buffer> {
  const bytes = Buffer.from((await exported(v, 'png')).data, 'base64');
  assert.equal(bytes.subarray(1, 4).toString('latin1'), 'PNG');
  assert.ok(bytes.length > minBytes, `a real image (${bytes.length} bytes)`);
  if (file) fs.writeFileSync(path.join(RESULTS, file), bytes);
  return bytes;
}
