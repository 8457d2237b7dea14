/**
 * Sparse MoE inference and its measured latency.
 *
 * `sparseForward` runs a model with `ForwardOptions.sparse`: inactive experts are never computed (see
 * `Net.sparseMoe`). `measureLatency` times the same model computed densely with the mask (what training
 * runs), sparsely, and optionally a dense counterpart, alternating the variants within each repetition so
 * that load changes on a shared machine hit all of them alike; it reports medians with min and max.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ForwardOptions, ForwardResult, Model } from './types';

/** Inference forward that skips inactive experts. Same logits as `model.forward(x, { training: false })` up to
 * float rounding. The caller owns (and disposes, e.g. with tf.tidy) the returned tensors. */
export function sparseForward(model: Model, x: tf.Tensor4D, opts: Omit<ForwardOptions, 'training' | 'sparse'> = {}): ForwardResult {
  return model.forward(x, { ...opts, training: false, sparse: true });
}

export interface LatencyStat {
  /** Milliseconds per forward of the whole batch. */
  median: number;
  min: number;
  max: number;
}

export interface LatencyReport {
  batch: number;
  reps: number;
  /** The MoE model computed densely, inactive experts multiplied by 0 (the training forward, inference BN). */
  masked: LatencyStat;
  /** The MoE model with inactive experts skipped. */
  sparse: LatencyStat;
  /** The dense counterpart, when one was given. */
  dense?: LatencyStat;
  /** sparse.median / masked.median, and sparse.median / dense.median when a dense model was given. */
  sparseVsMasked: number;
  sparseVsDense?: number;
}

export interface LatencyOptions {
  /** The dense counterpart (same backbone, MoE disabled) to time beside the MoE model. */
  dense?: Model;
  /** Untimed forwards of each variant first (weight slices, operator caches). Default 2. */
  warmup?: number;
  /** Input batch; default seeded uniform [0,1). Not disposed. */
  input?: tf.Tensor4D;
}

export function stat(ms: number[]): LatencyStat {
  const s = [...ms].sort((a, b) => a - b);
  const mid = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: mid, min: s[0], max: s[s.length - 1] };
}

/** Wall time of one forward with its logits read back (so the work is surely done). */
function timeOnce(model: Model, x: tf.Tensor4D, opts: ForwardOptions): number {
  const t0 = process.hrtime.bigint();
  const logits = tf.tidy(() => model.forward(x, opts).logits);
  logits.dataSync();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  logits.dispose();
  return ms;
}

/** Median latency of masked-dense vs sparse inference of `model` at `batch`, and of `opts.dense` if given. */
export function measureLatency(model: Model, batch: number, reps: number, opts: LatencyOptions = {}): LatencyReport {
  if (!(Number.isInteger(batch) && batch >= 1 && Number.isInteger(reps) && reps >= 1)) {
    throw new RangeError(`measureLatency needs integer batch ≥ 1 and reps ≥ 1, got ${batch}, ${reps}`);
  }
  const x = opts.input ?? (tf.randomUniform([batch, ...model.inputShape], 0, 1, 'float32', 1) as tf.Tensor4D);
  const variants: Array<{ name: 'masked' | 'sparse' | 'dense'; model: Model; opts: ForwardOptions }> = [
    { name: 'masked', model, opts: { training: false } },
    { name: 'sparse', model, opts: { training: false, sparse: true } },
  ];
  if (opts.dense) variants.push({ name: 'dense', model: opts.dense, opts: { training: false } });
  const times: Record<string, number[]> = { masked: [], sparse: [], dense: [] };
  try {
    for (let r = 0; r < (opts.warmup ?? 2); r++) for (const v of variants) timeOnce(v.model, x, v.opts);
    for (let r = 0; r < reps; r++) {
      // Rotate the order as well, so no variant always runs first after a pause.
      for (let i = 0; i < variants.length; i++) {
        const v = variants[(i + r) % variants.length];
        times[v.name].push(timeOnce(v.model, x, v.opts));
      }
    }
  } finally {
    if (!opts.input) x.dispose();
  }
  const masked = stat(times.masked);
  const sparse = stat(times.sparse);
  const report: LatencyReport = { batch, reps, masked, sparse, sparseVsMasked: sparse.median / masked.median };
  if (opts.dense) {
    report.dense = stat(times.dense);
    report.sparseVsDense = sparse.median / report.dense.median;
  }
  return report;
}
