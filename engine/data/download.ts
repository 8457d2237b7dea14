/**
 * `advmoe data download cifar10|cifar100|fashion-mnist`: fetch the official files, verify their published
 * MD5s, unpack, and only then move the result into place. Everything is written under a hidden temporary
 * folder next to the target and renamed at the end, so an interrupted or failed download leaves nothing
 * that a reader could mistake for a dataset.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { AdvMoEError, errorMessage, isAdvMoEError } from '../util/errors';
import { readTar } from './tar';

const gunzipAsync = promisify(zlib.gunzip);

export type DownloadableDataset = 'cifar10' | 'cifar100' | 'fashion-mnist';

export interface RemoteFile {
  name: string;
  /** Published MD5 of the file as served. */
  md5: string;
}

export interface DownloadSpec {
  baseUrl: string;
  files: RemoteFile[];
  /** `tar.gz`: one archive unpacking to `folder/`. `files`: the files themselves go into `folder/`. */
  kind: 'tar.gz' | 'files';
  /** Folder created under the target directory (the name the readers look for). */
  folder: string;
  /** Files that must exist in `folder/` afterwards. */
  expect: string[];
}

/**
 * Official sources. CIFAR checksums: published on https://www.cs.toronto.edu/~kriz/cifar.html.
 * Fashion-MNIST checksums: the table in the zalandoresearch/fashion-mnist README; its GitHub repository
 * hosts the same files under data/fashion/ (the README's S3 link is plain http).
 */
