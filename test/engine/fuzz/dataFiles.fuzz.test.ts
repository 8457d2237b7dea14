/**
 * Damaged data files: valid IDX and CIFAR files with bytes flipped, cut, extended or headers rewritten. The
 * readers either parse them or fail with DATA_CORRUPT naming the file; never another error.
 */
import { test } from 'node:test';
import fc from 'fast-check';
import { parseCifarBatch } from '../../../engine/data/cifar';
import { parseIdx } from '../../../engine/data/idx';
import { cifarBatch, idxFile } from '../data/fixtures';
import { append, applyEdits, type ByteEdit, cut, flip } from './byteEdits';
import { assertUserError, fuzzParams } from './settings';

const edit: fc.Arbitrary<ByteEdit> = fc.oneof(
  flip(64),
  cut(8000),
  append,
  // Header words (IDX dimension sizes) set to extremes.
  fc.record({ kind: fc.constant('u32' as const), at: fc.constantFrom(0, 4, 8, 12), value: fc.constantFrom(0, 1, 2 ** 31, 2 ** 32 - 1, 28, 60000) }),
);

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
