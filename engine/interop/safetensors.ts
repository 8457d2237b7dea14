/**
 * safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length, a
 * JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the
 * tensors' little-endian bytes, offsets relative to the end of the header. As the reference implementation
 * does, the reader refuses overlapping tensors and bytes no tensor covers.
 */
import { writeFileAtomic } from '../runs/store';
import { AdvMoEError } from '../util/errors';
import { DTYPE_BYTES, decodeElements, encodeTensor, isHostTensor, numel, type HostDtype, type HostTensor } from './hostTensor';
import { readWholeFile } from './zip';

const CODES: Record<string, HostDtype> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const CODE_OF = Object.fromEntries(Object.entries(CODES).map(([k, v]) => [v, k])) as Record<HostDtype, string>;

/** The reference implementation's cap on the header (100 MB). */
const MAX_HEADER = 100_000_000;

export interface SafetensorsContent {
  /** Tensors in header order. */
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

export async function readSafetensors(file: string): Promise<SafetensorsContent> {
  return parseSafetensors(await readWholeFile(file), file);
}

export function parseSafetensors(buf: Buffer, file: string): SafetensorsContent {
  const bad = (what: string) => new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: corrupt safetensors file: ${what}`);
  if (buf.length < 8) throw bad(`${buf.length} bytes, shorter than the 8-byte header length`);
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(buf.length - 8)) throw bad(`header length ${n} exceeds the ${buf.length - 8} bytes after it`);
  if (n > BigInt(MAX_HEADER)) throw bad(`header length ${n} exceeds ${MAX_HEADER} bytes`);
  const headerEnd = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, headerEnd)));
  } catch (e) {
    throw bad(`header is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad('header is not a JSON object');
  const data = buf.subarray(headerEnd);
  const metadata: Record<string, string> = {};
  const spans: Array<[number, number, string]> = [];
  const tensors = new Map<string, HostTensor>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw bad('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw bad(`__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (entry === null || typeof entry !== 'object') throw bad(`tensor "${name}" is not an object`);
    const { dtype: code, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof code !== 'string') throw bad(`tensor "${name}" has no dtype`);
    const dtype = CODES[code];
    if (!dtype) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: tensor "${name}" has dtype ${code}, which is not supported (${Object.keys(CODES).join(', ')})`);
    const isInt = (d: unknown): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0;
    if (!Array.isArray(shape) || !shape.every(isInt)) throw bad(`tensor "${name}" has a malformed shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isInt) || offsets[0] > offsets[1] || offsets[1] > data.length) {
      throw bad(`tensor "${name}" has data_offsets ${JSON.stringify(offsets)} outside the ${data.length} data bytes`);
    }
    const count = numel(shape);
    if (offsets[1] - offsets[0] !== count * DTYPE_BYTES[dtype]) throw bad(`tensor "${name}" of shape [${shape.join(', ')}] ${code} needs ${count * DTYPE_BYTES[dtype]} bytes, its offsets give ${offsets[1] - offsets[0]}`);
    spans.push([offsets[0], offsets[1], name]);
    const bytes = data.subarray(offsets[0], offsets[1]);
    const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a: number, b: number) => a * b, 1));
    tensors.set(name, { dtype, shape: [...shape], data: decodeElements(bytes, dtype, shape, strides, 0) });
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let at = 0;
  for (const [begin, end, name] of spans) {
    if (begin < at) throw bad(`tensor "${name}" overlaps the tensor before it`);
    if (begin > at) throw bad(`bytes ${at}–${begin} of the data belong to no tensor`);
    at = end;
  }
  if (at !== data.length) throw bad(`bytes ${at}–${data.length} of the data belong to no tensor`);
  return { tensors, metadata };
}

/** Writes tensors (in the given order) and string metadata; the file is replaced atomically. */
export function writeSafetensors(file: string, tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata: Record<string, string> = {}): void {
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new AdvMoEError('INVALID_ARGUMENT', `safetensors metadata "${k}" must be a string`);
    header.__metadata__ = metadata;
  }
  const blobs: Buffer[] = [];
  let at = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new AdvMoEError('INVALID_ARGUMENT', 'a tensor may not be named __metadata__ in a safetensors file');
    if (!isHostTensor(t)) throw new AdvMoEError('INVALID_ARGUMENT', `"${name}" is not a tensor`);
    const bytes = encodeTensor(t, name);
    header[name] = { dtype: CODE_OF[t.dtype], shape: t.shape, data_offsets: [at, at + bytes.length] };
    blobs.push(bytes);
    at += bytes.length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad the header with spaces so that the data starts 8-byte aligned, as the reference writer does.
  const pad = (8 - (json.length % 8)) % 8;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileAtomic(file, Buffer.concat([len, json, ...blobs]));
}
