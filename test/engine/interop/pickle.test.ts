/** The safe pickle reader on hand-made pickles: opcodes, the allowlist, and malformed input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unpickle } from '../../../engine/interop';
import { isAdvMoEError } from '../../../engine/util/errors';

const P = (...parts: Array<number | string>): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : Buffer.from(p, 'latin1'))));
const read = (b: Uint8Array) => unpickle(b, { file: 'p.pkl' });

test('protocol 0 text opcodes, memo, DUP and POP', () => {
  const list = read(P('(lp0\nI1\naI-7\naL123456789012345678901L\naF0.5\naI01\na.'));
  assert.deepEqual(list, [1, -7, 123456789012345678901n, 0.5, true]);
  assert.deepEqual(read(P(0x80, 2, 'K', 7, 'q', 0, '0h', 0, '.')), 7);
});

test('binary ints, floats, strings, bytes, tuples and dicts', () => {
  assert.equal(read(P(0x80, 2, 0x8a, 2, 0x00, 0x80, '.')), -32768);
  assert.equal(read(P(0x80, 2, 0x8a, 0, '.')), 0);
  assert.equal(read(P(0x80, 2, 'J', 0xff, 0xff, 0xff, 0xff, '.')), -1);
  assert.equal(read(P(0x80, 2, 'M', 0x34, 0x12, '.')), 0x1234);
  assert.equal(read(P(0x80, 2, 'G', 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, '.')), 1.5);
  assert.equal(read(P(0x80, 4, 0x8c, 2, 'hi', '.')), 'hi');
  assert.deepEqual(read(P(0x80, 3, 'C', 2, 'ab', '.')), Uint8Array.from([97, 98]));
  assert.deepEqual(read(P(0x80, 2, 'K', 1, 'K', 2, 0x86, '.')), [1, 2]);
  assert.deepEqual(read(P(0x80, 2, '}(K', 1, 'N', 0x88, 'K', 2, 'u.')), new Map<unknown, unknown>([[1, null], [true, 2]]));
  // MEMOIZE and FRAME (protocol 4), OrderedDict through STACK_GLOBAL.
  const od = read(P(0x80, 4, 0x95, 30, 0, 0, 0, 0, 0, 0, 0, 0x8c, 11, 'collections', 0x94, 0x8c, 11, 'OrderedDict', 0x94, 0x93, 0x94, ')R', 0x94, 0x8c, 1, 'k', 'K', 3, 's.'));
  assert.deepEqual(od, new Map([['k', 3]]));
  // bytes in protocol 2 come as _codecs.encode(str, 'latin1')
  assert.deepEqual(read(P(0x80, 2, 'c_codecs\nencode\n', 'X', 3, 0, 0, 0, 'a', 0xc3, 0xbf, 'X', 6, 0, 0, 0, 'latin1', 0x86, 'R.')), Uint8Array.from([0x61, 0xff]));
});

test('globals outside the allowlist are refused by name before anything is called', () => {
  const refuse = (b: Uint8Array, global: RegExp) =>
    assert.throws(() => read(b), (e) => isAdvMoEError(e, 'CHECKPOINT_UNSAFE') && global.test(e.message) && /p\.pkl/.test(e.message));
  refuse(P(0x80, 2, 'cos\nsystem\n', 'X', 2, 0, 0, 0, 'id', 0x85, 'R.'), /os\.system/);
  refuse(P(0x80, 4, 0x8c, 8, 'builtins', 0x8c, 4, 'eval', 0x93, '.'), /builtins\.eval/);
  refuse(P(0x80, 2, 'ctorch.nn.modules.conv\nConv2d\n', ')', 0x81, '.'), /torch\.nn\.modules\.conv\.Conv2d/);
  // INST and OBJ build arbitrary objects; EXT codes index a registry.
  refuse(P('(ios\nsystem\n.'), /INST/);
  refuse(P(0x80, 2, 0x82, 1, '.'), /EXT1/);
  // A persistent id outside a torch checkpoint has no storages to resolve.
  refuse(P(0x80, 2, 'K', 1, 'Q.'), /BINPERSID/);
});

test('malformed pickles fail with CHECKPOINT_CORRUPT naming the problem', () => {
  const bad = (b: Uint8Array, what: RegExp) => assert.throws(() => read(b), (e) => isAdvMoEError(e, 'CHECKPOINT_CORRUPT') && what.test(e.message) && /p\.pkl/.test(e.message));
  bad(P(0x80, 2, 'K', 1), /without STOP/);
  bad(P(0x80, 2, '.'), /STOP at byte 2 with 0 values/);
  bad(P(0x80, 2, 'X', 9, 0, 0, 0, 'ab.'), /runs past the end/);
  bad(P(0x80, 2, 'h', 3, '.'), /memo entry 3 read/);
  bad(P(0x80, 2, 'e.'), /no MARK/);
  bad(P(0x80, 2, ']K', 1, 'K', 2, 's.'), /not a dict/);
  bad(P(0x80, 2, 'K', 1, 'K', 2, 's.'), /stack underflow at byte 6/);
  bad(P(0x80, 2, 'K', 1, ')R.'), /not an allowlisted global/);
  bad(P(0x80, 2, 0xff, '.'), /unknown opcode 0xff/);
  bad(P(0x80, 9, '.'), /protocol 9/);
  bad(P(0x80, 3, 'X', 2, 0, 0, 0, 0xc3, 0x28, '.'), /not UTF-8/);
  bad(P(0x80, 2, 'ctorch\nSize\n', 'X', 1, 0, 0, 0, 'a', 0x85, 0x85, 'R.'), /torch\.Size\(\) of something other than non-negative ints/);
});
