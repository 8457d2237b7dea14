/** DOM helpers every view uses (browser only). */

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An HTML element with attributes and, optionally, its text. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** An SVG element with attributes. */
export function svgEl<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** The element with this id, which the view's skeleton created (a missing one is a bug, said loudly). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`element #${id} is missing`);
  return e as T;
}

/** A table's header row: one column header per [name, explanation] (the explanation, when there is one, as its tooltip). */
export function headerRow(columns: readonly (readonly [string, string])[]): HTMLTableRowElement {
  const tr = el('tr');
  for (const [name, explanation] of columns) tr.append(el('th', explanation ? { scope: 'col', title: explanation } : { scope: 'col' }, name));
  return tr;
}
