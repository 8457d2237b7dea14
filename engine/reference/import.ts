/**
 * `advmoe import`: a checkpoint of the reference code (a `torch.save` zip, `.pth`/`.pt`, or `.safetensors`) becomes a
 * run folder like any trained here (README "Analyse a model trained with the reference code"). Nothing from the
 * file is executed (engine/interop reads it); every tensor is checked against the network the options describe, and
 * the first missing, unexpected or mis-shaped one is named. The run folder is written only once the whole model
 * has been read and checked, and removed again if writing it fails, so a failed import leaves nothing behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { resolveConfig } from '../config/load';
import type { ExperimentConfig } from '../config/types';
import { type HostTensor, type PyValue, dictGet, readSafetensors, readTorchCheckpoint, tensorsOf, toFloat32 } from '../interop';
import { modelTensors, writeCheckpoint } from '../models/checkpoint';
import type { ImportCheckpointResult } from '../protocol';
import { createModel } from '../models/factory';
import type { DataSpec } from '../models/net';
import type { Model } from '../models/types';
import { checkpointPath, createRun, runDir, writeState } from '../runs/store';
import { AdvMoEError } from '../util/errors';
import { checkReferenceOptions, ourShape, type ReferenceModelOptions, referenceKey, referenceModelConfig, referenceShape, routerCopyOf, toOurLayout } from './names';

/** Datasets the reference's CIFAR ResNet takes (32×32×3). */
export const IMPORT_DATASETS = ['cifar10', 'cifar100'] as const;
export type ImportDataset = (typeof IMPORT_DATASETS)[number];
const CLASSES: Record<ImportDataset, number> = { cifar10: 10, cifar100: 100 };

/** Name of the checkpoint an import writes into its run folder. */
export const IMPORTED_CHECKPOINT = 'imported.ckpt';

export interface ImportOptions extends ReferenceModelOptions {
  file: string;
  runsDir: string;
  dataset?: string;
  /** Run name (default: the file's name). */
  name?: string;
  /** data.root of the run (default: `<baseDir>/data`, where `advmoe data download` puts CIFAR). */
  dataRoot?: string;
  /** Folder relative paths are resolved against (default: the current folder). */
  baseDir?: string;
}

/** What an import did (the RPC result type, engine/protocol.ts). */
export type ImportResult = ImportCheckpointResult;

/** The state dict a file holds, with the checkpoint's other entries of interest. */
interface ReadState {
  tensors: Map<string, HostTensor>;
  format: ImportResult['format'];
  epoch?: number;
  bestAcc?: number;
}

function scalar(v: PyValue | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v && typeof v === 'object' && 'data' in v && 'shape' in v && (v as HostTensor).data.length === 1) return Number((v as HostTensor).data[0]);
  return undefined;
}

async function readState(file: string): Promise<ReadState> {
  if (/\.safetensors$/i.test(file)) {
    const { tensors } = await readSafetensors(file);
    return { tensors, format: 'safetensors' };
  }
  const tree = await readTorchCheckpoint(file);
  const nested = dictGet(tree, 'state_dict');
  const state = tensorsOf(nested ?? tree);
  if (!state) {
    throw new AdvMoEError(
      'CHECKPOINT_MISMATCH',
      nested === undefined
        ? `${file} holds neither a "state_dict" entry nor a state dict of tensors; is it a checkpoint of the reference code?`
        : `${file}: "state_dict" is not a dict of tensors`,
    );
  }
  // The reference also saves the router on its own ("router"); it fills in a state dict that lacks router.* keys.
  const router = tensorsOf(dictGet(tree, 'router'));
  if (router && ![...state.keys()].some((k) => k.startsWith('router.'))) for (const [k, t] of router) state.set(`router.${k}`, t);
  return { tensors: state, format: 'torch', epoch: scalar(dictGet(tree, 'epoch')), bestAcc: scalar(dictGet(tree, 'best_acc')) };
}

/** `module.` prefixes of a DataParallel model, when every key has one. */
function stripDataParallel(tensors: Map<string, HostTensor>): Map<string, HostTensor> {
  const keys = [...tensors.keys()];
  if (keys.length === 0 || !keys.every((k) => k.startsWith('module.'))) return tensors;
  return new Map([...tensors].map(([k, t]) => [k.slice('module.'.length), t]));
}

function sameValues(a: HostTensor, b: HostTensor): boolean {
  if (a.shape.join() !== b.shape.join() || a.data.length !== b.data.length) return false;
  if (a.data === b.data) return true;
  const x = toFloat32(a);
  const y = toFloat32(b);
  for (let i = 0; i < x.length; i++) if (!(x[i] === y[i] || (x[i] !== x[i] && y[i] !== y[i]))) return false;
  return true;
}

const FLOAT_DTYPES = new Set(['float32', 'float16', 'bfloat16', 'float64']);

/**
 * The checkpoint's tensors for each of the model's parameters, in our layout: all-or-nothing, naming the first
 * missing, mis-shaped or unexpected key (in the reference's names and shapes).
 */
