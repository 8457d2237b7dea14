/**
 * The training job end to end on real MNIST (a few samples): run folder contents, interrupt + resume
 * reproducing the uninterrupted run exactly, bad input handling, and the evaluate/attack/inspect jobs.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig } from '../../../engine/config/load';
import { silentReporter, type JobContext } from '../../../engine/jobs/context';
import { attackJob, evaluateJob, inspectJob, samplesJob } from '../../../engine/jobs/evaluate';
import { toBytes } from '../../../engine/jobs/evalSteps';
import type { AnalysisNotification } from '../../../engine/protocol';
import { trainJob } from '../../../engine/jobs/train';
import { readCheckpoint, writeCheckpoint } from '../../../engine/models/checkpoint';
import { analysisImagesPath, listAnalyses, readAnalysisImages, readMetrics, readState, checkpointPath } from '../../../engine/runs/store';
import { isAdvMoEError } from '../../../engine/util/errors';
import { eventsFileName, writeRunEvents } from '../../../engine/tensorboard/runEvents';
import { setupTestBackend } from '../helpers';
import { readEventFile } from '../tensorboard/readEvents';
import { ROUTING_SHARE_METRIC } from '../../../contract/runFolder';

const raw = {
  name: 'resume-check',
  seed: 7,
  model: { backbone: 'resnet18', preset: 'tiny', widthMultiplier: 0.25, moe: { enabled: true, experts: 2, topK: 1 } },
  method: { kind: 'advmoe', attack: { steps: 1, stepSize: 0.3 }, epsWarmupEpochs: 0 },
  data: { dataset: 'mnist', trainSamples: 48, testSamples: 16 },
  schedule: { epochs: 2, batchSize: 16 },
  eval: { samples: 12, attack: { steps: 2, stepSize: 0.15 }, everyEpochs: 1 },
  logEverySteps: 1,
};
const config = resolveConfig(raw);

function ctx(): JobContext {
  return { reporter: silentReporter, signal: new AbortController().signal };
}

/** A job context that cancels once step `n` is reported: the run stops before step n + 1, as after a Ctrl-C. */
function stopAfterStep(n: number): JobContext {
  const controller = new AbortController();
  return { signal: controller.signal, reporter: { ...silentReporter, progress: (p) => { if (p.message.startsWith('epoch') && p.message.endsWith(`step ${n}/6`)) controller.abort(); } } };
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-train-'));
}

async function finalParams(runsDir: string, runId: string): Promise<Map<string, Float32Array>> {
  const ck = await readCheckpoint(checkpointPath(runsDir, runId, readState(runsDir, runId).lastCheckpoint!));
  const out = new Map<string, Float32Array>();
  for (const [k, t] of Object.entries(ck.tensors)) {
    out.set(k, t.dataSync() as Float32Array);
    t.dispose();
  }
  return out;
}

before(async () => {
  await setupTestBackend();
});

let finishedRun: { runsDir: string; runId: string } | null = null;

