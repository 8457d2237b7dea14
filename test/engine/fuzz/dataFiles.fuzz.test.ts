/**
 * Damaged data files: valid IDX and CIFAR files with bytes flipped, cut, extended or headers rewritten. The
 * readers either parse them or fail with DATA_CORRUPT naming the file; never another error.
 */
import { test } from 'node:test';
import fc from 'fast-check';
import { parseCifarBatch } from '../../../engine/data/cifar';
import { parseIdx } from '../../../engine/data/idx';
import { cifarBatch, idxFile } from '../data/fixtures';
import { assertUserError, fuzzParams } from './settings';

type Edit = { kind: 'flip'; at: number; value: number } | { kind: 'cut'; at: number } | { kind: 'append'; bytes: Uint8Array } | { kind: 'u32'; at: number; value: number };
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(64), value: fc.nat(255) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat(8000) }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
  // Header words (IDX dimension sizes) set to extremes.
  fc.record({ kind: fc.constant('u32' as const), at: fc.constantFrom(0, 4, 8, 12), value: fc.constantFrom(0, 1, 2 ** 31, 2 ** 32 - 1, 28, 60000) }),
);

function applyEdits(base: Buffer, edits: Edit[]): Buffer {
  let b = Buffer.from(base);
  for (const e of edits) {
    if (e.kind === 'flip' && e.at < b.length) b[e.at] = e.value;
    if (e.kind === 'cut') b = b.subarray(0, Math.min(e.at, b.length));
    if (e.kind === 'append') b = Buffer.concat([b, e.bytes]);
    if (e.kind === 'u32' && e.at + 4 <= b.length) b.writeUInt32BE(e.value, e.at);
  }
  return b;
}

const IDX_IMAGES = idxFile([3, 4, 4], Array.from({ length: 48 }, (_, i) => i));
const IDX_LABELS = idxFile([3], [1, 2, 3]);
const CIFAR10 = cifarBatch([1, 2]);
const CIFAR100 = cifarBatch([1, 2], [3, 4]);

test('damaged IDX and CIFAR files parse or fail naming the file', () => {
  fc.assert(
    fc.property(fc.constantFrom('images', 'labels', 'cifar10', 'cifar100'), fc.array(edit, { minLength: 1, maxLength: 3 }), (kind, edits) => {
      const file = `fuzz-${kind}.bin`;
      try {
        if (kind === 'images') parseIdx(applyEdits(IDX_IMAGES, edits), file, 3);
        else if (kind === 'labels') parseIdx(applyEdits(IDX_LABELS, edits), file, 1);
        else parseCifarBatch(applyEdits(kind === 'cifar10' ? CIFAR10 : CIFAR100, edits), file, kind);
      } catch (e) {
        assertUserError(e, new RegExp(file.replace('.', '\\.')), `${kind} ${JSON.stringify(edits)}`);
      }
    }),
    fuzzParams(150),
  );
});
