/**
 * Messages between the Inspector webview and its host (extension/inspectorPanel.ts), with validators for both
 * directions. Types and plain functions only: both sides import this module.
 *
 * Handshake: the webview posts `ready`; the host answers with `init` (and again whenever the target changes).
 * Images of gallery rows are fetched lazily: the webview posts `needImages` for the rows it shows, the host
 * answers `images` (or `imagesUnavailable`). Live inspection: `inspect` → `inspection` | `inspectError`.
 */
import { hostToViewParser, viewToHostParser, type ViewDescribeMessage, type ViewLogMessage, type ViewReadyMessage } from '../shared/messages';
import { fail, isNum, isNumArray, isObj, isStr, ok } from '../../contract/guards';
import { isAnalysisName } from '../../contract/runFolder';
import {
  isRunId,
  MISMATCH_CELLS,
  parseInspectorFilter,
  parseRobustnessReport,
  type InspectorFilter,
  type MismatchCellName,
  type RobustnessReport,
  type SampleInspection,
} from '../analysisProtocol';

export type { InspectorFilter, MismatchCellName, RobustnessReport, SampleInspection };

export type AttackChoice = 'pgd' | 'fgsm' | 'apgd-ce' | 'router' | 'expert';
export const ATTACKS: readonly AttackChoice[] = ['pgd', 'fgsm', 'apgd-ce', 'router', 'expert'];
export type Split = 'test' | 'train';

/** What the Inspector is opened on (InspectorTarget of extension/analysisContext.ts, as the webview keeps it). */
export interface InspectorTargetState {
  runsDir: string;
  runId: string;
  checkpoint?: string;
  split?: Split;
  analysis?: string;
  filter?: InspectorFilter;
}

/** The live-attack controls. `eps` undefined = the analysis' ε. */
export interface InspectorControls {
  attack: AttackChoice;
  eps?: number;
  steps?: number;
  freezeRouting: boolean;
}

/** What the webview persists with setState (restored by the serializer after a reload). */
export interface InspectorViewState {
  target: InspectorTargetState;
  /** Sample id (index in the split) shown in the detail, if any. */
  selected?: number;
  /** Split of the selected sample (gallery rows are test samples; typed ids use the target's split). */
  selectedSplit?: Split;
  controls: InspectorControls;
}

export interface AnalysisListItem {
  name: string;
  mtime: number;
}

// ---- host → webview ----
export interface InitMessage {
  type: 'init';
  target: InspectorTargetState;
  runName: string;
  /** The run's analyses, newest first. */
  analyses: AnalysisListItem[];
  /** The analysis shown (its perSample fills the gallery); absent when the run has none readable. */
  analysis?: { name: string; checkpoint?: string; report: RobustnessReport };
  /** Why no analysis is shown (readAnalysis error text), or a note (e.g. "no per-sample data"). */
  error?: string;
  /** The engine may run (workspace trusted). */
  trusted: boolean;
  /** Class names where the dataset provides them (index = label). */
  classNames?: string[];
  /** Selection and controls to restore (after a reload). */
  restore?: { selected?: number; selectedSplit?: Split; controls?: InspectorControls };
}
export interface ImagesMessage {
  type: 'images';
  /** H, W, C. */
  shape: [number, number, number];
  items: { id: number; clean: string; adversarial: string | null }[];
  /** Said once, e.g. that the analysis stored no adversarial images (only clean ones come). */
  note?: string;
}
export interface ImagesUnavailableMessage {
  type: 'imagesUnavailable';
  ids: number[];
  message: string;
}
export interface InspectionMessage {
  type: 'inspection';
  requestId: number;
  sample: SampleInspection;
}
export interface InspectErrorMessage {
  type: 'inspectError';
  requestId: number;
  message: string;
}
export interface EvaluateStateMessage {
  type: 'evaluateState';
  running: boolean;
  message?: string;
}
export interface ExportDoneMessage {
  type: 'exportDone';
  ok: boolean;
  message: string;
}
export type DescribeMessage = ViewDescribeMessage;
export type HostToInspector =
  | InitMessage
  | ImagesMessage
  | ImagesUnavailableMessage
  | InspectionMessage
  | InspectErrorMessage
  | EvaluateStateMessage
  | ExportDoneMessage
  | DescribeMessage;

