/** Small socket helpers shared by proxy and mesh tests (loopback only). */
import { connect, createServer } from 'node:net';

/** A port that was free a moment ago on 127.0.0.1 (for listeners a config file must name). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Sends `text`, half-closes, and resolves with everything that came back ('' if refused). */
export function tcpRoundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    s.on('error', () => {});
    s.on('close', () => resolve(got));
    s.on('connect', () => s.end(text));
  });
}

/** Resolves true when something accepts a TCP connection on 127.0.0.1:port (one attempt). */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
