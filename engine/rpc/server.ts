/**
 * The engine's JSON-RPC server: implements engine/protocol.ts on a message connection. Every long request
 * gets an AbortController, reachable by its jobId (`cancel`) and by the request's own cancellation token.
 */
import { type CancellationToken, type MessageConnection, ResponseError } from 'vscode-jsonrpc';
import type { JobContext, JobReporter } from '../jobs/context';
import { evaluateJob, inspectJob, samplesJob } from '../jobs/evaluate';
import { trainJob } from '../jobs/train';
import {
  type BackendInfo,
  type CancelParams,
  type ImportCheckpointParams,
  type ImportCheckpointResult,
  Notifications,
  Requests,
  type TrainParams,
  type TrainResult,
} from '../protocol';
import { importReferenceCheckpoint } from '../reference/import';
import { AdvMoEError, errorMessage } from '../util/errors';
import { checkParams, type RequestName } from './params';

/** Application error code range of JSON-RPC (-32000..-32099 are reserved for implementations). */
const APP_ERROR = -32000;

export function toResponseError(e: unknown): ResponseError<{ code: string; details?: unknown }> {
  if (e instanceof ResponseError) return e;
  if (e instanceof AdvMoEError) return new ResponseError(APP_ERROR, e.message, { code: e.code, details: e.details });
  return new ResponseError(APP_ERROR, errorMessage(e), { code: 'INTERNAL' });
}

export interface ServeOptions {
  /** Resolves once the tfjs backend is initialised; requests that compute wait for it. */
  ready: Promise<BackendInfo>;
}

export function serve(connection: MessageConnection, opts: ServeOptions): { jobs: Map<string, AbortController> } {
  const jobs = new Map<string, AbortController>();

  const reporterFor = (jobId: string | undefined): JobReporter => ({
    progress: (p) => jobId && void connection.sendNotification(Notifications.progress, { jobId, ...p }),
    metrics: (runId, records) => jobId && void connection.sendNotification(Notifications.metrics, { jobId, runId, records }),
    runState: (state) => void connection.sendNotification(Notifications.runState, { jobId, state }),
    log: (level, message) => void connection.sendNotification(Notifications.log, { jobId, level, message }),
    analysis: (a) => jobId && void connection.sendNotification(Notifications.analysis, { jobId, ...a }),
  });

  /** Runs a job with its own AbortController; a second job with a live jobId is refused. */
  async function runJob<T>(jobId: string, token: CancellationToken, fn: (ctx: JobContext) => Promise<T>): Promise<T> {
    if (typeof jobId !== 'string' || !jobId) throw toResponseError(new AdvMoEError('INVALID_ARGUMENT', 'jobId must be a non-empty string'));
    if (jobs.has(jobId)) throw toResponseError(new AdvMoEError('INVALID_ARGUMENT', `job "${jobId}" is already running`));
    const controller = new AbortController();
    jobs.set(jobId, controller);
    const sub = token.onCancellationRequested(() => controller.abort());
    try {
      await opts.ready;
      return await fn({ reporter: reporterFor(jobId), signal: controller.signal });
    } catch (e) {
      throw toResponseError(e);
    } finally {
      sub.dispose();
      jobs.delete(jobId);
    }
  }

  /** Parameters checked against the request's schema (engine/rpc/params.ts); a typed error when they fail. */
  const params = <T>(request: RequestName, p: unknown): T => {
    try {
      return checkParams<T>(request, p);
    } catch (e) {
      throw toResponseError(e);
    }
  };
  /** A job request: its parameters are checked before a job slot is taken. */
  const job =
    <P extends { jobId: string }, R>(request: RequestName, fn: (p: P, ctx: JobContext) => Promise<R>) =>
    (raw: unknown, token: CancellationToken): Promise<R> => {
      const p = params<P>(request, raw);
      return runJob(p.jobId, token, (ctx) => fn(p, ctx));
    };
  /** A request that answers from disk: checked, then errors typed. */
  const query =
    <P, R>(request: RequestName, fn: (p: P) => R | Promise<R>) =>
    async (raw: unknown): Promise<R> => {
      const p = params<P>(request, raw);
      try {
        return await fn(p);
      } catch (e) {
        throw toResponseError(e);
      }
    };

  connection.onRequest(
    Requests.train,
    job<TrainParams, TrainResult>('train', (p, ctx) => trainJob({ runsDir: p.runsDir, configPath: p.configPath, resumeRunId: p.resumeRunId, force: p.force }, ctx)),
  );
  connection.onRequest(Requests.evaluate, job('evaluate', evaluateJob));
  connection.onRequest(Requests.inspect, job('inspect', inspectJob));
  connection.onRequest(Requests.samples, query('samples', samplesJob));
  connection.onRequest(
    Requests.cancel,
    query('cancel', (p: CancelParams) => {
      const c = jobs.get(p.jobId);
      c?.abort();
      return { cancelled: !!c };
    }),
  );
  connection.onRequest(
    Requests.importCheckpoint,
    job<ImportCheckpointParams, ImportCheckpointResult>('importCheckpoint', (p) => importReferenceCheckpoint(p)),
  );
  connection.onRequest(Requests.backendInfo, async () => {
    try {
      return await opts.ready;
    } catch (e) {
      throw toResponseError(e);
    }
  });
  return { jobs };
}
