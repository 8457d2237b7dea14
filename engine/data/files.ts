/** File access shared by the readers: every failure becomes an AdvMoEError naming the file. */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { AdvMoEError, errorMessage } from '../util/errors';

const gunzipAsync = promisify(zlib.gunzip);

/** Reads a whole file; `.gz` files (or any file starting with the gzip magic) are inflated. Inflation
 * runs on libuv's thread pool, so the engine's RPC loop stays responsive while a 26 MB archive unpacks. */
export async function readMaybeGzip(file: string): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await fs.promises.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new AdvMoEError('DATA_NOT_FOUND', `${file}: file not found`);
    throw new AdvMoEError('DATA_NOT_FOUND', `${file}: cannot read (${errorMessage(e)})`);
  }
  const gz = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b;
  if (!gz) {
    if (file.endsWith('.gz')) {
      throw new AdvMoEError('DATA_CORRUPT', `${file}: not a gzip file (does not start with the gzip magic 1f 8b)`);
    }
    return raw;
  }
  try {
    return await gunzipAsync(raw);
  } catch (e) {
    throw new AdvMoEError('DATA_CORRUPT', `${file}: gzip data is corrupt or truncated (${errorMessage(e)})`);
  }
}

export function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

export function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
