/**
 * Tied experts (`method.routing.tieExpertsEpochs`, README "Routing that does not collapse"): while tied, the N
 * copies of an expert are one shared weight. A training step updates each copy with the gradient of the inputs
 * routed to it; `tieExperts` then sets every copy to the value one shared weight would have: its value before the
 * step plus the sum of the copies' updates (for SGD with momentum, the per-copy momentum buffers also sum to the
 * shared weight's; weight decay, which each copy applies, counts N times). BN running statistics, which every copy
 * folds in alike, are averaged instead.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ExpertTie } from './types';

/** `t` viewed with `axis` split into [blocks, size / blocks]: the block index is then at `axis`. */
function blockView(t: tf.Tensor, axis: number, blocks: number): tf.Tensor {
  const shape = t.shape.slice();
  if (shape[axis] % blocks !== 0) throw new RangeError(`axis ${axis} of [${shape.join(', ')}] does not split into ${blocks} blocks`);
  shape.splice(axis, 1, blocks, shape[axis] / blocks);
  return tf.reshape(t, shape);
}

/**
 * One tie: `before` (the value at the start of the step, blocks equal) and the variable's value now (each block
 * updated on its own) give blocks that are equal again. Returns the new value; the caller assigns it.
 */
export function tiedValue(before: tf.Tensor, after: tf.Tensor, tie: Pick<ExpertTie, 'axis' | 'blocks' | 'combine'>): tf.Tensor {
  return tf.tidy(() => {
    const a = blockView(after, tie.axis, tie.blocks);
    let shared: tf.Tensor;
    if (tie.combine === 'mean') shared = tf.mean(a, tie.axis, true);
    else {
      const b = blockView(before, tie.axis, tie.blocks);
      shared = tf.add(b, tf.sum(tf.sub(a, b), tie.axis, true));
    }
    return tf.reshape(tf.broadcastTo(shared, a.shape), after.shape);
  });
}

/**
 * Ties every parameter of `ties` after a step, `before` holding each one's value from the step's start. A kernel
 * tied along two axes (an MoE conv that reads another MoE conv) is tied axis by axis: the second tie sees the
 * first one's result as "after", which sums the updates of all block pairs.
 */
export function tieExperts(ties: readonly ExpertTie[], before: ReadonlyMap<tf.Variable, tf.Tensor>): void {
  for (const tie of ties) {
    const b = before.get(tie.variable);
    if (!b) throw new RangeError(`tied parameter ${tie.name} has no value from before the step`);
    const next = tiedValue(b, tie.variable, tie);
    tie.variable.assign(next);
    next.dispose();
  }
}

/** Sets every copy of each tied parameter to expert 0's (a model whose experts start tied). */
export function copyFirstExpert(ties: readonly ExpertTie[]): void {
  for (const tie of ties) {
    const next = tf.tidy(() => {
      const a = blockView(tie.variable, tie.axis, tie.blocks);
      const first = tf.slice(a, Array(a.rank).fill(0), a.shape.map((s, i) => (i === tie.axis ? 1 : s)));
      return tf.reshape(tf.broadcastTo(first, a.shape), tie.variable.shape);
    });
    tie.variable.assign(next);
    next.dispose();
  }
}
