/** Shared fixtures for the CA tests: keys, hand-built CSRs, and a real mutual-TLS handshake. */
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { connect, createServer, type TLSSocket } from 'node:tls';
import forge from 'node-forge';

export const CLUSTER = '11111111-2222-3333-4444-555555555555';
export const TD = `${CLUSTER}.consul`;
export const spiffe = (svc: string, td = TD): string =>
  `spiffe://${td}/ns/default/dc/dc1/svc/${svc}`;
export const T0 = new Date('2026-03-01T12:00:00Z');
export const HOUR = 3600_000;
export const DAY = 24 * HOUR;

export function ecKey(curve = 'prime256v1'): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: curve }).privateKey;
}

export const pkcs8 = (k: KeyObject): string => k.export({ type: 'pkcs8', format: 'pem' }) as string;

const { asn1 } = forge;
const T = asn1.Type;
const C = asn1.Class;
type Node = forge.asn1.Asn1;
const bin = (b: Buffer): string => b.toString('binary');
const seq = (items: Node[]): Node => asn1.create(C.UNIVERSAL, T.SEQUENCE, true, items);
const oid = (o: string): Node =>
  asn1.create(C.UNIVERSAL, T.OID, false, asn1.oidToDer(o).getBytes());
const ext = (id: string, v: Node): Node =>
  seq([oid(id), asn1.create(C.UNIVERSAL, T.OCTETSTRING, false, asn1.toDer(v).getBytes())]);

export interface RawCsrSpec {
  uris?: string[];
  dnsNames?: string[];
  /** Raw 4- or 16-byte addresses. */
  ips?: Buffer[];
  emails?: string[];
  ca?: boolean;
  /** Extra extension OIDs (empty NULL value). */
  extraExtensions?: string[];
}

/**
 * A CSR built independently of src/pki/csr.ts, so tests can ask for things our own agent
 * never would (CA:true, several URIs, emails, other extensions).
 */
export function rawCsr(key: KeyObject, spec: RawCsrSpec): string {
  const names: Node[] = [
    ...(spec.uris ?? []).map((u) => asn1.create(C.CONTEXT_SPECIFIC, 6, false, u)),
    ...(spec.dnsNames ?? []).map((d) => asn1.create(C.CONTEXT_SPECIFIC, 2, false, d)),
    ...(spec.ips ?? []).map((b) => asn1.create(C.CONTEXT_SPECIFIC, 7, false, bin(b))),
    ...(spec.emails ?? []).map((e) => asn1.create(C.CONTEXT_SPECIFIC, 1, false, e)),
  ];
  const exts: Node[] = [];
  if (names.length) exts.push(ext('2.5.29.17', seq(names)));
  if (spec.ca !== undefined)
    exts.push(
      ext('2.5.29.19', seq(spec.ca ? [asn1.create(C.UNIVERSAL, T.BOOLEAN, false, '\xff')] : [])),
    );
  for (const o of spec.extraExtensions ?? [])
    exts.push(ext(o, asn1.create(C.UNIVERSAL, T.NULL, false, '')));
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const info = seq([
    asn1.create(C.UNIVERSAL, T.INTEGER, false, '\x00'),
    seq([]),
    asn1.fromDer(bin(spki)),
    asn1.create(C.CONTEXT_SPECIFIC, 0, true, [
      seq([oid('1.2.840.113549.1.9.14'), asn1.create(C.UNIVERSAL, T.SET, true, [seq(exts)])]),
    ]),
  ]);
  const infoDer = Buffer.from(asn1.toDer(info).getBytes(), 'binary');
  const sig = sign('sha256', infoDer, key);
  const csr = seq([
    info,
    seq([oid('1.2.840.10045.4.3.2')]),
    asn1.create(C.UNIVERSAL, T.BITSTRING, false, `\x00${bin(sig)}`),
  ]);
  const b64 = Buffer.from(asn1.toDer(csr).getBytes(), 'binary')
    .toString('base64')
    .replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}-----END CERTIFICATE REQUEST-----\n`;
}

/** What one side of a TLS connection presents and trusts. */
export interface TlsSide {
  key: KeyObject;
  /** Leaf PEM followed by any chain certificates to send. */
  certChain: string;
  /** Trusted roots (PEM each). */
  trust: string[];
}

export interface HandshakeResult {
  ok: boolean;
  /** socket.authorized on each side (false when that side never completed). */
  clientAuthorized: boolean;
  serverAuthorized: boolean;
  /** URI SAN each side saw from its peer. */
  clientSawServer?: string;
  serverSawClient?: string;
  clientError?: string;
  serverError?: string;
}

/**
 * One mutual-TLS handshake on 127.0.0.1 with requestCert and rejectUnauthorized on both sides.
 * Resolves (never rejects) with what each side concluded.
 */
export async function handshake(server: TlsSide, client: TlsSide): Promise<HandshakeResult> {
  const result: HandshakeResult = { ok: false, clientAuthorized: false, serverAuthorized: false };
  let serverDone!: () => void;
  const serverSettled = new Promise<void>((r) => (serverDone = r));
  const srv = createServer(
    {
      key: pkcs8(server.key),
      cert: server.certChain,
      ca: server.trust,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    (s: TLSSocket) => {
      result.serverAuthorized = s.authorized;
      result.serverSawClient = s.getPeerX509Certificate()?.subjectAltName;
      s.end('ok');
      serverDone();
    },
  );
  srv.on('tlsClientError', (e: Error) => {
    result.serverError = e.message;
    serverDone();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    const data = await new Promise<string>((resolve) => {
      const s = connect({
        host: '127.0.0.1',
        port,
        key: pkcs8(client.key),
        cert: client.certChain,
        ca: client.trust,
        rejectUnauthorized: true,
        // Mesh peers are named by URI SAN, not host name; the chain check is what is tested.
        checkServerIdentity: () => undefined,
      });
      let got = '';
      s.on('secureConnect', () => {
        result.clientAuthorized = s.authorized;
        result.clientSawServer = s.getPeerX509Certificate()?.subjectAltName;
      });
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('error', (e) => {
        result.clientError = e.message;
        resolve(got);
      });
      s.on('close', () => resolve(got));
    });
    // The server settles either way; wait briefly so a server-side refusal is recorded.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([serverSettled, new Promise((r) => (timer = setTimeout(r, 500)))]);
    clearTimeout(timer);
    result.ok = data === 'ok' && result.clientAuthorized && result.serverAuthorized;
  } finally {
    srv.close();
  }
  return result;
}
