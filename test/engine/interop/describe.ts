/**
 * Describes what the interop readers return in the JSON form scripts/make-interop-fixtures.py writes to
 * expected.json, so that fixtures are compared value by value with what PyTorch saved.
 */
import * as path from 'node:path';
import { isHostTensor, PyGlobal, type PyValue } from '../../../engine/interop';

export const FIXTURES = path.join(__dirname, '..', '..', '..', '..', 'test', 'engine', 'interop', 'fixtures');

function num(x: number | bigint): number | string {
  if (typeof x === 'bigint') return x >= -(2n ** 53n) && x <= 2n ** 53n ? Number(x) : String(x);
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  return x;
}

export function describe(v: PyValue): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return { num: num(v) };
  if (isHostTensor(v)) return { tensor: v.dtype, shape: v.shape, values: Array.from(v.data as ArrayLike<number | bigint>, num) };
  if (Array.isArray(v)) return { list: v.map(describe) };
  if (v instanceof Map) return { dict: [...v.entries()].map(([k, x]) => [describe(k as PyValue), describe(x)]) };
  if (v instanceof PyGlobal) return { global: v.qualified };
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('hex') };
  throw new Error(`cannot describe ${String(v)}`);
}
