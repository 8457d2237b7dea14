/** The engine's RPC server in this process, with a client wired to it through in-memory streams (the tests' engine). */
import { PassThrough } from 'node:stream';
import { createMessageConnection, type MessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { serve } from '../../../engine/rpc/server';
import { setupTestBackend } from '../helpers';

export interface RpcPair {
  client: MessageConnection;
  server: MessageConnection;
  dispose(): void;
}

/** Starts the server on the test backend; `beforeListen` may register the client's notification handlers. */
export async function startRpcPair(beforeListen?: (client: MessageConnection) => void): Promise<RpcPair> {
  const info = await setupTestBackend();
  const toServer = new PassThrough();
  const toClient = new PassThrough();
  const server = createMessageConnection(new StreamMessageReader(toServer), new StreamMessageWriter(toClient));
  const client = createMessageConnection(new StreamMessageReader(toClient), new StreamMessageWriter(toServer));
  serve(server, { ready: Promise.resolve(info) });
  beforeListen?.(client);
  server.listen();
  client.listen();
  return {
    client,
    server,
    dispose() {
      client.dispose();
      server.dispose();
    },
  };
}
