/** Byte-level damage for the file fuzzers: the edits, their generators, and one function that applies them. */
import fc from 'fast-check';

export type ByteEdit =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'cut'; at: number }
  | { kind: 'append'; bytes: Uint8Array }
  /** Copy a run of bytes elsewhere: duplicates opcodes, headers and lengths. */
  | { kind: 'splice'; from: number; to: number; len: number }
  /** A big-endian header word set to some value. */
  | { kind: 'u32'; at: number; value: number };

export const flip = (maxAt: number): fc.Arbitrary<ByteEdit> => fc.record({ kind: fc.constant('flip' as const), at: fc.nat(maxAt), value: fc.nat(255) });
export const cut = (maxAt: number): fc.Arbitrary<ByteEdit> => fc.record({ kind: fc.constant('cut' as const), at: fc.nat(maxAt) });
export const append: fc.Arbitrary<ByteEdit> = fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 40 }) });

/** `base` with the edits applied in order (edits that fall outside the current bytes do nothing). */
export function applyEdits(base: Buffer, edits: readonly ByteEdit[]): Buffer {
  let b = Buffer.from(base);
  for (const e of edits) {
    if (e.kind === 'flip' && e.at < b.length) b[e.at] = e.value;
    if (e.kind === 'cut') b = b.subarray(0, Math.min(e.at, b.length));
    if (e.kind === 'append') b = Buffer.concat([b, e.bytes]);
    if (e.kind === 'splice' && e.from < b.length && e.to < b.length) b.set(b.subarray(e.from, Math.min(e.from + e.len, b.length)).subarray(0, b.length - e.to), e.to);
    if (e.kind === 'u32' && e.at + 4 <= b.length) b.writeUInt32BE(e.value, e.at);
  }
  return b;
}
