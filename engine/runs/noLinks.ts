/**
 * Run folders hold no symbolic links (README "Runs on disk"): a link inside one would let resume or eval
 * write, or an error message echo, outside the run folder. Checks use lstat; opens add O_NOFOLLOW where the
 * platform has it, so a link planted between the check and the open fails too (ELOOP).
 */
import * as fs from 'node:fs';
import { AdvMoEError } from '../util/errors';

const NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

function linkError(p: string): AdvMoEError {
  return new AdvMoEError('DATA_CORRUPT', `${p} is a symbolic link; the engine does not follow links inside a run folder (replace it with the real file or folder)`);
}

/** Throws when `p` is a link; a missing path is fine (callers report that in their own words). */
export function refuseLink(p: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return;
  }
  if (st.isSymbolicLink()) throw linkError(p);
}

/**
 * A file-system error on a run part as a user-facing error naming the path (a folder where a file belongs,
 * say). ENOENT stays as it is: callers say in their own words what is missing.
 */
export function runPartError(e: unknown, p: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ELOOP') return linkError(p);
  if (!code || code === 'ENOENT') return e;
  const why = code === 'EISDIR' ? 'a folder where a file belongs' : code === 'ENOTDIR' || code === 'EEXIST' ? 'a file where a folder belongs' : code;
  return new AdvMoEError('DATA_CORRUPT', `cannot use ${p}: ${why} (${code})`);
}

function open(p: string, flags: number, mode?: number): number {
  try {
    return fs.openSync(p, flags | NOFOLLOW, mode);
  } catch (e) {
    throw runPartError(e, p);
  }
}

/** Reads a file that must not be a link. */
export function readNoFollow(p: string): Buffer {
  refuseLink(p);
  const fd = open(p, fs.constants.O_RDONLY);
  try {
    return fs.readFileSync(fd);
  } catch (e) {
    throw runPartError(e, p);
  } finally {
    fs.closeSync(fd);
  }
}

/** Opens for writing (created, truncated) without following a link. */
export function openForWrite(p: string): number {
  return open(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o666);
}

/** Opens for appending without following a link. */
export function openForAppend(p: string): number {
  return open(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o666);
}

/** Opens for reading and writing (must exist) without following a link. */
export function openForUpdate(p: string): number {
  return open(p, fs.constants.O_RDWR);
}
