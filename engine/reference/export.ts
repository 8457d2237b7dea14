/**
 * `advmoe export`: a run's model in the reference code's names and layouts, as a `torch.save` checkpoint its
 * `train_moe.py` resumes from (`state_dict`, `router`, `epoch`, `arch`, …) or as a safetensors file of the state dict
 * (README "Analyse a model trained with the reference code"). Only the network the reference code builds can be
 * exported; any other is refused naming the option that differs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExperimentConfig } from '../config/types';
import { type HostTensor, PyFloat, type TorchWritable, hostTensor, writeSafetensors, writeTorchCheckpoint } from '../interop';
import { loadModelCheckpoint } from '../jobs/checkpoints';
import { buildModel } from '../jobs/setup';
import type { Model } from '../models/types';
import { checkpointPath, listCheckpoints, readState } from '../runs/store';
import { AdvMoEError } from '../util/errors';
import { referenceKey, referenceModelConfig, referenceShape, toReferenceLayout } from './names';

export type ExportFormat = 'safetensors' | 'pth';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['safetensors', 'pth'];

export interface ExportOptions {
  runsDir: string;
  runId: string;
  format: ExportFormat;
  /** Checkpoint of the run (default: its last). */
  checkpoint?: string;
  /** Output file; its folder is made when missing. */
  out: string;
}

export interface ExportResult {
  file: string;
  format: ExportFormat;
  /** Keys in the state dict written (router copies and num_batches_tracked included). */
  keys: number;
}

/** Why the run's model is not the reference network, or null when it is. */
export function referenceMismatch(cfg: ExperimentConfig): string | null {
  const m = cfg.model;
  if (!m.moe.enabled) return 'the model is dense (model.moe.enabled false)';
  const want = referenceModelConfig({ experts: m.moe.experts, ratio: m.moe.expertWidth });
  const checks: Array<[string, unknown, unknown]> = [
    ['model.backbone', m.backbone, want.backbone],
    ['model.preset', m.preset, want.preset],
    ['model.widthMultiplier', m.widthMultiplier, want.widthMultiplier],
    ['model.padding', m.padding ?? 'same', want.padding],
    ['model.inputNormalization', m.inputNormalization ?? 'dataset', want.inputNormalization],
    ['model.moe.layout', m.moe.layout ?? 'blocks', want.moe.layout],
    ['model.moe.router', m.moe.router, want.moe.router],
    ['model.moe.topK', m.moe.topK, 1],
    ['model.moe.layers', m.moe.layers, 'all-blocks'],
    ['model.moe.routerNorm', m.moe.routerNorm, false],
  ];
  const bad = checks.filter(([, have, need]) => JSON.stringify(have) !== JSON.stringify(need));
  if (bad.length === 0) return null;
  return bad.map(([field, have, need]) => `${field} is ${JSON.stringify(have)} (the reference code's network needs ${JSON.stringify(need)})`).join('; ');
}

/** Names of the optional buffers (routers' selection biases) that training moved away from zero. */
function trainedSelectionBiases(model: Model): string[] {
  return model.params.filter((p) => p.optional && (p.variable.dataSync() as Float32Array).some((v) => v !== 0)).map((p) => p.name);
}

/**
 * The model's state dict as the reference's `model.state_dict()` has it, and its router's own state dict. Our
 * optional buffers (selection biases, zero unless `balanceBias` trained them) have no counterpart there.
 */
