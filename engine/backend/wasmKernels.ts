/**
 * Kernels that training needs and tfjs-backend-wasm 4.22 lacks or runs slowly, built from ops wasm runs fast
 * (XNNPACK convolutions and matrix products):
 *
 * - Conv2DBackpropFilter (missing: without it no conv weight gets a gradient on wasm): a forward convolution with
 *   the roles of batch and channels swapped, or, for ≤4 input channels, where that convolution would have almost
 *   no output rows, an explicit patch matrix times the output gradient.
 * - Conv2DBackpropInput (present but a naive loop): a forward convolution of the output gradient with a re-indexed
 *   filter. Stride 1 uses the spatially flipped, channel-transposed filter; stride s uses a polyphase
 *   decomposition — each of the s×s output phases is a stride-1 convolution with a sub-filter, all phases are
 *   computed by one convolution with s·s·Cin output channels and then interleaved.
 * - MaxPoolGrad (present but wrong: stock 4.22 gives wrong gradients for 'same' padding and even for 2×2/2 'valid'
 *   windows, measured against cpu and a hand-written reference): a host loop, exact.
 * - UnsortedSegmentSum (missing: it is the gradient of `gather`): a one-hot matrix product.
 * - BatchMatMul with transposeA/transposeB (present but ~10× slower than without; every matMul gradient uses it):
 *   explicit transposes followed by the plain product.
 *
 * Kernels here call tfjs ops: the engine does not record ops run inside a kernel on the gradient tape
 * (kernelDepth > 0), and a kernel may return a Tensor, which the engine then adopts as the output.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';

type Attrs = Record<string, unknown>;
type Pad = 'same' | 'valid' | number | backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
type Shape4 = [number, number, number, number];
/** The gradient of a windowed op (conv or max pool): two 4-D tensors, the window (a shape or a pool size), strides, padding, rounding. */
type WindowGrad<W> = (a: tf.Tensor4D, b: tf.Tensor4D, window: W, strides: number | [number, number], pad: Pad, dimRoundingMode?: Rounding) => tf.Tensor4D;

/** Transposed products smaller than this (multiply-adds) stay on the stock kernel. */
const MATMUL_TRANSPOSE_MIN_MACS = 1 << 20;

/** Input channels at or below which BackpropFilter uses the patch-matrix product instead of the swapped conv. */
export const FILTER_GRAD_MATMUL_MAX_CHANNELS = 4;

function asTensor<T extends tf.Tensor>(info: tf.TensorInfo | undefined): T {
  if (info === undefined) throw new Error('wasm training kernel: missing input');
  return (info instanceof tf.Tensor ? info : tf.engine().makeTensorFromTensorInfo(info)) as T;
}

function pair(v: unknown): [number, number] {
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0], a[1]];
}

function requireNHWC(kernel: string, dataFormat: unknown): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`${kernel} on wasm supports only dataFormat 'NHWC', got '${String(dataFormat)}'`);
  }
}

/**
 * A stride-1 'valid' convolution after padding `x` by the given (possibly negative: crop) amounts.
 * Even padding is passed to the convolution itself; uneven padding is applied with an explicit pad first,
 * because tfjs-backend-wasm is slow with an asymmetric padding array (measured, see the team's tfjs notes).
 */
function convWithPads(
  x: tf.Tensor4D,
  f: tf.Tensor4D,
  [top, bottom, left, right]: [number, number, number, number],
  dilations: [number, number] = [1, 1],
): tf.Tensor4D {
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [n, h, w, c] = x.shape;
    const t0 = Math.max(0, -top);
    const l0 = Math.max(0, -left);
    x = tf.slice(x, [0, t0, l0, 0], [n, h - t0 - Math.max(0, -bottom), w - l0 - Math.max(0, -right), c]);
    top = Math.max(0, top);
    bottom = Math.max(0, bottom);
    left = Math.max(0, left);
    right = Math.max(0, right);
  }
  if (top === 0 && bottom === 0 && left === 0 && right === 0) return tf.conv2d(x, f, 1, 'valid', 'NHWC', dilations);
  // A numeric pad is only safe with a square filter: tfjs 4.22 computes the output width of a numeric-pad conv
  // from the filter *height*, and with a non-square filter wasm then writes out of bounds (memory corruption).
  if (top === bottom && left === right && top === left && f.shape[0] === f.shape[1]) {
    return tf.conv2d(x, f, 1, top, 'NHWC', dilations);
  }
  const padded = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]);
  return tf.conv2d(padded, f, 1, 'valid', 'NHWC', dilations);
}