export const DOWNLOADS: Record<DownloadableDataset, DownloadSpec> = {
  cifar10: {
    baseUrl: 'https://www.cs.toronto.edu/~kriz/',
    files: [{ name: 'cifar-10-binary.tar.gz', md5: 'c32a1d4ab5d03f1284b67883e8d87530' }],
    kind: 'tar.gz',
    folder: 'cifar-10-batches-bin',
    expect: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'],
  },
  cifar100: {
    baseUrl: 'https://www.cs.toronto.edu/~kriz/',
    files: [{ name: 'cifar-100-binary.tar.gz', md5: '03b5dce01913d631647c71ecec9e9cb8' }],
    kind: 'tar.gz',
    folder: 'cifar-100-binary',
    expect: ['train.bin', 'test.bin'],
  },
  'fashion-mnist': {
    baseUrl: 'https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/',
    files: [
      { name: 'train-images-idx3-ubyte.gz', md5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d' },
      { name: 'train-labels-idx1-ubyte.gz', md5: '25c81989df183df01b3e8a0aad5dffbe' },
      { name: 't10k-images-idx3-ubyte.gz', md5: 'bef4ecab320f06d8554ea6380940ec79' },
      { name: 't10k-labels-idx1-ubyte.gz', md5: 'bb300cfdad3c16e7a12a480ee83cd310' },
    ],
    kind: 'files',
    folder: 'fashion-mnist',
    expect: ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'],
  },
};

export interface DownloadProgress {
  file: string;
  received: number;
  /** From Content-Length, when the server sends it. */
  total?: number;
}

export interface DownloadOptions {
  dataset: DownloadableDataset;
  /** Data root: the dataset lands in `<dir>/<folder>` (e.g. `<dir>/cifar-10-batches-bin`). */
  dir: string;
  /** Replaces the official base URL (a mirror, or a loopback server in tests); must end with '/'. */
  baseUrl?: string;
  /** Replaces published MD5s by file name (tests; a mirror that repackaged the files). */
  checksums?: Record<string, string>;
  /** Download again even if the dataset is already in place. */
  force?: boolean;
  /** Give up when no byte arrives for this long (default 60 s). */
  idleTimeoutMs?: number;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
}

export interface DownloadResult {
  dataset: DownloadableDataset;
  /** The dataset's folder, ready for the readers. */
  folder: string;
  /** true when it was already in place and nothing was fetched. */
  skipped: boolean;
  bytes: number;
}

function isComplete(folder: string, spec: DownloadSpec): boolean {
  return spec.expect.every((f) => {
    try {
      return fs.statSync(path.join(folder, f)).size > 0;
    } catch {
      return false;
    }
  });
}

function byHand(spec: DownloadSpec, base: string, dir: string): string {
  const urls = spec.files.map((f) => base + f.name).join(', ');
  const where = spec.kind === 'tar.gz' ? `unpack it into ${dir} (giving ${path.join(dir, spec.folder)}/)` : `put them into ${path.join(dir, spec.folder)}/`;
  return `download the files by hand into ${dir}, see README (${urls}; ${where})`;
}

/** Streams one URL into `dest`, returning its MD5 and size. */
async function fetchToFile(
  url: string,
  dest: string,
  opts: { idleTimeoutMs: number; signal?: AbortSignal; onProgress?: (p: DownloadProgress) => void; hint: string; name: string },
): Promise<{ md5: string; bytes: number }> {
  const host = new URL(url).host;
  const idle = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new Error(`no data received for ${opts.idleTimeoutMs / 1000} s`)), opts.idleTimeoutMs);
  };
  const signal = opts.signal ? AbortSignal.any([idle.signal, opts.signal]) : idle.signal;
  const cancelled = () => opts.signal?.aborted === true;
  arm();
  let res: Response;
  try {
    res = await fetch(url, { signal, redirect: 'follow' });
  } catch (e) {
    clearTimeout(timer);
    if (cancelled()) throw new AdvMoEError('CANCELLED', `download of ${url} cancelled`);
    throw new AdvMoEError('DOWNLOAD_FAILED', `could not reach ${host}: ${describeFetchError(e, idle.signal)}; ${opts.hint}`, { url });
  }
  if (!res.ok || !res.body) {
    clearTimeout(timer);
    throw new AdvMoEError('DOWNLOAD_FAILED', `${url}: server answered HTTP ${res.status} ${res.statusText}; ${opts.hint}`, { url, status: res.status });
  }
  const lenHeader = res.headers.get('content-length');
  const total = lenHeader !== null && /^\d+$/.test(lenHeader) ? Number(lenHeader) : undefined;
  const hash = crypto.createHash('md5');
  const fh = await fs.promises.open(dest, 'w');
  let bytes = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      arm();
      hash.update(chunk);
      await fh.write(chunk);
      bytes += chunk.length;
      opts.onProgress?.({ file: opts.name, received: bytes, total });
    }
  } catch (e) {
    if (cancelled()) throw new AdvMoEError('CANCELLED', `download of ${url} cancelled`);
    throw new AdvMoEError('DOWNLOAD_FAILED', `${url}: download interrupted after ${bytes} bytes: ${describeFetchError(e, idle.signal)}; ${opts.hint}`, { url });
  } finally {
    clearTimeout(timer);
    await fh.close();
  }
  if (total !== undefined && bytes !== total) {
    throw new AdvMoEError('DOWNLOAD_FAILED', `${url}: download truncated: expected ${total} bytes, got ${bytes}; ${opts.hint}`, { url });
  }
  return { md5: hash.digest('hex'), bytes };
}

/** fetch() wraps the real reason (ECONNREFUSED, ENOTFOUND, a TLS error…) in `cause`. */
function describeFetchError(e: unknown, idle: AbortSignal): string {
  if (idle.aborted) return errorMessage(idle.reason);
  const cause = (e as { cause?: unknown }).cause;
  if (cause && typeof cause === 'object') {
    const c = cause as { code?: string; message?: string };
    if (c.code && c.message && !c.message.includes(c.code)) return `${c.code} (${c.message})`;
    return c.message ?? c.code ?? errorMessage(e);
  }
  return errorMessage(e);
}

/** Rejects archive paths that would land outside the extraction folder. */
function safeRelative(name: string, label: string): string {
  const norm = path.posix.normalize(name.replace(/\\/g, '/'));
  if (norm.startsWith('/') || norm === '..' || norm.startsWith('../') || /^[a-zA-Z]:/.test(norm)) {
    throw new AdvMoEError('DATA_CORRUPT', `${label}: archive entry ${JSON.stringify(name)} points outside the target folder; refusing to extract`);
  }
  return norm;
}

