/**
 * Before an evaluation starts (it can take many minutes): how many test samples, with an estimate of how long each
 * choice takes, timed by the run's newest analysis (its wall time per sample).
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { duration } from '../../webview/shared/format';
import { listAnalysisFiles, readAnalysis, runDir } from '../runsDisk';
import type { RunEntry } from '../runsStore';

const CHOICES = [100, 256, 512, 1000, 2000];

/** The experiment's `eval.samples` (what an evaluation uses unless told otherwise), if the run recorded it. */
async function configuredSamples(run: RunEntry): Promise<number | undefined> {
  try {
    const cfg: unknown = JSON.parse(await fs.readFile(path.join(runDir(run.runsDir, run.state.id), 'config.json'), 'utf8'));
    const n = (cfg as { eval?: { samples?: unknown } }).eval?.samples;
    return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Seconds per sample of the run's newest readable analysis (how fast an evaluation of this model went here). */
async function secondsPerSample(run: RunEntry): Promise<{ perSample: number; from: string } | undefined> {
  for (const f of await listAnalysisFiles(run.runsDir, run.state.id)) {
    try {
      const a = await readAnalysis(run.runsDir, run.state.id, f.name);
      if (a.report.samples > 0 && a.report.seconds > 0) return { perSample: a.report.seconds / a.report.samples, from: f.name };
    } catch {
      // unreadable: try the next one
    }
  }
  return undefined;
}

/** The sample count the user picks (undefined: cancelled). The experiment's own count comes first. */
export async function pickSampleCount(run: RunEntry): Promise<number | undefined> {
  const [configured, timing] = await Promise.all([configuredSamples(run), secondsPerSample(run)]);
  const counts = [...new Set([...(configured ? [configured] : []), ...CHOICES])];
  const eta = (n: number) => (timing ? `≈ ${duration(n * timing.perSample)}` : '');
  type Item = vscode.QuickPickItem & { samples?: number };
  const items: Item[] = counts.map((n) => ({
    label: `${n} test samples`,
    description: [n === configured ? 'the experiment’s eval.samples' : '', eta(n)].filter(Boolean).join(' · '),
    samples: n,
  }));
  items.push({ label: 'Other…', description: 'type a number' });
  const pick = await vscode.window.showQuickPick(items, {
    title: `Evaluate the robustness of ${run.state.name}`,
    placeHolder: timing
      ? `How many test samples? Times estimated from ${timing.from} (${timing.perSample.toFixed(2)} s per sample).`
      : 'How many test samples? (No earlier evaluation of this run to estimate the time from.)',
  });
  if (!pick) return undefined;
  if (pick.samples) return pick.samples;
  const typed = await vscode.window.showInputBox({
    prompt: 'Test samples to evaluate on',
    value: String(configured ?? 1000),
    validateInput: (v) => (/^\d+$/.test(v.trim()) && Number(v) > 0 && Number(v) <= 1_000_000 ? undefined : 'A whole number from 1 to 1,000,000'),
  });
  if (!typed) return undefined;
  const n = Number(typed.trim());
  const t = eta(n);
  if (t) void vscode.window.setStatusBarMessage(`AdvMoE: evaluating ${n} samples, ${t}`, 10_000);
  return n;
}
