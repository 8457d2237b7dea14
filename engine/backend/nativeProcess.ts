/** Runs the external tools the native set-up needs (npm, pip, python3, node-gyp's compiler) and reports why one failed. */
import { spawn } from 'node:child_process';

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the tool could not be started at all (e.g. ENOENT: not installed). */
  spawnError?: string;
  timedOut: boolean;
}

export interface ToolOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Keeps the tail of a stream: tools like npm can print megabytes, and only the last lines explain a failure. */
const KEEP = 64 * 1024;

export function runTool(cmd: string, args: string[], opts: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    child.stdout.on('data', (d: Buffer) => void (stdout = (stdout + d.toString()).slice(-KEEP)));
    child.stderr.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-KEEP)));
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr, spawnError: e.message, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** The last few non-empty lines of a failed tool's output, for an error message. */
export function tail(r: ToolResult, lines = 3): string {
  if (r.spawnError) return r.spawnError;
  if (r.timedOut) return 'timed out';
  const text = `${r.stdout}\n${r.stderr}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return text.slice(-lines).join(' | ') || `exit code ${r.code}`;
}

/**
 * The line that says why a tool failed: the first `…Error: …` line (e.g. npm's copy of an install script's
 * `Error: getaddrinfo ENOTFOUND storage.googleapis.com`), else the last lines.
 */
export function cause(r: ToolResult): string {
  if (r.spawnError || r.timedOut) return tail(r);
  const line = `${r.stdout}\n${r.stderr}`.split('\n').find((l) => /\b\w*Error: /.test(l));
  return line ? line.replace(/^npm error\s*/, '').trim() : tail(r);
}

export function ok(r: ToolResult): boolean {
  return r.code === 0 && !r.spawnError && !r.timedOut;
}
