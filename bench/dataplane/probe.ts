/**
 * One GET / through a path before it is measured: it must answer 200 with exactly the app's
 * body, so a row whose path is broken fails with the reason instead of measuring errors fast.
 */
import { connect } from 'node:http2';
import { request } from 'undici';

const PROBE_TIMEOUT_MS = 10_000;

async function probeH1(port: number): Promise<{ status: number; bytes: number }> {
  const res = await request(`http://127.0.0.1:${port}/`, {
    headersTimeout: PROBE_TIMEOUT_MS,
    bodyTimeout: PROBE_TIMEOUT_MS,
  });
  const body = await res.body.arrayBuffer();
  return { status: res.statusCode, bytes: body.byteLength };
}

function probeH2(port: number): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no h2c answer within ${PROBE_TIMEOUT_MS} ms`));
    }, PROBE_TIMEOUT_MS);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      session.destroy();
      reject(err);
    };
    session.on('error', fail);
    const stream = session.request({ ':method': 'GET', ':path': '/' });
    let status = 0;
    let bytes = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (d: Buffer) => (bytes += d.length));
    stream.on('error', fail);
    stream.on('end', () => {
      clearTimeout(timer);
      session.close();
      resolve({ status, bytes });
    });
  });
}

/** Throws unless GET / on 127.0.0.1:port answers 200 with `bodyBytes` of body. */
export async function probePath(port: number, http: 'h1' | 'h2', bodyBytes: number): Promise<void> {
  const r = http === 'h1' ? await probeH1(port) : await probeH2(port);
  if (r.status !== 200 || r.bytes !== bodyBytes)
    throw new Error(
      `probe: GET / answered ${r.status} with ${r.bytes} bytes (want 200, ${bodyBytes})`,
    );
}