test('an interrupted and resumed run ends exactly where the uninterrupted run ends', async () => {
  const a = tmp();
  const full = await trainJob({ runsDir: a, config }, ctx());
  assert.equal(full.status, 'finished');
  const b = tmp();
  const part = await trainJob({ runsDir: b, config }, stopAfterStep(2));
  assert.equal(part.status, 'interrupted');
  const mid = readState(b, part.runId);
  assert.equal(mid.status, 'interrupted');
  assert.equal(mid.step, 2);
  assert.ok(mid.lastCheckpoint?.startsWith('step-0000002'), `checkpoint at the stop: ${mid.lastCheckpoint}`);
  const resumed = await trainJob({ runsDir: b, resumeRunId: part.runId }, ctx());
  assert.equal(resumed.status, 'finished');

  const pa = await finalParams(a, full.runId);
  const pb = await finalParams(b, part.runId);
  assert.deepEqual([...pb.keys()].sort(), [...pa.keys()].sort());
  for (const [k, v] of pa) assert.deepEqual(pb.get(k), v, `tensor ${k} differs after resume`);

  const strip = (rs: ReturnType<typeof readMetrics>['records']) => rs.map((r) => ({ ...r, time: 0 }));
  assert.deepEqual(strip(readMetrics(b, part.runId).records), strip(readMetrics(a, full.runId).records));
  assert.deepEqual(resumed.headline, full.headline);
  finishedRun = { runsDir: a, runId: full.runId };

  const files = fs.readdirSync(path.join(a, full.runId)).sort();
  const eventsFile = eventsFileName(readState(a, full.runId));
  assert.deepEqual(files, ['analysis', 'checkpoints', 'config.json', eventsFile, 'metrics.jsonl', 'state.json']);
  // TensorBoard events written during training (appended as metrics were logged; rebuilt on resume) hold the
  // same scalars in both runs, and are what a rebuild from the run folder gives, byte for byte.
  const scalars = (dir: string, id: string) =>
    readEventFile(fs.readFileSync(path.join(dir, id, eventsFileName(readState(dir, id))))).flatMap((e) => e.scalars.map(([tag, v]) => [tag, e.step, v]));
  const trained = scalars(a, full.runId);
  assert.ok(trained.some(([tag]) => tag === 'train/loss') && trained.some(([tag]) => String(tag).endsWith('/decisionShare')));
  assert.deepEqual(scalars(b, part.runId), trained);
  for (const [dir, id] of [[a, full.runId], [b, part.runId]]) {
    const live = fs.readFileSync(path.join(dir, id, eventsFileName(readState(dir, id))));
    writeRunEvents(dir, id);
    assert.deepEqual(fs.readFileSync(path.join(dir, id, eventsFileName(readState(dir, id)))), live, `events of ${id}`);
  }
  const st = readState(a, full.runId);
  assert.equal(st.epoch, 2);
  assert.equal(st.step, 6);
  // The headline is the final analysis's, and the last metrics record says the same.
  const report = JSON.parse(fs.readFileSync(path.join(a, full.runId, 'analysis', 'final-step-6.json'), 'utf8'));
  assert.deepEqual(st.headline, { sa: report.sa, ra: report.ra, routerRobustness: report.routerRobustness.decisionsKept, expertRobustness: report.expertRobustness.accuracy });
  assert.deepEqual(readMetrics(a, full.runId).records.at(-1)!.metrics, st.headline);
  const kinds = readMetrics(a, full.runId).records.map((r) => r.kind);
  assert.equal(kinds.filter((k) => k === 'train').length, 6);
  assert.equal(kinds.filter((k) => k === 'eval').length, 2, 'one mid-run eval (epoch 1) and the final one');
  // The mid-run eval also records, per MoE layer, the largest share of its clean samples on one routing decision.
  const midEval = readMetrics(a, full.runId).records.find((r) => r.kind === 'eval')!.metrics;
  const shares = Object.keys(midEval).filter((k) => k.startsWith(ROUTING_SHARE_METRIC));
  assert.deepEqual(shares, report.layers.map((l: { layer: string }) => `${ROUTING_SHARE_METRIC}${l.layer}`));
  for (const k of shares) assert.ok(midEval[k] >= 1 / 2 && midEval[k] <= 1, `${k}: ${midEval[k]}`);
});

test('a cancel that arrives inside a step reaches its attack: the step is abandoned and the resumed run is exact', async () => {
  assert.ok(finishedRun, 'needs the uninterrupted run of the first test');
  const dir = tmp();
  // The signal turns true at its second read after step 2's progress: the first read is the loop's check before
  // step 3, the second comes from inside step 3's first PGD. A stop at the step boundary would checkpoint step 3.
  let armed = false;
  let reads = 0;
  const signal = { get aborted() { return armed && ++reads >= 2; } } as unknown as AbortSignal;
  const r = await trainJob(
    { runsDir: dir, config },
    { signal, reporter: { ...silentReporter, progress: (p) => { if (p.message.endsWith('step 2/6')) armed = true; } } },
  );
  assert.equal(r.status, 'interrupted');
  assert.ok(reads >= 2, 'the attack inside step 3 read the signal');
  assert.equal(readState(dir, r.runId).lastCheckpoint, 'step-0000002.ckpt', 'step 3 was abandoned, not finished');
  assert.equal(readState(dir, r.runId).step, 2);
  const resumed = await trainJob({ runsDir: dir, resumeRunId: r.runId }, ctx());
  assert.equal(resumed.status, 'finished');
  const expected = await finalParams(finishedRun!.runsDir, finishedRun!.runId);
  const got = await finalParams(dir, r.runId);
  for (const [k, v] of expected) assert.deepEqual(got.get(k), v, `tensor ${k} differs after a cancel inside a step`);
});

