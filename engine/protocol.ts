/**
 * The engine's JSON-RPC API (vscode-jsonrpc over the Node IPC channel of a forked engine process).
 * This module is the typed contract: the extension imports it; the engine's server implements it.
 * It must stay free of runtime dependencies beyond vscode-jsonrpc's type constructors.
 *
 * Long work (train, evaluate, attack, inspect) carries a client-chosen `jobId`; notifications name it,
 * and `cancel({ jobId })` (or the request's own cancellation token) stops it.
 */
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { BackendName } from './config/types';
import type { RobustnessReport, SampleInspection } from './analysis/types';
import type { MetricsRecord, RunState } from './runs/types';

export type { RobustnessReport, SampleInspection, MetricsRecord, RunState };
export type { PerSampleData } from './analysis/types';

/** Error codes of failed requests (ResponseError.data.code), see engine/util/errors.ts. */
export { type ErrorCode } from './util/errors';

export interface JobParams {
  jobId: string;
  /** The runs folder itself (usually `<workspace>/.advmoe/runs`); each run is a sub-folder. */
  runsDir: string;
}

export interface TrainParams extends JobParams {
  /** Experiment file to train from. Omit when resuming. */
  configPath?: string;
  /** Resume this run from its last checkpoint instead of starting a new one. */
  resumeRunId?: string;
  /** Resume even when state.json names another live process as the run's (a reused pid). */
  force?: boolean;
}
export interface TrainResult {
  runId: string;
  status: RunState['status'];
  headline: RunState['headline'];
  /** Routing balance of each MoE layer on the final analysis' clean test inputs (finished MoE runs only). */
  routing?: LayerBalance[];
}

/** How evenly one MoE layer routes (README "Metric definitions": router collapse). */
export interface LayerBalance {
  layer: string;
  /** Largest share of inputs given the same routing decision (1/C(N, k) when perfectly balanced). */
  decisionShare: number;
  /** Entropy of the routing decisions over log C(N, k): 1 balanced, 0 collapsed. */
  decisionEntropy: number;
  collapsed: boolean;
}

export interface EvaluateParams extends JobParams {
  runId: string;
  /** Checkpoint file under the run's `checkpoints/` (default: the last one). */
  checkpoint?: string;
  /** Override the number of test samples. */
  samples?: number;
}
export interface EvaluateResult {
  runId: string;
  report: RobustnessReport;
  /** Path of the saved `analysis/*.json`. */
  savedTo: string;
}

export interface AttackParams extends JobParams {
  runId: string;
  checkpoint?: string;
  attack: 'fgsm' | 'pgd' | 'apgd-ce' | 'router' | 'expert';
  eps?: number;
  steps?: number;
  samples?: number;
}
export interface AttackRunResult {
  runId: string;
  attack: AttackParams['attack'];
  eps: number;
  accuracy: number;
  samples: number;
}

export type DataSplit = 'test' | 'train';

export interface InspectParams extends JobParams {
  runId: string;
  checkpoint?: string;
  /** Sample ids (indices into `split`) to inspect. */
  sampleIds: number[];
  /** Default 'test'. */
  split?: DataSplit;
  attack?: 'fgsm' | 'pgd' | 'apgd-ce' | 'router' | 'expert';
  eps?: number;
  /** Attack iterations (default: the run's eval attack). */
  steps?: number;
  /** Attack the experts with routing frozen to the clean decision. */
  freezeRouting?: boolean;
}
export interface InspectResult {
  runId: string;
  samples: SampleInspection[];
}

/** Images of samples, for galleries: no model is loaded, only the data (and a saved analysis). */
export interface SamplesParams {
  runsDir: string;
  runId: string;
  ids: number[];
  /** Default 'test'. */
  split?: DataSplit;
  /** An `analysis/*.json` name of this run: also return the adversarial inputs of its full attack (test split only). */
  analysis?: string;
}
export interface SamplesResult {
  /** H, W, C of every image. */
  shape: [number, number, number];
  labels: number[];
  /** Per id: HWC bytes (pixel·255, rounded), base64. */
  clean: string[];
  /** Per id, as `clean`, when `analysis` was given; null for an id that analysis did not evaluate. */
  adversarial?: (string | null)[];
  /** Samples in the split. */
  count: number;
}