/** dW[kh,kw,ci,co] = Σ_{n,oh,ow} x[n, oh·sh + kh − top, ow·sw + kw − left, ci] · dy[n,oh,ow,co]. */
export const conv2DBackpropFilterImpl: WindowGrad<Shape4> = (x, dy, filterShape, strides, pad, dimRoundingMode) => {
  const info = backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const [kh, kw, ci, co] = filterShape;
  const [n, h, w] = x.shape;
  const [, ho, wo] = dy.shape;
  const { top, left } = info.padInfo;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  return tf.tidy(() => {
    if (ci <= FILTER_GRAD_MATMUL_MAX_CHANNELS) {
      // Patch matrix [kh·kw·ci, n·ho·wo] (rows ordered like the filter) times dy [n·ho·wo, co]. With few input
      // channels this is a small amount of data, and one well-shaped product beats a convolution whose output
      // would have only kh·kw·ci rows.
      const needH = (ho - 1) * sh + kh;
      const needW = (wo - 1) * sw + kw;
      const xp = tf.pad(x, [[0, 0], [top, Math.max(0, needH - top - h)], [left, Math.max(0, needW - left - w)], [0, 0]]);
      const xt = tf.transpose(xp, [3, 0, 1, 2]) as tf.Tensor4D; // [ci, n, Hp, Wp]
      const [, , hp, wp] = xt.shape;
      const taps: tf.Tensor[] = [];
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) {
          taps.push(
            sh === 1 && sw === 1
              ? tf.slice(xt, [0, 0, a, b], [ci, n, ho, wo])
              : tf.stridedSlice(xt, [0, 0, a, b], [ci, n, Math.min(hp, a + (ho - 1) * sh + 1), Math.min(wp, b + (wo - 1) * sw + 1)], [1, 1, sh, sw]),
          );
        }
      }
      const patches = tf.reshape(tf.stack(taps), [kh * kw * ci, n * ho * wo]);
      return tf.reshape(tf.matMul(patches, tf.reshape(dy, [n * ho * wo, co])), filterShape);
    }
    // Swap batch and channels: input [ci, h, w, n], "filter" dy as [ho, wo, n, co] dilated by the stride, so the
    // output [ci, kh, kw, co] is the weight gradient with its first axis moved.
    const xt = tf.transpose(x, [3, 1, 2, 0]);
    const ft = tf.transpose(dy, [1, 2, 0, 3]);
    const bottom = kh + (ho - 1) * sh - h - top;
    const right = kw + (wo - 1) * sw - w - left;
    const out = convWithPads(xt, ft, [top, bottom, left, right], [sh, sw]);
    return tf.transpose(out, [1, 2, 0, 3]);
  });
};

/**
 * For one spatial dimension of a transposed convolution (filter size k, stride s, leading pad p), the polyphase
 * sub-filters: output index i = s·a + r receives Σ_t dyPadded[a + t] · W[taps[r][t]] (−1: no tap), where dy is
 * padded by `lead` in front. Derivation: i = s·o + k − p ⇒ o = a + (r + p − k)/s when s divides r + p − k.
 */
function phaseTaps(k: number, s: number, p: number): { lead: number; len: number; taps: number[][] } {
  let dmin = Infinity;
  let dmax = -Infinity;
  for (let r = 0; r < s; r++) {
    for (let kk = 0; kk < k; kk++) {
      const num = r + p - kk;
      if (((num % s) + s) % s === 0) {
        dmin = Math.min(dmin, num / s);
        dmax = Math.max(dmax, num / s);
      }
    }
  }
  const lead = -dmin;
  const len = dmax - dmin + 1;
  const taps = Array.from({ length: s }, () => new Array<number>(len).fill(-1));
  for (let r = 0; r < s; r++) {
    for (let kk = 0; kk < k; kk++) {
      const num = r + p - kk;
      if (((num % s) + s) % s === 0) taps[r][lead + num / s] = kk;
    }
  }
  return { lead, len, taps };
}