// ---- webview → host ----
export type ReadyMessage = ViewReadyMessage;
export interface NeedImagesMessage {
  type: 'needImages';
  ids: number[];
}
export interface InspectMessage {
  type: 'inspect';
  requestId: number;
  id: number;
  split: Split;
  attack: AttackChoice;
  eps: number;
  steps?: number;
  freezeRouting: boolean;
}
export interface SelectAnalysisMessage {
  type: 'selectAnalysis';
  name: string;
}
export interface EvaluateMessage {
  type: 'evaluate';
}
export type ExportFileKind = 'clean' | 'perturbation' | 'adversarial' | 'json';
export interface ExportSampleMessage {
  type: 'exportSample';
  id: number;
  /** PNGs as base64 (no data: prefix), the JSON as text. */
  files: { kind: ExportFileKind; data: string }[];
}
export type LogMessage = ViewLogMessage;
export interface InspectorDescription {
  /** Samples of the analysis' perSample columns. */
  totalSamples: number;
  /** Samples passing the filter. */
  filteredCount: number;
  /** Their ids, in gallery order. */
  filteredIds: number[];
  /** Gallery rows in the DOM (virtualised: only those near the viewport). */
  domRows: number;
  /** Ids of the gallery rows in the DOM, in order. */
  domIds: number[];
  selectedId: number | null;
  /** Canvases with an image drawn on them (gallery thumbnails and the detail). */
  drawnImages: number;
  /** Rows of the routing path in the detail. */
  routingRows: number;
  /** Layers whose row is marked changed. */
  changedRows: number;
  /** Where the detail's numbers come from. */
  detailSource: 'live' | 'analysis' | 'none';
  analysis: string | null;
  filter: InspectorFilter;
  /** The message shown instead of images / content, if any. */
  message: string | null;
}
export interface DescriptionMessage extends InspectorDescription {
  type: 'description';
  requestId: number;
}
export type InspectorToHost =
  | ReadyMessage
  | NeedImagesMessage
  | InspectMessage
  | SelectAnalysisMessage
  | EvaluateMessage
  | ExportSampleMessage
  | LogMessage
  | DescriptionMessage;

// ---- validation ----
const isId = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) < 2 ** 31;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
export const isBase64 = (x: unknown): x is string => isStr(x) && x.length % 4 === 0 && B64.test(x);
export const MAX_IMAGE_BATCH = 256;

export function isAttack(x: unknown): x is AttackChoice {
  return ATTACKS.includes(x as AttackChoice);
}

export function parseControls(x: unknown): InspectorControls | undefined {
  if (!isObj(x) || !isAttack(x.attack)) return undefined;
  const c: InspectorControls = { attack: x.attack, freezeRouting: x.freezeRouting === true };
  if (x.eps !== undefined) {
    if (!isNum(x.eps) || x.eps < 0 || x.eps > 1e3) return undefined;
    c.eps = x.eps;
  }
  if (x.steps !== undefined) {
    if (!Number.isInteger(x.steps) || (x.steps as number) < 1 || (x.steps as number) > 10000) return undefined;
    c.steps = x.steps as number;
  }
  // The expert attack runs with frozen routing; the router attack cannot be frozen.
  if (c.attack === 'expert') c.freezeRouting = true;
  if (c.attack === 'router') c.freezeRouting = false;
  return c;
}

