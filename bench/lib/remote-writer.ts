/**
 * Parent side of writer-process: starts it (one child, stopped by its PID), sends writes and
 * returns their send and acknowledgement times on this process's monotonic scale.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { monoMsOf } from './mono.js';
import type { WriteRequest, WriterMessage } from './writer-process.js';

const CHILD = fileURLToPath(new URL('./writer-process.js', import.meta.url));
const TIMEOUT_MS = 30_000;

export interface TimedWrite {
  /** Just before the request was sent (ms, this process's mono scale). */
  sentMs: number;
  /** When the response headers arrived in the writer process. */
  ackMs: number;
  status: number;
}

export interface RemoteWriter {
  put(path: string, body: unknown): Promise<TimedWrite>;
  close(): Promise<void>;
}

export async function startRemoteWriter(origin: string): Promise<RemoteWriter> {
  const child = spawn(process.execPath, [CHILD, origin], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waiting: ((m: WriterMessage) => void)[] = [];
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => waiting.shift()?.(JSON.parse(line) as WriterMessage));

  const next = (): Promise<WriterMessage> =>
    new Promise<WriterMessage>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the writer process did not answer')),
        TIMEOUT_MS,
      );
      void exited.then(() => reject(new Error('the writer process exited')));
      waiting.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });

  const close = async (): Promise<void> => {
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  const first = await next().catch(async (err: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw err;
  });
  if (!('ready' in first)) {
    await close();
    throw new Error(`writer process failed to start: ${'error' in first ? first.error : '?'}`);
  }

  return {
    async put(path, body) {
      const req: WriteRequest = { path, body };
      const answer = next();
      child.stdin!.write(`${JSON.stringify(req)}\n`);
      const m = await answer;
      if ('error' in m) throw new Error(`write ${path}: ${m.error}`);
      if (!('sentNs' in m)) throw new Error(`write ${path}: unexpected answer`);
      return {
        sentMs: monoMsOf(BigInt(m.sentNs)),
        ackMs: monoMsOf(BigInt(m.ackNs)),
        status: m.status,
      };
    },
    close,
  };
}
