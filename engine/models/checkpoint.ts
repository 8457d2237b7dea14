/**
 * Binary checkpoints: named float32/int32 tensors plus a JSON header, bit-exact on reload.
 *
 * Layout (all integers little-endian):
 *   0   8 bytes  magic "ADVMOECK"
 *   8   u32      format version (FORMAT_VERSION)
 *   12  u32      header length H in bytes
 *   16  32 bytes SHA-256 of the header bytes
 *   48  H bytes  header, UTF-8 JSON (CheckpointHeader)
 *   48+H         payload: the tensors' raw little-endian bytes, each at its `offset` (relative to the
 *                payload start, 8-byte aligned), `payloadBytes` long in all, SHA-256 in the header.
 * The file must end exactly at the payload's end. The header has its own hash (a flipped bit in a shape
 * or offset must not go unnoticed just because it still parses); the payload hash covers the values.
 *
 * Writes are atomic: the file is written to `<file>.tmp-<pid>`, fsynced, renamed over `<file>`, and the
 * directory fsynced, so a crash or a failed write leaves either the old checkpoint or the new one, never a
 * torn one; a failed write removes its temporary file.
 *
 * Naming: `modelTensors` keys a model's parameters by `Param.name` (which never contains '/'). Other
 * tensors stored beside them (optimizer slots, …) must have a '/' in their name (e.g.
 * `optimizer/expert/velocity/<param>`), so that `loadModelTensors` can tell "someone else's tensor" from
 * "a parameter this model lacks" (e.g. an MoE checkpoint loaded into a dense model of the same widths).
 */
import { createHash } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdvMoEError } from '../util/errors';
import type { Model } from './types';

export const FORMAT_VERSION = 1;
const MAGIC = Buffer.from('ADVMOECK', 'ascii');
const PREAMBLE_BYTES = 48;
/** Refuses headers larger than this: a corrupt length must not make us allocate gigabytes. */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;
const ALIGN = 8;
const LITTLE_ENDIAN = os.endianness() === 'LE';

export type CheckpointDtype = 'float32' | 'int32';

export interface TensorEntry {
  name: string;
  dtype: CheckpointDtype;
  shape: number[];
  /** Byte offset within the payload. */
  offset: number;
  byteLength: number;
}

export interface CheckpointHeader {
  formatVersion: number;
  /** When the file was written (ISO 8601); informational. */
  createdAt: string;
  /** The resolved experiment config (or any JSON the writer passes). */
  config: unknown;
  /** Caller's state: epoch, step, RNG state, optimizer slot names, … (JSON). */
  meta: unknown;
  tensors: TensorEntry[];
  payloadBytes: number;
  payloadSha256: string;
}

export interface CheckpointData {
  tensors: Record<string, tf.Tensor>;
  meta: unknown;
  config?: unknown;
}

export interface LoadedCheckpoint {
  tensors: Record<string, tf.Tensor>;
  meta: unknown;
  config: unknown;
  header: CheckpointHeader;
}

