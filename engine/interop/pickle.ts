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
  const u = new Unpickler(bytes, offset, opts);
  for (;;) {
    if (u.pos >= bytes.length) throw corrupt(opts.file, `ends at byte ${u.pos} without STOP`);
    const op = bytes[u.pos++];
    if (op === STOP) {
      if (u.stack.length !== 1 || u.marks.length) throw corrupt(opts.file, `STOP at byte ${u.pos - 1} with ${u.stack.length} values on the stack`);
      return { value: u.stack[0] as PyValue, end: u.pos };
    }
    const handler = OPCODES.get(op);
    if (!handler) throw unsupportedOpcode(opts.file, op, u.pos - 1);
    handler(u, op);
  }
}

const STOP = 0x2e;

function unsupportedOpcode(file: string, op: number, at: number): AdvMoEError {
  const name = REFUSED_OPCODES[op];
  if (name) return new AdvMoEError('CHECKPOINT_UNSAFE', `${file}: pickle opcode ${name} at byte ${at} is not supported by the safe reader (state dicts do not use it)`);
  return corrupt(file, `unknown opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at}`);
}

/**
 * The state of one pickle being read (the stack, its marks, the memo, the read position) and the reads every
 * opcode shares: arguments, the stack with its underflow checks, the memo, allowlisted globals and calls.
 */
