/** Builders of small dataset files for the data tests. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AdvMoEError } from '../../../engine/util/errors';

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `advmoe-data-${tag}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Runs `fn` in a fresh temporary folder, removed afterwards whatever happens. */
export async function withTempDir(tag: string, fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = tempDir(tag);
  try {
    await fn(dir);
  } finally {
    removeDir(dir);
  }
}

/** Pixel value of CIFAR test record r, channel ch, position p: distinct per channel so that a planar/
 * interleaved mix-up shows. */
export function cifarPixel(r: number, ch: number, p: number): number {
  return (r * 7 + ch * 80 + p) % 256;
}

/** A CIFAR binary batch: per record label byte(s) then planar R, G, B planes. */
export function cifarBatch(labels: number[], coarse?: number[]): Buffer {
  const lb = coarse ? 2 : 1;
  const rec = lb + 3072;
  const buf = Buffer.alloc(labels.length * rec);
  labels.forEach((l, r) => {
    const o = r * rec;
    if (coarse) buf[o] = coarse[r];
    buf[o + lb - 1] = l;
    for (let ch = 0; ch < 3; ch++) for (let p = 0; p < 1024; p++) buf[o + lb + ch * 1024 + p] = cifarPixel(r, ch, p);
  });
  return buf;
}

/** An IDX file of unsigned bytes. */
export function idxFile(dims: number[], data: Uint8Array | number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data as Uint8Array)]);
}

/** A ustar archive of regular files (enough to test the reader; long names use the prefix field). */
export function tarArchive(files: { name: string; data: Uint8Array | string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const f of files) {
    const data = typeof f.data === 'string' ? Buffer.from(f.data) : Buffer.from(f.data);
    const h = Buffer.alloc(512);
    let name = f.name;
    let prefix = '';
    if (Buffer.byteLength(name) > 100) {
      const cut = name.lastIndexOf('/', name.length - 1);
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
    }
    h.write(name, 0, 100);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    h.write(prefix, 345, 155);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Runs `fn` and returns the AdvMoEError it throws (failing if it throws nothing or something else). */
export async function caught(fn: () => unknown): Promise<AdvMoEError> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof AdvMoEError) return e;
    throw new Error(`expected an AdvMoEError, got ${String(e)}`);
  }
  throw new Error('expected an AdvMoEError, nothing was thrown');
}
