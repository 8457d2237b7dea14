/**
 * Entry point of the engine process that the extension forks. Speaks JSON-RPC over the Node IPC channel.
 * Arguments: --backend <auto|tensorflow-gpu|tensorflow|wasm|cpu> --threads <n>
 */
import { createMessageConnection, IPCMessageReader, IPCMessageWriter } from 'vscode-jsonrpc/node';
import { initBackend } from '../backend/select';
import type { BackendName } from '../config/types';
import { Notifications } from '../protocol';
import { errorMessage } from '../util/errors';
import { serve } from './server';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  if (!process.send) {
    process.stderr.write('advmoe engine: must be started with an IPC channel (child_process.fork); use the `advmoe` CLI instead.\n');
    process.exit(2);
  }
  const connection = createMessageConnection(new IPCMessageReader(process), new IPCMessageWriter(process));
  const threads = arg('threads') ? Number(arg('threads')) : undefined;
  const ready = initBackend((arg('backend') ?? 'auto') as BackendName, { threads, calibrate: true });
  ready.catch(() => undefined); // reported below and to every request that waits on it
  serve(connection, { ready });
  connection.listen();
  try {
    const info = await ready;
    const skipped = info.skipped.map((s) => `${s.name} (${s.reason})`).join('; ');
    void connection.sendNotification(Notifications.log, {
      level: 'info',
      message: `engine ready on ${info.name}${info.name === 'wasm' ? ` (${info.threads} thread(s), SIMD ${info.simd ? 'on' : 'off'})` : ''}${info.threadsWhy ? `; threads ${info.threads}: ${info.threadsWhy}` : ''}${skipped ? `; skipped: ${skipped}` : ''}`,
    });
  } catch (e) {
    void connection.sendNotification(Notifications.log, { level: 'error', message: `backend initialisation failed: ${errorMessage(e)}` });
  }
  // The extension closing the channel ends the engine.
  process.on('disconnect', () => process.exit(0));
}

void main();
