/** safetensors: the reference library's file, round trips, and damaged headers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hostTensor, parseSafetensors, readSafetensors, writeSafetensors, type PyValue } from '../../../engine/interop';
import { isAdvMoEError } from '../../../engine/util/errors';
import { describe, FIXTURES } from './describe';

const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8'))['tensors.safetensors'];

test('reads the file the safetensors library wrote, tensors in order, with metadata', async () => {
  const { tensors, metadata } = await readSafetensors(path.join(FIXTURES, 'tensors.safetensors'));
  // The library orders tensors by dtype size, then name: compare as a set of names, values by name.
  const want = new Map<string, unknown>((expected.tensors.dict as Array<[string, unknown]>).map(([k, v]) => [k, v]));
  assert.deepEqual(new Set(tensors.keys()), new Set(want.keys()));
  for (const [k, t] of tensors) assert.deepEqual(describe(t as PyValue), want.get(k), k);
  assert.deepEqual(metadata, expected.metadata);
});

test('write → read round trip keeps order, dtypes, shapes, values and metadata', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-st-')), 'm.safetensors');
  const tensors = new Map([
    ['b', hostTensor('float32', [2, 2], [1, 2, 3, 4])],
    ['a', hostTensor('int64', [1], [2n ** 60n])],
    ['h', hostTensor('float16', [1], [0.5])],
    ['z', hostTensor('float32', [0], [])],
    ['m', hostTensor('bool', [3], [1, 0, 1])],
  ]);
  writeSafetensors(file, tensors, { arch: 'resnet18' });
  const bytes = fs.readFileSync(file);
  assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0, 'data starts 8-byte aligned');
  const back = await readSafetensors(file);
  assert.deepEqual([...back.tensors.keys()], ['b', 'a', 'h', 'z', 'm']);
  for (const [k, t] of tensors) assert.deepEqual(describe(back.tensors.get(k)! as PyValue), describe(t as PyValue), k);
  assert.deepEqual(back.metadata, { arch: 'resnet18' });
});

/** A file with the given header object and `dataBytes` zero bytes of data. */
function file(header: unknown, dataBytes: number, rawHeader?: string): Buffer {
  const json = Buffer.from(rawHeader ?? JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(dataBytes)]);
}

test('damaged files fail with CHECKPOINT_CORRUPT saying what is wrong', () => {
  const cases: Array<[Buffer, RegExp]> = [
    [Buffer.alloc(3), /shorter than the 8-byte header length/],
    [Buffer.from([255, 255, 255, 255, 0, 0, 0, 0, 1]), /header length \d+ exceeds/],
    [file(null, 0, '{"a": '), /not UTF-8 JSON/],
    [file([], 0), /not a JSON object/],
    [file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4), /outside the 4 data bytes/],
    [file({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /needs 12 bytes, its offsets give 8/],
    [file({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, 8), /"a" has dtype C64, which is not supported/],
    [file({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /malformed shape/],
    [file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /"b" overlaps/],
    [file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /bytes 0–4 of the data belong to no tensor/],
    [file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 8), /bytes 4–8 of the data belong to no tensor/],
    [file({ __metadata__: { a: 1 } }, 0), /__metadata__\.a is not a string/],
  ];
  for (const [buf, message] of cases) {
    assert.throws(() => parseSafetensors(buf, 'x.safetensors'), (e) => isAdvMoEError(e, 'CHECKPOINT_CORRUPT') && message.test(e.message) && e.message.includes('x.safetensors'), String(message));
  }
});
