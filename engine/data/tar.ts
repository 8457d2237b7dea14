/**
 * A minimal tar reader (POSIX ustar, with GNU long names and pax `path`/`size` records), enough for the
 * dataset archives; it avoids a native or third-party dependency. Format: 512-byte header blocks, each
 * followed by the entry's data padded to 512 bytes; two zero blocks end the archive.
 */
import { AdvMoEError } from '../util/errors';

export interface TarEntry {
  /** Path inside the archive, '/'-separated. */
  name: string;
  type: 'file' | 'directory' | 'other';
  /** File contents (a view into the archive buffer). Empty for non-files. */
  data: Uint8Array;
}

const BLOCK = 512;

function cstring(buf: Uint8Array, start: number, len: number): string {
  let end = start;
  while (end < start + len && buf[end] !== 0) end++;
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('utf8');
}

function octal(buf: Uint8Array, start: number, len: number, what: string, where: string): number {
  // GNU base-256 encoding for values that do not fit the octal field (files ≥ 8 GiB).
  if (buf[start] & 0x80) {
    let v = buf[start] & 0x7f;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + buf[i];
    return v;
  }
  const s = cstring(buf, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new AdvMoEError('DATA_CORRUPT', `${where}: bad ${what} field ${JSON.stringify(s)} (expected octal digits)`);
  return parseInt(s, 8);
}

/** Parses pax extended header records ("<len> <key>=<value>\n"). */
function parsePax(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(' ', i);
    if (sp < 0) break;
    const len = parseInt(text.slice(i, sp), 10);
    if (!(len > 0)) break;
    const rec = text.slice(sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** Lists every entry of an (uncompressed) tar archive. `label` names the archive in error messages. */
export function readTar(buf: Uint8Array, label: string): TarEntry[] {
  const entries: TarEntry[] = [];
  let off = 0;
  let longName: string | null = null;
  let pax: Record<string, string> = {};
  for (;;) {
    if (off + BLOCK > buf.length) {
      throw new AdvMoEError('DATA_CORRUPT', `${label}: truncated tar archive: header at byte ${off} needs ${BLOCK} bytes, only ${buf.length - off} left`);
    }
    const header = buf.subarray(off, off + BLOCK);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    const where = `${label}: tar header at byte ${off}`;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
    const stored = octal(header, 148, 8, 'checksum', where);
    if (stored !== sum) throw new AdvMoEError('DATA_CORRUPT', `${where}: checksum ${stored} does not match computed ${sum}; not a tar archive or corrupt`);
    const typeflag = String.fromCharCode(header[156] || 0x30);
    let size = octal(header, 124, 12, 'size', where);
    if (pax.size !== undefined) size = Number(pax.size);
    const dataStart = off + BLOCK;
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (dataStart + padded > buf.length) {
      throw new AdvMoEError(
        'DATA_CORRUPT',
        `${label}: truncated tar archive: entry at byte ${off} needs ${size} bytes of data (${padded} with padding), only ${buf.length - dataStart} left`,
      );
    }
    const data = buf.subarray(dataStart, dataStart + size);
    off = dataStart + padded;
    if (typeflag === 'L') {
      longName = cstring(data, 0, data.length);
      continue;
    }
    if (typeflag === 'x') {
      pax = parsePax(data);
      continue;
    }
    if (typeflag === 'g') continue; // global pax header: nothing we use
    let name = cstring(header, 0, 100);
    const magic = cstring(header, 257, 6);
    if (magic.startsWith('ustar')) {
      const prefix = cstring(header, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    if (longName !== null) name = longName;
    if (pax.path !== undefined) name = pax.path;
    longName = null;
    pax = {};
    const type = typeflag === '0' || typeflag === '7' ? 'file' : typeflag === '5' ? 'directory' : 'other';
    entries.push({ name, type, data: type === 'file' ? data : new Uint8Array(0) });
  }
  return entries;
}
