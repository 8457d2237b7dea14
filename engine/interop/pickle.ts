/**
 * A pickle reader that never executes anything from the file. It implements the opcodes that `torch.save`
 * state dicts use (protocols 0–5, minus the text STRING/UNICODE forms and the object-building INST/OBJ/EXT
 * opcodes) and resolves globals only from ALLOWED below, each replaced by a small JS function that builds
 * plain data. Any other global (`os.system`, `builtins.eval`, a model class…) is refused with
 * CHECKPOINT_UNSAFE naming it, before anything is called.
 *
 * Python values come out as: None → null, bool → boolean, int → number (bigint beyond 2^53), float → number,
 * str → string, bytes → Uint8Array, list and tuple → Array, dict and OrderedDict → Map (insertion order kept,
 * keys of any type), torch tensors and parameters → HostTensor, torch.Size → number[], numpy scalars → number.
 */
import { AdvMoEError } from '../util/errors';
import { halfToFloat, type HostTensor } from './hostTensor';

export type PyKey = string | number | bigint | boolean | null | PyValue[];
export type PyDict = Map<PyKey, PyValue>;
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyDict | HostTensor | PyGlobal;

/**
 * An allowlisted global. `fn` is its JS replacement for REDUCE/NEWOBJ; globals allowed only as values (torch
 * storage types, which name a persistent storage's dtype) have none. One left in the result is plain data.
 */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly fn?: (args: unknown[]) => unknown,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** What BINPERSID/PERSID hand to the caller: torch's ('storage', storage_type, key, location, numel) tuple. */
export type PersistentLoad = (pid: PyValue) => unknown;

export interface UnpickleOptions {
  /** Shown in every error message. */
  file: string;
  /** Resolves persistent ids (torch storages); without it BINPERSID is refused. */
  persistentLoad?: PersistentLoad;
  /**
   * Extra allowlisted globals (module.name → implementation, or null for a global allowed only as a value);
   * the torch reader adds `torch._utils._rebuild_tensor_v2` and the storage types, which need the zip.
   */
  globals?: Record<string, ((args: unknown[]) => unknown) | null>;
}

/** numpy.dtype(...) as built by a pickle; only what `numpy.core.multiarray.scalar` needs. */
class NumpyDtype {
  byteorder = '<';
  constructor(readonly code: string) {}
}

/** Globals every pickle may use, besides the caller's. Their JS versions only build data. */
const BUILTIN_GLOBALS: Record<string, (args: unknown[], file: string) => unknown> = {
  'collections.OrderedDict': (args, file) => {
    const m: PyDict = new Map();
    if (args.length > 0 && args[0] !== null) {
      if (!Array.isArray(args[0])) throw corrupt(file, 'OrderedDict() argument is not a list of pairs');
      for (const pair of args[0]) {
        if (!Array.isArray(pair) || pair.length !== 2) throw corrupt(file, 'OrderedDict() argument is not a list of pairs');
        m.set(pair[0] as PyKey, pair[1] as PyValue);
      }
    }
    return m;
  },
  'torch.Size': (args, file) => {
    const dims = args[0];
    if (!Array.isArray(dims) || !dims.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) throw corrupt(file, 'torch.Size() of something other than non-negative ints');
    return [...dims];
  },
  // Protocol 2 has no bytes opcode: Python 3 pickles bytes as _codecs.encode(str, 'latin1').
  '_codecs.encode': (args, file) => {
    const [text, encoding] = args;
    if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) throw corrupt(file, `_codecs.encode() called with other than (str, 'latin1')`);
    return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
  },
  'numpy.dtype': (args, file) => {
    if (typeof args[0] !== 'string') throw corrupt(file, 'numpy.dtype() of a non-string');
    return new NumpyDtype(args[0]);
  },
  'numpy.core.multiarray.scalar': (args, file) => numpyScalar(args, file),
  'numpy._core.multiarray.scalar': (args, file) => numpyScalar(args, file),
};

