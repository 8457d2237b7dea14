/**
 * Zip archives through yauzl (read) and yazl (write), with damaged archives reported as CHECKPOINT_CORRUPT
 * naming the file. Entries are stored uncompressed when writing, as torch.save does.
 */
import * as fs from 'node:fs';
import * as yauzl from 'yauzl';
import * as yazl from 'yazl';
import { AdvMoEError, errorMessage } from '../util/errors';
import { writeFileAtomic } from '../runs/store';

/** Entry names and their bytes; `only` limits which entries are decompressed. */
export async function readZipEntries(buffer: Buffer, file: string, only?: (name: string) => boolean): Promise<Map<string, Buffer>> {
  const fail = (e: unknown): AdvMoEError => (e instanceof AdvMoEError ? e : new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: damaged zip archive: ${errorMessage(e)}`));
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromBufferPromise(buffer, { lazyEntries: true, validateEntrySizes: true, strictFileNames: false });
  } catch (e) {
    throw fail(e);
  }
  const out = new Map<string, Buffer>();
  try {
    for (;;) {
      const entry = await new Promise<yauzl.Entry | null>((resolve, reject) => {
        zip.once('entry', resolve);
        zip.once('end', () => resolve(null));
        zip.once('error', reject);
        zip.readEntry();
      });
      zip.removeAllListeners('entry').removeAllListeners('end').removeAllListeners('error');
      if (!entry) break;
      if (entry.fileName.endsWith('/') || (only && !only(entry.fileName))) continue;
      if (out.has(entry.fileName)) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: the archive has two entries named ${entry.fileName}`);
      // A deflated entry may claim any size: cap it so that a zip bomb cannot exhaust memory.
      if (entry.uncompressedSize > 2 ** 31 - 1 || (entry.compressionMethod !== 0 && entry.uncompressedSize > 1024 * Math.max(entry.compressedSize, 1))) {
        throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: entry ${entry.fileName} claims ${entry.uncompressedSize} bytes, too large to read`);
      }
      const stream = await zip.openReadStreamPromise(entry);
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      out.set(entry.fileName, Buffer.concat(chunks));
    }
  } catch (e) {
    throw fail(e);
  } finally {
    zip.close();
  }
  return out;
}

/** Writes `entries` (in order, uncompressed) as a zip at `file`, atomically. */
export async function writeZip(file: string, entries: Array<[string, Buffer]>): Promise<void> {
  const zip = new yazl.ZipFile();
  // A fixed time keeps the bytes reproducible for the same content.
  const mtime = new Date(Date.UTC(2020, 0, 1));
  for (const [name, data] of entries) zip.addBuffer(data, name, { compress: false, mtime });
  zip.end();
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', resolve);
    zip.outputStream.on('error', reject);
  });
  writeFileAtomic(file, Buffer.concat(chunks));
}

export async function readWholeFile(file: string): Promise<Buffer> {
  try {
    return await fs.promises.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: no such file`);
    if (code === 'EISDIR') throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: is a folder, not a checkpoint file`);
    throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: cannot read: ${errorMessage(e)}`);
  }
}
