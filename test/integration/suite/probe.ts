/** The suite's side of the runner probes (test/integration/probeProtocol.ts). */
import * as fs from 'fs';
import * as path from 'path';
import type { ProbeAnswer, ProbeRequest } from '../probeProtocol';

/** Only the code-server runner answers probes (it sets ADVMOE_IT_PROBES); desktop VS Code has no page to drive. */
export function probesAvailable(): boolean {
  return !!process.env.ADVMOE_IT_PROBES;
}

let counter = 0;

export async function askRunner<T>(request: ProbeRequest, timeoutMs = 30_000): Promise<T> {
  const dir = process.env.ADVMOE_IT_PROBES;
  if (!dir) throw new Error('no runner to ask: ADVMOE_IT_PROBES is not set (only the code-server runner answers probes)');
  const id = `${process.pid}-${counter++}`;
  const answerFile = path.join(dir, `${id}.json`);
  console.log(`[advmoe-it] probe ${id} ${JSON.stringify(request)}`);
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    await new Promise((r) => setTimeout(r, 150));
    let text: string;
    try {
      text = fs.readFileSync(answerFile, 'utf8');
    } catch {
      continue; // not answered yet
    }
    const answer = JSON.parse(text) as ProbeAnswer;
    if (!answer.ok) throw new Error(`the runner could not ${request.kind}: ${answer.error}`);
    return answer.value as T;
  }
  throw new Error(`the runner did not answer probe ${request.kind} in ${timeoutMs} ms`);
}