class Unpickler {
  readonly file: string;
  readonly view: DataView;
  readonly stack: unknown[] = [];
  readonly marks: number[] = [];
  readonly memo = new Map<number, unknown>();
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    readonly opts: UnpickleOptions,
  ) {
    this.file = opts.file;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The file's problem `what` at the opcode just read. */
  corrupt(what: string): AdvMoEError {
    return corrupt(this.file, what);
  }

  need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.bytes.length) throw this.corrupt(`${what} at byte ${this.pos} runs past the end (${this.bytes.length} bytes)`);
  }
  u8(): number {
    this.need(1, 'opcode argument');
    return this.bytes[this.pos++];
  }
  u16(): number {
    this.need(2, 'opcode argument');
    this.pos += 2;
    return this.view.getUint16(this.pos - 2, true);
  }
  u32(): number {
    this.need(4, 'opcode argument');
    this.pos += 4;
    return this.view.getUint32(this.pos - 4, true);
  }
  /** An 8-byte length, at most the file's size. */
  u64(what: string): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(this.bytes.length)) throw this.corrupt(`${what} length ${v} at byte ${this.pos - 8} exceeds the file`);
    return Number(v);
  }
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    this.pos += n;
    return this.bytes.subarray(this.pos - n, this.pos);
  }
  /** A text argument up to the end of its line. */
  line(what: string): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) throw this.corrupt(`${what} at byte ${this.pos} has no end of line`);
    // Text arguments (numbers, memo indexes, global names) are short; long ones would be slow to parse.
    if (end - this.pos > 4096) throw this.corrupt(`${what} argument at byte ${this.pos} is longer than 4096 characters`);
    const s = Buffer.from(this.bytes.subarray(this.pos, end)).toString('latin1');
    this.pos = end + 1;
    return s;
  }
  /** A text line holding a whole number (`kind`: what it counts, for the error). */
  indexLine(op: string, kind: string): number {
    const s = this.line(op);
    if (!/^\d+$/.test(s)) throw this.corrupt(`${op} "${s.slice(0, 20)}" is not ${kind}`);
    return Number(s);
  }
  text(b: Uint8Array): string {
    try {
      return this.utf8.decode(b);
    } catch {
      throw this.corrupt(`string at byte ${this.pos - b.length} is not UTF-8`);
    }
  }

  push(v: unknown): void {
    this.stack.push(v);
  }
  private checkTop(): void {
    const { stack, marks } = this;
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) throw this.corrupt(`stack underflow at byte ${this.pos - 1}`);
  }
  pop(): unknown {
    this.checkTop();
    return this.stack.pop();
  }
  top(): unknown {
    this.checkTop();
    return this.stack[this.stack.length - 1];
  }
  popMark(): unknown[] {
    const m = this.marks.pop();
    if (m === undefined) throw this.corrupt(`no MARK before byte ${this.pos - 1}`);
    return this.stack.splice(m);
  }

  memoGet(i: number): unknown {
    if (!this.memo.has(i)) throw this.corrupt(`memo entry ${i} read at byte ${this.pos} before it was written`);
    return this.memo.get(i);
  }
  memoPut(i: number): void {
    this.memo.set(i, this.top());
  }

  /** An allowlisted global (the caller's, then the built-in ones); any other is refused before anything runs. */
  resolve(module: string, name: string): PyGlobal {
    const q = `${module}.${name}`;
    const { globals } = this.opts;
    if (globals && Object.prototype.hasOwnProperty.call(globals, q)) return new PyGlobal(module, name, globals[q] ?? undefined);
    if (Object.prototype.hasOwnProperty.call(BUILTIN_GLOBALS, q)) return new PyGlobal(module, name, (args) => BUILTIN_GLOBALS[q](args, this.file));
    throw new AdvMoEError(
      'CHECKPOINT_UNSAFE',
      `${this.file}: the pickle refers to ${q}, which is not on the allowlist of tensor and collection types; it was not run (a checkpoint that needs it may contain code)`,
      { global: q },
    );
  }
  /** Pops an argument tuple and the callable below it, and pushes what the allowlisted JS version returns. */
  callWith(args: unknown, op: string): void {
    if (!Array.isArray(args)) throw this.corrupt(`${op} at byte ${this.pos - 1} without an argument tuple`);
    const f = this.pop();
    if (!(f instanceof PyGlobal)) throw this.corrupt(`${op} at byte ${this.pos - 1} applied to something that is not an allowlisted global`);
    if (!f.fn) throw new AdvMoEError('CHECKPOINT_UNSAFE', `${this.file}: ${op} at byte ${this.pos - 1} calls ${f.qualified}, which is allowed only as a value`);
    this.push(f.fn(args));
  }
  setItems(d: unknown, kv: unknown[]): void {
    if (!(d instanceof Map)) throw this.corrupt(`SETITEM(S) at byte ${this.pos - 1} on something that is not a dict`);
    if (kv.length % 2) throw this.corrupt(`SETITEMS at byte ${this.pos - 1} with an odd number of items`);
    for (let i = 0; i < kv.length; i += 2) d.set(kv[i] as PyKey, kv[i + 1] as PyValue);
  }
  appendItems(l: unknown, items: unknown[]): void {
    if (!Array.isArray(l)) throw this.corrupt(`APPEND(S) at byte ${this.pos - 1} on something that is not a list`);
    for (const x of items) l.push(x);
  }
  persistent(pid: PyValue, op: string): void {
    if (!this.opts.persistentLoad) throw new AdvMoEError('CHECKPOINT_UNSAFE', `${this.file}: the pickle has a persistent reference (${op}) outside a torch checkpoint`);
    this.push(this.opts.persistentLoad(pid));
  }
}

/** What an opcode does to the unpickler (`op` is the opcode, for handlers shared by several). */
type OpcodeHandler = (u: Unpickler, op: number) => void;

/** Protocol, framing and stack manipulation. */
const CONTROL: [number, OpcodeHandler][] = [
  [0x80, (u) => { // PROTO
    const p = u.u8();
    if (p > 5) throw u.corrupt(`pickle protocol ${p} is newer than 5`);
  }],
  [0x95, (u) => void u.u64('FRAME')], // FRAME: frames are only a buffering hint
  [0x28, (u) => void u.marks.push(u.stack.length)], // MARK
  [0x30, (u) => void u.pop()], // POP
  [0x31, (u) => void u.popMark()], // POP_MARK
  [0x32, (u) => u.push(u.top())], // DUP
];

