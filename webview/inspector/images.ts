/**
 * Pixel work of the Inspector, without DOM: decoding the host's byte images, the amplified perturbation and
 * float images of a SampleInspection. The perturbation convention (one for the whole view, shown in captions
 * and written into exports): value = 0.5 + (adversarial − clean) · s with s = 0.5 / max|adversarial − clean|,
 * so grey is "unchanged" and the largest change reaches black or white. Differences are in [0,1] pixel units.
 */

export type Shape = [number, number, number];

/** An image as RGBA bytes for a canvas, plus the HWC values it came from (in [0,1]). */
export interface Picture {
  width: number;
  height: number;
  rgba: Uint8ClampedArray;
}

export interface Perturbation extends Picture {
  /** max |adv − clean| over every pixel and channel, in [0,1] units. */
  maxAbs: number;
  /** Amplification s = 0.5 / maxAbs (0 when nothing changed: all grey). */
  scale: number;
}

export function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** HWC values (bytes 0..255 or floats 0..1 with `unit`) → RGBA. */
export function hwcToPicture(values: ArrayLike<number>, shape: Shape, unit: 1 | 255): Picture {
  const [h, w, c] = shape;
  const rgba = new Uint8ClampedArray(h * w * 4);
  const k = 255 / unit;
  for (let p = 0; p < h * w; p++) {
    const r = Math.round(values[p * c] * k);
    rgba[p * 4] = r;
    rgba[p * 4 + 1] = c === 3 ? Math.round(values[p * c + 1] * k) : r;
    rgba[p * 4 + 2] = c === 3 ? Math.round(values[p * c + 2] * k) : r;
    rgba[p * 4 + 3] = 255;
  }
  return { width: w, height: h, rgba };
}

/**
 * The amplified perturbation of two HWC images given in the same unit (255 for bytes, 1 for floats).
 * Differences are taken in [0,1] units: d = (adv − clean) / unit.
 */
export function perturbation(clean: ArrayLike<number>, adv: ArrayLike<number>, shape: Shape, unit: 1 | 255): Perturbation {
  const [h, w, c] = shape;
  const n = h * w * c;
  let maxAbs = 0;
  for (let i = 0; i < n; i++) maxAbs = Math.max(maxAbs, Math.abs(adv[i] - clean[i]) / unit);
  const scale = maxAbs > 0 ? 0.5 / maxAbs : 0;
  const vals = new Float64Array(n);
  for (let i = 0; i < n; i++) vals[i] = 0.5 + ((adv[i] - clean[i]) / unit) * scale;
  const pic = hwcToPicture(vals, shape, 1);
  return { ...pic, maxAbs, scale };
}

export function formatScale(s: number): string {
  return s === 0 ? '×0 (no change)' : `×${s >= 100 ? s.toFixed(0) : s >= 10 ? s.toFixed(1) : s.toFixed(2)}`;
}