export function referenceStateDict(model: Model): { state: Map<string, HostTensor>; router: Map<string, HostTensor> } {
  const state = new Map<string, HostTensor>();
  const router = new Map<string, HostTensor>();
  for (const p of model.params.filter((q) => !q.optional)) {
    const { key, kind } = referenceKey(p.name, p.variable.rank);
    const values = toReferenceLayout(p.variable.dataSync() as Float32Array, p.variable.shape, kind);
    const t = hostTensor('float32', referenceShape(p.variable.shape, kind), values);
    state.set(key, t);
    if (key.startsWith('router.')) router.set(key.slice('router.'.length), t);
    // PyTorch's BatchNorm2d has a batch counter beside its running statistics; load_state_dict(strict) wants it.
    if (key.endsWith('.running_var')) {
      const counter = key.replace(/running_var$/, 'num_batches_tracked');
      const zero = hostTensor('int64', [], [0n]);
      state.set(counter, zero);
      if (counter.startsWith('router.')) router.set(counter.slice('router.'.length), zero);
    }
  }
  // set_router makes the router a sub-module of every MoE conv too: its state dict repeats the router under each.
  for (const layer of model.moeLayers) {
    const conv = referenceKey(`${layer.name}.kernel`, 4).key.replace(/\.weight$/, '');
    for (const [k, t] of router) state.set(`${conv}.router.${k}`, t);
  }
  return { state, router };
}

/** `torch.optim.SGD(...).state_dict()` before any step, for `count` parameters, with the run's schedule. */
function sgdState(count: number, cfg: ExperimentConfig): TorchWritable {
  return {
    state: {},
    param_groups: [
      {
        lr: new PyFloat(cfg.schedule.lr),
        momentum: new PyFloat(cfg.schedule.momentum),
        dampening: new PyFloat(0),
        weight_decay: new PyFloat(cfg.schedule.weightDecay),
        nesterov: false,
        maximize: false,
        foreach: null,
        differentiable: false,
        fused: null,
        params: Array.from({ length: count }, (_, i) => i),
      },
    ],
  };
}

export async function exportRun(o: ExportOptions): Promise<ExportResult> {
  if (!EXPORT_FORMATS.includes(o.format)) throw new AdvMoEError('INVALID_ARGUMENT', `--format: "${o.format}" is not one of ${EXPORT_FORMATS.join(', ')}`);
  const runState = readState(o.runsDir, o.runId);
  const available = listCheckpoints(o.runsDir, o.runId);
  const name = o.checkpoint ?? runState.lastCheckpoint ?? available[available.length - 1];
  if (!name || !available.includes(name)) {
    throw new AdvMoEError('RUN_NOT_FOUND', `run "${o.runId}" has no checkpoint${name ? ` "${name}"` : ''} (available: ${available.join(', ') || 'none'})`);
  }
  const { model, cfg, meta } = await loadModelCheckpoint(checkpointPath(o.runsDir, o.runId, name), (spec, c) => {
    const why = referenceMismatch(c);
    if (why) throw new AdvMoEError('INVALID_ARGUMENT', `run "${o.runId}" cannot be loaded by the reference code: ${why}`);
    return buildModel(c, spec);
  });
  try {
    const biased = trainedSelectionBiases(model);
    if (biased.length) {
      throw new AdvMoEError(
        'INVALID_ARGUMENT',
        `run "${o.runId}" cannot be loaded by the reference code: its router chooses with a selection bias (method.routing.balanceBias; ${biased.join(', ')}), which the reference router has no place for`,
      );
    }
    const { state, router } = referenceStateDict(model);
    const file = path.resolve(o.out);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (o.format === 'safetensors') {
      writeSafetensors(file, state, {
        format: 'pt',
        source: 'AdvMoE Studio',
        run: o.runId,
        checkpoint: name,
        n_expert: String(cfg.model.moe.experts),
        ratio: String(cfg.model.moe.expertWidth),
      });
    } else {
      await writeTorchCheckpoint(file, {
        epoch: Math.round(meta.epoch),
        arch: 'resnet18_cifar_moe',
        state_dict: state,
        router,
        // Not measured here; the reference's resume reads both.
        best_acc: new PyFloat(0),
        sa_record: new PyFloat(0),
        // Fresh SGD states (no momentum buffers), so the reference's resume, which loads both optimizers, works:
        // `optimizer` holds the backbone's parameters, `router_optimizer` the router's (train_moe.py builds them so).
        optimizer: sgdState(model.params.filter((p) => p.trainable && p.group === 'expert').length, cfg),
        router_optimizer: sgdState(model.params.filter((p) => p.trainable && p.group === 'router').length, cfg),
      });
    }
    return { file, format: o.format, keys: state.size };
  } finally {
    model.dispose();
  }
}
