/**
 * Standalone SVG and PNG from the live charts. The live SVG is styled by CSS (theme variables); a file
 * must carry its colours itself, so the computed styles are copied onto a clone as attributes.
 */
const STYLE_PROPS = [
  'fill',
  'fill-opacity',
  'stroke',
  'stroke-width',
  'stroke-opacity',
  'stroke-dasharray',
  'opacity',
  'font-family',
  'font-size',
  'font-weight',
  'text-anchor',
  'dominant-baseline',
  'visibility',
  'display',
] as const;

const SVG_NS = 'http://www.w3.org/2000/svg';

function inlineStyles(source: Element, target: Element): void {
  const cs = getComputedStyle(source);
  for (const p of STYLE_PROPS) {
    const v = cs.getPropertyValue(p);
    if (v) target.setAttribute(p, v);
  }
  target.removeAttribute('class');
  target.removeAttribute('style');
  const s = source.children;
  const t = target.children;
  for (let i = 0; i < s.length && i < t.length; i++) inlineStyles(s[i], t[i]);
}

export interface ChartForExport {
  title: string;
  svg: SVGSVGElement;
  legend: { label: string; color: string; dash: string }[];
}

/** One SVG document stacking every chart with its title and legend, on the theme's background. */
export function buildExportSvg(charts: ChartForExport[], background: string, foreground: string, font: string): string {
  const gap = 12;
  const titleH = 22;
  const legendRowH = 16;
  let y = gap;
  let width = 0;
  const root = document.createElementNS(SVG_NS, 'svg');
  root.setAttribute('xmlns', SVG_NS);
  const bg = document.createElementNS(SVG_NS, 'rect');
  bg.setAttribute('fill', background);
  root.appendChild(bg);
  for (const c of charts) {
    const w = c.svg.width.baseVal.value;
    const h = c.svg.height.baseVal.value;
    width = Math.max(width, w + 2 * gap);
    const title = document.createElementNS(SVG_NS, 'text');
    title.setAttribute('x', String(gap));
    title.setAttribute('y', String(y + 15));
    title.setAttribute('fill', foreground);
    title.setAttribute('font-family', font);
    title.setAttribute('font-size', '14');
    title.setAttribute('font-weight', 'bold');
    title.textContent = c.title;
    root.appendChild(title);
    y += titleH;
    c.legend.forEach((l, i) => {
      const ly = y + i * legendRowH + 8;
      const line = document.createElementNS(SVG_NS, 'line');
      line.setAttribute('x1', String(gap));
      line.setAttribute('x2', String(gap + 24));
      line.setAttribute('y1', String(ly));
      line.setAttribute('y2', String(ly));
      line.setAttribute('stroke', l.color);
      line.setAttribute('stroke-width', '2');
      if (l.dash) line.setAttribute('stroke-dasharray', l.dash);
      const text = document.createElementNS(SVG_NS, 'text');
      text.setAttribute('x', String(gap + 30));
      text.setAttribute('y', String(ly + 4));
      text.setAttribute('fill', foreground);
      text.setAttribute('font-family', font);
      text.setAttribute('font-size', '12');
      text.textContent = l.label;
      root.append(line, text);
    });
    y += c.legend.length * legendRowH + 4;
    const clone = c.svg.cloneNode(true) as SVGSVGElement;
    inlineStyles(c.svg, clone);
    clone.querySelectorAll('[data-export="skip"]').forEach((e) => e.remove());
    const g = document.createElementNS(SVG_NS, 'g');
    g.setAttribute('transform', `translate(${gap},${y})`);
    while (clone.firstChild) g.appendChild(clone.firstChild);
    root.appendChild(g);
    y += h + gap;
  }
  root.setAttribute('width', String(width));
  root.setAttribute('height', String(y));
  root.setAttribute('viewBox', `0 0 ${width} ${y}`);
  bg.setAttribute('width', String(width));
  bg.setAttribute('height', String(y));
  return new XMLSerializer().serializeToString(root);
}

/** Rasterises an SVG document to PNG; returns base64 without the data: prefix. */
export async function svgToPngBase64(svg: string, scale = 2): Promise<string> {
  const img = new Image();
  const loaded = new Promise<void>((resolve, reject) => {
    img.onload = () => resolve();
    img.onerror = () => reject(new Error('the SVG could not be rasterised'));
  });
  img.src = 'data:image/svg+xml;base64,' + btoa(unescape(encodeURIComponent(svg)));
  await loaded;
  const canvas = document.createElement('canvas');
  canvas.width = Math.ceil(img.width * scale);
  canvas.height = Math.ceil(img.height * scale);
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('no 2d canvas');
  ctx.scale(scale, scale);
  ctx.drawImage(img, 0, 0);
  return canvas.toDataURL('image/png').replace(/^data:image\/png;base64,/, '');
}

/** The charts as an image in the page's theme colours: SVG text, or base64 PNG (what an `export` message carries). */
export async function chartsImage(charts: ChartForExport[], format: 'svg' | 'png'): Promise<string> {
  const cs = getComputedStyle(document.body);
  const svg = buildExportSvg(
    charts,
    cs.getPropertyValue('--vscode-editor-background').trim() || cs.backgroundColor || '#ffffff',
    cs.color || '#000000',
    cs.fontFamily || 'sans-serif',
  );
  return format === 'svg' ? svg : svgToPngBase64(svg);
}
