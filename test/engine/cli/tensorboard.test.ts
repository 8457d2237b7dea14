/** `advmoe tensorboard`: rebuilds the event files of every run in a runs folder or of one run, naming damaged ones. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig } from '../../../engine/config/load';
import { appendMetrics, createRun, writeState } from '../../../engine/runs/store';
import { eventsFileName } from '../../../engine/tensorboard/runEvents';
import { readEventFile } from '../tensorboard/readEvents';

const BIN = path.join(__dirname, '..', '..', '..', '..', 'bin', 'advmoe.js');
const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, 'tensorboard', ...args], { encoding: 'utf8' });

function runsFolder(): { runsDir: string; ids: string[] } {
  const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-tbcli-'));
  const ids = ['a', 'b'].map((name, i) => {
    const st = createRun(runsDir, { config: resolveConfig({ name, model: { backbone: 'resnet18', preset: 'tiny' }, method: { kind: 'standard' }, data: { dataset: 'mnist' } }), totalSteps: 2 }, new Date(Date.UTC(2026, 0, 1, 0, i)));
    appendMetrics(runsDir, st.id, [{ kind: 'train', step: 1, epoch: 0.5, time: 2, metrics: { loss: 1 + i } }]);
    writeState(runsDir, { ...st, status: 'interrupted' });
    return st.id;
  });
  return { runsDir, ids };
}

test('every run of a runs folder gets its events; --json lists them', () => {
  const { runsDir, ids } = runsFolder();
  const r = cli(runsDir, '--json');
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout.trimEnd().split('\n').pop()!);
  assert.deepEqual(result.runs.map((w: { runId: string }) => w.runId), ids);
  ids.forEach((id, i) => {
    const st = JSON.parse(fs.readFileSync(path.join(runsDir, id, 'state.json'), 'utf8'));
    const events = readEventFile(fs.readFileSync(path.join(runsDir, id, eventsFileName(st))));
    assert.deepEqual(events.flatMap((e) => e.scalars.map(([tag, v]) => [tag, e.step, v])), [['train/loss', 1, 1 + i]]);
  });
});

test('one run folder; --runs-dir is the default target; a damaged run is named and the exit status is 1', () => {
  const { runsDir, ids } = runsFolder();
  assert.equal(cli(path.join(runsDir, ids[1])).status, 0);
  assert.ok(fs.readdirSync(path.join(runsDir, ids[1])).some((f) => f.startsWith('events.out.tfevents.')));
  assert.ok(!fs.readdirSync(path.join(runsDir, ids[0])).some((f) => f.startsWith('events.out.tfevents.')));
  fs.writeFileSync(path.join(runsDir, ids[0], 'config.json'), '{');
  const r = spawnSync(process.execPath, [BIN, 'tensorboard', '--runs-dir', runsDir], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`${ids[0]}: no events written: .*config\\.json`));
  assert.match(r.stdout, new RegExp(`${ids[1]} +1 scalars`));
  const missing = cli(path.join(runsDir, 'nope'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope: no such folder/);
});
