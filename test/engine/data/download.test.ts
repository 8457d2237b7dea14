import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as childProcess from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { downloadDataset } from '../../../engine/data/download';
import { loadDataset } from '../../../engine/data/load';
import { readTar } from '../../../engine/data/tar';
import { caught, cifarBatch, idxFile, tarArchive, withTempDir } from './fixtures';

const md5 = (b: Uint8Array) => crypto.createHash('md5').update(b).digest('hex');

/** What the loopback server serves: path → body, or a redirect / a broken response. */
const routes = new Map<string, Buffer | { redirect: string } | { truncate: Buffer }>();
const hits: string[] = [];
let server: http.Server;
let base = '';

before(async () => {
  server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    const r = routes.get(req.url ?? '');
    if (!r) {
      res.writeHead(404, 'Not Found').end();
    } else if (Buffer.isBuffer(r)) {
      res.writeHead(200, { 'content-length': r.length }).end(r);
    } else if ('redirect' in r) {
      res.writeHead(302, { location: r.redirect }).end();
    } else {
      // Promise more than we send, then drop the connection mid-body.
      res.writeHead(200, { 'content-length': r.truncate.length * 2 });
      res.write(r.truncate, () => res.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function cifar10Archive(extra: { name: string; data: string }[] = []): Buffer {
  const files = [
    ...[1, 2, 3, 4, 5].map((b) => ({ name: `cifar-10-batches-bin/data_batch_${b}.bin`, data: cifarBatch([b, b + 1]) })),
    { name: 'cifar-10-batches-bin/test_batch.bin', data: cifarBatch([9]) },
    { name: 'cifar-10-batches-bin/batches.meta.txt', data: Buffer.from('airplane\n') },
    ...extra.map((e) => ({ name: e.name, data: Buffer.from(e.data) })),
  ];
  return zlib.gzipSync(tarArchive(files));
}

test('download: good archive is verified, unpacked and readable; a second call skips', async () => {
  await withTempDir('dl-ok', async (dir) => {
    const gz = cifar10Archive();
    routes.set('/cifar-10-binary.tar.gz', gz);
    const progress: number[] = [];
    const res = await downloadDataset({
      dataset: 'cifar10',
      dir,
      baseUrl: base,
      checksums: { 'cifar-10-binary.tar.gz': md5(gz) },
      onProgress: (p) => progress.push(p.received),
    });
    assert.equal(res.skipped, false);
    assert.equal(res.bytes, gz.length);
    assert.equal(res.folder, path.join(dir, 'cifar-10-batches-bin'));
    assert.equal(progress[progress.length - 1], gz.length);
    assert.deepEqual(fs.readdirSync(dir), ['cifar-10-batches-bin'], 'no temporary files left beside it');
    const ds = await loadDataset({ dataset: 'cifar10', root: dir, trainSamples: 0, testSamples: 0, augment: true }, 'train', { baseDir: '/' });
    assert.deepEqual(Array.from(ds.labels), [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    const n = hits.length;
    const again = await downloadDataset({ dataset: 'cifar10', dir, baseUrl: base });
    assert.equal(again.skipped, true);
    assert.equal(hits.length, n, 'nothing fetched when the dataset is already in place');
  });
});

test('download: wrong bytes → CHECKSUM_MISMATCH naming both sums, nothing left behind', async () => {
  await withTempDir('dl-bad', async (dir) => {
    const gz = cifar10Archive();
    routes.set('/cifar-10-binary.tar.gz', gz);
    // Without an override the published checksum applies, which these bytes cannot match.
    const e = await caught(() => downloadDataset({ dataset: 'cifar10', dir, baseUrl: base }));
    assert.equal(e.code, 'CHECKSUM_MISMATCH');
    assert.ok(e.message.includes('expected c32a1d4ab5d03f1284b67883e8d87530'), e.message);
    assert.ok(e.message.includes(`got ${md5(gz)}`), e.message);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});

test('download: server down → DOWNLOAD_FAILED with host, reason and what to do', async () => {
  await withTempDir('dl-down', async (dir) => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const e = await caught(() => downloadDataset({ dataset: 'cifar100', dir, baseUrl: `http://127.0.0.1:${port}/` }));
    assert.equal(e.code, 'DOWNLOAD_FAILED');
    assert.match(e.message, new RegExp(`could not reach 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    assert.ok(e.message.includes(`download the files by hand into ${dir}, see README`), e.message);
    assert.ok(e.message.includes('cifar-100-binary.tar.gz'), e.message);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});

test('download: HTTP 404 and a connection dropped mid-body → DOWNLOAD_FAILED, nothing left', async () => {
  await withTempDir('dl-404', async (dir) => {
    let e = await caught(() => downloadDataset({ dataset: 'cifar100', dir, baseUrl: base + 'missing/' }));
    assert.equal(e.code, 'DOWNLOAD_FAILED');
    assert.match(e.message, /missing\/cifar-100-binary\.tar\.gz: server answered HTTP 404 Not Found/);
    routes.set('/cut/cifar-100-binary.tar.gz', { truncate: Buffer.alloc(100000, 7) });
    e = await caught(() => downloadDataset({ dataset: 'cifar100', dir, baseUrl: base + 'cut/' }));
    assert.equal(e.code, 'DOWNLOAD_FAILED');
    assert.match(e.message, /cifar-100-binary\.tar\.gz: download (interrupted after \d+ bytes|truncated: expected 200000 bytes)/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});

test('download: Fashion-MNIST files, following a redirect as GitHub raw URLs do', async () => {
  await withTempDir('dl-fm', async (dir) => {
    const checksums: Record<string, string> = {};
    const files: Record<string, Buffer> = {
      'train-images-idx3-ubyte.gz': zlib.gzipSync(idxFile([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7])),
      'train-labels-idx1-ubyte.gz': zlib.gzipSync(idxFile([2], [3, 9])),
      't10k-images-idx3-ubyte.gz': zlib.gzipSync(idxFile([1, 2, 2], [9, 9, 9, 9])),
      't10k-labels-idx1-ubyte.gz': zlib.gzipSync(idxFile([1], [1])),
    };
    for (const [name, body] of Object.entries(files)) {
      routes.set(`/fm/${name}`, { redirect: `/raw/${name}` });
      routes.set(`/raw/${name}`, body);
      checksums[name] = md5(body);
    }
    const res = await downloadDataset({ dataset: 'fashion-mnist', dir, baseUrl: base + 'fm', checksums });
    assert.equal(res.folder, path.join(dir, 'fashion-mnist'));
    const ds = await loadDataset({ dataset: 'fashion-mnist', root: dir, trainSamples: 0, testSamples: 0, augment: false }, 'train', { baseDir: '/' });
    assert.deepEqual(Array.from(ds.labels), [3, 9]);
    assert.deepEqual(fs.readdirSync(dir), ['fashion-mnist']);
  });
});

test('download: an archive entry escaping the folder is refused, nothing written', async () => {
  await withTempDir('dl-evil', async (dir) => {
    const gz = cifar10Archive([{ name: '../../escaped.txt', data: 'x' }]);
    routes.set('/evil/cifar-10-binary.tar.gz', gz);
    const e = await caught(() =>
      downloadDataset({ dataset: 'cifar10', dir, baseUrl: base + 'evil/', checksums: { 'cifar-10-binary.tar.gz': md5(gz) } }),
    );
    assert.equal(e.code, 'DATA_CORRUPT');
    assert.match(e.message, /archive entry "\.\.\/\.\.\/escaped\.txt" points outside the target folder/);
    assert.deepEqual(fs.readdirSync(dir), []);
    assert.ok(!fs.existsSync(path.join(path.dirname(dir), 'escaped.txt')));
  });
});

test('tar reader: reads archives made by the system tar (long names), rejects corrupt headers', async (t) => {
  const good = tarArchive([{ name: 'a/b.txt', data: 'hello' }]);
  assert.deepEqual(readTar(good, 'g').map((e) => [e.name, Buffer.from(e.data).toString()]), [['a/b.txt', 'hello']]);
  const bad = Buffer.from(good);
  bad[10] ^= 1;
  assert.throws(() => readTar(bad, 'bad.tar'), /bad\.tar: tar header at byte 0: checksum \d+ does not match computed \d+/);
  assert.throws(() => readTar(good.subarray(0, 520), 'short.tar'), /short\.tar: truncated tar archive: entry at byte 0 needs 5 bytes/);
  assert.throws(() => readTar(good.subarray(0, 1024), 'end.tar'), /end\.tar: truncated tar archive: header at byte 1024/);

  const hasTar = childProcess.spawnSync('tar', ['--version']).status === 0;
  if (!hasTar) {
    t.skip('no system tar to cross-check against');
    return;
  }
  await withTempDir('tar', async (dir) => {
    const long = 'd'.repeat(60) + '/' + 'e'.repeat(70) + '/' + 'f'.repeat(120) + '.bin';
    fs.mkdirSync(path.join(dir, 'src', path.dirname(long)), { recursive: true });
    const payload = crypto.randomBytes(1300);
    fs.writeFileSync(path.join(dir, 'src', long), payload);
    fs.writeFileSync(path.join(dir, 'src', 'small.txt'), 'x');
    let checked = 0;
    for (const format of ['gnu', 'pax', 'ustar']) {
      const out = path.join(dir, `${format}.tar`);
      const r = childProcess.spawnSync('tar', ['-cf', out, `--format=${format}`, '-C', path.join(dir, 'src'), '.']);
      if (r.status !== 0) continue; // ustar cannot hold a 120-char file name; that is fine
      const entries = readTar(fs.readFileSync(out), out).filter((e) => e.type === 'file');
      const byName = new Map(entries.map((e) => [e.name.replace(/^\.\//, ''), e.data]));
      assert.deepEqual(Buffer.from(byName.get(long)!), payload, `${format}: long-named file`);
      assert.equal(Buffer.from(byName.get('small.txt')!).toString(), 'x');
      checked++;
    }
    assert.ok(checked >= 2, `GNU and pax archives were both checked (${checked})`);
  });
});