/** Writes a checkpoint atomically (temporary file + fsync + rename). */
export async function writeCheckpoint(file: string, data: CheckpointData): Promise<void> {
  // Validate everything before touching the disk.
  const names = Object.keys(data.tensors);
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const name of names) {
    const t = data.tensors[name];
    if (t.isDisposed) throw new AdvMoEError('INVALID_ARGUMENT', `checkpoint tensor "${name}" is disposed`);
    if (t.dtype !== 'float32' && t.dtype !== 'int32') {
      throw new AdvMoEError('INVALID_ARGUMENT', `checkpoint tensor "${name}" has dtype ${t.dtype}; only float32 and int32 are stored`);
    }
    const byteLength = t.size * 4;
    entries.push({ name, dtype: t.dtype, shape: [...t.shape], offset, byteLength });
    offset = align(offset + byteLength);
  }
  const payloadBytes = offset;

  // The header carries the payload's hash but precedes the payload: it is laid out first with a
  // placeholder hash of the same length (so its size is final), the payload is streamed behind it while
  // hashed (no second copy of a 150 MB model in memory), and the header is written last.
  const header: CheckpointHeader = {
    formatVersion: FORMAT_VERSION,
    createdAt: new Date().toISOString(),
    config: data.config ?? null,
    meta: data.meta ?? null,
    tensors: entries,
    payloadBytes,
    payloadSha256: '0'.repeat(64),
  };
  const headerLength = Buffer.byteLength(JSON.stringify(header), 'utf8');
  const payloadStart = PREAMBLE_BYTES + headerLength;

  const tmp = `${file}.tmp-${process.pid}`;
  let handle: fs.FileHandle | null = null;
  let created = false;
  try {
    // Not O_EXCL: a stale file of a crashed process with our pid (pid reuse in containers) is ours to replace.
    // O_NOFOLLOW: a link planted under the temporary name must not redirect the write (README "Runs on disk").
    handle = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (constants.O_NOFOLLOW ?? 0));
    created = true;
    const hash = createHash('sha256');
    let position = payloadStart;
    for (const e of entries) {
      const values = await data.tensors[e.name].data();
      const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
      const le = LITTLE_ENDIAN ? bytes : Buffer.from(bytes).swap32();
      const pad = Buffer.alloc(align(e.byteLength) - e.byteLength);
      hash.update(le).update(pad);
      await writeAll(handle, le, position);
      await writeAll(handle, pad, position + le.length);
      position += le.length + pad.length;
    }
    header.payloadSha256 = hash.digest('hex');
    const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
    if (headerBytes.length !== headerLength) throw new Error('checkpoint header changed size while writing');
    const preamble = Buffer.alloc(PREAMBLE_BYTES);
    MAGIC.copy(preamble, 0);
    preamble.writeUInt32LE(FORMAT_VERSION, 8);
    preamble.writeUInt32LE(headerLength, 12);
    createHash('sha256').update(headerBytes).digest().copy(preamble, 16);
    await writeAll(handle, Buffer.concat([preamble, headerBytes]), 0);
    await handle.sync();
    await handle.close();
    handle = null;
    await fs.rename(tmp, file);
  } catch (e) {
    if (handle) await handle.close().catch(() => undefined);
    // Only a file this call created: if open() itself failed the path may be something else (a directory).
    if (created) await fs.unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(path.dirname(file));
}

/** Reads and verifies a checkpoint. The caller owns (and disposes) the returned tensors. */
export async function readCheckpoint(file: string): Promise<LoadedCheckpoint> {
  let buf: Buffer;
  try {
    buf = await fs.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AdvMoEError('CHECKPOINT_CORRUPT', `cannot read checkpoint ${file}: ${code === 'ENOENT' ? 'the file is missing' : (code ?? (e as Error).message)}`, { file });
  }
  const corrupt = (problem: string): AdvMoEError =>
    new AdvMoEError('CHECKPOINT_CORRUPT', `checkpoint ${file} is corrupt: ${problem}`, { file, problem });
  if (buf.length < PREAMBLE_BYTES) throw corrupt(`file is ${buf.length} bytes, shorter than the ${PREAMBLE_BYTES}-byte preamble (truncated?)`);
  if (!buf.subarray(0, 8).equals(MAGIC)) throw corrupt('bad magic (not an AdvMoE checkpoint)');
  const version = buf.readUInt32LE(8);
  if (version !== FORMAT_VERSION) throw corrupt(`format version ${version}, this engine reads ${FORMAT_VERSION}`);
  const headerLength = buf.readUInt32LE(12);
  if (headerLength > MAX_HEADER_BYTES || PREAMBLE_BYTES + headerLength > buf.length) {
    throw corrupt(`header length ${headerLength} exceeds the file (${buf.length} bytes; truncated?)`);
  }
  const headerBytes = buf.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength);
  if (!createHash('sha256').update(headerBytes).digest().equals(buf.subarray(16, 48))) {
    throw corrupt('header checksum mismatch');
  }
  let header: CheckpointHeader;
  try {
    header = JSON.parse(headerBytes.toString('utf8')) as CheckpointHeader;
  } catch (e) {
    throw corrupt(`header is not valid JSON (${(e as Error).message})`);
  }
  validateHeader(header, corrupt);
  const payloadStart = PREAMBLE_BYTES + headerLength;
  const expected = payloadStart + header.payloadBytes;
  if (buf.length < expected) throw corrupt(`file is ${buf.length} bytes, the header promises ${expected} (truncated)`);
  if (buf.length > expected) throw corrupt(`${buf.length - expected} unexpected bytes after the payload`);
  const payload = buf.subarray(payloadStart);
  if (createHash('sha256').update(payload).digest('hex') !== header.payloadSha256) {
    throw corrupt('payload checksum mismatch');
  }

  const tensors: Record<string, tf.Tensor> = {};
  for (const e of header.tensors) {
    // Copy into a fresh, aligned buffer: typed arrays need 4-byte alignment and must not alias `buf`.
    const bytes = Buffer.from(payload.subarray(e.offset, e.offset + e.byteLength));
    if (!LITTLE_ENDIAN) bytes.swap32();
    const n = e.byteLength / 4;
    const values = e.dtype === 'float32' ? new Float32Array(bytes.buffer, bytes.byteOffset, n) : new Int32Array(bytes.buffer, bytes.byteOffset, n);
    tensors[e.name] = tf.tensor(values, e.shape, e.dtype);
  }
  return { tensors, meta: header.meta, config: header.config, header };
}

