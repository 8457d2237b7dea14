/**
 * TensorBoard event files of a run folder: what `advmoe tensorboard` writes equals metrics.jsonl and the final
 * analysis, read back in TypeScript and, where python3 has the tensorboard package, by TensorBoard's own reader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig } from '../../../engine/config/load';
import { appendMetrics, createRun, readMetrics, writeAnalysis, writeState } from '../../../engine/runs/store';
import type { MetricsRecord } from '../../../engine/runs/types';
import { eventsFileName, flattenHParams, runsUnder, writeRunEvents } from '../../../engine/tensorboard/runEvents';
import { readEventFile } from './readEvents';

const config = resolveConfig({
  name: 'tb-check',
  model: { backbone: 'resnet18', preset: 'tiny', moe: { enabled: true, experts: 2, topK: 1 } },
  method: { kind: 'advmoe' },
  data: { dataset: 'mnist' },
});

const records: MetricsRecord[] = [
  { kind: 'train', step: 1, epoch: 0.25, time: 1.5, metrics: { loss: 2.302585092994046, trainAcc: 0.125, lr: 0.1 + 0.2, gradNorm: 1e-7 } },
  { kind: 'train', step: 2, epoch: 0.5, time: 3.25, metrics: { loss: 1.75, trainAcc: 1 / 3, lr: 0.05, gradNorm: 123456.789 } },
  { kind: 'eval', step: 2, epoch: 0.5, time: 9, metrics: { sa: 0.8125, ra: 0.4375 } },
  { kind: 'eval', step: 4, epoch: 1, time: 12, metrics: { sa: 0.75, ra: 0.5, routerRobustness: 0.96875, expertRobustness: 0.53125 } },
];
const layers = [
  { layer: 'layer1.0.conv1', changeRate: 0.125, loadClean: [0.75, 0.25], loadAdv: [0.5, 0.5], perClassClean: [], perClassAdv: [], collapsed: false, decisionShare: 0.75, decisionEntropy: 0.8112781244591328 },
  { layer: 'layer2.0.conv2', changeRate: 0, loadClean: [1, 0], loadAdv: [1, 0], perClassClean: [], perClassAdv: [], collapsed: true, decisionShare: 1, decisionEntropy: 0 },
];

/** A finished run folder with the records above and a final analysis at step 4. */
function makeRun(): { runsDir: string; runId: string } {
  const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-tb-'));
  const state = createRun(runsDir, { config, totalSteps: 4 });
  appendMetrics(runsDir, state.id, records);
  writeAnalysis(runsDir, state.id, 'final-step-4.json', { samples: 16, sa: 0.75, ra: 0.5, layers });
  writeAnalysis(runsDir, state.id, 'eval-epoch-0001-16-x.json', { samples: 16, sa: 0.75, ra: 0.5, layers });
  writeState(runsDir, { ...state, status: 'finished', step: 4 });
  return { runsDir, runId: state.id };
}

/** Every (tag, step, value) the records and the analysis should give, in order; values as float32 (TensorBoard's). */
function expectedScalars(): Array<[string, number, number]> {
  const out: Array<[string, number, number]> = [];
  for (const r of readMetrics(run.runsDir, run.runId).records) for (const [k, v] of Object.entries(r.metrics)) out.push([`${r.kind}/${k}`, r.step, Math.fround(v)]);
  for (const l of layers) {
    out.push([`routing/${l.layer}/decisionShare`, 4, Math.fround(l.decisionShare)], [`routing/${l.layer}/decisionEntropy`, 4, Math.fround(l.decisionEntropy)], [`routing/${l.layer}/changeRate`, 4, Math.fround(l.changeRate)]);
    l.loadClean.forEach((v, e) => out.push([`routing/${l.layer}/loadClean/expert${e}`, 4, Math.fround(v)]));
    l.loadAdv.forEach((v, e) => out.push([`routing/${l.layer}/loadAdv/expert${e}`, 4, Math.fround(v)]));
  }
  return out;
}