export function mapReferenceTensors(model: Model, source: Map<string, HostTensor>, describe: string): { values: Map<string, Float32Array>; ignored: ImportResult['ignored'] } {
  const tensors = stripDataParallel(source);
  const ignored = { numBatchesTracked: 0, routerCopies: 0 };
  const remaining = new Map(tensors);
  for (const key of tensors.keys()) {
    if (key.endsWith('.num_batches_tracked')) {
      remaining.delete(key);
      ignored.numBatchesTracked++;
      continue;
    }
    const main = routerCopyOf(key);
    if (main === null) continue;
    const copy = tensors.get(key)!;
    const original = tensors.get(main);
    if (original && !sameValues(copy, original)) {
      throw new AdvMoEError('CHECKPOINT_MISMATCH', `${key} differs from ${main}: the reference shares one router between all MoE convs, this checkpoint does not`);
    }
    if (!original) remaining.set(main, copy);
    remaining.delete(key);
    ignored.routerCopies++;
  }
  // Our optional buffers (routers' selection biases) have no counterpart in the reference: they stay zero.
  const wanted = new Map(
    model.params.filter((p) => !p.optional).map((p) => {
      const { key, kind } = referenceKey(p.name, p.variable.rank);
      return [key, { param: p, kind, shape: referenceShape(p.variable.shape, kind) }] as const;
    }),
  );
  // In the file's order, so that "the first mismatch" is the first the file holds.
  const values = new Map<string, Float32Array>();
  for (const [key, t] of remaining) {
    const w = wanted.get(key);
    if (!w) throw new AdvMoEError('CHECKPOINT_MISMATCH', `${key} (shape [${t.shape.join(', ')}]) is not a parameter of ${describe}; check --arch, --experts and --ratio`, { key });
    if (t.shape.join() !== w.shape.join()) {
      throw new AdvMoEError('CHECKPOINT_MISMATCH', `${key} has shape [${t.shape.join(', ')}] in the checkpoint; ${describe} needs [${w.shape.join(', ')}]`, {
        key,
        checkpointShape: t.shape,
        expectedShape: w.shape,
      });
    }
    if (!FLOAT_DTYPES.has(t.dtype)) throw new AdvMoEError('CHECKPOINT_MISMATCH', `${key} is ${t.dtype}; a floating-point tensor was expected`, { key });
    if (ourShape(t.shape, w.kind).join() !== w.param.variable.shape.join()) throw new Error(`layout mapping of ${key} is inconsistent`);
    values.set(w.param.name, toOurLayout(toFloat32(t), t.shape, w.kind));
  }
  for (const [key, w] of wanted) {
    if (!values.has(w.param.name)) throw new AdvMoEError('CHECKPOINT_MISMATCH', `${key} is missing from the checkpoint (${describe} needs it, shape [${w.shape.join(', ')}])`, { key });
  }
  return { values, ignored };
}

/** The experiment an imported run carries: the reference network, the dataset, the reference's training method. */
export function importedConfig(o: ImportOptions, experts: number, ratio: number, dataset: ImportDataset): ExperimentConfig {
  const model = referenceModelConfig({ experts, ratio });
  return resolveConfig(
    {
      name: o.name ?? path.basename(o.file).replace(/\.(pth|pt|tar|safetensors)$/gi, ''),
      data: { dataset, ...(o.dataRoot !== undefined ? { root: o.dataRoot } : {}) },
      model,
      method: { kind: 'official' },
    },
    { baseDir: o.baseDir ?? process.cwd() },
  );
}

export async function importReferenceCheckpoint(o: ImportOptions): Promise<ImportResult> {
  const { experts, ratio } = checkReferenceOptions(o);
  const dataset = (o.dataset ?? 'cifar10') as ImportDataset;
  if (!IMPORT_DATASETS.includes(dataset)) throw new AdvMoEError('INVALID_ARGUMENT', `--dataset: "${o.dataset}" is not one of ${IMPORT_DATASETS.join(', ')} (the reference's CIFAR ResNet takes 32×32×3 images)`);
  if (!fs.existsSync(o.file)) throw new AdvMoEError('INVALID_ARGUMENT', `no such checkpoint file: ${o.file}`);
  const cfg = importedConfig(o, experts, ratio, dataset);
  const spec: DataSpec = { inputShape: [32, 32, 3], numClasses: CLASSES[dataset], mean: [0, 0, 0], std: [1, 1, 1] };
  const describe = `the reference ResNet-18 MoE (N = ${experts}, ratio ${ratio}, ${CLASSES[dataset]} classes)`;

  const read = await readState(o.file);
  const model = createModel(cfg.model, spec, cfg.seed);
  try {
    const { values, ignored } = mapReferenceTensors(model, read.tensors, describe);
    tf.tidy(() => {
      for (const p of model.params) if (!p.optional) p.variable.assign(tf.tensor(values.get(p.name)!, p.variable.shape, 'float32'));
    });
    const state = createRun(o.runsDir, { config: cfg, totalSteps: 0 });
    const folder = runDir(o.runsDir, state.id);
    try {
      const epoch = read.epoch !== undefined && Number.isFinite(read.epoch) && read.epoch >= 0 ? read.epoch : 0;
      await writeCheckpoint(checkpointPath(o.runsDir, state.id, IMPORTED_CHECKPOINT), {
        tensors: modelTensors(model),
        // What loadModelCheckpoint needs (the data spec); `kind` tells it apart from a training checkpoint to resume.
        meta: { kind: 'imported', source: path.resolve(o.file), format: read.format, position: { epoch: 0, batch: 0 }, step: 0, epoch, elapsed: 0, dataSpec: spec },
        config: cfg,
      });
      state.status = 'finished';
      state.lastCheckpoint = IMPORTED_CHECKPOINT;
      state.epoch = epoch;
      delete state.pid;
      delete state.pidStart;
      state.updatedAt = new Date().toISOString();
      writeState(o.runsDir, state);
    } catch (e) {
      fs.rmSync(folder, { recursive: true, force: true });
      throw e;
    }
    return {
      runId: state.id,
      runFolder: folder,
      checkpoint: IMPORTED_CHECKPOINT,
      format: read.format,
      parameters: values.size,
      ignored,
      ...(read.epoch !== undefined ? { epoch: read.epoch } : {}),
      ...(read.bestAcc !== undefined ? { bestAcc: read.bestAcc } : {}),
    };
  } finally {
    model.dispose();
  }
}
