/**
 * Terminal output of the CLI: a one-line progress bar on a TTY (redrawn at most 10×/s), plain log lines
 * otherwise; with --json, one JSON object per event on stdout (progress, metrics, runState, log) and the
 * final result last, so scripts can follow a run.
 */
import type { JobReporter } from '../jobs/context';
import { ROUTING_SHARE_METRIC } from '../../contract/runFolder';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

export function pct(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '—' : `${(100 * x).toFixed(2)}%`;
}

export function terminalReporter(opts: { json: boolean; stream?: NodeJS.WriteStream; verbose?: boolean }): JobReporter & { finish(): void } {
  const out = opts.stream ?? process.stderr;
  const tty = !opts.json && !!out.isTTY;
  let lastDraw = 0;
  let lastPlain = 0;
  let barShown = false;
  let lastMetrics = '';
  const clearBar = () => {
    if (barShown) {
      out.write('\r\x1b[2K');
      barShown = false;
    }
  };
  const emit = (event: string, data: unknown) => process.stdout.write(JSON.stringify({ event, ...(data as object) }) + '\n');

  return {
    progress(p) {
      if (opts.json) return emit('progress', p);
      const now = Date.now();
      const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
      const eta = p.eta !== undefined ? ` ETA ${formatDuration(p.eta)}` : '';
      if (tty) {
        if (now - lastDraw < 100 && p.done < p.total) return;
        lastDraw = now;
        const width = 24;
        const filled = Math.round(frac * width);
        const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(100 * frac).toFixed(0).padStart(3)}% ${p.message}${lastMetrics}${eta}`;
        out.write(`\r\x1b[2K${line.slice(0, (out.columns ?? 120) - 1)}`);
        barShown = true;
      } else if (now - lastPlain > 10_000 || p.done >= p.total) {
        lastPlain = now;
        out.write(`${(100 * frac).toFixed(0)}% ${p.message}${lastMetrics}${eta}\n`);
      }
    },
    metrics(runId, records) {
      if (opts.json) return emit('metrics', { runId, records });
      const last = records[records.length - 1];
      if (!last) return;
      const m = last.metrics;
      if (last.kind === 'train') {
        lastMetrics = ` | loss ${m.loss?.toFixed(3) ?? '—'} acc ${pct(m.trainAcc)} lr ${m.lr?.toExponential(1) ?? '—'}`;
      } else {
        clearBar();
        const shares = Object.keys(m).filter((k) => k.startsWith(ROUTING_SHARE_METRIC)).map((k) => m[k].toFixed(2));
        const routing = shares.length ? `  clean routing, largest share per MoE layer ${shares.join(' ')}` : '';
        out.write(`eval @ epoch ${last.epoch.toFixed(2)}: SA ${pct(m.sa)}  RA ${pct(m.ra)}${routing}\n`);
      }
    },
    runState(state) {
      if (opts.json) return emit('runState', { state });
    },
    log(level, message) {
      if (opts.json) return emit('log', { level, message });
      if (level === 'debug' && !opts.verbose) return;
      clearBar();
      out.write(`${level === 'info' ? '' : `${level}: `}${message}\n`);
    },
    finish() {
      clearBar();
    },
  };
}
