/**
 * Seeds derived from tuples such as (seed, epoch, batch). Every shuffle and augmentation draw in the data
 * pipeline comes from such a derived seed rather than from one long random stream, so the batches of epoch
 * e depend only on (seed, e): a run resumed at epoch e, batch b sees exactly what an uninterrupted run saw.
 */

/** murmur3's 32-bit finaliser: a bijection that spreads every input bit over the output. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit seed from a tuple of integers; order matters, (1,2) ≠ (2,1). */
export function deriveSeed(...parts: number[]): number {
  let h = 0x6a09e667;
  for (const p of parts) {
    if (!Number.isFinite(p)) throw new RangeError(`deriveSeed: part ${p} is not a finite number`);
    // Fold values beyond 32 bits in too, so seeds like 2**32 + 1 and 1 stay distinct.
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    h = fmix32((h ^ fmix32(lo + 0x9e3779b9)) + Math.imul(hi, 0x27d4eb2f));
  }
  return h;
}

/** Stream tags, so that e.g. the shuffle of epoch 3 and the augmentation of epoch 3 never share a stream. */
export const SeedTag = {
  subsetTrain: 0x5e71,
  subsetTest: 0x5e72,
  epochOrder: 0x0dde,
  augment: 0xa06e,
} as const;
