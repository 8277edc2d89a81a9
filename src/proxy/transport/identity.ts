/**
 * Who a verified TLS peer is. The chain was already checked against the mesh roots; this adds
 * what a chain check does not: the certificate must be an end-entity certificate (not a CA, no
 * certificate-signing key usage) made for its role (clientAuth for callers, serverAuth for the
 * proxies we dial), and carry exactly one URI SAN naming a service of an accepted trust domain.
 * Anything else is no identity at all (the connection is refused), never a guess.
 */
import type { PeerCertificate } from 'node:tls';
import { checkPeerServiceId, type ServiceIdentity } from '../../policy/index.js';
import { OID, readCertificate, type CertInfo } from '../../pki/index.js';

/** The side a peer certificate was presented on: a caller (client) or a dialled proxy (server). */
export type PeerRole = 'client' | 'server';

export type PeerCheck = { ok: true; id: ServiceIdentity; uri: string } | { ok: false; why: string };

const PURPOSE: Record<PeerRole, string> = { client: OID.clientAuth, server: OID.serverAuth };

/**
 * Checks a verified peer certificate: an end-entity certificate for `role`, with exactly one
 * URI SAN that is a service id of one of `trustDomains`.
 */
export function checkPeer(
  cert: PeerCertificate | undefined,
  role: PeerRole,
  trustDomains: readonly string[],
): PeerCheck {
  if (!cert?.raw) return { ok: false, why: 'no certificate' };
  let info: CertInfo;
  try {
    info = readCertificate(cert.raw);
  } catch (err) {
    return { ok: false, why: `unreadable certificate: ${(err as Error).message}` };
  }
  const use = endEntityFor(info, role);
  if (use) return { ok: false, why: use };
  if (info.uris.length !== 1)
    return { ok: false, why: `${info.uris.length} URI SANs, exactly one SPIFFE id is required` };
  const uri = info.uris[0]!;
  const id = checkPeerServiceId(uri, trustDomains);
  return id.ok ? { ok: true, id: id.id, uri } : { ok: false, why: `${uri}: ${id.why}` };
}

/** Why `info` is not an end-entity certificate usable as a TLS `role`, or undefined. */
function endEntityFor(info: CertInfo, role: PeerRole): string | undefined {
  if (info.isCA) return 'a CA certificate (basicConstraints CA:TRUE) presented as a leaf';
  if (info.keyUsage.includes('keyCertSign') || info.keyUsage.includes('cRLSign'))
    return 'a leaf whose key usage allows signing certificates';
  if (!info.extKeyUsage) return `no extended key usage (${role}Auth is required)`;
  if (!info.extKeyUsage.includes(PURPOSE[role])) return `extended key usage lacks ${role}Auth`;
  return undefined;
}
