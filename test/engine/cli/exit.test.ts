/** bin/advmoe.js ends the process only after piped output is written (README "CLI": `--json` prints the result last). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const BIN = path.join(__dirname, '..', '..', '..', '..', 'bin', 'advmoe.js');

test('piped --json output of more than 200 KB arrives whole before the CLI exits 0', async () => {
  const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-pipe-'));
  const runs = 400;
  for (let i = 0; i < runs; i++) {
    const id = `run-${String(i).padStart(4, '0')}`;
    fs.mkdirSync(path.join(runsDir, id));
    const state = {
      id, name: id, method: 'advmoe', backbone: 'vgg16', moe: true, status: 'finished', createdAt: '2026-01-01', updatedAt: '2026-01-01',
      epoch: 1, step: 1, totalSteps: 1, headline: {}, warnings: ['w'.repeat(600)],
    };
    fs.writeFileSync(path.join(runsDir, id, 'state.json'), JSON.stringify(state));
  }
  const child = spawn(process.execPath, [BIN, 'runs', '--json', '--runs-dir', runsDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  // A slow reader: the pipe fills, so the CLI's writes are still queued when main resolves.
  child.stdout.on('data', (c: Buffer) => {
    chunks.push(c);
    child.stdout.pause();
    setTimeout(() => child.stdout.resume(), 2);
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const out = Buffer.concat(chunks).toString('utf8');
  assert.ok(out.length > 200_000, `only ${out.length} bytes`);
  assert.equal(code, 0);
  const last = JSON.parse(out.trimEnd().split('\n').pop()!);
  assert.equal(last.event, 'result');
  assert.equal(last.runs.length, runs);
});
