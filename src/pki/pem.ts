/** PEM framing for certificates, and the bridge to Node's X509Certificate. */
import { X509Certificate } from 'node:crypto';
import { badRequest } from '../core/index.js';

/** Largest PEM text accepted anywhere the CA reads certificates (a bundle of a few roots). */
export const MAX_PEM_BYTES = 256 * 1024;

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END \1-----/g;

/** Wraps DER in a PEM block with 64-column base64. */
export function pemEncode(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

function blocks(text: string, label: string, what: string): Buffer[] {
  if (text.length > MAX_PEM_BYTES)
    throw badRequest(`${what}: larger than ${MAX_PEM_BYTES} bytes`, what);
  const out: Buffer[] = [];
  for (const m of text.matchAll(BLOCK)) {
    if (m[1] !== label) continue;
    const body = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0 || body.length === 0)
      throw badRequest(`${what}: PEM block ${out.length + 1} is not valid base64`, what);
    out.push(Buffer.from(body, 'base64'));
  }
  return out;
}

/** The DER of every `label` block in `text`, in order. */
export function pemDecodeAll(text: string, label: string, what: string): Buffer[] {
  return blocks(text, label, what);
}

/** The DER of the first `label` block; a 400 when there is none. */
export function pemDecode(text: string, label: string, what: string): Buffer {
  const [first] = blocks(text, label, what);
  if (!first) throw badRequest(`${what}: not a PEM "${label}"`, what);
  return first;
}

/** Each certificate of a PEM bundle or chain, re-framed canonically, in order. */
export function splitPemChain(text: string): string[] {
  return blocks(text, 'CERTIFICATE', 'certificate chain').map((der) =>
    pemEncode('CERTIFICATE', der),
  );
}

/** Node's view of the first certificate in `pem`; a 400 when it is not a readable certificate. */
export function parseCert(pem: string): X509Certificate {
  const der = pemDecode(pem, 'CERTIFICATE', 'certificate');
  try {
    return new X509Certificate(der);
  } catch {
    throw badRequest('certificate: not a readable X.509 certificate', 'certificate');
  }
}
