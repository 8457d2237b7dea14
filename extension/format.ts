/** Small formatting helpers shared by the tree, status bar and messages. */
import type { BackendInfo } from '../engine/protocol';
import type { RunState } from '../engine/runs/types';

export function pct(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(1)}%`;
}

export function headlineText(h: RunState['headline']): string {
  const parts: string[] = [];
  if (h.sa !== undefined) parts.push(`SA ${pct(h.sa)}`);
  if (h.ra !== undefined) parts.push(`RA ${pct(h.ra)}`);
  return parts.join(' ');
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** The engine's backend in a few words, e.g. "tensorflow (native TF 2.21.0)" or "wasm, 2 threads". */
export function backendText(i: BackendInfo): string {
  if (i.name === 'wasm') return `wasm, ${i.threads} thread(s)`;
  return i.nativeVersion ? `${i.name} (native TF ${i.nativeVersion})` : i.name;
}
