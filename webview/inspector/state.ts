/** Inspector: what the view holds (the analysis, filter, selection, controls, image cache, live inspection), how it
 * saves it and talks to the host, and small lookups on it. */
import { type InspectorFilter, type MismatchCellName, type PerSampleData, type RobustnessReport, type SampleInspection } from '../analysisProtocol';
import { connectView } from '../shared/vscode';
import { type Perturbation, type Picture, type Shape } from './images';
import {
  type HostToInspector,
  type InitMessage,
  type InspectorControls,
  type InspectorTargetState,
  type InspectorToHost,
  type InspectorViewState,
  parseHostToInspector,
  parseInspectorViewState,
  type Split,
} from './protocol';

export const host = connectView<InspectorViewState, InspectorToHost, HostToInspector>('Inspector', parseInspectorViewState, parseHostToInspector);
export const ROW_H = 48;
export const OVERSCAN = 6;
export const IMAGE_DEBOUNCE_MS = 60;
export const INSPECT_DEBOUNCE_MS = 300;
export const SELECT_DEBOUNCE_MS = 120;
export const EXPORT_SIZE = 224; // exported PNGs are upscaled by the integer factor that gets closest to this

interface Model {
  target: InspectorTargetState;
  runName: string;
  analyses: InitMessage['analyses'];
  analysisName: string | null;
  checkpoint?: string;
  report: RobustnessReport | null;
  per: PerSampleData | null;
  cells: MismatchCellName[];
  idToIndex: Map<number, number>;
  classNames?: string[];
  trusted: boolean;
  error?: string;
}

export const persisted = host.restored;

interface CachedImages {
  shape: Shape;
  cleanBytes: Uint8Array;
  clean: Picture;
  adv: Picture | null;
  pert: Perturbation | null;
}
export const imageCache = new Map<number, CachedImages>();
export const requested = new Set<number>();
export const failedImages = new Set<number>();

/** What the view holds that changes (one object: the view's modules read and write it). */
export const st = {
  model: null as Model | null,
  filter: {} as InspectorFilter,
  filtered: [] as number[],
  selected: null as { id: number; split: Split } | null,
  controls: (persisted?.controls ?? { attack: 'pgd', freezeRouting: false }) as InspectorControls,
  imagesMessage: null as string | null,
  imagesNote: null as string | null,
  wantImages: new Set<number>(),
  imageTimer: undefined as ReturnType<typeof setTimeout> | undefined,
  live: null as SampleInspection | null,
  liveError: null as string | null,
  inspectPending: false,
  nextRequestId: 1,
  latestRequestId: 0,
  inspectTimer: undefined as ReturnType<typeof setTimeout> | undefined,
  evaluating: false,
  statusMessage: '',
};

export const post = host.post;

export function saveState(): void {
  if (!st.model) return;
  const target: InspectorTargetState = { ...st.model.target, filter: { ...st.filter } };
  if (st.model.analysisName) target.analysis = st.model.analysisName;
  const s: InspectorViewState = { target, controls: { ...st.controls } };
  if (st.selected) {
    s.selected = st.selected.id;
    s.selectedSplit = st.selected.split;
  }
  host.saveState(s);
}

// ---------------- helpers ----------------
export function className(label: number): string {
  const n = st.model?.classNames?.[label];
  return n !== undefined && n !== String(label) ? `${label} ${n}` : String(label);
}
export function analysisEps(): number | undefined {
  return st.model?.report?.attack.eps;
}
export function epsMax(): number {
  const e = analysisEps();
  return e !== undefined && e > 0 ? 2 * e : Math.max(0.5, 2 * (st.controls.eps ?? 0.25));
}
export function currentEps(): number {
  return st.controls.eps ?? analysisEps() ?? 0.3;
}
export function currentSteps(): number | undefined {
  return st.controls.steps ?? st.model?.report?.attack.steps;
}
export function layerName(l: number): string {
  return st.model?.report?.layers[l]?.layer ?? `layer ${l}`;
}
export function numExperts(): number {
  return st.model?.report?.layers[0]?.loadClean.length ?? 0;
}
export function numClasses(): number {
  const r = st.model?.report;
  let n = st.model?.classNames?.length ?? 0;
  if (r) for (const l of r.layers) n = Math.max(n, l.perClassClean.length);
  if (st.model?.per) for (const v of st.model.per.labels) n = Math.max(n, v + 1);
  return n;
}
export function drawPicture(canvas: HTMLCanvasElement, pic: Picture): void {
  canvas.width = pic.width;
  canvas.height = pic.height;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const data = new ImageData(pic.width, pic.height);
  data.data.set(pic.rgba);
  ctx.putImageData(data, 0, 0);
  canvas.dataset.drawn = '1';
}
export function clearCanvas(canvas: HTMLCanvasElement): void {
  canvas.width = 1;
  canvas.height = 1;
  delete canvas.dataset.drawn;
}
