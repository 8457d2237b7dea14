/**
 * PyTorch checkpoints (`torch.save`'s zip format, torch ≥ 1.6): `<archive>/data.pkl` holds the pickled
 * object, with every tensor's storage as a persistent reference ('storage', <torch.XStorage>, key, location,
 * numel) whose raw little-endian bytes are the entry `<archive>/data/<key>`. The archive folder is named
 * after the file by torch.save but may be anything; it is taken from the first entry, as torch does.
 */
import * as path from 'node:path';
import { AdvMoEError } from '../util/errors';
import { DTYPE_BYTES, decodeElements, encodeTensor, isHostTensor, numel, type HostDtype, type HostTensor } from './hostTensor';
import { PyGlobal, unpickle, unpickleFrom, type PyValue } from './pickle';
import { readWholeFile, readZipEntries, writeZip } from './zip';

/** torch's legacy storage class names and the dtypes they hold. */
const STORAGE_DTYPES: Record<string, HostDtype> = {
  DoubleStorage: 'float64', FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool', UntypedStorage: 'uint8',
};
const DTYPE_STORAGES: Record<HostDtype, string> = {
  float64: 'DoubleStorage', float32: 'FloatStorage', float16: 'HalfStorage', bfloat16: 'BFloat16Storage', int64: 'LongStorage',
  int32: 'IntStorage', int16: 'ShortStorage', int8: 'CharStorage', uint8: 'ByteStorage', bool: 'BoolStorage',
};

/** The largest tensor the reader materialises; beyond it a view (stride 0 expand) would be a memory bomb. */
const MAX_ELEMENTS = 2 ** 28;

/** torch.save's pickle of a legacy (non-zip, torch < 1.6) file starts with this magic number as LONG1. */
const LEGACY_MAGIC = Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);

class Storage {
  constructor(
    readonly dtype: HostDtype,
    readonly bytes: Uint8Array,
    readonly numel: number,
    readonly key: string,
  ) {}
}

/** Reads a `torch.save` file into Python values (pickle.ts), tensors as HostTensor. Never runs its code. */
export async function readTorchCheckpoint(file: string): Promise<PyValue> {
  const buffer = await readWholeFile(file);
  return parseTorchCheckpoint(buffer, file);
}

