/** On-disk run records (`.advmoe/runs/<run-id>/`): defined once in the run-folder contract (contract/runFolder.ts). */
export type { MetricsRecord, RunState, RunStatus } from '../../contract/runFolder';
