import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MoeLayerInfo } from '../../../engine/models/types';
import { CollapseDetector } from '../../../engine/training/collapse';

const layer = (name: string, router: number): MoeLayerInfo => ({ name, router, outChannels: 8, expertChannels: 4 });

describe('CollapseDetector', () => {
  it('reports a router above the threshold over a full window, once, and again after recovery', () => {
    const d = new CollapseDetector([layer('a', 0), layer('b', 1)], 1, 2, { window: 3, threshold: 0.9 });
    const balanced = [0.5, 0.5];
    const skewed = [0.02, 0.98];
    assert.deepEqual(d.observe(0, [skewed, balanced]), []); // window not full yet
    assert.deepEqual(d.observe(1, [skewed, balanced]), []);
    const w = d.observe(2, [skewed, balanced]);
    assert.equal(w.length, 1);
    assert.match(w[0], /step 2: the router of a sent 98\.0% of its inputs to expert 1 over the last 3 steps/);
    assert.deepEqual(d.collapsedLayers(), ['a']);
    assert.deepEqual(d.observe(3, [skewed, balanced]), [], 'reported once while it stays collapsed');
    // One balanced batch brings the window mean to (0.98·2 + 0.5)/3 = 0.82: recovered.
    assert.deepEqual(d.observe(4, [balanced, balanced]), []);
    assert.deepEqual(d.collapsedLayers(), []);
    // The balanced batch leaves the window after three more skewed ones.
    assert.deepEqual(d.observe(5, [skewed, balanced]), []);
    assert.deepEqual(d.observe(6, [skewed, balanced]), []);
    assert.equal(d.observe(7, [skewed, balanced]).length, 1, 'a new collapse is reported again');
  });

  it('does not report a skew below the threshold or a single odd batch', () => {
    const d = new CollapseDetector([layer('a', 0)], 1, 2, { window: 4 });
    for (let s = 0; s < 10; s++) assert.deepEqual(d.observe(s, [[0.15, 0.85]]), []);
    const e = new CollapseDetector([layer('a', 0)], 1, 2, { window: 4 });
    e.observe(0, [[0.5, 0.5]]);
    e.observe(1, [[0.5, 0.5]]);
    e.observe(2, [[0.5, 0.5]]);
    assert.deepEqual(e.observe(3, [[0, 1]]), []);
  });

  it('reports a shared router once, naming the layers it decides', () => {
    const d = new CollapseDetector([layer('a', 0), layer('b', 0), layer('c', 0)], 1, 2, { window: 1 });
    const w = d.observe(9, [[1, 0], [1, 0], [1, 0]]);
    assert.equal(w.length, 1);
    assert.match(w[0], /the shared router \(3 MoE layers\) sent 100\.0% of its inputs to expert 0/);
    assert.deepEqual(d.collapsedLayers(), ['a', 'b', 'c']);
  });

  it('with k = 2, reports when (nearly) every input gets the same pair of experts, not when only one expert is always chosen', () => {
    // Loads are shares of the selections (rows sum to 1): each input picks 2 of 4 experts.
    const d = new CollapseDetector([layer('a', 0), layer('b', 1)], 2, 4, { window: 1 });
    // a: experts 0 and 3 in 96% of inputs (shares 0.48 each); b: expert 0 always, the second pick spread out.
    const w = d.observe(5, [[0.48, 0.01, 0.03, 0.48], [0.5, 0.2, 0.15, 0.15]]);
    assert.equal(w.length, 1);
    assert.match(w[0], /the router of a sent 96\.0% of its inputs to experts 0 and 3 together/);
    assert.deepEqual(d.collapsedLayers(), ['a']);
  });

  it('never reports when k = N (there is no choice)', () => {
    const d = new CollapseDetector([layer('a', 0)], 2, 2, { window: 1 });
    assert.deepEqual(d.observe(0, [[1, 0]]), []);
  });
});
