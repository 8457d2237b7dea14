/** The toolbar's Export group every chart view has (browser only). */
import { el } from './dom';
import type { ViewLogMessage } from './messages';

/**
 * One button per format, under an "Export" label. A click runs `exportAs` with the button's format; a failure is
 * logged to the host (the view stays as it was). The view disables the buttons while it has nothing to export.
 */
export function exportGroup<F extends string>(
  formats: readonly F[],
  exportAs: (format: F) => Promise<void>,
  post: (msg: ViewLogMessage) => void,
): { group: HTMLElement; buttons: HTMLButtonElement[] } {
  const group = el('span', { class: 'export-group' }, 'Export ');
  const buttons = formats.map((f) => {
    const b = el('button', { type: 'button', 'data-format': f, class: 'export', title: `Export ${f.toUpperCase()}` }, f.toUpperCase());
    b.addEventListener('click', () => {
      void exportAs(f).catch((e: unknown) => post({ type: 'log', level: 'error', message: `export failed: ${e instanceof Error ? e.message : String(e)}` }));
    });
    return b;
  });
  group.append(...buttons);
  return { group, buttons };
}