export function parseTargetState(x: unknown): InspectorTargetState | undefined {
  if (!isObj(x) || !isStr(x.runsDir) || !x.runsDir || !isRunId(x.runId)) return undefined;
  const t: InspectorTargetState = { runsDir: x.runsDir, runId: x.runId };
  if (x.checkpoint !== undefined) {
    if (!isStr(x.checkpoint) || !/^[\w.-]+$/.test(x.checkpoint)) return undefined;
    t.checkpoint = x.checkpoint;
  }
  if (x.split !== undefined) {
    if (x.split !== 'test' && x.split !== 'train') return undefined;
    t.split = x.split;
  }
  if (x.analysis !== undefined) {
    if (!isAnalysisName(x.analysis)) return undefined;
    t.analysis = x.analysis;
  }
  if (x.filter !== undefined) {
    const f = parseInspectorFilter(x.filter);
    if (!f) return undefined;
    t.filter = f;
  }
  return t;
}

/** Validates a persisted view state (storage written by an older version, maybe). */
export function parseInspectorViewState(x: unknown): InspectorViewState | undefined {
  if (!isObj(x)) return undefined;
  const target = parseTargetState(x.target);
  if (!target) return undefined;
  const controls = parseControls(x.controls) ?? { attack: 'pgd', freezeRouting: false };
  const s: InspectorViewState = { target, controls };
  if (isId(x.selected)) s.selected = x.selected;
  if (x.selectedSplit === 'test' || x.selectedSplit === 'train') s.selectedSplit = x.selectedSplit;
  return s;
}

/** Router probabilities; a degenerate router's NaN arrives as null (JSON). */
const isProbs = (x: unknown): boolean => Array.isArray(x) && x.every((v) => v === null || isNum(v));

function isSampleInspection(x: unknown): x is SampleInspection {
  if (!isObj(x) || !isId(x.id) || !Number.isInteger(x.label)) return false;
  const sh = x.shape;
  if (!Array.isArray(sh) || sh.length !== 3 || !sh.every((v) => Number.isInteger(v) && v > 0)) return false;
  const [h, w, c] = sh as number[];
  if (c !== 1 && c !== 3) return false;
  if (!isNumArray(x.clean) || !isNumArray(x.adversarial) || x.clean.length !== h * w * c || x.adversarial.length !== h * w * c) return false;
  for (const f of ['predClean', 'confClean', 'predAdv', 'confAdv', 'eps'] as const) if (!isNum(x[f])) return false;
  if (!isAttack(x.attack) || typeof x.frozenRouting !== 'boolean') return false;
  if (!Array.isArray(x.routing)) return false;
  return x.routing.every(
    (r) =>
      isObj(r) &&
      isStr(r.layer) &&
      isProbs(r.probsClean) &&
      isProbs(r.probsAdv) &&
      isNumArray(r.expertsClean) &&
      isNumArray(r.expertsAdv) &&
      typeof r.changed === 'boolean',
  );
}

function isShape(x: unknown): x is [number, number, number] {
  return Array.isArray(x) && x.length === 3 && x.every((v) => Number.isInteger(v) && v > 0 && v <= 4096) && (x[2] === 1 || x[2] === 3);
}