export async function parseTorchCheckpoint(buffer: Buffer, file: string): Promise<PyValue> {
  if (buffer.subarray(0, LEGACY_MAGIC.length).equals(LEGACY_MAGIC)) return parseLegacyCheckpoint(buffer, file);
  if (buffer.length >= 2 && buffer[0] === 0x80) {
    throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: a bare pickle, not a torch.save zip archive (no storages to read)`);
  }
  if (buffer.length < 4 || buffer.readUInt32LE(0) !== 0x04034b50) {
    throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: not a PyTorch checkpoint (no zip signature at the start)`);
  }
  let archive: string | undefined;
  const entries = await readZipEntries(buffer, file, (name) => {
    archive ??= name.split('/')[0];
    const rest = name.slice(archive.length + 1);
    return name.startsWith(`${archive}/`) && (rest === 'data.pkl' || rest === 'byteorder' || rest.startsWith('data/'));
  });
  const pkl = entries.get(`${archive}/data.pkl`);
  if (!pkl) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: the zip archive has no ${archive ?? '<archive>'}/data.pkl, so it is not a torch.save checkpoint`);
  const order = entries.get(`${archive}/byteorder`)?.toString('latin1') ?? 'little';
  if (order !== 'little' && order !== 'big') throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: byteorder is "${order.slice(0, 20)}", expected little or big`);

  const loaded = new Map<string, Storage>();
  const persistentLoad = (pid: PyValue): Storage => {
    const { type, dtype, key, count } = storageRef(pid, file, 5);
    const seen = loaded.get(key);
    if (seen) {
      if (seen.dtype !== dtype) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: storage ${key} is referenced as both ${seen.dtype} and ${dtype}`);
      return seen;
    }
    const raw = entries.get(`${archive}/data/${key}`);
    if (!raw) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: storage ${archive}/data/${key} is missing from the archive`);
    // UntypedStorage counts bytes; typed storages count elements.
    const bytesNeeded = type.name === 'UntypedStorage' ? count : count * DTYPE_BYTES[dtype];
    if (raw.length !== bytesNeeded) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: storage data/${key} has ${raw.length} bytes, its reference says ${bytesNeeded} (${count} × ${dtype})`);
    const s = new Storage(dtype, order === 'big' ? swapped(raw, dtype) : raw, bytesNeeded / DTYPE_BYTES[dtype], key);
    loaded.set(key, s);
    return s;
  };
  return unpickle(pkl, { file, persistentLoad, globals: torchGlobals(file, false) });
}

/** A persistent id: ('storage', <torch.XStorage>, key, location, numel) (+ view metadata, None, in legacy files). */
function storageRef(pid: PyValue, file: string, length: 5 | 6): { type: PyGlobal; dtype: HostDtype; key: string; count: number } {
  if (!Array.isArray(pid) || pid.length !== length || pid[0] !== 'storage') throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: persistent id is not a ('storage', type, key, location, numel) tuple`);
  const [, type, key, location, count] = pid;
  if (!(type instanceof PyGlobal) || !(type.name in STORAGE_DTYPES)) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: storage ${String(key)} has no storage type`);
  if (typeof key !== 'string' || typeof location !== 'string' || typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
    throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: malformed storage reference (key, location or size)`);
  }
  if (length === 6 && pid[5] !== null) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: storage ${key} is a storage view (torch < 0.4), which is not supported`);
  return { type, dtype: STORAGE_DTYPES[type.name], key, count };
}

function swapped(raw: Uint8Array, dtype: HostDtype): Uint8Array {
  if (DTYPE_BYTES[dtype] === 1) return raw;
  const copy = Buffer.from(raw);
  if (DTYPE_BYTES[dtype] === 2) copy.swap16();
  else if (DTYPE_BYTES[dtype] === 4) copy.swap32();
  else copy.swap64();
  return copy;
}

/**
 * The legacy format (torch < 1.6, or _use_new_zipfile_serialization=False): pickles of the magic number, the
 * protocol version (1001) and sys_info, the object, the sorted storage keys, then per key an int64 element
 * count and the storage's bytes. The storages follow the object, so its pickle is read twice: once to learn
 * each storage's dtype (and where the pickle ends), then with the storages.
 */
function parseLegacyCheckpoint(buffer: Buffer, file: string): PyValue {
  const bad = (what: string) => new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: legacy PyTorch file: ${what}`);
  let at = 0;
  const next = (opts: Parameters<typeof unpickleFrom>[2]): PyValue => {
    const r = unpickleFrom(buffer, at, opts);
    at = r.end;
    return r.value;
  };
  next({ file }); // the magic number, checked by the caller
  if (next({ file }) !== 1001) throw bad('protocol version is not 1001');
  const sysInfo = next({ file });
  if (!(sysInfo instanceof Map) || sysInfo.get('little_endian') === false) throw bad('sys_info is missing or says big-endian, which is not supported');
  const objectAt = at;
  const dtypes = new Map<string, HostDtype>();
  next({
    file,
    persistentLoad: (pid) => {
      const { dtype, key } = storageRef(pid, file, 6);
      if (dtypes.has(key) && dtypes.get(key) !== dtype) throw bad(`storage ${key} is referenced as both ${dtypes.get(key)} and ${dtype}`);
      dtypes.set(key, dtype);
      return null;
    },
    globals: torchGlobals(file, true),
  });
  const keys = next({ file });
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw bad('the storage key list is not a list of strings');
  const storages = new Map<string, Storage>();
  for (const key of keys as string[]) {
    const dtype = dtypes.get(key) ?? 'uint8';
    if (at + 8 > buffer.length) throw bad(`storage ${key} is cut off`);
    const count = buffer.readBigInt64LE(at);
    const bytes = Number(count) * DTYPE_BYTES[dtype];
    if (count < 0n || !Number.isSafeInteger(bytes) || at + 8 + bytes > buffer.length) throw bad(`storage ${key} claims ${count} elements, more than the file holds`);
    storages.set(key, new Storage(dtype, buffer.subarray(at + 8, at + 8 + bytes), Number(count), key));
    at += 8 + bytes;
  }
  at = objectAt;
  return next({
    file,
    persistentLoad: (pid) => {
      const { key } = storageRef(pid, file, 6);
      const s = storages.get(key);
      if (!s) throw bad(`storage ${key} is not in the file's storage list`);
      return s;
    },
    globals: torchGlobals(file, false),
  });
}

/**
 * The torch globals a checkpoint may use besides pickle.ts's: tensor and parameter rebuilds (nothing is
 * decoded when `dryRun`) and the storage types, allowed as values only.
 */
