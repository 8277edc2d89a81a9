/**
 * Path validation for mesh certificates, used by tests and by anything that must check a chain
 * outside a TLS handshake (e.g. before accepting an imported root or a leaf from an agent).
 * Built on Node's X509Certificate (issuer-name/key-id matching and signatures) plus validity
 * dates, CA flags and path lengths. No revocation: mesh leaves are short-lived.
 */
import type { X509Certificate } from 'node:crypto';
import { isMeshError } from '../core/index.js';
import { readCertificate, type CertInfo } from './certinfo.js';

const MAX_DEPTH = 8;

function read(pem: string, role: string): CertInfo | string {
  try {
    return readCertificate(pem);
  } catch (e) {
    return `${role}: ${isMeshError(e) ? e.message : 'unreadable certificate'}`;
  }
}

// Node reports an empty name as undefined despite its type.
const oneLine = (name: string | undefined): string => (name ?? '').replace(/\n/g, ', ');
const describe = (c: CertInfo): string =>
  oneLine(c.x509.subject) || (c.uris[0] ?? 'certificate with an empty subject');

function validAt(c: CertInfo, now: Date, role: string): string | undefined {
  if (now < c.notBefore)
    return `${role} ${describe(c)} is not valid until ${c.notBefore.toISOString()}`;
  if (now > c.notAfter) return `${role} ${describe(c)} expired at ${c.notAfter.toISOString()}`;
  return undefined;
}

function signed(child: X509Certificate, issuer: CertInfo): boolean {
  try {
    return child.checkIssued(issuer.x509) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Whether `leafPem` chains to one of `rootsPem` at `now`, using any of `intermediatesPem` in
 * between. Returns true, or a reason the chain does not verify.
 */
export function verifyChain(
  leafPem: string,
  intermediatesPem: string[],
  rootsPem: string[],
  now: Date,
): true | string {
  const leaf = read(leafPem, 'leaf');
  if (typeof leaf === 'string') return leaf;
  const inters: CertInfo[] = [];
  for (const p of intermediatesPem) {
    const c = read(p, 'intermediate');
    if (typeof c === 'string') return c;
    inters.push(c);
  }
  const roots: CertInfo[] = [];
  for (const p of rootsPem) {
    const c = read(p, 'root');
    if (typeof c === 'string') return c;
    roots.push(c);
  }
  if (roots.length === 0) return 'no trusted roots';
  const bad = validAt(leaf, now, 'leaf');
  if (bad) return bad;

  let reason = `no trusted root or intermediate issued ${describe(leaf)} (issuer ${oneLine(leaf.x509.issuer) || 'empty'})`;
  // Depth-first over candidate issuers, trusted roots first, since rotation bundles and
  // cross-signed certificates give one certificate several possible issuers.
  const walk = (cert: CertInfo, casBelow: number, used: Set<CertInfo>): boolean => {
    if (used.size > MAX_DEPTH) {
      reason = 'chain too long';
      return false;
    }
    const below = cert === leaf ? 0 : casBelow + 1;
    const fits = (issuer: CertInfo, role: string): string | undefined => {
      if (!issuer.isCA) return `${role} ${describe(issuer)} is not a CA`;
      if (issuer.pathLen !== undefined && below > issuer.pathLen)
        return `${role} ${describe(issuer)} allows only ${issuer.pathLen} intermediates below it`;
      return validAt(issuer, now, role);
    };
    for (const root of roots) {
      if (!signed(cert.x509, root)) continue;
      const why = fits(root, 'root');
      if (!why) return true;
      reason = why;
    }
    for (const inter of inters) {
      if (used.has(inter) || !signed(cert.x509, inter)) continue;
      const why = fits(inter, 'intermediate');
      if (why) {
        reason = why;
        continue;
      }
      if (walk(inter, below, new Set([...used, inter]))) return true;
    }
    return false;
  };
  return walk(leaf, 0, new Set()) ? true : reason;
}
