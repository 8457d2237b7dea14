/**
 * The CLI side of the native set-up: `advmoe backend install tensorflow` and `advmoe backend check tensorflow`
 * (README, Backends). The check is the smoke test; the installer runs it through this same CLI in a child
 * process, so the installer never loads a binding it may have to replace.
 */
import { spawn } from 'node:child_process';
import { installNativeBackend, type NativeInstallResult } from '../backend/nativeInstall';
import { projectRoot } from '../backend/nativeLayout';
import type { SmokeReport } from '../backend/nativeSmoke';
import * as tf from '@tensorflow/tfjs-core';

/** Runs `advmoe backend check tensorflow --json` with the CLI entry this process was started with. */
export function smokeInChild(entry: string = process.argv[1]): Promise<SmokeReport> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [entry, 'backend', 'check', 'tensorflow', '--json'], {
      // TensorFlow's start-up notes (oneDNN) go to stderr; keep the installer's output to its own lines.
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => void (err = (err + d.toString()).slice(-4000)));
    const nan = { forward: NaN, dInput: NaN, dFilter: NaN };
    child.on('error', (e) => resolve({ ok: false, errors: nan, tolerance: NaN, reason: `could not start the check: ${e.message}` }));
    child.on('close', (code, signal) => {
      const line = out.split('\n').reverse().find((l) => l.startsWith('{"event":"result"'));
      if (line) {
        const { event: _event, ...report } = JSON.parse(line) as SmokeReport & { event: string };
        resolve(report);
        return;
      }
      const why = signal ? `killed by ${signal}` : `exit code ${code}`;
      const last = err.trim().split('\n').slice(-2).join(' | ');
      resolve({ ok: false, errors: nan, tolerance: NaN, reason: `the check process crashed (${why})${last ? `: ${last}` : ''}` });
    });
  });
}

export interface InstallCliOptions {
  wheel?: string;
  force?: boolean;
  log: (line: string) => void;
}

export function installTensorflow(o: InstallCliOptions): Promise<NativeInstallResult> {
  return installNativeBackend({
    root: projectRoot(),
    version: tf.version_core,
    wheel: o.wheel,
    force: o.force,
    log: o.log,
    smoke: () => smokeInChild(),
  });
}