/** A model's parameters (BN statistics included) keyed by `Param.name`, for `writeCheckpoint`. */
export function modelTensors(model: Model): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const p of model.params) out[p.name] = p.variable;
  return out;
}

/**
 * Assigns checkpoint tensors to a model's variables. All-or-nothing: every parameter (but optional buffers,
 * which load as zeros when absent: checkpoints from before they existed) must be present with
 * the same shape and dtype, and every tensor without '/' in its name must be a parameter of the model;
 * otherwise nothing is assigned and CHECKPOINT_MISMATCH names the first offender.
 */
export function loadModelTensors(model: Model, tensors: Record<string, tf.Tensor>): void {
  const mismatch = (message: string, details: Record<string, unknown>): AdvMoEError =>
    new AdvMoEError('CHECKPOINT_MISMATCH', message, details);
  const known = new Set<string>();
  for (const p of model.params) {
    known.add(p.name);
    const t = tensors[p.name];
    if (!t && p.optional) continue;
    if (!t) throw mismatch(`checkpoint lacks parameter ${p.name} (model shape [${p.variable.shape.join(', ')}])`, { param: p.name });
    if (!sameShape(t.shape, p.variable.shape) || t.dtype !== p.variable.dtype) {
      throw mismatch(
        `parameter ${p.name}: checkpoint has ${t.dtype} [${t.shape.join(', ')}], model has ${p.variable.dtype} [${p.variable.shape.join(', ')}]`,
        { param: p.name, checkpointShape: t.shape, modelShape: p.variable.shape },
      );
    }
  }
  for (const name of Object.keys(tensors)) {
    if (!name.includes('/') && !known.has(name)) {
      throw mismatch(`checkpoint has parameter ${name} [${tensors[name].shape.join(', ')}] that the model lacks`, { param: name });
    }
  }
  for (const p of model.params) {
    if (tensors[p.name]) p.variable.assign(tensors[p.name]);
    else tf.tidy(() => p.variable.assign(tf.zerosLike(p.variable))); // an optional buffer a legacy checkpoint lacks
  }
}

function validateHeader(h: CheckpointHeader, corrupt: (problem: string) => AdvMoEError): void {
  if (typeof h !== 'object' || h === null) throw corrupt('header is not an object');
  if (h.formatVersion !== FORMAT_VERSION) throw corrupt(`header format version ${String(h.formatVersion)}`);
  if (!Number.isSafeInteger(h.payloadBytes) || h.payloadBytes < 0) throw corrupt('header has no valid payloadBytes');
  if (typeof h.payloadSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.payloadSha256)) throw corrupt('header has no valid payloadSha256');
  if (!Array.isArray(h.tensors)) throw corrupt('header has no tensor list');
  const seen = new Set<string>();
  for (const e of h.tensors) {
    const label = typeof e?.name === 'string' ? e.name : '?';
    if (typeof e?.name !== 'string' || seen.has(e.name)) throw corrupt(`tensor entry "${label}" has a missing or duplicate name`);
    seen.add(e.name);
    if (e.dtype !== 'float32' && e.dtype !== 'int32') throw corrupt(`tensor ${label} has unknown dtype ${String(e.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw corrupt(`tensor ${label} has an invalid shape`);
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (e.byteLength !== size * 4) throw corrupt(`tensor ${label}: byteLength ${e.byteLength} does not match shape [${e.shape.join(', ')}]`);
    if (!Number.isSafeInteger(e.offset) || e.offset < 0 || e.offset % ALIGN !== 0 || e.offset + e.byteLength > h.payloadBytes) {
      throw corrupt(`tensor ${label}: offset ${e.offset} + ${e.byteLength} bytes lies outside the ${h.payloadBytes}-byte payload`);
    }
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

async function writeAll(handle: fs.FileHandle, chunk: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

/** Makes the rename durable; best effort (some file systems refuse to open a directory for sync). */
async function syncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | null = null;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // A rename that is not yet durable is still atomic; nothing more to do.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
