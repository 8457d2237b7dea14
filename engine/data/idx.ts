/**
 * IDX files (MNIST, Fashion-MNIST): a big-endian header — two zero bytes, a type byte (0x08 = unsigned
 * byte), the number of dimensions, then one uint32 per dimension — followed by the raw data.
 * Spec: http://yann.lecun.com/exdb/mnist/ (bottom of the page).
 */
import * as path from 'node:path';
import { AdvMoEError } from '../util/errors';
import { readMaybeGzip, isFile } from './files';

export interface IdxArray {
  dims: number[];
  /** The payload (a view into the file's buffer, no copy). */
  data: Uint8Array;
}

const TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'short',
  0x0c: 'int',
  0x0d: 'float',
  0x0e: 'double',
};

/** Parses an IDX buffer of unsigned bytes with `expectedDims` dimensions. `file` is only for messages. */
export function parseIdx(buf: Uint8Array, file: string, expectedDims: number): IdxArray {
  if (buf.length < 4) {
    throw new AdvMoEError('DATA_CORRUPT', `${file}: truncated IDX file: ${buf.length} bytes, shorter than the 4-byte magic number`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0, false);
  const expectedMagic = 0x0800 | expectedDims;
  if (buf[0] !== 0 || buf[1] !== 0) {
    throw new AdvMoEError(
      'DATA_CORRUPT',
      `${file}: bad magic number 0x${hex(magic)} (expected 0x${hex(expectedMagic)}); not an IDX file`,
    );
  }
  if (buf[2] !== 0x08) {
    const t = TYPE_NAMES[buf[2]] ?? 'unknown';
    throw new AdvMoEError(
      'DATA_CORRUPT',
      `${file}: IDX data type 0x${buf[2].toString(16).padStart(2, '0')} (${t}) is not supported; expected 0x08 (unsigned byte)`,
    );
  }
  if (buf[3] !== expectedDims) {
    throw new AdvMoEError(
      'DATA_CORRUPT',
      `${file}: bad magic number 0x${hex(magic)}: ${buf[3]} dimensions, expected ${expectedDims} (magic 0x${hex(expectedMagic)})`,
    );
  }
  const headerBytes = 4 + 4 * expectedDims;
  if (buf.length < headerBytes) {
    throw new AdvMoEError('DATA_CORRUPT', `${file}: truncated IDX header: expected ${headerBytes} bytes, got ${buf.length}`);
  }
  const dims: number[] = [];
  for (let d = 0; d < expectedDims; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const payload = dims.reduce((a, b) => a * b, 1);
  const expectedBytes = headerBytes + payload;
  if (buf.length < expectedBytes) {
    throw new AdvMoEError(
      'DATA_CORRUPT',
      `${file}: truncated file: expected ${expectedBytes} bytes (header says ${dims.join('×')}), got ${buf.length}`,
    );
  }
  if (buf.length > expectedBytes) {
    throw new AdvMoEError(
      'DATA_CORRUPT',
      `${file}: ${buf.length - expectedBytes} unexpected trailing bytes: expected ${expectedBytes} bytes (header says ${dims.join('×')}), got ${buf.length}`,
    );
  }
  return { dims, data: buf.subarray(headerBytes, expectedBytes) };
}

export interface IdxPair {
  images: Uint8Array;
  labels: Int32Array;
  count: number;
  shape: [number, number, number];
}

/** Reads an images file (idx3) and a labels file (idx1), plain or gzipped, and checks they agree. */
export async function readIdxPair(imagesFile: string, labelsFile: string, numClasses: number): Promise<IdxPair> {
  const [imgBuf, lblBuf] = await Promise.all([readMaybeGzip(imagesFile), readMaybeGzip(labelsFile)]);
  const img = parseIdx(imgBuf, imagesFile, 3);
  const lbl = parseIdx(lblBuf, labelsFile, 1);
  const [n, h, w] = img.dims;
  if (lbl.dims[0] !== n) {
    throw new AdvMoEError(
      'DATA_CORRUPT',
      `${labelsFile}: holds ${lbl.dims[0]} labels but ${imagesFile} holds ${n} images; the two files do not belong together`,
    );
  }
  if (n === 0 || h === 0 || w === 0) {
    throw new AdvMoEError('DATA_CORRUPT', `${imagesFile}: empty image array (${n}×${h}×${w})`);
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = lbl.data[i];
    if (l >= numClasses) {
      throw new AdvMoEError(
        'DATA_CORRUPT',
        `${labelsFile}: label ${l} of sample ${i} is out of range 0..${numClasses - 1}`,
      );
    }
    labels[i] = l;
  }
  // Copy out of the (possibly much larger, gunzipped) file buffer so it can be freed; HW1 is already NHWC.
  return { images: new Uint8Array(img.data), labels, count: n, shape: [h, w, 1] };
}

/** Finds `<prefix>-images-idx3-ubyte` (also `.gz`, and the `images.idx3-ubyte` spelling some mirrors use)
 * and the matching labels file in `dir`. Returns null when either is missing. */
export function findIdxFiles(dir: string, prefix: 'train' | 't10k'): { images: string; labels: string } | null {
  const pick = (kind: 'images' | 'labels', rank: 3 | 1): string | null => {
    for (const sep of ['-', '.']) {
      for (const ext of ['', '.gz']) {
        const f = path.join(dir, `${prefix}-${kind}${sep}idx${rank}-ubyte${ext}`);
        if (isFile(f)) return f;
      }
    }
    return null;
  };
  const images = pick('images', 3);
  const labels = pick('labels', 1);
  return images && labels ? { images, labels } : null;
}

function hex(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}
