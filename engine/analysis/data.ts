/** Evaluation data as the analysis functions accept it: flat NHWC floats or tensors, plus labels. */
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from '../models/types';
import { AdvMoEError } from '../util/errors';

export type Images = Float32Array | tf.Tensor4D;
export type Labels = Int32Array | Uint8Array | number[] | tf.Tensor1D;

export interface EvalData {
  /** NHWC in [0,1]: a flat Float32Array of n·H·W·C values (the model's input shape) or a [n,H,W,C] tensor. */
  x: Images;
  y: Labels;
}

/** Random access to batches of an EvalData (the caller's tensors are never disposed here). */
export class Batches {
  readonly n: number;
  readonly labels: Int32Array;
  private readonly per: number;

  constructor(
    private readonly model: Model,
    private readonly data: EvalData,
    limit = 0,
  ) {
    const [h, w, c] = model.inputShape;
    this.per = h * w * c;
    let n: number;
    if (data.x instanceof Float32Array) {
      if (data.x.length % this.per !== 0) {
        throw new AdvMoEError('INVALID_ARGUMENT', `input has ${data.x.length} values, not a multiple of one image (${h}×${w}×${c} = ${this.per})`);
      }
      n = data.x.length / this.per;
    } else {
      const s = data.x.shape;
      if (s[1] !== h || s[2] !== w || s[3] !== c) {
        throw new AdvMoEError('INVALID_ARGUMENT', `input is [${s.join(', ')}], the model expects [n, ${h}, ${w}, ${c}]`);
      }
      n = s[0];
    }
    const y = data.y instanceof tf.Tensor ? data.y.dataSync() : data.y;
    if (y.length !== n) throw new AdvMoEError('INVALID_ARGUMENT', `${n} inputs but ${y.length} labels`);
    this.labels = Int32Array.from(y as ArrayLike<number>);
    for (const v of this.labels) {
      if (!(v >= 0 && v < model.numClasses)) throw new AdvMoEError('INVALID_ARGUMENT', `label ${v} outside 0..${model.numClasses - 1}`);
    }
    this.n = limit > 0 ? Math.min(limit, n) : n;
  }

  /** Samples [from, to) as new tensors (the caller disposes them). */
  slice(from: number, to: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
    const [h, w, c] = this.model.inputShape;
    const x =
      this.data.x instanceof Float32Array
        ? tf.tensor4d(this.data.x.subarray(from * this.per, to * this.per), [to - from, h, w, c])
        : (tf.slice(this.data.x, [from, 0, 0, 0], [to - from, h, w, c]) as tf.Tensor4D);
    return { x, y: tf.tensor1d(this.labels.subarray(from, to), 'int32') };
  }

  /** Arbitrary samples by id. */
  gather(ids: number[]): { x: tf.Tensor4D; y: tf.Tensor1D } {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.n) throw new AdvMoEError('INVALID_ARGUMENT', `sample id ${id} outside 0..${this.n - 1}`);
    }
    const [h, w, c] = this.model.inputShape;
    let x: tf.Tensor4D;
    if (this.data.x instanceof Float32Array) {
      const buf = new Float32Array(ids.length * this.per);
      ids.forEach((id, i) => buf.set((this.data.x as Float32Array).subarray(id * this.per, (id + 1) * this.per), i * this.per));
      x = tf.tensor4d(buf, [ids.length, h, w, c]);
    } else {
      const src = this.data.x;
      x = tf.tidy(() => tf.gather(src, tf.tensor1d(ids, 'int32')) as tf.Tensor4D);
    }
    return { x, y: tf.tensor1d(Int32Array.from(ids, (id) => this.labels[id]), 'int32') };
  }
}

/** argmax per row and the max softmax probability, read in one go. */
export async function predictions(logits: tf.Tensor2D): Promise<{ pred: Int32Array; conf: Float32Array }> {
  const [p, c] = tf.tidy(() => [tf.argMax(logits, 1), tf.max(tf.softmax(logits), 1)]);
  const pred = Int32Array.from(await p.data());
  const conf = Float32Array.from(await c.data());
  tf.dispose([p, c]);
  return { pred, conf };
}

/** Expert indices selected per sample, from a hard [B, N] mask's values. */
export function selected(mask: ArrayLike<number>, n: number, b: number): number[] {
  const out: number[] = [];
  for (let e = 0; e < n; e++) if (mask[b * n + e] > 0.5) out.push(e);
  return out;
}