function numpyScalar(args: unknown[], file: string): number | bigint | boolean {
  const [dtype, raw] = args;
  if (!(dtype instanceof NumpyDtype) || !(raw instanceof Uint8Array)) throw corrupt(file, 'numpy scalar() without a dtype and bytes');
  const little = dtype.byteorder !== '>';
  const code = dtype.code.replace(/^[<>=|]/, '');
  const sizes: Record<string, number> = { f8: 8, f4: 4, f2: 2, i8: 8, i4: 4, i2: 2, i1: 1, u8: 8, u4: 4, u2: 2, u1: 1, b1: 1 };
  const size = sizes[code];
  if (size === undefined) throw new AdvMoEError('CHECKPOINT_UNSAFE', `${file}: numpy scalar of dtype "${dtype.code}" is not supported (only float, int, uint and bool)`);
  if (raw.length !== size) throw corrupt(file, `numpy scalar of dtype ${dtype.code} has ${raw.length} bytes, expected ${size}`);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (code) {
    case 'f8': return v.getFloat64(0, little);
    case 'f4': return v.getFloat32(0, little);
    case 'f2': return halfToFloat(v.getUint16(0, little));
    case 'i8': return narrow(v.getBigInt64(0, little));
    case 'u8': return narrow(v.getBigUint64(0, little));
    case 'i4': return v.getInt32(0, little);
    case 'u4': return v.getUint32(0, little);
    case 'i2': return v.getInt16(0, little);
    case 'u2': return v.getUint16(0, little);
    case 'i1': return v.getInt8(0);
    case 'u1': return v.getUint8(0);
    default: return v.getUint8(0) !== 0;
  }
}

function narrow(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function corrupt(file: string, what: string): AdvMoEError {
  return new AdvMoEError('CHECKPOINT_CORRUPT', `${file}: corrupt pickle: ${what}`);
}

/** Opcodes that exist but build arbitrary objects or need machinery a state dict never uses. */
const REFUSED_OPCODES: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x53: 'STRING', 0x56: 'UNICODE',
  0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

/**
 * Reads one pickle from `bytes`. Never calls anything but the allowlisted JS functions; errors are
 * CHECKPOINT_CORRUPT (malformed) or CHECKPOINT_UNSAFE (a global or opcode outside the allowlist).
 */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): PyValue {
  return unpickleFrom(bytes, 0, opts).value;
}