/** None, booleans, ints and floats. */
const NUMBERS: [number, OpcodeHandler][] = [
  [0x4e, (u) => u.push(null)], // NONE
  [0x88, (u) => u.push(true)], // NEWTRUE
  [0x89, (u) => u.push(false)], // NEWFALSE
  [0x4b, (u) => u.push(u.u8())], // BININT1
  [0x4d, (u) => u.push(u.u16())], // BININT2
  [0x4a, (u) => u.push(u.view.getInt32((u.u32(), u.pos - 4), true))], // BININT
  [0x49, (u) => { // INT (text); I00/I01 are False/True in protocol 0
    const s = u.line('INT');
    if (s === '00' || s === '01') u.push(s === '01');
    else if (/^[+-]?\d+$/.test(s)) u.push(narrow(BigInt(s)));
    else throw u.corrupt(`INT "${s.slice(0, 20)}" is not a number`);
  }],
  [0x4c, (u) => { // LONG (text)
    const s = u.line('LONG').replace(/L$/, '');
    if (!/^[+-]?\d+$/.test(s)) throw u.corrupt(`LONG "${s.slice(0, 20)}" is not a number`);
    u.push(narrow(BigInt(s)));
  }],
  [0x8a, longBytes], // LONG1
  [0x8b, longBytes], // LONG4
  [0x47, (u) => { // BINFLOAT (big-endian)
    u.need(8, 'BINFLOAT');
    u.push(u.view.getFloat64(u.pos, false));
    u.pos += 8;
  }],
  [0x46, (u) => { // FLOAT (text)
    const s = u.line('FLOAT');
    const v = Number(s);
    if (s.trim() === '' || (Number.isNaN(v) && !/^[+-]?nan$/i.test(s))) throw u.corrupt(`FLOAT "${s.slice(0, 20)}" is not a number`);
    u.push(v);
  }],
];

/** LONG1, LONG4: little-endian two's complement. */
function longBytes(u: Unpickler, op: number): void {
  const n = op === 0x8a ? u.u8() : u.u32();
  // Ints this long never occur in checkpoints, and building them is quadratic.
  if (n > 4096) throw new AdvMoEError('CHECKPOINT_UNSAFE', `${u.file}: LONG4 of ${n} bytes at byte ${u.pos - 5} is larger than this reader accepts (4096)`);
  const b = u.take(n, 'LONG');
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
  u.push(narrow(v));
}

/** Strings (UTF-8; Python 2 str as latin-1, torch's own default for old pickles) and bytes. */
const STRINGS: [number, OpcodeHandler][] = [
  [0x58, (u) => u.push(u.text(u.take(u.u32(), 'BINUNICODE')))],
  [0x8c, (u) => u.push(u.text(u.take(u.u8(), 'SHORT_BINUNICODE')))],
  [0x8d, (u) => u.push(u.text(u.take(u.u64('BINUNICODE8'), 'BINUNICODE8')))],
  [0x54, (u) => u.push(Buffer.from(u.take(u.u32(), 'BINSTRING')).toString('latin1'))],
  [0x55, (u) => u.push(Buffer.from(u.take(u.u8(), 'SHORT_BINSTRING')).toString('latin1'))],
  [0x42, (u) => u.push(Uint8Array.from(u.take(u.u32(), 'BINBYTES')))],
  [0x43, (u) => u.push(Uint8Array.from(u.take(u.u8(), 'SHORT_BINBYTES')))],
  [0x8e, (u) => u.push(Uint8Array.from(u.take(u.u64('BINBYTES8'), 'BINBYTES8')))],
  [0x96, (u) => u.push(Uint8Array.from(u.take(u.u64('BYTEARRAY8'), 'BYTEARRAY8')))],
];

