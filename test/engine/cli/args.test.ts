/** CLI argument checks that must fail before any work (README "CLI"). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const BIN = path.join(__dirname, '..', '..', '..', '..', 'bin', 'advmoe.js');

function cli(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('runs --runs-dir <file> is an error, not "no runs"', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-cli-')), 'not-a-folder');
  fs.writeFileSync(file, '');
  const r = cli('runs', '--runs-dir', file);
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /the runs folder .*not-a-folder is a file, not a folder/);
});

test('--ids with an empty entry is an error, not sample 0', () => {
  const r = cli('inspect', 'some-run', '--ids', '0,,1');
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /--ids: an empty value is not a number/);
});
