/**
 * Image folders in the TinyImageNet layout:
 *   <root>/train/<class>/images/*.JPEG   or   <root>/train/<class>/*.{png,jpg,jpeg}
 *   <root>/val/images/*.JPEG + <root>/val/val_annotations.txt  ("file<TAB>class<TAB>…" per line)
 *   or <root>/val/<class>/…  (or test/ instead of val/; TinyImageNet's own test/ has no labels, so val/ wins)
 * Classes are the sorted folder names under train/, so labels agree between splits and across runs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AdvMoEError } from '../util/errors';
import { decodeImage, resizeRgb } from './image';
import { isDir, isFile } from './files';

const IMAGE_EXT = /\.(png|jpe?g)$/i;

export interface ImageFolderData {
  images: Uint8Array;
  labels: Int32Array;
  count: number;
  shape: [number, number, number];
  numClasses: number;
  classNames: string[];
  /** The class folder names (TinyImageNet wnids); classNames uses words.txt where present. */
  classIds: string[];
  files: string[];
}

function listImages(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => IMAGE_EXT.test(f) && isFile(path.join(dir, f)))
    .sort()
    .map((f) => path.join(dir, f));
}

/** The images of one class folder: `<cls>/images/*` (TinyImageNet) or `<cls>/*`. */
function classImages(classDir: string): string[] {
  const nested = path.join(classDir, 'images');
  const files = isDir(nested) ? listImages(nested) : [];
  return files.length > 0 ? files : listImages(classDir);
}

export function listClasses(root: string): string[] {
  const trainDir = path.join(root, 'train');
  if (!isDir(trainDir)) {
    throw new AdvMoEError(
      'DATA_NOT_FOUND',
      `image folder: ${trainDir} not found; expected <root>/train/<class>/[images/]*.{png,jpg,JPEG} (TinyImageNet layout)`,
    );
  }
  const classes = fs.readdirSync(trainDir).filter((d) => isDir(path.join(trainDir, d))).sort();
  if (classes.length === 0) {
    throw new AdvMoEError('DATA_NOT_FOUND', `image folder: ${trainDir} has no class sub-folders`);
  }
  return classes;
}

/** Lists (file, label) pairs of a split without decoding anything. */
export function listImageFolder(root: string, split: 'train' | 'test'): { files: string[]; labels: number[]; classIds: string[] } {
  const classIds = listClasses(root);
  const classIndex = new Map(classIds.map((c, i) => [c, i]));
  const files: string[] = [];
  const labels: number[] = [];
  if (split === 'train') {
    classIds.forEach((c, i) => {
      for (const f of classImages(path.join(root, 'train', c))) {
        files.push(f);
        labels.push(i);
      }
    });
  } else {
    const dir = [path.join(root, 'val'), path.join(root, 'test')].find(isDir);
    if (!dir) {
      throw new AdvMoEError('DATA_NOT_FOUND', `image folder: neither ${path.join(root, 'val')} nor ${path.join(root, 'test')} exists; the test split needs one of them`);
    }
    const ann = path.join(dir, 'val_annotations.txt');
    if (isFile(ann)) {
      const imgDir = isDir(path.join(dir, 'images')) ? path.join(dir, 'images') : dir;
      const lines = fs.readFileSync(ann, 'utf8').split(/\r?\n/);
      lines.forEach((line, n) => {
        if (line.trim() === '') return;
        const [name, cls] = line.split('\t');
        if (!name || !cls) {
          throw new AdvMoEError('DATA_CORRUPT', `${ann}:${n + 1}: expected "<file><TAB><class>…", got ${JSON.stringify(line.slice(0, 80))}`);
        }
        const label = classIndex.get(cls.trim());
        if (label === undefined) {
          throw new AdvMoEError('DATA_CORRUPT', `${ann}:${n + 1}: class ${JSON.stringify(cls)} is not one of the ${classIds.length} folders under ${path.join(root, 'train')}`);
        }
        files.push(path.join(imgDir, name.trim()));
        labels.push(label);
      });
    } else {
      const sub = fs.readdirSync(dir).filter((d) => isDir(path.join(dir, d))).sort();
      for (const c of sub) {
        if (c === 'images') {
          throw new AdvMoEError('DATA_CORRUPT', `${dir}: has images/ but no val_annotations.txt to label them`);
        }
        const label = classIndex.get(c);
        if (label === undefined) {
          throw new AdvMoEError('DATA_CORRUPT', `${path.join(dir, c)}: class folder is not one of the ${classIds.length} folders under ${path.join(root, 'train')}`);
        }
        for (const f of classImages(path.join(dir, c))) {
          files.push(f);
          labels.push(label);
        }
      }
    }
  }
  return { files, labels, classIds };
}

/** TinyImageNet's words.txt maps wnids to readable names ("n01443537<TAB>goldfish, Carassius auratus"). */
function readableNames(root: string, classIds: string[]): string[] {
  const words = path.join(root, 'words.txt');
  if (!isFile(words)) return classIds;
  const map = new Map<string, string>();
  for (const line of fs.readFileSync(words, 'utf8').split(/\r?\n/)) {
    const tab = line.indexOf('\t');
    if (tab > 0) map.set(line.slice(0, tab), line.slice(tab + 1).split(',')[0].trim());
  }
  return classIds.map((c) => map.get(c) ?? c);
}

/**
 * Decodes and resizes every image of a split to imageSize × imageSize × 3 (or, without imageSize, to the
 * first image's size). Only the files listed in `select` (indices into the split's listing) are decoded
 * when given, so a 1000-sample subset of TinyImageNet does not decode all 100,000 files.
 */
export async function readImageFolder(
  root: string,
  split: 'train' | 'test',
  imageSize: number | undefined,
  select?: Int32Array,
): Promise<ImageFolderData> {
  const listing = listImageFolder(root, split);
  const all = listing.files;
  if (all.length === 0) {
    throw new AdvMoEError('DATA_NOT_FOUND', `image folder: no .png/.jpg/.jpeg files found for the ${split} split under ${root}`);
  }
  const chosen = select ?? Int32Array.from(all, (_, i) => i);
  let h = imageSize ?? 0;
  let w = imageSize ?? 0;
  if (imageSize !== undefined && !(Number.isInteger(imageSize) && imageSize > 0)) {
    throw new AdvMoEError('CONFIG_INVALID', `data.imageSize must be a positive integer, got ${imageSize}`);
  }
  let images = new Uint8Array(0);
  const labels = new Int32Array(chosen.length);
  const files: string[] = [];
  for (let k = 0; k < chosen.length; k++) {
    const file = all[chosen[k]];
    let buf: Buffer;
    try {
      buf = await fs.promises.readFile(file);
    } catch {
      throw new AdvMoEError('DATA_NOT_FOUND', `${file}: image listed for the ${split} split cannot be read`);
    }
    const img = decodeImage(buf, file);
    if (k === 0) {
      if (h === 0) {
        h = img.height;
        w = img.width;
      }
      images = new Uint8Array(chosen.length * h * w * 3);
    }
    images.set(resizeRgb(img, h, w), k * h * w * 3);
    labels[k] = listing.labels[chosen[k]];
    files.push(file);
  }
  return {
    images,
    labels,
    count: chosen.length,
    shape: [h, w, 3],
    numClasses: listing.classIds.length,
    classNames: readableNames(root, listing.classIds),
    classIds: listing.classIds,
    files,
  };
}
