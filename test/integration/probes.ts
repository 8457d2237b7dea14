/** The code-server runner's side of the probes (probeProtocol.ts): answers them on the Playwright page. */
import * as fs from 'fs';
import * as path from 'path';
import type { Page } from 'playwright-core';
import type { ProbeAnswer, ProbeRequest, WalkthroughStepState } from './probeProtocol';

export interface ShotTarget {
  dir: string;
  /** Prepended to each screenshot's name (the integration run keeps its `integration-` prefix). */
  prefix: string;
}

async function walkthroughSteps(page: Page): Promise<WalkthroughStepState[]> {
  // The checkbox of each step carries its full id; VS Code adds `complete` when the step's event fired.
  await page.waitForSelector('.getting-started-step [data-done-step-id]', { timeout: 15_000 });
  return page.$$eval('.getting-started-step [data-done-step-id]', (els) =>
    els.map((e) => ({ id: e.getAttribute('data-done-step-id') ?? '', done: e.classList.contains('complete') })),
  );
}

async function clickInWebview(page: Page, selector: string): Promise<boolean | null> {
  // Webviews are nested iframes (outer host frame, inner `active-frame`); the element is in one of them.
  for (const frame of page.frames()) {
    const handle = await frame.$(selector).catch(() => null);
    if (!handle || !(await handle.isVisible().catch(() => false))) continue;
    await handle.click();
    return handle.evaluate((e) => (e instanceof HTMLInputElement ? e.checked : null));
  }
  throw new Error(`no visible ${selector} in any webview`);
}

async function notifications(page: Page): Promise<string[]> {
  return page.$$eval('.notification-list-item-message', (els) => els.map((e) => e.textContent ?? ''));
}

async function handle(page: Page, req: ProbeRequest, shots: ShotTarget): Promise<unknown> {
  switch (req.kind) {
    case 'screenshot': {
      if (!/^[\w.-]+$/.test(req.name)) throw new Error(`bad screenshot name ${JSON.stringify(req.name)}`);
      const file = path.join(shots.dir, `${shots.prefix}${req.name}.png`);
      await page.screenshot({ path: file });
      return file;
    }
    case 'walkthroughSteps':
      return walkthroughSteps(page);
    case 'clickInWebview':
      return clickInWebview(page, req.selector);
    case 'notifications':
      return notifications(page);
    default:
      throw new Error(`unknown probe ${JSON.stringify(req)}`);
  }
}

/** Answers one probe; the answer file appears whole (written aside, then renamed). */
export async function answerProbe(page: Page, probesDir: string, id: string, json: string, shots: ShotTarget): Promise<void> {
  if (!/^[\w-]+$/.test(id)) throw new Error(`bad probe id ${JSON.stringify(id)}`);
  let answer: ProbeAnswer;
  try {
    answer = { ok: true, value: await handle(page, JSON.parse(json) as ProbeRequest, shots) };
  } catch (e) {
    answer = { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  const file = path.join(probesDir, `${id}.json`);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(answer));
  fs.renameSync(`${file}.tmp`, file);
}