/** Validates a message the webview received from the host. */
export const parseHostToInspector = hostToViewParser<HostToInspector>({
  init: (x) => {
    const target = parseTargetState(x.target);
    if (!target) return fail('init: bad `target`');
    if (!isStr(x.runName)) return fail('init: bad `runName`');
    if (!Array.isArray(x.analyses) || !x.analyses.every((a) => isObj(a) && isStr(a.name) && isNum(a.mtime))) return fail('init: bad `analyses`');
    if (typeof x.trusted !== 'boolean') return fail('init: bad `trusted`');
    if (x.error !== undefined && !isStr(x.error)) return fail('init: bad `error`');
    if (x.classNames !== undefined && !(Array.isArray(x.classNames) && x.classNames.every(isStr))) return fail('init: bad `classNames`');
    let analysis: InitMessage['analysis'];
    if (x.analysis !== undefined) {
      const a = x.analysis;
      if (!isObj(a) || !isStr(a.name) || (a.checkpoint !== undefined && !isStr(a.checkpoint))) return fail('init: bad `analysis`');
      const r = parseRobustnessReport(a.report);
      if (!r.ok) return fail(`init: analysis.report.${r.error}`);
      analysis = { name: a.name, checkpoint: a.checkpoint as string | undefined, report: r.value };
    }
    let restore: InitMessage['restore'];
    if (x.restore !== undefined) {
      if (!isObj(x.restore)) return fail('init: bad `restore`');
      restore = {};
      if (isId(x.restore.selected)) restore.selected = x.restore.selected;
      if (x.restore.selectedSplit === 'test' || x.restore.selectedSplit === 'train') restore.selectedSplit = x.restore.selectedSplit;
      const c = x.restore.controls === undefined ? undefined : parseControls(x.restore.controls);
      if (c) restore.controls = c;
    }
    return ok({
      type: 'init',
      target,
      runName: x.runName,
      analyses: x.analyses as AnalysisListItem[],
      analysis,
      error: x.error as string | undefined,
      trusted: x.trusted,
      classNames: x.classNames as string[] | undefined,
      restore,
    });
  },
  images: (x) => {
    if (!isShape(x.shape)) return fail('images: bad `shape`');
    const [h, w, c] = x.shape;
    const len = 4 * Math.ceil((h * w * c) / 3);
    if (!Array.isArray(x.items)) return fail('images: bad `items`');
    for (const it of x.items) {
      if (!isObj(it) || !isId(it.id) || !isBase64(it.clean) || it.clean.length !== len) return fail('images: bad item');
      if (it.adversarial !== null && !(isBase64(it.adversarial) && it.adversarial.length === len)) return fail('images: bad adversarial image');
    }
    if (x.note !== undefined && !isStr(x.note)) return fail('images: bad `note`');
    return ok(x as unknown as ImagesMessage);
  },
  imagesUnavailable: (x) => {
    if (!Array.isArray(x.ids) || !x.ids.every(isId) || !isStr(x.message)) return fail('imagesUnavailable: bad fields');
    return ok({ type: 'imagesUnavailable', ids: x.ids, message: x.message });
  },
  inspection: (x) => {
    if (!isNum(x.requestId) || !isSampleInspection(x.sample)) return fail('inspection: bad fields');
    return ok({ type: 'inspection', requestId: x.requestId, sample: x.sample });
  },
  inspectError: (x) => {
    if (!isNum(x.requestId) || !isStr(x.message)) return fail('inspectError: bad fields');
    return ok({ type: 'inspectError', requestId: x.requestId, message: x.message });
  },
  evaluateState: (x) => {
    if (typeof x.running !== 'boolean' || (x.message !== undefined && !isStr(x.message))) return fail('evaluateState: bad fields');
    return ok({ type: 'evaluateState', running: x.running, message: x.message as string | undefined });
  },
  exportDone: (x) => {
    if (typeof x.ok !== 'boolean' || !isStr(x.message)) return fail('exportDone: bad fields');
    return ok({ type: 'exportDone', ok: x.ok, message: x.message });
  },
});

const EXPORT_KINDS: readonly ExportFileKind[] = ['clean', 'perturbation', 'adversarial', 'json'];
const MAX_EXPORT_CHARS = 32 * 1024 * 1024;

