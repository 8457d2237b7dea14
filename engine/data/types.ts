/**
 * The in-memory dataset every reader produces. Pixels stay as raw uint8 (NHWC): CIFAR-10 train is
 * 150 MB as float32 but 37.5 MB as uint8, so conversion to [0,1] floats happens per batch (batch.ts).
 */
export interface Dataset {
  /** e.g. `mnist`, `cifar10`, or the image folder's name. */
  name: string;
  split: 'train' | 'test';
  /** count × H × W × C bytes, NHWC, 0..255 (divide by 255 for the model's [0,1] input range). */
  images: Uint8Array;
  /** count labels in [0, numClasses). */
  labels: Int32Array;
  count: number;
  /** [H, W, C] of one image. */
  shape: [number, number, number];
  numClasses: number;
  classNames?: string[];
  /** For sample i, its index in the full split on disk (differs from i after `trainSamples`/`testSamples`
   * take a subset): lets the Inspector name a sample the same way across runs. */
  sourceIndex: Int32Array;
  /** Where the data came from (folder or files), for logs and error messages. */
  source: string;
}

/** Bytes of one image. */
export function imageBytes(ds: Pick<Dataset, 'shape'>): number {
  return ds.shape[0] * ds.shape[1] * ds.shape[2];
}