/** dx for y = conv2d(x, W): the transposed convolution, computed as one forward convolution (see file header). */
export const conv2DBackpropInputImpl: WindowGrad<Shape4> = (dy, filter, inputShape, strides, pad, dimRoundingMode) => {
  const info = backend_util.computeConv2DInfo(inputShape, filter.shape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const [kh, kw, ci, co] = filter.shape;
  const [n, h, w] = inputShape;
  const [, ho, wo] = dy.shape;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const ph = phaseTaps(kh, sh, info.padInfo.top);
  const pw = phaseTaps(kw, sw, info.padInfo.left);
  // Every phase produces ceil(size/stride) rows; the surplus of short phases is cropped after interleaving.
  const hc = Math.ceil(h / sh);
  const wc = Math.ceil(w / sw);
  const phases = sh * sw;
  // The filter is small: re-index it on the host. G[th, tw, co, (rh·sw + rw)·ci + c] = W[taps_h[rh][th], taps_w[rw][tw], c, co].
  const wv = filter.dataSync();
  const g = new Float32Array(ph.len * pw.len * co * phases * ci);
  const gc = phases * ci;
  for (let th = 0; th < ph.len; th++) {
    for (let tw = 0; tw < pw.len; tw++) {
      for (let rh = 0; rh < sh; rh++) {
        const a = ph.taps[rh][th];
        if (a < 0) continue;
        for (let rw = 0; rw < sw; rw++) {
          const b = pw.taps[rw][tw];
          if (b < 0) continue;
          const ph0 = (rh * sw + rw) * ci;
          for (let c = 0; c < ci; c++) {
            const src = ((a * kw + b) * ci + c) * co;
            const dst = (th * pw.len + tw) * co * gc + ph0 + c;
            for (let o = 0; o < co; o++) g[dst + o * gc] = wv[src + o];
          }
        }
      }
    }
  }
  return tf.tidy(() => {
    const gT = tf.tensor4d(g, [ph.len, pw.len, co, gc]);
    const bottom = hc + ph.len - 1 - ph.lead - ho;
    const right = wc + pw.len - 1 - pw.lead - wo;
    let out = convWithPads(dy, gT, [ph.lead, bottom, pw.lead, right]); // [n, hc, wc, sh·sw·ci]
    if (phases > 1) {
      out = tf.reshape(
        tf.transpose(tf.reshape(out, [n, hc, wc, sh, sw, ci]), [0, 1, 3, 2, 4, 5]),
        [n, hc * sh, wc * sw, ci],
      );
    }
    if (hc * sh !== h || wc * sw !== w) out = tf.slice(out, [0, 0, 0, 0], [n, h, w, ci]);
    return out;
  });
};

/** out[s, …] = Σ_{i: ids[i] = s} x[i, …]; ids outside [0, numSegments) are dropped (as on the cpu backend). */
export function unsortedSegmentSumImpl(x: tf.Tensor, segmentIds: tf.Tensor, numSegments: number): tf.Tensor {
  return tf.tidy(() => {
    const rows = segmentIds.size;
    const rest = x.shape.slice(segmentIds.rank);
    const restSize = rest.reduce((p, d) => p * d, 1);
    // oneHot rows are all-zero for out-of-range ids, which drops them. Built as [numSegments, rows] directly
    // (one-hot of the transposed problem) so that no transposed matMul is needed.
    const ids = tf.cast(tf.reshape(segmentIds, [1, rows]), 'int32');
    const seg = tf.reshape(tf.range(0, numSegments, 1, 'int32'), [numSegments, 1]);
    const sel = tf.cast(tf.equal(ids, seg), x.dtype === 'int32' ? 'int32' : 'float32');
    const flat = tf.reshape(x, [rows, restSize]);
    const out = x.dtype === 'int32' ? tf.cast(tf.matMul(tf.cast(sel, 'float32'), tf.cast(flat, 'float32')), 'int32') : tf.matMul(sel, flat);
    return tf.reshape(out, [numSegments, ...rest]);
  });
}

/**
 * dx of maxPool: each output's gradient goes to the first maximum of its window (row-major order, the cpu
 * backend's tie rule). A host loop: the data is copied out of the wasm heap once, and the work is
 * O(outputs · window), small beside the convolutions around it.
 */
export const maxPoolGradImpl: WindowGrad<number | [number, number]> = (dy, x, filterSize, strides, pad, dimRoundingMode) => {
  const info = backend_util.computePool2DInfo(x.shape, filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const { top, left } = info.padInfo;
  const xv = x.dataSync();
  const dyv = dy.dataSync();
  const dx = new Float32Array(x.size);
  const best = new Float32Array(c);
  const arg = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      const h0 = oh * sh - top;
      for (let ow = 0; ow < wo; ow++) {
        const w0 = ow * sw - left;
        best.fill(-Infinity);
        arg.fill(-1);
        for (let i = Math.max(0, h0); i < Math.min(h, h0 + fh); i++) {
          for (let j = Math.max(0, w0); j < Math.min(w, w0 + fw); j++) {
            const base = ((b * h + i) * w + j) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = xv[base + ch];
              if (v > best[ch]) {
                best[ch] = v;
                arg[ch] = base + ch;
              }
            }
          }
        }
        const o = ((b * ho + oh) * wo + ow) * c;
        for (let ch = 0; ch < c; ch++) if (arg[ch] >= 0) dx[arg[ch]] += dyv[o + ch];
      }
    }
  }
  return tf.tensor4d(dx, x.shape);
};

/** The kernels this module adds or replaces, by name. */
const KERNEL_NAMES = ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad', 'UnsortedSegmentSum', 'BatchMatMul'] as const;
export type TrainingKernelName = (typeof KERNEL_NAMES)[number];