const run = makeRun();

test('the event file holds metrics.jsonl and the final analysis as exact scalars, and the run hparams', () => {
  const summary = writeRunEvents(run.runsDir, run.runId);
  assert.equal(path.basename(summary.file), eventsFileName({ createdAt: JSON.parse(fs.readFileSync(path.join(run.runsDir, run.runId, 'state.json'), 'utf8')).createdAt }));
  assert.deepEqual(summary.skipped, []);
  const events = readEventFile(fs.readFileSync(summary.file));
  assert.equal(events[0].file_version, 'brain.Event:2');
  const got = events.flatMap((e) => e.scalars.map(([tag, v]) => [tag, e.step, v] as [string, number, number]));
  assert.deepEqual(got, expectedScalars());
  assert.equal(summary.scalars, got.length);
  const start = events.find((e) => e.hparams?.session_start_info)!.hparams!.session_start_info as { hparams: Record<string, Record<string, unknown>> };
  const flat = flattenHParams(config);
  assert.ok(Object.keys(flat).length > 20);
  for (const [k, v] of Object.entries(flat)) {
    const want = typeof v === 'number' ? { number_value: v } : typeof v === 'boolean' ? { bool_value: v } : { string_value: v };
    assert.deepEqual(start.hparams[k], want, k);
  }
  assert.deepEqual(events[events.length - 1].hparams, { version: 0, session_end_info: { status: 1, end_time_secs: events[events.length - 1].wall_time } });
  // Rebuilding gives the same bytes (wall times come from the run, not the clock).
  const before = fs.readFileSync(summary.file);
  writeRunEvents(run.runsDir, run.runId);
  assert.deepEqual(fs.readFileSync(summary.file), before);
  assert.deepEqual(fs.readdirSync(path.join(run.runsDir, run.runId)).filter((f) => /tmp/.test(f)), []);
});

test('runsUnder takes a runs folder or one run folder, and names a missing one', () => {
  assert.deepEqual(runsUnder(run.runsDir), { runsDir: run.runsDir, runIds: [run.runId] });
  assert.deepEqual(runsUnder(path.join(run.runsDir, run.runId)), { runsDir: run.runsDir, runIds: [run.runId] });
  assert.throws(() => runsUnder(path.join(run.runsDir, 'nope')), /nope: no such folder/);
});

const TB_READ = `
import json, sys
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
from tensorboard.backend.event_processing import data_provider
from tensorboard.plugins.hparams import metadata as hp
from tensorboard import context
m = pem.EventMultiplexer()
m.AddRunsFromDirectory(sys.argv[1])
m.Reload()
p = data_provider.MultiplexerDataProvider(m, sys.argv[1])
ctx = context.RequestContext()
runs = {}
for run in p.list_scalars(ctx, experiment_id='', plugin_name='scalars'):
    data = p.read_scalars(ctx, experiment_id='', plugin_name='scalars', downsample=10**6, run_tag_filter=None)
    runs[run] = {tag: [[d.step, d.value] for d in pts] for tag, pts in data[run].items()}
hps = {}
for run, tags in m.PluginRunToTagToContent(hp.PLUGIN_NAME).items():
    for tag, content in tags.items():
        d = hp.parse_session_start_info_plugin_data(content) if tag == hp.SESSION_START_INFO_TAG else None
        if d is not None:
            hps[run] = {k: json.loads(__import__('google.protobuf.json_format', fromlist=['x']).MessageToJson(v)) for k, v in d.hparams.items()}
        if tag == hp.SESSION_END_INFO_TAG:
            hps.setdefault(run + '#end', hp.parse_session_end_info_plugin_data(content).status)
print(json.dumps({'runs': runs, 'hparams': hps}))
`;