async function extractTarGz(archive: string, into: string): Promise<void> {
  let tar: Buffer;
  try {
    tar = await gunzipAsync(await fs.promises.readFile(archive));
  } catch (e) {
    throw new AdvMoEError('DATA_CORRUPT', `${archive}: gzip data is corrupt or truncated (${errorMessage(e)})`);
  }
  for (const entry of readTar(tar, archive)) {
    const rel = safeRelative(entry.name, archive);
    if (rel === '.') continue;
    const out = path.join(into, rel);
    if (entry.type === 'directory') await fs.promises.mkdir(out, { recursive: true });
    else if (entry.type === 'file') {
      await fs.promises.mkdir(path.dirname(out), { recursive: true });
      await fs.promises.writeFile(out, entry.data);
    }
    // Links and devices are skipped: the dataset archives hold none, and following them is unsafe.
  }
}

export function isDownloadable(name: string): name is DownloadableDataset {
  return Object.prototype.hasOwnProperty.call(DOWNLOADS, name);
}

/** Downloads, verifies and unpacks a dataset into `<dir>/<folder>`. See DownloadOptions. */
export async function downloadDataset(opts: DownloadOptions): Promise<DownloadResult> {
  if (!isDownloadable(opts.dataset)) {
    throw new AdvMoEError('INVALID_ARGUMENT', `cannot download ${JSON.stringify(opts.dataset)}: expected one of ${Object.keys(DOWNLOADS).join(', ')} (MNIST is built in)`);
  }
  const spec = DOWNLOADS[opts.dataset];
  const dir = path.resolve(opts.dir);
  const folder = path.join(dir, spec.folder);
  if (!opts.force && isComplete(folder, spec)) return { dataset: opts.dataset, folder, skipped: true, bytes: 0 };
  let base = opts.baseUrl ?? spec.baseUrl;
  if (!base.endsWith('/')) base += '/';
  const hint = byHand(spec, base, dir);
  await fs.promises.mkdir(dir, { recursive: true });
  const tmp = await fs.promises.mkdtemp(path.join(dir, `.${spec.folder}.download-`));
  let bytes = 0;
  try {
    const stage = path.join(tmp, 'files');
    await fs.promises.mkdir(stage);
    for (const f of spec.files) {
      const dest = path.join(stage, f.name);
      const got = await fetchToFile(base + f.name, dest, {
        idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
        signal: opts.signal,
        onProgress: opts.onProgress,
        hint,
        name: f.name,
      });
      bytes += got.bytes;
      const expected = (opts.checksums?.[f.name] ?? f.md5).toLowerCase();
      if (got.md5 !== expected) {
        throw new AdvMoEError(
          'CHECKSUM_MISMATCH',
          `${base + f.name}: MD5 checksum mismatch: expected ${expected}, got ${got.md5} (${got.bytes} bytes); the file is corrupt or not the official one, nothing was kept`,
          { expected, actual: got.md5, url: base + f.name },
        );
      }
    }
    let ready: string;
    if (spec.kind === 'tar.gz') {
      const unpacked = path.join(tmp, 'unpacked');
      await extractTarGz(path.join(stage, spec.files[0].name), unpacked);
      ready = path.join(unpacked, spec.folder);
    } else {
      ready = stage;
    }
    if (!isComplete(ready, spec)) {
      const missing = spec.expect.filter((f) => !fs.existsSync(path.join(ready, f)));
      throw new AdvMoEError('DATA_CORRUPT', `${opts.dataset}: the downloaded files do not contain ${spec.folder}/${missing.join(`, ${spec.folder}/`)}`);
    }
    // Replace an old (possibly partial, or --force) copy only now that the new one is complete.
    await fs.promises.rm(folder, { recursive: true, force: true });
    await fs.promises.rename(ready, folder);
    return { dataset: opts.dataset, folder, skipped: false, bytes };
  } catch (e) {
    if (isAdvMoEError(e)) throw e;
    throw new AdvMoEError('DOWNLOAD_FAILED', `${opts.dataset}: ${errorMessage(e)}; ${hint}`);
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}
