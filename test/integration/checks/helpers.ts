// Real servers on 127.0.0.1 port 0 for the check runners to probe, and small waiting helpers.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import forge from 'node-forge';

export function portOf(server: net.Server): number {
  return (server.address() as AddressInfo).port;
}

export async function listen<S extends net.Server>(server: S): Promise<S> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}

export async function close(server: net.Server): Promise<void> {
  const withConns = server as net.Server & { closeAllConnections?: () => void };
  withConns.closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A port that nothing listens on: bound, noted, then released. */
export async function closedPort(): Promise<number> {
  const server = await listen(net.createServer());
  const port = portOf(server);
  await close(server);
  return port;
}

/**
 * Routes: /ok 200, /busy 429, /fail 500, /slow never answers, /big 100KiB, /echo reflects the
 * request, /redirect 302 to /ok, /loop redirects to itself.
 */
export function testHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  switch (url.pathname) {
    case '/ok':
      res.end('all good');
      return;
    case '/busy':
      res.writeHead(429).end('slow down');
      return;
    case '/fail':
      res.writeHead(500).end('broken');
      return;
    case '/slow':
      return; // never answers; the client's timeout must fire
    case '/big':
      res.end('x'.repeat(100 * 1024));
      return;
    case '/echo': {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () =>
        res.end(
          JSON.stringify({
            method: req.method,
            headers: req.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        ),
      );
      return;
    }
    case '/redirect':
      res.writeHead(302, { location: '/ok' }).end();
      return;
    case '/loop':
      res.writeHead(302, { location: '/loop' }).end();
      return;
    default:
      res.writeHead(404).end('no such route');
  }
}

export interface TestCert {
  key: string;
  cert: string;
}

let cached: TestCert | undefined;

/** A self-signed certificate for "check.test"; RSA key from node:crypto, signed with forge. */
export function selfSignedCert(): TestCert {
  if (cached) return cached;
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(2020, 0, 1);
  cert.validity.notAfter = new Date(2099, 0, 1);
  const subject = [{ name: 'commonName', value: 'check.test' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([{ name: 'subjectAltName', altNames: [{ type: 2, value: 'check.test' }] }]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  cached = { key: privateKey, cert: forge.pki.certificateToPem(cert) };
  return cached;
}

/** Resolves once `predicate` holds, polling; rejects after `ms` (generous: machines are shared). */
export async function waitFor(
  predicate: () => boolean,
  ms = 5000,
  what = 'condition',
): Promise<void> {
  const start = process.hrtime.bigint();
  while (!predicate()) {
    if (Number(process.hrtime.bigint() - start) / 1e6 > ms)
      throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** True while the process exists and is not a zombie waiting to be reaped. */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