/** Reads the pickle that starts at `offset`; `end` is the byte after its STOP (files may hold several). */
export function unpickleFrom(bytes: Uint8Array, offset: number, opts: UnpickleOptions): { value: PyValue; end: number } {
  const { file } = opts;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = offset;

  const need = (n: number, what: string): void => {
    if (n < 0 || pos + n > bytes.length) throw corrupt(file, `${what} at byte ${pos} runs past the end (${bytes.length} bytes)`);
  };
  const u8 = (): number => {
    need(1, 'opcode argument');
    return bytes[pos++];
  };
  const u16 = (): number => {
    need(2, 'opcode argument');
    pos += 2;
    return view.getUint16(pos - 2, true);
  };
  const u32 = (): number => {
    need(4, 'opcode argument');
    pos += 4;
    return view.getUint32(pos - 4, true);
  };
  const u64 = (what: string): number => {
    need(8, what);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) throw corrupt(file, `${what} length ${v} at byte ${pos - 8} exceeds the file`);
    return Number(v);
  };
  const take = (n: number, what: string): Uint8Array => {
    need(n, what);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const line = (what: string): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw corrupt(file, `${what} at byte ${pos} has no end of line`);
    // Text arguments (numbers, memo indexes, global names) are short; long ones would be slow to parse.
    if (end - pos > 4096) throw corrupt(file, `${what} argument at byte ${pos} is longer than 4096 characters`);
    const s = Buffer.from(bytes.subarray(pos, end)).toString('latin1');
    pos = end + 1;
    return s;
  };
  const text = (b: Uint8Array): string => {
    try {
      return utf8.decode(b);
    } catch {
      throw corrupt(file, `string at byte ${pos - b.length} is not UTF-8`);
    }
  };
  const pop = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) throw corrupt(file, `stack underflow at byte ${pos - 1}`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) throw corrupt(file, `stack underflow at byte ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) throw corrupt(file, `no MARK before byte ${pos - 1}`);
    return stack.splice(m);
  };
  const memoGet = (i: number): unknown => {
    if (!memo.has(i)) throw corrupt(file, `memo entry ${i} read at byte ${pos} before it was written`);
    return memo.get(i);
  };
  const memoPut = (i: number): void => {
    memo.set(i, top());
  };
  const resolve = (module: string, name: string): PyGlobal => {
    const q = `${module}.${name}`;
    if (opts.globals && Object.prototype.hasOwnProperty.call(opts.globals, q)) return new PyGlobal(module, name, opts.globals[q] ?? undefined);
    if (Object.prototype.hasOwnProperty.call(BUILTIN_GLOBALS, q)) return new PyGlobal(module, name, (args) => BUILTIN_GLOBALS[q](args, file));
    throw new AdvMoEError(
      'CHECKPOINT_UNSAFE',
      `${file}: the pickle refers to ${q}, which is not on the allowlist of tensor and collection types; it was not run (a checkpoint that needs it may contain code)`,
      { global: q },
    );
  };
  const call = (f: unknown, args: unknown[], op: string): unknown => {
    if (!(f instanceof PyGlobal)) throw corrupt(file, `${op} at byte ${pos - 1} applied to something that is not an allowlisted global`);
    if (!f.fn) throw new AdvMoEError('CHECKPOINT_UNSAFE', `${file}: ${op} at byte ${pos - 1} calls ${f.qualified}, which is allowed only as a value`);
    return f.fn(args);
  };
  const asTuple = (a: unknown, op: string): unknown[] => {
    if (!Array.isArray(a)) throw corrupt(file, `${op} at byte ${pos - 1} without an argument tuple`);
    return a;
  };
  const setItems = (d: unknown, kv: unknown[]): void => {
    if (!(d instanceof Map)) throw corrupt(file, `SETITEM(S) at byte ${pos - 1} on something that is not a dict`);
    if (kv.length % 2) throw corrupt(file, `SETITEMS at byte ${pos - 1} with an odd number of items`);
    for (let i = 0; i < kv.length; i += 2) d.set(kv[i] as PyKey, kv[i + 1] as PyValue);
  };
  const appendItems = (l: unknown, items: unknown[]): void => {
    if (!Array.isArray(l)) throw corrupt(file, `APPEND(S) at byte ${pos - 1} on something that is not a list`);
    for (const x of items) l.push(x);
  };
  const int = (v: bigint): number | bigint => narrow(v);

  for (;;) {
    if (pos >= bytes.length) throw corrupt(file, `ends at byte ${pos} without STOP`);
    const op = bytes[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const p = u8();
        if (p > 5) throw corrupt(file, `pickle protocol ${p} is newer than 5`);
        break;
      }
      case 0x95: // FRAME: frames are only a buffering hint
        u64('FRAME');
        break;
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length) throw corrupt(file, `STOP at byte ${pos - 1} with ${stack.length} values on the stack`);
        return { value: stack[0] as PyValue, end: pos };
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(view.getInt32((u32(), pos - 4), true)); break; // BININT
      case 0x49: { // INT (text); I00/I01 are False/True in protocol 0
        const s = line('INT');
        if (s === '00' || s === '01') stack.push(s === '01');
        else if (/^[+-]?\d+$/.test(s)) stack.push(int(BigInt(s)));
        else throw corrupt(file, `INT "${s.slice(0, 20)}" is not a number`);
        break;
      }
      case 0x4c: { // LONG (text)
        const s = line('LONG').replace(/L$/, '');
        if (!/^[+-]?\d+$/.test(s)) throw corrupt(file, `LONG "${s.slice(0, 20)}" is not a number`);
        stack.push(int(BigInt(s)));
        break;
      }
      case 0x8a: case 0x8b: { // LONG1, LONG4: little-endian two's complement
        const n = op === 0x8a ? u8() : u32();
        // Ints this long never occur in checkpoints, and building them is quadratic.
        if (n > 4096) throw new AdvMoEError('CHECKPOINT_UNSAFE', `${file}: LONG4 of ${n} bytes at byte ${pos - 5} is larger than this reader accepts (4096)`);
        const b = take(n, 'LONG');
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(int(v));
        break;
      }
      case 0x47: { // BINFLOAT (big-endian)
        need(8, 'BINFLOAT');
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x46: { // FLOAT (text)
        const s = line('FLOAT');
        const v = Number(s);
        if (s.trim() === '' || (Number.isNaN(v) && !/^[+-]?nan$/i.test(s))) throw corrupt(file, `FLOAT "${s.slice(0, 20)}" is not a number`);
        stack.push(v);
        break;
      }
      case 0x58: stack.push(text(take(u32(), 'BINUNICODE'))); break;
      case 0x8c: stack.push(text(take(u8(), 'SHORT_BINUNICODE'))); break;
      case 0x8d: stack.push(text(take(u64('BINUNICODE8'), 'BINUNICODE8'))); break;
      // Python 2 str: bytes decoded as latin-1 (torch's own default for old pickles).
      case 0x54: stack.push(Buffer.from(take(u32(), 'BINSTRING')).toString('latin1')); break;
      case 0x55: stack.push(Buffer.from(take(u8(), 'SHORT_BINSTRING')).toString('latin1')); break;
      case 0x42: stack.push(Uint8Array.from(take(u32(), 'BINBYTES'))); break;
      case 0x43: stack.push(Uint8Array.from(take(u8(), 'SHORT_BINBYTES'))); break;
      case 0x8e: stack.push(Uint8Array.from(take(u64('BINBYTES8'), 'BINBYTES8'))); break;
      case 0x96: stack.push(Uint8Array.from(take(u64('BYTEARRAY8'), 'BYTEARRAY8'))); break;
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x8f: stack.push([]); break; // EMPTY_SET (as a list)
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x91: stack.push(popMark()); break; // FROZENSET (as a list)
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x64: { const kv = popMark(); const d = new Map(); setItems(d, kv); stack.push(d); break; } // DICT
      case 0x61: { const x = pop(); appendItems(top(), [x]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x90: { const items = popMark(); appendItems(top(), items); break; } // ADDITEMS (set as a list)
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x71: memoPut(u8()); break; // BINPUT
      case 0x72: memoPut(u32()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size); break; // MEMOIZE
      case 0x70: { // PUT (text)
        const s = line('PUT');
        if (!/^\d+$/.test(s)) throw corrupt(file, `PUT "${s.slice(0, 20)}" is not an index`);
        memoPut(Number(s));
        break;
      }
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
      case 0x67: { // GET (text)
        const s = line('GET');
        if (!/^\d+$/.test(s)) throw corrupt(file, `GET "${s.slice(0, 20)}" is not an index`);
        stack.push(memoGet(Number(s)));
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line('GLOBAL');
        const name = line('GLOBAL');
        stack.push(resolve(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw corrupt(file, `STACK_GLOBAL at byte ${pos - 1} with non-string names`);
        stack.push(resolve(module, name));
        break;
      }
      case 0x52: { // REDUCE
        const args = asTuple(pop(), 'REDUCE');
        stack.push(call(pop(), args, 'REDUCE'));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args); only allowlisted types, same as calling them
        const args = asTuple(pop(), 'NEWOBJ');
        stack.push(call(pop(), args, 'NEWOBJ'));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop();
        const args = asTuple(pop(), 'NEWOBJ_EX');
        if (!(kwargs instanceof Map) || kwargs.size) throw new AdvMoEError('CHECKPOINT_UNSAFE', `${file}: NEWOBJ_EX with keyword arguments at byte ${pos - 1} is not supported`);
        stack.push(call(pop(), args, 'NEWOBJ_EX'));
        break;
      }
      case 0x62: { // BUILD: set state on the object below
        const state = pop();
        build(top(), state, file, pos - 1);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) throw new AdvMoEError('CHECKPOINT_UNSAFE', `${file}: the pickle has a persistent reference (BINPERSID) outside a torch checkpoint`);
        stack.push(opts.persistentLoad(pid as PyValue));
        break;
      }
      case 0x50: { // PERSID (text)
        const pid = line('PERSID');
        if (!opts.persistentLoad) throw new AdvMoEError('CHECKPOINT_UNSAFE', `${file}: the pickle has a persistent reference (PERSID) outside a torch checkpoint`);
        stack.push(opts.persistentLoad(pid));
        break;
      }
      default: {
        const name = REFUSED_OPCODES[op];
        if (name) throw new AdvMoEError('CHECKPOINT_UNSAFE', `${file}: pickle opcode ${name} at byte ${pos - 1} is not supported by the safe reader (state dicts do not use it)`);
        throw corrupt(file, `unknown opcode 0x${op.toString(16).padStart(2, '0')} at byte ${pos - 1}`);
      }
    }
  }
}

/** BUILD on the values the allowlist creates: numpy dtypes take their byte order; dict attributes are dropped. */
function build(obj: unknown, state: unknown, file: string, at: number): void {
  if (obj instanceof NumpyDtype) {
    // numpy.dtype.__setstate__: (version, byteorder, subarray, names, fields, elsize, alignment, flags)
    if (Array.isArray(state) && typeof state[1] === 'string') obj.byteorder = state[1];
    return;
  }
  // OrderedDict.__reduce__ pickles instance attributes (state_dict()'s `_metadata`) as BUILD state.
  if (obj instanceof Map && (state === null || state instanceof Map)) return;
  throw corrupt(file, `BUILD at byte ${at} on a value that takes no state`);
}