test('evaluate, attack and inspect work on the trained run, and its folder holds what they wrote', async () => {
  assert.ok(finishedRun, 'needs the run of the previous test');
  const { runsDir, runId } = finishedRun;
  const notes: Omit<AnalysisNotification, 'jobId'>[] = [];
  const ev = await evaluateJob({ jobId: 'e', runsDir, runId, samples: 8 }, { ...ctx(), reporter: { ...silentReporter, analysis: (a) => notes.push(a) } });
  assert.equal(ev.report.samples, 8);
  assert.ok(fs.existsSync(ev.savedTo));
  // One batch: the only notification is the final report, with per-sample columns.
  assert.deepEqual(notes.map((a) => [a.samplesDone, a.samplesTotal, a.final]), [[8, 8, true]]);
  assert.equal(notes[0].report.perSample?.ids.length, 8);
  // The attacked inputs are stored beside the report and served by `samples` with the clean ones.
  const name = path.basename(ev.savedTo);
  assert.equal(readAnalysisImages(runsDir, runId, name)?.length, 8 * 28 * 28);
  const sm = await samplesJob({ runsDir, runId, ids: [3, 0], analysis: name });
  assert.deepEqual(sm.shape, [28, 28, 1]);
  assert.equal(sm.count, 16);
  const ins0 = await inspectJob({ jobId: 'i0', runsDir, runId, sampleIds: [3, 0], steps: 1, eps: 0 }, ctx());
  assert.deepEqual(sm.labels, ins0.samples.map((s) => s.label));
  assert.deepEqual(sm.clean.map((b) => Buffer.from(b, 'base64')), ins0.samples.map((s) => Buffer.from(toBytes(s.clean))), 'clean bytes are the test images');
  assert.equal(sm.adversarial?.length, 2);
  const adv3 = Buffer.from(sm.adversarial![0]!, 'base64');
  const clean3 = Buffer.from(sm.clean[0], 'base64');
  assert.ok(adv3.some((v, i) => v !== clean3[i]), 'the stored adversarial image differs from the clean one');
  assert.ok(adv3.every((v, i) => Math.abs(v - clean3[i]) <= Math.ceil(0.3 * 255) + 1), 'and stays within ε (0.3) of it');
  const beyond = await samplesJob({ runsDir, runId, ids: [12], analysis: name });
  assert.deepEqual(beyond.adversarial, [null], 'a sample the analysis did not evaluate has no adversarial image');
  await assert.rejects(samplesJob({ runsDir, runId, ids: [16] }), (e) => isAdvMoEError(e, 'INVALID_ARGUMENT') && /outside the 16 test samples/.test((e as Error).message));
  await assert.rejects(samplesJob({ runsDir, runId, ids: [0], analysis: 'missing.json' }), (e) => isAdvMoEError(e, 'DATA_NOT_FOUND'));
  const imgFile = analysisImagesPath(runsDir, runId, name);
  fs.writeFileSync(imgFile, fs.readFileSync(imgFile).subarray(0, 100));
  await assert.rejects(samplesJob({ runsDir, runId, ids: [0], analysis: name }), (e) => isAdvMoEError(e, 'DATA_CORRUPT') && /truncated or damaged/.test((e as Error).message));
  const train = await samplesJob({ runsDir, runId, ids: [47], split: 'train' });
  assert.equal(train.count, 48);
  await assert.rejects(inspectJob({ jobId: 'i1', runsDir, runId, sampleIds: [0], split: 'validation' as never }, ctx()), (e) => isAdvMoEError(e, 'INVALID_ARGUMENT') && /split must be/.test((e as Error).message));
  const insTrain = await inspectJob({ jobId: 'i2', runsDir, runId, sampleIds: [40], split: 'train', steps: 1 }, ctx());
  assert.equal(insTrain.samples[0].id, 40);
  assert.equal(insTrain.samples[0].label, (await samplesJob({ runsDir, runId, ids: [40], split: 'train' })).labels[0]);
  assert.ok(ev.report.routerRobustness && ev.report.expertRobustness);
  assert.equal(ev.report.layers.length, 8);
  const lat = ev.report.cost.latencyMs!;
  assert.ok(lat.moe! > 0 && lat.moeMasked! > 0 && lat.dense! > 0 && lat.batch === 8, `latency of sparse, masked and dense inference: ${JSON.stringify(lat)}`);
  const at = await attackJob({ jobId: 'a', runsDir, runId, attack: 'fgsm', eps: 0.1, samples: 8 }, ctx());
  assert.equal(at.samples, 8);
  assert.equal(at.eps, 0.1);
  const ins = await inspectJob({ jobId: 'i', runsDir, runId, sampleIds: [0, 3], eps: 0.2, freezeRouting: true }, ctx());
  assert.deepEqual(ins.samples.map((s) => s.id), [0, 3]);
  assert.equal(ins.samples[0].routing.length, 8);
  assert.equal(ins.samples[0].clean.length, 28 * 28);
  await assert.rejects(inspectJob({ jobId: 'i', runsDir, runId, sampleIds: [16] }, ctx()), (e) => isAdvMoEError(e, 'INVALID_ARGUMENT') && /outside the 16 test samples/.test((e as Error).message));
  await assert.rejects(evaluateJob({ jobId: 'e', runsDir, runId, checkpoint: 'nope.ckpt' }, ctx()), (e) => isAdvMoEError(e, 'RUN_NOT_FOUND') && /available: epoch-0001\.ckpt, epoch-0002\.ckpt/.test((e as Error).message));
  // A sample count above the config's eval.samples is honoured (all 16 test samples, not 12).
  const all = await evaluateJob({ jobId: 'e3', runsDir, runId, samples: 16, checkpoint: 'epoch-0001.ckpt' }, ctx());
  assert.equal(all.report.samples, 16);
  assert.equal(all.report.perSample?.ids.length, 16);
  assert.equal(readState(runsDir, runId).status, 'finished');
  assert.ok(readMetrics(runsDir, runId).records.length >= 8);
  const analyses = listAnalyses(runsDir, runId);
  assert.equal(analyses.length, 3);
  // The training job's final analysis stored its adversarial inputs too.
  assert.equal(readAnalysisImages(runsDir, runId, analyses.find((a) => a.startsWith('final-'))!)?.length, 12 * 28 * 28);
  await assert.rejects(trainJob({ runsDir, resumeRunId: runId }, ctx()), (e) => isAdvMoEError(e, 'INVALID_ARGUMENT') && /already finished/.test((e as Error).message));
});

