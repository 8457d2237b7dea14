/** Half and bfloat16 conversions against exact rules, over every half value and the rounding ties. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from '../../../engine/interop/hostTensor';

test('every half value survives half → float → half (NaN stays NaN)', () => {
  for (let h = 0; h < 0x10000; h++) {
    const f = halfToFloat(h);
    if (Number.isNaN(f)) assert.ok(Number.isNaN(halfToFloat(floatToHalf(f))), `0x${h.toString(16)}`);
    else assert.equal(floatToHalf(f), h, `0x${h.toString(16)} = ${f}`);
  }
});

test('float → half rounds to nearest even, overflows to infinity, underflows to signed zero', () => {
  assert.equal(halfToFloat(floatToHalf(1 + 2 ** -11)), 1, 'tie rounds down to the even 1.0');
  assert.equal(halfToFloat(floatToHalf(1 + 3 * 2 ** -11)), 1 + 2 ** -9, 'tie rounds up to the even mantissa');
  assert.equal(halfToFloat(floatToHalf(65519)), 65504);
  assert.equal(halfToFloat(floatToHalf(65520)), Infinity);
  assert.equal(halfToFloat(floatToHalf(2 ** -25)), 0, 'half the smallest subnormal ties to even zero');
  assert.equal(halfToFloat(floatToHalf(3 * 2 ** -26)), 2 ** -24);
  assert.ok(Object.is(halfToFloat(floatToHalf(-1e-10)), -0));
  assert.equal(halfToFloat(floatToHalf(0.1)), 0.0999755859375);
});

test('bfloat16: every value survives, and float → bfloat16 rounds to nearest even', () => {
  for (let h = 0; h < 0x10000; h += 7) {
    const f = bfloat16ToFloat(h);
    if (!Number.isNaN(f)) assert.equal(floatToBfloat16(f), h);
  }
  assert.equal(bfloat16ToFloat(floatToBfloat16(3.14159)), 3.140625);
  assert.equal(bfloat16ToFloat(floatToBfloat16(1 + 2 ** -8)), 1, 'tie to even');
  assert.equal(bfloat16ToFloat(floatToBfloat16(1 + 3 * 2 ** -8)), 1 + 2 ** -6, 'tie to even, up');
  assert.ok(Number.isNaN(bfloat16ToFloat(floatToBfloat16(NaN))));
});
