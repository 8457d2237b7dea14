/** Texts of the extension host built on the one formatter (`webview/shared/format.ts`). */
import type { BackendInfo } from '../engine/protocol';
import type { RunState } from '../engine/runs/types';
import { pct } from '../webview/shared/format';

export function headlineText(h: RunState['headline']): string {
  const parts: string[] = [];
  if (h.sa !== undefined) parts.push(`SA ${pct(h.sa)}`);
  if (h.ra !== undefined) parts.push(`RA ${pct(h.ra)}`);
  return parts.join(' ');
}

/** The engine's backend in a few words, e.g. "tensorflow (native TF 2.21.0)" or "wasm, 2 threads". */
export function backendText(i: BackendInfo): string {
  if (i.name === 'wasm') return `wasm, ${i.threads} thread(s)`;
  return i.nativeVersion ? `${i.name} (native TF ${i.nativeVersion})` : i.name;
}
