/**
 * The reference code's (OPTML-Group/Robust-MoE-CNN) ResNet-18 CIFAR MoE as a model of ours, and the mapping between
 * its parameter names and layouts and ours (README "Analyse a model trained with the reference code").
 *
 * Its network, in our options: the `full` ResNet-18 (stem 3→64 unscaled, basic blocks [2, 2, 2, 2]), every block conv
 * an MoE conv with N experts of ratio·planes channels each (`expertWidth` = ratio: c = ratio·planes, the conv computes
 * N·c), the `gathered` layout (BN and the next conv have c channels; the linear layer takes ratio·512), plain 1×1
 * shortcut convs with BN, the `reference` image-level router, PyTorch padding and no input normalisation.
 *
 * Names: ours `stem` ↔ `conv1`/`bn1`, `layerS.B.convZ.bn` ↔ `layerS.B.bnZ`, `layerS.B.shortcut` ↔
 * `layerS.B.shortcut.0` (conv) and `.shortcut.1` (BN), `fc` ↔ `linear`; the router's names are the same on both sides
 * (`router.layer2.0.conv1`, `router.bn1`, `router.fc`). Suffixes: kernel ↔ weight, gamma ↔ weight, beta ↔ bias,
 * movingMean ↔ running_mean, movingVar ↔ running_var. Layouts: conv kernels are [kh, kw, in, out] here and
 * [out, in, kh, kw] there; linear kernels [in, out] here and [out, in] there.
 */
import type { ModelConfig } from '../config/types';
import { AdvMoEError } from '../util/errors';

/** Architectures the importer knows. */
export const REFERENCE_ARCHS = ['resnet18'] as const;
export type ReferenceArch = (typeof REFERENCE_ARCHS)[number];

/** The reference's stage widths before `ratio` (ResNet-18 CIFAR). */
const RESNET18_PLANES = [64, 128, 256, 512];

export interface ReferenceModelOptions {
  arch: string;
  /** N, `--n_expert` of the reference code. */
  experts: number;
  /** The reference's `ratio`: every stage's planes = int(ratio · planes). */
  ratio: number;
}

/** Checks the options and returns them typed; every problem names the option and what is allowed. */
export function checkReferenceOptions(o: ReferenceModelOptions): { arch: ReferenceArch; experts: number; ratio: number } {
  if (!(REFERENCE_ARCHS as readonly string[]).includes(o.arch)) {
    throw new AdvMoEError('INVALID_ARGUMENT', `--arch: "${o.arch}" is not supported; the importer knows ${REFERENCE_ARCHS.join(', ')} (the reference code's CIFAR ResNet-18 MoE)`);
  }
  if (!(Number.isInteger(o.experts) && o.experts >= 2 && o.experts <= 64)) {
    throw new AdvMoEError('INVALID_ARGUMENT', `--experts: ${o.experts} must be an integer from 2 to 64 (the reference's n_expert)`);
  }
  if (!(Number.isFinite(o.ratio) && o.ratio > 0 && o.ratio <= 1)) {
    throw new AdvMoEError('INVALID_ARGUMENT', `--ratio: ${o.ratio} must be a number in (0, 1] (the reference's ratio)`);
  }
  // The reference floors ratio·planes; our expertWidth rounds. They agree exactly when every product is whole.
  const fractional = RESNET18_PLANES.find((p) => Math.abs(o.ratio * p - Math.round(o.ratio * p)) > 1e-9 || Math.round(o.ratio * p) < 1);
  if (fractional !== undefined) {
    throw new AdvMoEError(
      'INVALID_ARGUMENT',
      `--ratio: ${o.ratio} × ${fractional} planes is not a whole number of channels; use a ratio that gives whole widths for 64, 128, 256 and 512 (e.g. 0.5, 0.25, 0.125)`,
    );
  }
  return { arch: o.arch as ReferenceArch, experts: o.experts, ratio: o.ratio };
}

/** The model config of the reference's network (see the header). */
export function referenceModelConfig(o: { experts: number; ratio: number }): ModelConfig {
  return {
    backbone: 'resnet18',
    preset: 'full',
    widthMultiplier: 1,
    padding: 'symmetric',
    inputNormalization: 'none',
    moe: { enabled: true, experts: o.experts, topK: 1, expertWidth: o.ratio, router: 'reference', layout: 'gathered', routerNorm: false, layers: 'all-blocks' },
  };
}