/** Lists, tuples, dicts and sets (tuples and sets as lists). */
const CONTAINERS: [number, OpcodeHandler][] = [
  [0x5d, (u) => u.push([])], // EMPTY_LIST
  [0x29, (u) => u.push([])], // EMPTY_TUPLE
  [0x7d, (u) => u.push(new Map())], // EMPTY_DICT
  [0x8f, (u) => u.push([])], // EMPTY_SET
  [0x6c, (u) => u.push(u.popMark())], // LIST
  [0x74, (u) => u.push(u.popMark())], // TUPLE
  [0x91, (u) => u.push(u.popMark())], // FROZENSET
  [0x85, (u) => u.push([u.pop()])], // TUPLE1
  [0x86, (u) => { // TUPLE2
    const b = u.pop();
    u.push([u.pop(), b]);
  }],
  [0x87, (u) => { // TUPLE3
    const c = u.pop();
    const b = u.pop();
    u.push([u.pop(), b, c]);
  }],
  [0x64, (u) => { // DICT
    const kv = u.popMark();
    const d = new Map();
    u.setItems(d, kv);
    u.push(d);
  }],
  [0x61, (u) => { // APPEND
    const x = u.pop();
    u.appendItems(u.top(), [x]);
  }],
  [0x65, (u) => { // APPENDS
    const items = u.popMark();
    u.appendItems(u.top(), items);
  }],
  [0x90, (u) => { // ADDITEMS (set as a list)
    const items = u.popMark();
    u.appendItems(u.top(), items);
  }],
  [0x73, (u) => { // SETITEM
    const v = u.pop();
    const k = u.pop();
    u.setItems(u.top(), [k, v]);
  }],
  [0x75, (u) => { // SETITEMS
    const kv = u.popMark();
    u.setItems(u.top(), kv);
  }],
];

/** The memo: values stored by index and fetched again. */
const MEMO: [number, OpcodeHandler][] = [
  [0x71, (u) => u.memoPut(u.u8())], // BINPUT
  [0x72, (u) => u.memoPut(u.u32())], // LONG_BINPUT
  [0x94, (u) => u.memoPut(u.memo.size)], // MEMOIZE
  [0x70, (u) => u.memoPut(u.indexLine('PUT', 'an index'))], // PUT (text)
  [0x68, (u) => u.push(u.memoGet(u.u8()))], // BINGET
  [0x6a, (u) => u.push(u.memoGet(u.u32()))], // LONG_BINGET
  [0x67, (u) => u.push(u.memoGet(u.indexLine('GET', 'an index')))], // GET (text)
];

/** Globals (allowlisted only), calls of their JS versions, BUILD, and torch's persistent storage ids. */
const OBJECTS: [number, OpcodeHandler][] = [
  [0x63, (u) => { // GLOBAL "module\nname\n"
    const module = u.line('GLOBAL');
    const name = u.line('GLOBAL');
    u.push(u.resolve(module, name));
  }],
  [0x93, (u) => { // STACK_GLOBAL
    const name = u.pop();
    const module = u.pop();
    if (typeof module !== 'string' || typeof name !== 'string') throw u.corrupt(`STACK_GLOBAL at byte ${u.pos - 1} with non-string names`);
    u.push(u.resolve(module, name));
  }],
  [0x52, (u) => u.callWith(u.pop(), 'REDUCE')], // REDUCE
  [0x81, (u) => u.callWith(u.pop(), 'NEWOBJ')], // NEWOBJ: cls.__new__(cls, *args); only allowlisted types, same as calling them
  [0x92, (u) => { // NEWOBJ_EX
    const kwargs = u.pop();
    const args = u.pop();
    if (!Array.isArray(args)) throw u.corrupt(`NEWOBJ_EX at byte ${u.pos - 1} without an argument tuple`);
    if (!(kwargs instanceof Map) || kwargs.size) throw new AdvMoEError('CHECKPOINT_UNSAFE', `${u.file}: NEWOBJ_EX with keyword arguments at byte ${u.pos - 1} is not supported`);
    u.callWith(args, 'NEWOBJ_EX');
  }],
  [0x62, (u) => { // BUILD: set state on the object below
    const state = u.pop();
    build(u.top(), state, u.file, u.pos - 1);
  }],
  [0x51, (u) => u.persistent(u.pop() as PyValue, 'BINPERSID')], // BINPERSID
  [0x50, (u) => u.persistent(u.line('PERSID'), 'PERSID')], // PERSID (text)
];

/** Every opcode this reader implements, by family. */
const OPCODES = new Map<number, OpcodeHandler>([...CONTROL, ...NUMBERS, ...STRINGS, ...CONTAINERS, ...MEMO, ...OBJECTS]);

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
