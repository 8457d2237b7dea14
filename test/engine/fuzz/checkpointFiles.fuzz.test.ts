/**
 * Damaged checkpoint files from other tools: the torch.save fixtures, their pickles alone and safetensors,
 * with bytes flipped, cut, extended or spliced. The readers return a value or fail with CHECKPOINT_CORRUPT /
 * CHECKPOINT_UNSAFE naming the file; never another error, a hang, or a crash.
 */
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import * as yazl from 'yazl';
import { parseSafetensors, parseTorchCheckpoint, unpickle } from '../../../engine/interop';
import { isAdvMoEError } from '../../../engine/util/errors';
import { readZipEntries } from '../../../engine/interop/zip';
import { FIXTURES } from '../interop/describe';
import { append, applyEdits, type ByteEdit, cut, flip } from './byteEdits';
import { assertUserError, fuzzParams } from './settings';

const edit = (size: number): fc.Arbitrary<ByteEdit> =>
  fc.oneof(
    flip(size - 1),
    cut(size),
    append,
    fc.record({ kind: fc.constant('splice' as const), from: fc.nat(size - 1), to: fc.nat(size - 1), len: fc.integer({ min: 1, max: 16 }) }),
  );

const CODES = /CHECKPOINT_CORRUPT|CHECKPOINT_UNSAFE/;
function check(e: unknown, file: string, context: string): void {
  assertUserError(e, new RegExp(file.replace('.', '\\.')), context);
  if (!isAdvMoEError(e, 'CHECKPOINT_CORRUPT') && !isAdvMoEError(e, 'CHECKPOINT_UNSAFE')) throw new Error(`${context}: code is not ${CODES}: ${e}`);
}

const TORCH = ['state-dict.pth', 'reference.pth', 'views.pth', 'cuda-tagged.pth'].map((n) => [n, fs.readFileSync(path.join(FIXTURES, n))] as const);

const LEGACY = ['legacy.pth', fs.readFileSync(path.join(FIXTURES, 'legacy.pth'))] as const;

test('damaged torch.save files (zip and legacy) read or fail naming the file', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...TORCH, LEGACY), fc.array(edit(8000), { minLength: 1, maxLength: 3 }), async ([name, bytes], edits) => {
      try {
        await parseTorchCheckpoint(applyEdits(bytes, edits), name);
      } catch (e) {
        check(e, name, `${name} ${JSON.stringify(edits)}`);
      }
    }),
    fuzzParams(150),
  );
});

// The pickles inside, damaged and zipped again with their storages (so that the zip's CRCs do not catch the
// damage before the pickle, the storage references and the tensor rebuilds are read).
async function zipped(entries: Map<string, Buffer>, pickleName: string, pickle: Buffer): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, data] of entries) zip.addBuffer(name === pickleName ? pickle : data, name, { compress: false });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('torch.save files with damaged pickles read or fail naming the file', async () => {
  const unpacked = await Promise.all(TORCH.map(async ([name, bytes]) => [name, await readZipEntries(bytes, name)] as const));
  // Undamaged, the re-zipped files read: the property below starts from valid checkpoints.
  for (const [name, entries] of unpacked) {
    const pickleName = [...entries.keys()].find((k) => k.endsWith('/data.pkl'))!;
    await parseTorchCheckpoint(await zipped(entries, pickleName, entries.get(pickleName)!), name);
  }
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...unpacked), fc.array(edit(3000), { minLength: 1, maxLength: 4 }), async ([name, entries], edits) => {
      const pickleName = [...entries.keys()].find((k) => k.endsWith('/data.pkl'))!;
      const file = await zipped(entries, pickleName, applyEdits(entries.get(pickleName)!, edits));
      try {
        await parseTorchCheckpoint(file, name);
      } catch (e) {
        check(e, name, `${name} ${JSON.stringify(edits)}`);
      }
    }),
    fuzzParams(300),
  );
});

test('random bytes as a pickle read or fail naming the file', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        unpickle(bytes, { file: 'random.pkl' });
      } catch (e) {
        check(e, 'random.pkl', Buffer.from(bytes).toString('hex'));
      }
    }),
    fuzzParams(300),
  );
});

const SAFETENSORS = fs.readFileSync(path.join(FIXTURES, 'tensors.safetensors'));

test('damaged safetensors files read or fail naming the file', () => {
  fc.assert(
    fc.property(fc.array(edit(SAFETENSORS.length), { minLength: 1, maxLength: 3 }), (edits) => {
      try {
        parseSafetensors(applyEdits(SAFETENSORS, edits), 'fuzz.safetensors');
      } catch (e) {
        check(e, 'fuzz.safetensors', JSON.stringify(edits));
      }
    }),
    fuzzParams(200),
  );
});