/** Validates a message the host received from the webview (it exports through `exportSample`, several files at once, not the common `export`). */
export const parseInspectorToHost = viewToHostParser<InspectorToHost, never>([], {
  evaluate: () => ok({ type: 'evaluate' }),
  needImages: (x) => {
    if (!Array.isArray(x.ids) || x.ids.length === 0 || x.ids.length > MAX_IMAGE_BATCH || !x.ids.every(isId)) return fail('needImages: bad `ids`');
    return ok({ type: 'needImages', ids: [...new Set(x.ids as number[])] });
  },
  inspect: (x) => {
    if (!isNum(x.requestId) || !isId(x.id)) return fail('inspect: bad `requestId`/`id`');
    if (x.split !== 'test' && x.split !== 'train') return fail('inspect: bad `split`');
    if (!isAttack(x.attack)) return fail('inspect: bad `attack`');
    if (!isNum(x.eps) || x.eps < 0 || x.eps > 1e3) return fail('inspect: bad `eps`');
    if (x.steps !== undefined && !(Number.isInteger(x.steps) && (x.steps as number) >= 1 && (x.steps as number) <= 10000)) return fail('inspect: bad `steps`');
    if (typeof x.freezeRouting !== 'boolean') return fail('inspect: bad `freezeRouting`');
    if (x.attack === 'router' && x.freezeRouting) return fail('inspect: the router attack cannot run with frozen routing');
    const m: InspectMessage = { type: 'inspect', requestId: x.requestId, id: x.id, split: x.split, attack: x.attack, eps: x.eps, freezeRouting: x.freezeRouting || x.attack === 'expert' };
    if (x.steps !== undefined) m.steps = x.steps as number;
    return ok(m);
  },
  selectAnalysis: (x) => {
    if (!isAnalysisName(x.name)) return fail('selectAnalysis: bad `name`');
    return ok({ type: 'selectAnalysis', name: x.name });
  },
  exportSample: (x) => {
    if (!isId(x.id) || !Array.isArray(x.files) || x.files.length === 0 || x.files.length > EXPORT_KINDS.length) return fail('exportSample: bad fields');
    const seen = new Set<string>();
    let total = 0;
    for (const f of x.files) {
      if (!isObj(f) || !EXPORT_KINDS.includes(f.kind as ExportFileKind) || !isStr(f.data) || seen.has(f.kind as string)) return fail('exportSample: bad file');
      seen.add(f.kind as string);
      total += f.data.length;
      if (f.kind === 'json') {
        try {
          JSON.parse(f.data);
        } catch {
          return fail('exportSample: the JSON file is not JSON');
        }
      } else if (!isBase64(f.data) || !f.data.startsWith('iVBORw0KGgo')) {
        return fail(`exportSample: ${String(f.kind)} is not a base64 PNG`);
      }
    }
    if (total > MAX_EXPORT_CHARS) return fail('exportSample: too large');
    return ok(x as unknown as ExportSampleMessage);
  },
  description: (x) => {
    if (!isNum(x.requestId)) return fail('description: bad `requestId`');
    for (const f of ['totalSamples', 'filteredCount', 'domRows', 'drawnImages', 'routingRows', 'changedRows'] as const) {
      if (!isNum(x[f])) return fail(`description: bad \`${f}\``);
    }
    if (!Array.isArray(x.domIds) || !x.domIds.every(isId)) return fail('description: bad `domIds`');
    if (!Array.isArray(x.filteredIds) || !x.filteredIds.every(isId)) return fail('description: bad `filteredIds`');
    if (x.selectedId !== null && !isId(x.selectedId)) return fail('description: bad `selectedId`');
    if (x.detailSource !== 'live' && x.detailSource !== 'analysis' && x.detailSource !== 'none') return fail('description: bad `detailSource`');
    if (x.analysis !== null && !isStr(x.analysis)) return fail('description: bad `analysis`');
    if (x.message !== null && !isStr(x.message)) return fail('description: bad `message`');
    const filter = parseInspectorFilter(x.filter);
    if (!filter) return fail('description: bad `filter`');
    return ok({ ...(x as unknown as DescriptionMessage), filter });
  },
});

export const CELL_LABELS: Record<MismatchCellName, string> = {
  keptRight: 'routing kept · right',
  keptWrong: 'routing kept · wrong',
  changedRight: 'routing changed · right',
  changedWrong: 'routing changed · wrong',
};
export { MISMATCH_CELLS };

/** File names of an exported sample. */
export function exportFileName(runId: string, id: number, kind: ExportFileKind): string {
  return kind === 'json' ? `${runId}-sample-${id}.json` : `${runId}-sample-${id}-${kind}.png`;
}
