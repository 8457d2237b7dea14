/**
 * The engine process: forked from the bundled `dist/engine.js` (with VS Code's own Node, or the configured
 * one), spoken to with vscode-jsonrpc over the IPC channel. Started on the first request; if it dies, the
 * next request starts it again, unless it died several times in a row.
 */
import { fork, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as vscode from 'vscode';
import { ResponseError, type RequestType, type RequestType0 } from 'vscode-jsonrpc';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import {
  type AnalysisNotification,
  Notifications,
  type LogNotification,
  type MetricsNotification,
  type ProgressNotification,
  type RunStateNotification,
} from '../engine/protocol';
import { engineSettings } from './settings';

/** Crashes in a row (without a request succeeding in between) after which the engine is not restarted. */
export const MAX_CRASHES_IN_ROW = 3;

export interface EngineExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines the engine wrote to stderr. */
  stderrTail: string[];
}

/** A request the engine answered with an error; `code` is the engine's ErrorCode (engine/util/errors.ts). */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

export class EngineUnavailableError extends Error {}

export class EngineClient implements vscode.Disposable {
  private proc: ChildProcess | undefined;
  private conn: MessageConnection | undefined;
  private stopping = new WeakSet<ChildProcess>();
  private crashesInRow = 0;
  private stderrTail: string[] = [];
  private readonly disposables: vscode.Disposable[] = [];

  private readonly progressEmitter = new vscode.EventEmitter<ProgressNotification>();
  private readonly metricsEmitter = new vscode.EventEmitter<MetricsNotification>();
  private readonly runStateEmitter = new vscode.EventEmitter<RunStateNotification>();
  private readonly crashEmitter = new vscode.EventEmitter<EngineExit>();
  private readonly analysisEmitter = new vscode.EventEmitter<AnalysisNotification>();
  /** Partial and final robustness reports of evaluate jobs. */
  readonly onAnalysis = this.analysisEmitter.event;
  readonly onProgress = this.progressEmitter.event;
  readonly onMetrics = this.metricsEmitter.event;
  readonly onRunState = this.runStateEmitter.event;
  /** The engine exited without being asked to. */
  readonly onCrash = this.crashEmitter.event;

  constructor(
    private readonly enginePath: string,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(this.progressEmitter, this.metricsEmitter, this.runStateEmitter, this.crashEmitter, this.analysisEmitter);
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Lets the engine start again after it crashed too often (the user asked for it). */
  resetCrashCount(): void {
    this.crashesInRow = 0;
  }

  private start(): MessageConnection {
    if (this.conn) return this.conn;
    if (this.crashesInRow >= MAX_CRASHES_IN_ROW) {
      throw new EngineUnavailableError(
        `The AdvMoE engine crashed ${this.crashesInRow} times in a row, so it is not restarted automatically. See "AdvMoE: Show Engine Log".`,
      );
    }
    if (!fs.existsSync(this.enginePath)) {
      throw new EngineUnavailableError(`The engine bundle ${this.enginePath} is missing; run \`npm run build\`.`);
    }
    const s = engineSettings();
    const execPath = s.nodePath || process.execPath;
    const args = ['--backend', s.backend];
    if (s.wasmThreads > 0) args.push('--threads', String(s.wasmThreads));
    this.log.info(`starting engine: ${execPath} ${this.enginePath} ${args.join(' ')}`);
    const proc = fork(this.enginePath, args, {
      execPath,
      execArgv: [],
      // Makes VS Code's Electron binary behave as plain Node; ignored by a real Node.
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.proc = proc;
    this.stderrTail = [];
    const pipeLines = (stream: NodeJS.ReadableStream | null, level: 'info' | 'error') => {
      let buf = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        buf += chunk;
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const line of lines) {
          if (!line.trim()) continue;
          if (level === 'error') {
            this.log.error(`[engine stderr] ${line}`);
            this.stderrTail.push(line);
            if (this.stderrTail.length > 20) this.stderrTail.shift();
          } else this.log.info(`[engine stdout] ${line}`);
        }
      });
    };
    pipeLines(proc.stdout, 'info');
    pipeLines(proc.stderr, 'error');

    const conn = createMessageConnection(new IPCMessageReader(proc), new IPCMessageWriter(proc));
    conn.onNotification(Notifications.progress, (p) => this.progressEmitter.fire(p));
    conn.onNotification(Notifications.metrics, (m) => this.metricsEmitter.fire(m));
    conn.onNotification(Notifications.runState, (s) => this.runStateEmitter.fire(s));
    conn.onNotification(Notifications.analysis, (a) => this.analysisEmitter.fire(a));
    conn.onNotification(Notifications.log, (l: LogNotification) => {
      const text = l.jobId ? `[${l.jobId}] ${l.message}` : l.message;
      this.log[l.level === 'warn' ? 'warn' : l.level](text);
    });
    conn.onError(([err]) => this.log.error(`engine connection error: ${err.message}`));
    conn.listen();
    this.conn = conn;

    proc.on('error', (err) => this.log.error(`engine process error: ${err.message}`));
    proc.on('exit', (code, signal) => {
      const intended = this.stopping.has(proc);
      this.log[intended ? 'info' : 'error'](`engine (pid ${proc.pid}) exited with ${signal ? `signal ${signal}` : `code ${code}`}`);
      if (this.proc === proc) {
        this.proc = undefined;
        this.conn?.dispose();
        this.conn = undefined;
      }
      if (!intended) {
        this.crashesInRow++;
        this.crashEmitter.fire({ code, signal, stderrTail: [...this.stderrTail] });
      }
    });
    return conn;
  }