function pythonWithTensorboard(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import tensorboard'], { encoding: 'utf8' });
  if (r.error) return 'python3 is not installed';
  if (r.status !== 0) return 'python3 has no tensorboard package (pip install tensorboard)';
  return undefined;
}

test("TensorBoard's own reader sees the same tags, steps and values as metrics.jsonl, and the hparams", { skip: pythonWithTensorboard() }, () => {
  writeRunEvents(run.runsDir, run.runId);
  const r = spawnSync('python3', ['-c', TB_READ, run.runsDir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { runs: Record<string, Record<string, Array<[number, number]>>>; hparams: Record<string, unknown> };
  assert.deepEqual(Object.keys(out.runs), [run.runId]);
  const want: Record<string, Array<[number, number]>> = {};
  for (const [tag, step, v] of expectedScalars()) (want[tag] ??= []).push([step, v]);
  assert.deepEqual(out.runs[run.runId], want);
  const hp = out.hparams[run.runId] as Record<string, unknown>;
  assert.equal(hp['method.kind'], 'advmoe');
  assert.equal(hp['model.moe.experts'], 2);
  assert.equal(hp['model.moe.enabled'], true);
  assert.equal(out.hparams[`${run.runId}#end`], 1, 'STATUS_SUCCESS');
});

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

test('`tensorboard --logdir` (its default data server) serves the scalars and the hparams session', { skip: pythonWithTensorboard(), timeout: 240_000 }, async () => {
  writeRunEvents(run.runsDir, run.runId);
  const port = await freePort();
  // Its own process group, so that its data server child ends with it.
  const tb = spawn('python3', ['-m', 'tensorboard.main', '--logdir', run.runsDir, '--host', '127.0.0.1', '--port', String(port), '--reload_interval', '1'], { detached: true, stdio: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  try {
    const want: Record<string, Array<[number, number]>> = {};
    for (const [tag, step, v] of expectedScalars()) (want[tag] ??= []).push([step, v]);
    let tags: Record<string, Record<string, unknown>> = {};
    const deadline = Date.now() + 200_000;
    while (Date.now() < deadline && Object.keys(tags[run.runId] ?? {}).length < Object.keys(want).length) {
      await new Promise((r) => setTimeout(r, 1000));
      tags = await fetch(`${base}/data/plugin/scalars/tags`).then((r) => r.json() as Promise<typeof tags>).catch(() => ({}));
    }
    assert.deepEqual(Object.keys(tags[run.runId] ?? {}).sort(), Object.keys(want).sort());
    for (const tag of Object.keys(want)) {
      const points = (await fetch(`${base}/data/plugin/scalars/scalars?run=${encodeURIComponent(run.runId)}&tag=${encodeURIComponent(tag)}`).then((r) => r.json())) as Array<[number, number, number]>;
      assert.deepEqual(points.map(([, step, v]) => [step, v]), want[tag], tag);
    }
    const post = (what: string, body: unknown) =>
      fetch(`${base}/data/plugin/hparams/${what}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-XSRF-Protected': '1' }, body: JSON.stringify(body) }).then((r) => r.json()) as Promise<any>;
    const exp = await post('experiment', { experimentName: '' });
    const names = exp.hparamInfos.map((h: { name: string }) => h.name);
    assert.ok(names.includes('method.kind') && names.includes('model.moe.experts'), names.join(', '));
    const groups = await post('session_groups', { experimentName: '', allowedStatuses: ['STATUS_UNKNOWN', 'STATUS_SUCCESS', 'STATUS_FAILURE', 'STATUS_RUNNING'], colParams: [], startIndex: 0, sliceSize: 10 });
    assert.equal(groups.sessionGroups.length, 1);
    assert.equal(groups.sessionGroups[0].sessions[0].status, 'STATUS_SUCCESS');
    assert.equal(groups.sessionGroups[0].hparams['method.kind'], 'advmoe');
  } finally {
    try {
      process.kill(-tb.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
  }
});