/** How a tensor's layout differs between the two sides. */
export type LayoutKind = 'conv' | 'linear' | 'vector';

const SUFFIX: Record<string, string> = { kernel: 'weight', gamma: 'weight', beta: 'bias', movingMean: 'running_mean', movingVar: 'running_var', bias: 'bias' };

/** The reference's state-dict key for one of our parameter names, and how its layout differs. */
export function referenceKey(ourName: string, rank: number): { key: string; kind: LayoutKind } {
  const dot = ourName.lastIndexOf('.');
  const module = ourName.slice(0, dot);
  const suffix = SUFFIX[ourName.slice(dot + 1)];
  if (!suffix) throw new Error(`no reference name for parameter ${ourName}`);
  let m: RegExpExecArray | null;
  let path: string;
  if (module.startsWith('router.')) path = module;
  else if (module === 'stem') path = 'conv1';
  else if (module === 'stem.bn') path = 'bn1';
  else if (module === 'fc') path = 'linear';
  else if ((m = /^(layer\d+\.\d+)\.conv(\d+)\.bn$/.exec(module))) path = `${m[1]}.bn${m[2]}`;
  else if ((m = /^(layer\d+\.\d+)\.shortcut$/.exec(module))) path = `${m[1]}.shortcut.0`;
  else if ((m = /^(layer\d+\.\d+)\.shortcut\.bn$/.exec(module))) path = `${m[1]}.shortcut.1`;
  else if (/^layer\d+\.\d+\.conv\d+$/.test(module)) path = module;
  else throw new Error(`no reference name for parameter ${ourName}`);
  const kind: LayoutKind = rank === 4 ? 'conv' : rank === 2 ? 'linear' : 'vector';
  return { key: `${path}.${suffix}`, kind };
}

/** The reference's shape of a tensor of ours. */
export function referenceShape(ours: readonly number[], kind: LayoutKind): number[] {
  if (kind === 'conv') return [ours[3], ours[2], ours[0], ours[1]];
  if (kind === 'linear') return [ours[1], ours[0]];
  return [...ours];
}

/** Our shape of a tensor of the reference's. */
export function ourShape(ref: readonly number[], kind: LayoutKind): number[] {
  if (kind === 'conv') return [ref[2], ref[3], ref[1], ref[0]];
  if (kind === 'linear') return [ref[1], ref[0]];
  return [...ref];
}

/** Reference-layout values → ours (OIHW → HWIO, [out, in] → [in, out]). */
export function toOurLayout(values: Float32Array, refShape: readonly number[], kind: LayoutKind): Float32Array {
  if (kind === 'vector') return values;
  if (kind === 'linear') return transpose2d(values, refShape[0], refShape[1]);
  return convLayout(values, ourShape(refShape, kind), 'toOurs');
}

/** Our values → the reference's layout (HWIO → OIHW, [in, out] → [out, in]). */
export function toReferenceLayout(values: Float32Array, ours: readonly number[], kind: LayoutKind): Float32Array {
  if (kind === 'vector') return values;
  if (kind === 'linear') return transpose2d(values, ours[0], ours[1]);
  return convLayout(values, ours, 'toReference');
}

/** Moves a conv kernel of our shape `[h, w, i, o]` between our HWIO layout and the reference's OIHW, either way. */
function convLayout(values: Float32Array, [h, w, i, o]: readonly number[], way: 'toOurs' | 'toReference'): Float32Array {
  const out = new Float32Array(values.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let b = 0; b < i; b++) for (let a = 0; a < o; a++) {
    const ours = ((y * w + x) * i + b) * o + a;
    const ref = ((a * i + b) * h + y) * w + x;
    if (way === 'toOurs') out[ours] = values[ref];
    else out[ref] = values[ours];
  }
  return out;
}

function transpose2d(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

/** `layer1.0.conv1.router.fc.weight` → `router.fc.weight`: the copies of the shared router that the reference's
 * `set_router` leaves in every MoE conv's state (same storages). */
export function routerCopyOf(key: string): string | null {
  const m = /^layer\d+\.\d+\.conv\d+\.(router\..+)$/.exec(key);
  return m ? m[1] : null;
}
