/**
 * The engine's JSON-RPC server: implements engine/protocol.ts on a message connection. Every long request
 * gets an AbortController, reachable by its jobId (`cancel`) and by the request's own cancellation token.
 */
import { type CancellationToken, type MessageConnection, ResponseError } from 'vscode-jsonrpc';
import type { JobContext, JobReporter } from '../jobs/context';
import { attackJob, evaluateJob, inspectJob, samplesJob, loadRunJob } from '../jobs/evaluate';
import { trainJob } from '../jobs/train';
import { type BackendInfo, Notifications, Requests } from '../protocol';
import { listRuns } from '../runs/store';
import { AdvMoEError, errorMessage } from '../util/errors';

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

  const requireString = (value: unknown, field: string): string => {
    if (typeof value !== 'string' || !value) throw new AdvMoEError('INVALID_ARGUMENT', `${field} must be a non-empty string`);
    return value;
  };
  /** Requests on an existing run: check the two fields every job needs before it starts. */
  const onRun = <P extends { runsDir: string; runId: string }>(p: P): P => {
    requireString(p.runsDir, 'runsDir');
    requireString(p.runId, 'runId');
    return p;
  };

  connection.onRequest(Requests.train, (p, token) =>
    runJob(p?.jobId, token, (ctx) => trainJob({ runsDir: requireString(p.runsDir, 'runsDir'), configPath: p.configPath, resumeRunId: p.resumeRunId }, ctx)),
  );
  connection.onRequest(Requests.evaluate, (p, token) => runJob(p?.jobId, token, (ctx) => evaluateJob(onRun(p), ctx)));
  connection.onRequest(Requests.attack, (p, token) => runJob(p?.jobId, token, (ctx) => attackJob(onRun(p), ctx)));
  connection.onRequest(Requests.inspect, (p, token) => runJob(p?.jobId, token, (ctx) => inspectJob(onRun(p), ctx)));
  connection.onRequest(Requests.samples, async (p) => {
    try {
      return await samplesJob(onRun(p ?? ({} as never)));
    } catch (e) {
      throw toResponseError(e);
    }
  });
  connection.onRequest(Requests.cancel, (p) => {
    const c = jobs.get(p?.jobId);
    c?.abort();
    return { cancelled: !!c };
  });
  connection.onRequest(Requests.listRuns, (p) => {
    try {
      return listRuns(requireString(p?.runsDir, 'runsDir'), (dir, reason) =>
        reporterFor(undefined).log('warn', `skipped ${dir}: ${reason}`),
      );
    } catch (e) {
      throw toResponseError(e);
    }
  });
  connection.onRequest(Requests.loadRun, (p) => {
    try {
      return loadRunJob(requireString(p?.runsDir, 'runsDir'), requireString(p?.runId, 'runId'));
    } catch (e) {
      throw toResponseError(e);
    }
  });
  connection.onRequest(Requests.backendInfo, async () => {
    try {
      return await opts.ready;
    } catch (e) {
      throw toResponseError(e);
    }
  });
  return { jobs };
}