export interface CancelParams {
  jobId: string;
}

export interface BackendInfo {
  /** The backend in use. */
  name: Exclude<BackendName, 'auto'>;
  /** Why others were skipped, e.g. "tensorflow: @tensorflow/tfjs-node is not installed". */
  skipped: { name: Exclude<BackendName, 'auto'>; reason: string }[];
  threads: number;
  /** How `threads` was chosen, e.g. "calibrated: 1 thread 212 img/s, 2 threads 160 img/s; cached 2026-11-29". */
  threadsWhy?: string;
  simd: boolean;
  tfjsVersion: string;
  /** Decisions worth showing the user: fallbacks (e.g. wasm threads that failed to start), thread-count limits. */
  notes?: string[];
  /** On tensorflow / tensorflow-gpu: the native TensorFlow library's version (e.g. "2.21.0" for a wheel build). */
  nativeVersion?: string;
}

export interface ProgressNotification {
  jobId: string;
  runId?: string;
  /** e.g. "epoch 2/5", "PGD-10 eval". */
  message: string;
  /** Done work units and total (steps, samples). */
  done: number;
  total: number;
  /** Seconds, estimated. */
  eta?: number;
}
export interface MetricsNotification {
  jobId: string;
  runId: string;
  records: MetricsRecord[];
}
export interface LogNotification {
  jobId?: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}
/** The robustness analysis of an `evaluate` job so far, after each batch (the view fills in as results arrive). */
export interface AnalysisNotification {
  jobId: string;
  runId: string;
  /** Over the samples done so far; `perSample` only in the final one. */
  report: RobustnessReport;
  samplesDone: number;
  samplesTotal: number;
  final: boolean;
}
export interface RunStateNotification {
  jobId?: string;
  state: RunState;
}

/** Import a checkpoint of the reference code (README "Analyse a model trained with the reference code"). */
export interface ImportCheckpointParams extends JobParams {
  /** A `torch.save` file (.pth, .pt) or a .safetensors file, absolute path. */
  file: string;
  arch: 'resnet18';
  /** The reference's n_expert. */
  experts: number;
  /** The reference's ratio (planes = ratio·planes). */
  ratio: number;
  dataset?: 'cifar10' | 'cifar100';
  /** Run name (default: the file's name). */
  name?: string;
  /** data.root of the new run (default: `<cwd>/data`). */
  dataRoot?: string;
}
export interface ImportCheckpointResult {
  runId: string;
  runFolder: string;
  /** The checkpoint written under the run's `checkpoints/`. */
  checkpoint: string;
  format: 'torch' | 'safetensors';
  /** Tensors assigned to the model. */
  parameters: number;
  /** Keys read and deliberately left out: BN `num_batches_tracked` and the per-MoE-conv copies of the router. */
  ignored: { numBatchesTracked: number; routerCopies: number };
  /** The checkpoint's `epoch` and `best_acc`, when it has them. */
  epoch?: number;
  bestAcc?: number;
}

export const Requests = {
  train: new RequestType<TrainParams, TrainResult, void>('advmoe/train'),
  evaluate: new RequestType<EvaluateParams, EvaluateResult, void>('advmoe/evaluate'),
  inspect: new RequestType<InspectParams, InspectResult, void>('advmoe/inspect'),
  samples: new RequestType<SamplesParams, SamplesResult, void>('advmoe/samples'),
  cancel: new RequestType<CancelParams, { cancelled: boolean }, void>('advmoe/cancel'),
  importCheckpoint: new RequestType<ImportCheckpointParams, ImportCheckpointResult, void>('advmoe/importCheckpoint'),
  backendInfo: new RequestType0<BackendInfo, void>('advmoe/backendInfo'),
} as const;

export const Notifications = {
  progress: new NotificationType<ProgressNotification>('advmoe/progress'),
  metrics: new NotificationType<MetricsNotification>('advmoe/metrics'),
  log: new NotificationType<LogNotification>('advmoe/log'),
  runState: new NotificationType<RunStateNotification>('advmoe/runState'),
  analysis: new NotificationType<AnalysisNotification>('advmoe/analysis'),
} as const;