test('a corrupt checkpoint stops a resume with a clear error and damages nothing', async () => {
  const dir = tmp();
  const part = await trainJob({ runsDir: dir, config }, stopAfterStep(1));
  const st = readState(dir, part.runId);
  const file = checkpointPath(dir, part.runId, st.lastCheckpoint!);
  // A forged header (valid hashes) whose step is past the end would mark the run finished without training.
  const original = fs.readFileSync(file);
  const ck = await readCheckpoint(file);
  await writeCheckpoint(file, { tensors: ck.tensors, config: ck.config, meta: { ...(ck.meta as object), step: 1e9 } });
  for (const t of Object.values(ck.tensors)) t.dispose();
  await assert.rejects(trainJob({ runsDir: dir, resumeRunId: part.runId }, ctx()), (e) => isAdvMoEError(e, 'CHECKPOINT_CORRUPT') && /meta\.step 1000000000 is not a step of this run \(0–6\)/.test(e.message));
  assert.equal(readState(dir, part.runId).status, 'interrupted');
  fs.writeFileSync(file, original);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 5] ^= 0xff;
  fs.writeFileSync(file, bytes);
  const before = fs.readFileSync(path.join(dir, part.runId, 'metrics.jsonl'), 'utf8');
  await assert.rejects(trainJob({ runsDir: dir, resumeRunId: part.runId }, ctx()), (e) => isAdvMoEError(e, 'CHECKPOINT_CORRUPT') && e.message.includes(st.lastCheckpoint!));
  assert.equal(fs.readFileSync(path.join(dir, part.runId, 'metrics.jsonl'), 'utf8'), before);
  assert.equal(readState(dir, part.runId).status, 'interrupted');
  // A state.json naming a checkpoint that is gone: a clear error before anything loads, not INTERNAL (ENOENT).
  fs.rmSync(file);
  await assert.rejects(trainJob({ runsDir: dir, resumeRunId: part.runId }, ctx()), (e) => isAdvMoEError(e, 'CHECKPOINT_CORRUPT') && /names checkpoint step-0000001\.ckpt, which is missing/.test(e.message));
  await assert.rejects(readCheckpoint(file), (e) => isAdvMoEError(e, 'CHECKPOINT_CORRUPT') && /the file is missing/.test(e.message));
  assert.equal(readState(dir, part.runId).status, 'interrupted');
  // A run that reads as running (here: its pid is a live process with no start time recorded) is busy, unless forced.
  const stateFile = path.join(dir, part.runId, 'state.json');
  const running = { ...JSON.parse(fs.readFileSync(stateFile, 'utf8')), status: 'running', pid: process.ppid, pidStart: undefined };
  fs.writeFileSync(stateFile, JSON.stringify(running));
  await assert.rejects(trainJob({ runsDir: dir, resumeRunId: part.runId }, ctx()), (e) => isAdvMoEError(e, 'RUN_BUSY') && /resume with --force/.test(e.message));
  await assert.rejects(trainJob({ runsDir: dir, resumeRunId: part.runId, force: true }, ctx()), (e) => isAdvMoEError(e, 'CHECKPOINT_CORRUPT'), 'forced past RUN_BUSY');
});