function torchGlobals(file: string, dryRun: boolean): Record<string, ((args: unknown[]) => unknown) | null> {
  const rebuildTensor = (args: unknown[]): HostTensor | null => {
    if (dryRun) return null;
    const [storage, offset, size, stride] = args;
    if (!(storage instanceof Storage)) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: _rebuild_tensor_v2 without a storage`);
    const ints = (v: unknown): v is number[] => Array.isArray(v) && v.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0);
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || !ints(size) || !ints(stride) || size.length !== stride.length) {
      throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: tensor on storage ${storage.key} has a malformed offset, size or stride`);
    }
    const n = numel(size);
    if (n > MAX_ELEMENTS) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: tensor on storage ${storage.key} has ${n} elements, more than this reader holds (${MAX_ELEMENTS})`);
    if (n > 0) {
      const last = offset + size.reduce((a, d, i) => a + (d - 1) * stride[i], 0);
      if (last >= storage.numel) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: tensor of size [${size.join(', ')}] at offset ${offset} reads element ${last} of storage ${storage.key}, which has ${storage.numel}`);
    }
    return { dtype: storage.dtype, shape: [...size], data: decodeElements(storage.bytes, storage.dtype, size, stride, offset) };
  };
  const asTensor = (v: unknown, what: string): HostTensor | null => {
    if (dryRun) return null;
    if (!isHostTensor(v)) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: ${what} of something that is not a tensor`);
    return v;
  };

  const globals: Record<string, ((args: unknown[]) => unknown) | null> = {
    'torch._utils._rebuild_tensor_v2': rebuildTensor,
    'torch._utils._rebuild_tensor': rebuildTensor,
    // Parameters are tensors with requires_grad; the flag and hooks do not matter for reading weights.
    'torch._utils._rebuild_parameter': (args) => asTensor(args[0], '_rebuild_parameter'),
    'torch._utils._rebuild_parameter_with_state': (args) => asTensor(args[0], '_rebuild_parameter_with_state'),
    // Tensor subclasses: allowed only for plain Tensor and Parameter, rebuilt by an allowlisted function.
    'torch._tensor._rebuild_from_type_v2': (args) => {
      const [fn, type, inner] = args;
      if (!(type instanceof PyGlobal) || !(fn instanceof PyGlobal) || !fn.fn || !Array.isArray(inner)) throw new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: malformed _rebuild_from_type_v2`);
      return fn.fn(inner);
    },
    'torch.Tensor': null,
    'torch.nn.parameter.Parameter': null,
    'torch.storage.UntypedStorage': null,
  };
  for (const name of Object.keys(STORAGE_DTYPES)) {
    globals[`torch.${name}`] = null;
    globals[`torch.cuda.${name}`] = null;
  }
  return globals;
}

/** A float that must be pickled as a Python float even when it is whole (1.0, not 1). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** What writeTorchCheckpoint accepts: Python-like values; plain objects and Maps are dicts. */
export type TorchWritable =
  | null | boolean | number | bigint | string | PyFloat | HostTensor
  | TorchWritable[] | Map<string | number, TorchWritable> | { [key: string]: TorchWritable };

/**
 * Writes `tree` as a checkpoint that `torch.load(file, weights_only=True)` reads: protocol-2 pickle, one
 * storage per tensor (tensors sharing one `data` array share the storage), entries stored uncompressed.
 * Whole numbers are written as ints unless wrapped in PyFloat. The file is replaced atomically.
 */
export async function writeTorchCheckpoint(file: string, tree: TorchWritable): Promise<void> {
  const archive = path.parse(file).name.replace(/[^A-Za-z0-9_.-]/g, '_') || 'archive';
  // Keyed by the data array and dtype, so that tensors sharing one array (router copies) share a storage.
  const shared = new Map<HostTensor['data'], Map<HostDtype, string>>();
  const storages: Array<{ key: string; bytes: Buffer }> = [];
  const pickle = new PickleWriter((t, name) => {
    const byDtype = shared.get(t.data) ?? new Map<HostDtype, string>();
    shared.set(t.data, byDtype);
    let key = byDtype.get(t.dtype);
    if (key === undefined) {
      key = String(storages.length);
      storages.push({ key, bytes: encodeTensor(t, name) });
      byDtype.set(t.dtype, key);
    }
    return key;
  });
  pickle.write(tree);
  const entries: Array<[string, Buffer]> = [[`${archive}/data.pkl`, pickle.finish()], [`${archive}/byteorder`, Buffer.from('little')]];
  for (const s of storages) entries.push([`${archive}/data/${s.key}`, s.bytes]);
  entries.push([`${archive}/version`, Buffer.from('3\n')]);
  await writeZip(file, entries);
}

