/** Walking the Python values a checkpoint holds. */
import { isHostTensor, type HostTensor } from './hostTensor';
import type { PyValue } from './pickle';

/** The value at `keys` through nested dicts (Maps), or undefined where a key is missing or not a dict. */
export function dictGet(tree: PyValue | undefined, ...keys: string[]): PyValue | undefined {
  let v = tree;
  for (const k of keys) {
    if (!(v instanceof Map)) return undefined;
    v = v.get(k);
  }
  return v;
}

/**
 * Every tensor directly in a dict (a state dict), in order, keyed by name; undefined when `v` is not a dict
 * or holds something other than tensors under a string key.
 */
export function tensorsOf(v: PyValue | undefined): Map<string, HostTensor> | undefined {
  if (!(v instanceof Map)) return undefined;
  const out = new Map<string, HostTensor>();
  for (const [k, t] of v) {
    if (typeof k !== 'string' || !isHostTensor(t)) return undefined;
    out.set(k, t);
  }
  return out;
}
