/**
 * A separate process that sends writes for the fan-out benchmark, so the write's own round trip
 * is not delayed by the main process reading thousands of watcher responses. Usage:
 *   node writer-process.js <origin>
 * stdin: one JSON request per line, {"path": "...", "body": {...}} (PUT with a JSON body).
 * stdout: {"ready": true} once connected, then per request
 *   {"sentNs": "...", "ackNs": "...", "status": 200} (CLOCK_MONOTONIC ns, as strings)
 *   or {"error": "..."}. The process exits when stdin ends.
 */
import { createInterface } from 'node:readline';
import { describe } from './errors.js';
import { makePool, send } from './http.js';
import { monoNs } from './mono.js';

export interface WriteRequest {
  path: string;
  body: unknown;
}

export type WriterMessage =
  { ready: true } | { sentNs: string; ackNs: string; status: number } | { error: string };

function reply(m: WriterMessage): void {
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

async function main(origin: string): Promise<void> {
  const pool = makePool(origin, { connections: 1 });
  await send(pool, 'GET', '/v1/status/leader'); // open the connection before any timed write
  reply({ ready: true });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    try {
      const req = JSON.parse(line) as WriteRequest;
      const body = JSON.stringify(req.body);
      const sent = monoNs();
      const res = await pool.request({
        method: 'PUT',
        path: req.path,
        body,
        headers: { 'content-type': 'application/json' },
      });
      const ack = monoNs();
      await res.body.dump();
      reply({ sentNs: String(sent), ackNs: String(ack), status: res.statusCode });
    } catch (err) {
      reply({ error: describe(err) });
    }
  }
  await pool.close();
}

const origin = process.argv[2];
if (!origin) {
  process.stderr.write('usage: writer-process.js <origin>\n');
  process.exitCode = 2;
} else {
  main(origin).catch((err: unknown) => {
    reply({ error: describe(err) });
    process.exitCode = 1;
  });
}