/** A protocol-2 pickler for TorchWritable values (no memo: every tensor's storage is referenced by key). */
class PickleWriter {
  private readonly parts: Buffer[] = [Buffer.from([0x80, 0x02])];
  private readonly open = new Set<object>();
  constructor(private readonly storageKey: (t: HostTensor, name: string) => string) {}

  finish(): Buffer {
    this.parts.push(Buffer.from('.'));
    return Buffer.concat(this.parts);
  }

  private op(...bytes: number[]): void {
    this.parts.push(Buffer.from(bytes));
  }

  private str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = 0x58; // BINUNICODE
    head.writeUInt32LE(b.length, 1);
    this.parts.push(head, b);
  }

  private global(module: string, name: string): void {
    this.parts.push(Buffer.from(`c${module}\n${name}\n`, 'latin1'));
  }

  private int(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0 && v < 256) return this.op(0x4b, v);
    if (typeof v === 'number' && v >= 0 && v < 65536) return this.op(0x4d, v & 0xff, v >> 8);
    if (typeof v === 'number' && v >= -(2 ** 31) && v < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(v, 1);
      return void this.parts.push(b);
    }
    // LONG1: little-endian two's complement, as short as it can be.
    let x = BigInt(v);
    const bytes: number[] = [];
    for (;;) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
      const sign = bytes[bytes.length - 1] & 0x80;
      if ((x === 0n && !sign) || (x === -1n && sign)) break;
    }
    this.op(0x8a, bytes.length, ...bytes);
  }

  private float(v: number): void {
    const b = Buffer.alloc(9);
    b[0] = 0x47; // BINFLOAT, big-endian
    b.writeDoubleBE(v, 1);
    this.parts.push(b);
  }

  private tuple(items: Array<() => void>): void {
    this.op(0x28); // MARK
    for (const f of items) f();
    this.op(0x74); // TUPLE
  }

  write(v: TorchWritable, name = ''): void {
    if (v === null || v === undefined) return this.op(0x4e);
    if (v === true) return this.op(0x88);
    if (v === false) return this.op(0x89);
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'number') return Number.isSafeInteger(v) && !Object.is(v, -0) ? this.int(v) : this.float(v);
    if (typeof v === 'string') return this.str(v);
    if (v instanceof PyFloat) return this.float(v.value);
    if (isHostTensor(v)) return this.tensor(v, name || 'tensor');
    if (typeof v !== 'object') throw new AdvMoEError('INVALID_ARGUMENT', `cannot write ${typeof v} at "${name}" to a torch checkpoint`);
    if (this.open.has(v)) throw new AdvMoEError('INVALID_ARGUMENT', `the value at "${name}" contains itself; a checkpoint must be a tree`);
    this.open.add(v);
    if (Array.isArray(v)) {
      this.op(0x5d); // EMPTY_LIST
      if (v.length) {
        this.op(0x28);
        v.forEach((x, i) => this.write(x, `${name}[${i}]`));
        this.op(0x65); // APPENDS
      }
    } else {
      const items: Array<[string | number, TorchWritable]> = v instanceof Map ? [...v.entries()] : Object.entries(v);
      this.op(0x7d); // EMPTY_DICT
      if (items.length) {
        this.op(0x28);
        for (const [k, x] of items) {
          this.write(k);
          this.write(x, name ? `${name}.${k}` : String(k));
        }
        this.op(0x75); // SETITEMS
      }
    }
    this.open.delete(v);
  }

  private tensor(t: HostTensor, name: string): void {
    const n = numel(t.shape);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || t.data.length !== n) {
      throw new AdvMoEError('INVALID_ARGUMENT', `tensor "${name}": shape [${t.shape.join(', ')}] does not match its ${t.data.length} values`);
    }
    const key = this.storageKey(t, name);
    const strides = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.tuple([
      () => {
        this.tuple([() => this.str('storage'), () => this.global('torch', DTYPE_STORAGES[t.dtype]), () => this.str(key), () => this.str('cpu'), () => this.int(t.data.length)]);
        this.op(0x51); // BINPERSID
      },
      () => this.int(0),
      () => this.tuple(t.shape.map((d) => () => this.int(d))),
      () => this.tuple(strides.map((s) => () => this.int(s))),
      () => this.op(0x89), // requires_grad False
      () => {
        this.global('collections', 'OrderedDict');
        this.op(0x29, 0x52); // EMPTY_TUPLE, REDUCE: no backward hooks
      },
    ]);
    this.op(0x52); // REDUCE
  }
}