test('freezeRoutersAfterEpochs: from that step on no router step runs and the routers keep their values', async () => {
  const dir = tmp();
  const frozen = resolveConfig({ ...raw, name: 'freeze-check', method: { ...raw.method, routing: { balanceBias: 0.1, freezeRoutersAfterEpochs: 1 } }, eval: { ...raw.eval, everyEpochs: 0 } });
  const r = await trainJob({ runsDir: dir, config: frozen }, ctx());
  const rows = readMetrics(dir, r.runId).records.filter((m) => m.kind === 'train');
  // 48 samples in batches of 16: steps 1–3 are epoch 1 (routers learn), 4–6 epoch 2 (frozen).
  assert.deepEqual(rows.map((m) => [m.step, typeof m.metrics.routerLoss]), [[1, 'number'], [2, 'number'], [3, 'number'], [4, 'undefined'], [5, 'undefined'], [6, 'undefined']]);
  const routers = async (ckpt: string) => {
    const ck = await readCheckpoint(checkpointPath(dir, r.runId, ckpt));
    const out: Record<string, number[]> = {};
    for (const [k, t] of Object.entries(ck.tensors)) {
      if (/router/.test(k)) out[k] = Array.from(t.dataSync());
      t.dispose();
    }
    return out;
  };
  const [atFreeze, atEnd] = [await routers('epoch-0001.ckpt'), await routers('epoch-0002.ckpt')];
  assert.ok(Object.keys(atFreeze).some((k) => k.endsWith('selectionBias') && atFreeze[k].some((v) => v !== 0)), 'the bias moved before the freeze');
  assert.deepEqual(atEnd, atFreeze);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a cancelled job stops at the next step with a resumable checkpoint', async () => {
  const dir = tmp();
  const controller = new AbortController();
  const messages: string[] = [];
  let steps = 0;
  const r = await trainJob(
    { runsDir: dir, config },
    {
      signal: controller.signal,
      reporter: { ...silentReporter, progress: (p) => { messages.push(p.message); if (p.message.startsWith('epoch') && ++steps === 1) controller.abort(); } },
    },
  );
  assert.equal(messages[0], 'starting step 1/6', 'progress is reported before the first step, which can be long');
  assert.equal(r.status, 'interrupted');
  const st = readState(dir, r.runId);
  assert.equal(st.lastCheckpoint, 'step-0000001.ckpt');
});

test('bad input: missing config file, dense model with advmoe', async () => {
  const dir = tmp();
  // A runs folder that is a file is refused before any data loads.
  const file = path.join(dir, 'runs-file');
  fs.writeFileSync(file, '');
  await assert.rejects(trainJob({ runsDir: file, config }, ctx()), (e) => isAdvMoEError(e, 'INVALID_ARGUMENT') && /runs folder .*runs-file is a file/.test(e.message));
  fs.rmSync(file);
  await assert.rejects(trainJob({ runsDir: dir, configPath: path.join(dir, 'missing.advmoe.json') }, ctx()), (e) => isAdvMoEError(e, 'CONFIG_NOT_FOUND'));
  assert.deepEqual(fs.readdirSync(dir), [], 'no run folder for a config that does not load');
  await assert.rejects(trainJob({ runsDir: dir, resumeRunId: 'nope' }, ctx()), (e) => isAdvMoEError(e, 'RUN_NOT_FOUND'));
});
