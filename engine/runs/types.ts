/** On-disk run records (`.advmoe/runs/<run-id>/`), shared by the engine, the CLI and the extension. */

export type RunStatus = 'running' | 'finished' | 'interrupted' | 'failed';

/** `state.json`: rewritten atomically as the run goes. */
export interface RunState {
  id: string;
  name: string;
  /** The experiment file the run was started from (absolute path), if any. */
  configPath?: string;
  method: string;
  backbone: string;
  moe: boolean;
  status: RunStatus;
  createdAt: string;
  updatedAt: string;
  /** Completed epochs and optimizer steps. */
  epoch: number;
  step: number;
  totalSteps: number;
  /** Checkpoint file name under `checkpoints/` to resume from. */
  lastCheckpoint?: string;
  /** Backend the run trains on. */
  backend?: string;
  /** Process id while running (lets readers notice a dead run and call it interrupted). */
  pid?: number;
  /** Start time of that process (Linux /proc/<pid>/stat), so that a reused pid is not taken for the run's. */
  pidStart?: string;
  /** Last evaluated headline metrics. */
  headline: { sa?: number; ra?: number; routerRobustness?: number; expertRobustness?: number };
  error?: string;
  /** Warnings raised during training, e.g. router collapse. */
  warnings: string[];
}

/** One line of `metrics.jsonl`. `metrics` is a flat name → value map so views can plot any series. */
export interface MetricsRecord {
  kind: 'train' | 'eval';
  step: number;
  /** Fractional epoch (step / stepsPerEpoch). */
  epoch: number;
  /** Seconds since the run started (excluding time while not running). */
  time: number;
  metrics: Record<string, number>;
}
