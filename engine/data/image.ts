/** PNG/JPEG decoding to RGB and resizing, in plain JS (pngjs, jpeg-js) so no native module is needed. */
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { AdvMoEError, errorMessage } from '../util/errors';

export interface RgbImage {
  width: number;
  height: number;
  /** height × width × 3, interleaved RGB. */
  data: Uint8Array;
}

/** Decodes a PNG or JPEG (chosen by the file's magic bytes, not its name). Grayscale, palette and RGBA
 * images come back as RGB; alpha is dropped (as PIL's convert('RGB') does). `file` is only for messages. */
export function decodeImage(buf: Uint8Array, file: string): RgbImage {
  let rgba: { width: number; height: number; data: Uint8Array };
  const isPng = buf.length >= 8 && buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47;
  const isJpeg = buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff;
  try {
    if (isPng) {
      // pngjs always yields 8-bit RGBA (it expands gray/palette and rescales 16-bit).
      const png = PNG.sync.read(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
      rgba = { width: png.width, height: png.height, data: png.data };
    } else if (isJpeg) {
      // formatAsRGBA makes grayscale and CMYK JPEGs come back as RGBA too. The limits guard against a
      // corrupt header claiming a gigantic image.
      rgba = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 100, maxMemoryUsageInMB: 1024 });
    } else {
      const head = Array.from(buf.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
      throw new AdvMoEError('DATA_CORRUPT', `${file}: not a PNG or JPEG image (starts with bytes ${head || '<empty file>'})`);
    }
  } catch (e) {
    if (e instanceof AdvMoEError) throw e;
    throw new AdvMoEError('DATA_CORRUPT', `${file}: cannot decode ${isPng ? 'PNG' : 'JPEG'} image (${errorMessage(e)})`);
  }
  const { width, height } = rgba;
  if (!(width > 0 && height > 0) || rgba.data.length < width * height * 4) {
    throw new AdvMoEError('DATA_CORRUPT', `${file}: decoded image has invalid size ${width}×${height}`);
  }
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height; i++, j += 4) {
    data[i * 3] = rgba.data[j];
    data[i * 3 + 1] = rgba.data[j + 1];
    data[i * 3 + 2] = rgba.data[j + 2];
  }
  return { width, height, data };
}

/** For each output coordinate along one axis: the input coordinates it reads and their weights. */
interface AxisTaps {
  start: Int32Array; // first tap index into idx/w per output coordinate
  idx: Int32Array;
  w: Float32Array;
}

/**
 * Downscaling uses area averaging (each output pixel is the mean of the input area it covers, weighted by
 * overlap), which avoids the aliasing bilinear sampling shows when shrinking e.g. 64→32. Upscaling (and
 * same size, where it is the identity) uses bilinear with half-pixel centres (align_corners = false).
 */
function axisTaps(inSize: number, outSize: number): AxisTaps {
  const start = new Int32Array(outSize + 1);
  const idx: number[] = [];
  const w: number[] = [];
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    start[o] = idx.length;
    if (outSize < inSize) {
      const a = o * scale;
      const b = (o + 1) * scale;
      for (let i = Math.floor(a); i < Math.min(inSize, Math.ceil(b)); i++) {
        const overlap = Math.min(b, i + 1) - Math.max(a, i);
        if (overlap > 1e-9) {
          idx.push(i);
          w.push(overlap / scale);
        }
      }
    } else {
      const src = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), inSize - 1);
      const i0 = Math.floor(src);
      const i1 = Math.min(i0 + 1, inSize - 1);
      const f = src - i0;
      idx.push(i0);
      w.push(1 - f);
      if (f > 0) {
        idx.push(i1);
        w.push(f);
      }
    }
  }
  start[outSize] = idx.length;
  return { start, idx: Int32Array.from(idx), w: Float32Array.from(w) };
}

/** Resizes an interleaved RGB image (separably: rows first, then columns). */
export function resizeRgb(img: RgbImage, outH: number, outW: number): Uint8Array {
  const { width: inW, height: inH, data } = img;
  if (inW === outW && inH === outH) return data;
  const tx = axisTaps(inW, outW);
  const ty = axisTaps(inH, outH);
  const tmp = new Float32Array(inH * outW * 3);
  for (let y = 0; y < inH; y++) {
    const row = y * inW * 3;
    for (let x = 0; x < outW; x++) {
      let r = 0, g = 0, b = 0;
      for (let t = tx.start[x]; t < tx.start[x + 1]; t++) {
        const s = row + tx.idx[t] * 3;
        const wt = tx.w[t];
        r += data[s] * wt;
        g += data[s + 1] * wt;
        b += data[s + 2] * wt;
      }
      const o = (y * outW + x) * 3;
      tmp[o] = r;
      tmp[o + 1] = g;
      tmp[o + 2] = b;
    }
  }
  const out = new Uint8Array(outH * outW * 3);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      let r = 0, g = 0, b = 0;
      for (let t = ty.start[y]; t < ty.start[y + 1]; t++) {
        const s = (ty.idx[t] * outW + x) * 3;
        const wt = ty.w[t];
        r += tmp[s] * wt;
        g += tmp[s + 1] * wt;
        b += tmp[s + 2] * wt;
      }
      const o = (y * outW + x) * 3;
      // Uint8Array assignment truncates, so round explicitly; clamping covers float error at 0 and 255.
      out[o] = Math.min(255, Math.max(0, Math.round(r)));
      out[o + 1] = Math.min(255, Math.max(0, Math.round(g)));
      out[o + 2] = Math.min(255, Math.max(0, Math.round(b)));
    }
  }
  return out;
}