/** Stock wasm kernels we replace, captured before replacement (for restoring and for benchmarks). */
const stock = new Map<string, tf.KernelConfig>();

/**
 * The gradient kernel of a windowed op (conv or max pool): its two 4-D inputs by name, and from the attributes the
 * window (`windowAttr`: the filter or input shape, the pool size), strides, padding and rounding. NHWC only.
 */
function windowGradKernel<W>(
  kernelName: TrainingKernelName,
  inputNames: [string, string],
  windowAttr: string,
  impl: WindowGrad<W>,
): tf.KernelConfig {
  return {
    kernelName,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      const a = attrs as Attrs;
      requireNHWC(kernelName, a.dataFormat);
      const [first, second] = inputNames.map((name) => asTensor<tf.Tensor4D>(inputs[name]));
      return impl(first, second, a[windowAttr] as W, pair(a.strides), a.pad as Pad, a.dimRoundingMode as Rounding);
    },
  };
}

function makeConfigs(): tf.KernelConfig[] {
  const stockMatMul = () => stock.get('BatchMatMul')!;
  return [
    windowGradKernel('Conv2DBackpropFilter', ['x', 'dy'], 'filterShape', conv2DBackpropFilterImpl),
    windowGradKernel('Conv2DBackpropInput', ['dy', 'filter'], 'inputShape', conv2DBackpropInputImpl),
    windowGradKernel('MaxPoolGrad', ['dy', 'input'], 'filterSize', maxPoolGradImpl),
    {
      kernelName: 'UnsortedSegmentSum',
      backendName: 'wasm',
      kernelFunc: ({ inputs, attrs }) =>
        unsortedSegmentSumImpl(asTensor(inputs.x), asTensor(inputs.segmentIds), (attrs as Attrs).numSegments as number),
    },
    {
      kernelName: 'BatchMatMul',
      backendName: 'wasm',
      setupFunc: (backend) => stockMatMul().setupFunc?.(backend),
      kernelFunc: (args) => {
        const a = args.attrs as Attrs;
        const sa = args.inputs.a!.shape;
        const sb = args.inputs.b!.shape;
        const macs = (sa.reduce((p, d) => p * d, 1) * sb[sb.length - (a.transposeB ? 2 : 1)]);
        // Below ~1M multiply-adds the extra transpose costs more than the stock transposed product loses (bench).
        if ((!a.transposeA && !a.transposeB) || macs < MATMUL_TRANSPOSE_MIN_MACS) return stockMatMul().kernelFunc(args);
        // Materialise the transposes of the two inner axes and multiply plainly.
        return tf.tidy(() => {
          const t = (info: tf.TensorInfo | undefined, flag: unknown): tf.Tensor => {
            const v = asTensor(info);
            if (!flag) return v;
            const perm = v.shape.map((_, i) => i);
            [perm[v.rank - 2], perm[v.rank - 1]] = [perm[v.rank - 1], perm[v.rank - 2]];
            return tf.transpose(v, perm);
          };
          const xa = t(args.inputs.a, a.transposeA);
          const xb = t(args.inputs.b, a.transposeB);
          return tf.engine().runKernel('BatchMatMul', { a: xa, b: xb }, { transposeA: false, transposeB: false }) as tf.Tensor;
        });
      },
    },
  ];
}

let enabled = false;

/**
 * Registers (enabled=true, the default) or removes (false: back to stock tfjs-backend-wasm) the kernels above on
 * the 'wasm' backend. Idempotent; takes effect for the next op. Works before or after wasm is initialised.
 */
export function registerWasmTrainingKernels(enable = true): void {
  if (stock.size === 0) {
    for (const name of KERNEL_NAMES) {
      const k = tf.getKernel(name, 'wasm');
      if (k) stock.set(name, k);
    }
    if (!stock.has('BatchMatMul')) throw new Error('tfjs-backend-wasm is not loaded (no BatchMatMul kernel)');
  }
  if (enable === enabled) return;
  for (const name of KERNEL_NAMES) {
    if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
  }
  const configs = enable ? makeConfigs() : [...stock.values()];
  // Not tf.findBackend: for a registered but uninitialised wasm it starts the (async) initialisation, which
  // leaves the engine's current backend unusable until it resolves, e.g. under tensorflow (README, Backends).
  const wasmBackend = (tf.engine() as unknown as { registry: Record<string, tf.KernelBackend | undefined> }).registry.wasm;
  for (const c of configs) {
    tf.registerKernel(c);
    // The engine runs setup functions only when a backend becomes current; do it for an already-running wasm.
    if (wasmBackend && c.setupFunc) c.setupFunc(wasmBackend);
  }
  enabled = enable;
}

/** Whether registerWasmTrainingKernels(true) is in effect. */
export function wasmTrainingKernelsEnabled(): boolean {
  return enabled;
}