  /** Sends a request, starting the engine if needed. Rejects with EngineError for engine-reported failures. */
  async request<P, R>(type: RequestType<P, R, void>, params: P): Promise<R>;
  async request<R>(type: RequestType0<R, void>): Promise<R>;
  async request(type: RequestType<unknown, unknown, void> | RequestType0<unknown, void>, params?: unknown): Promise<unknown> {
    const conn = this.start();
    const proc = this.proc;
    let onExit: ((code: number | null, signal: NodeJS.Signals | null) => void) | undefined;
    try {
      const exited = new Promise<never>((_, reject) => {
        onExit = (code, signal) =>
          reject(new EngineError(`the engine stopped (${signal ? `signal ${signal}` : `exit code ${code}`}) before answering ${type.method}`, 'ENGINE_EXITED'));
        proc?.once('exit', onExit);
      });
      const answer =
        params === undefined
          ? conn.sendRequest(type as RequestType0<unknown, void>)
          : conn.sendRequest(type as RequestType<unknown, unknown, void>, params);
      const result = await Promise.race([answer, exited]);
      this.crashesInRow = 0;
      return result;
    } catch (e) {
      // The connection is disposed when the process exits, which can reject the request first.
      if (proc && (proc.exitCode !== null || proc.signalCode !== null) && !(e instanceof EngineError)) {
        const how = proc.signalCode ? `signal ${proc.signalCode}` : `exit code ${proc.exitCode}`;
        throw new EngineError(`the engine stopped (${how}) before answering ${type.method}`, 'ENGINE_EXITED');
      }
      if (e instanceof ResponseError) {
        const data = e.data as { code?: string } | undefined;
        throw new EngineError(e.message, data?.code);
      }
      throw e;
    } finally {
      if (onExit) proc?.off('exit', onExit);
    }
  }

  /** Stops the engine (it exits when its IPC channel closes; killed if it does not within 3 s). */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.stopping.add(proc);
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    this.conn?.dispose();
    this.conn = undefined;
    this.proc = undefined;
    try {
      proc.disconnect();
    } catch {
      // already disconnected
    }
    const timer = setTimeout(() => proc.kill(), 3000);
    await exited;
    clearTimeout(timer);
  }

  dispose(): void {
    void this.stop();
    for (const d of this.disposables) d.dispose();
  }
}
