/**
 * TensorFlow ops that tfjs-node does not expose as tfjs kernels (or exposes only as composites), called directly on its backend (only when the
 * current backend is 'tensorflow'). tfjs's own BatchNorm kernel there is a chain of element-wise ops and its
 * gradient is differentiated op by op; TensorFlow's FusedBatchNormV3 / FusedBatchNormGradV3 do a training-mode
 * BN and its backward as one native call each (README "Benchmark": each op is a crossing into the native library).
 */
import * as tf from '@tensorflow/tfjs-core';

/** The parts of tfjs-node's NodeJSKernelBackend used here. */
interface NativeBackend {
  binding: Record<string, number>;
  executeSingleOutput(name: string, attrs: object[], inputs: tf.Tensor[]): tf.Tensor;
  executeMultipleOutputs(name: string, attrs: object[], inputs: tf.Tensor[], numOutputs: number): tf.Tensor[];
}

function nativeBackend(): NativeBackend | null {
  if (tf.getBackend() !== 'tensorflow') return null;
  const b = tf.backend() as unknown as Partial<NativeBackend>;
  return typeof b.executeMultipleOutputs === 'function' && b.binding ? (b as NativeBackend) : null;
}

/** Whether the native ops here can run now (current backend is tfjs-node's). */
export function hasNativeOps(): boolean {
  return nativeBackend() !== null;
}
export const hasNativeBatchNorm = hasNativeOps;

/**
 * ReLU's backward, dy·(y > 0) with y = relu(x), as TensorFlow's ReluGrad: one call. tfjs's Relu gradient is
 * dy·step(x), and tfjs-node's Step kernel is a composite of IsNan, Greater, two full-size fills and Select.
 * (A NaN input gives gradient 0 here, NaN there.)
 */
export function reluGrad(dy: tf.Tensor, y: tf.Tensor): tf.Tensor {
  const b = nativeBackend();
  if (!b) throw new Error('reluGrad needs the tensorflow backend');
  return b.executeSingleOutput('ReluGrad', [{ name: 'T', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT }], [dy, y]);
}

let empty: tf.Tensor | null = null;

function bnAttrs(b: NativeBackend, epsilon: number, forward: boolean): object[] {
  const B = b.binding;
  return [
    { name: 'T', type: B.TF_ATTR_TYPE, value: B.TF_FLOAT },
    { name: 'U', type: B.TF_ATTR_TYPE, value: B.TF_FLOAT },
    { name: 'epsilon', type: B.TF_ATTR_FLOAT, value: epsilon },
    ...(forward ? [{ name: 'exponential_avg_factor', type: B.TF_ATTR_FLOAT, value: 1 }] : []),
    { name: 'data_format', type: B.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'is_training', type: B.TF_ATTR_BOOL, value: true },
  ];
}

export interface NativeBnForward {
  y: tf.Tensor4D;
  /** Batch mean and biased batch variance [C] (what the backward needs, and what the running statistics fold in). */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  /** TensorFlow's opaque third reserve output, passed back to the gradient. */
  reserve: tf.Tensor;
}

/** Training-mode BN on batch statistics: y = (x − μ)/√(σ² + ε)·γ + β over N, H, W (NHWC). */
export function fusedBatchNormTraining(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): NativeBnForward {
  const b = nativeBackend();
  if (!b) throw new Error('fusedBatchNormTraining needs the tensorflow backend');
  empty ??= tf.keep(tf.tensor1d([]));
  // Outputs: y, batch mean, unbiased batch variance, reserve 1 (mean), reserve 2 (biased variance), reserve 3.
  const [y, batchMean, unbiased, mean, variance, reserve] = b.executeMultipleOutputs('FusedBatchNormV3', bnAttrs(b, epsilon, true), [x, gamma, beta, empty, empty], 6);
  tf.dispose([batchMean, unbiased]);
  return { y: y as tf.Tensor4D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, reserve };
}

/** The backward of fusedBatchNormTraining: [dx, dγ, dβ]. */
export function fusedBatchNormGrad(
  dy: tf.Tensor4D, x: tf.Tensor4D, gamma: tf.Tensor1D, fwd: Omit<NativeBnForward, 'y'>, epsilon: number,
): [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D] {
  const b = nativeBackend();
  if (!b) throw new Error('fusedBatchNormGrad needs the tensorflow backend');
  const [dx, dgamma, dbeta, r4, r5] = b.executeMultipleOutputs(
    'FusedBatchNormGradV3', bnAttrs(b, epsilon, false), [dy, x, gamma, fwd.mean, fwd.variance, fwd.reserve], 5,
  );
  tf.dispose([r4, r5]);
  return [dx as tf.Tensor4D, dgamma as tf.Tensor1D, dbeta as tf.Tensor1D];
}
