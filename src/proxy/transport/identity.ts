/**
 * The caller's identity from a verified TLS peer certificate: exactly one URI SAN, and it must
 * be a SPIFFE service id. Zero or several URIs, or anything unparsable, is no identity at all
 * (the connection is refused), never a guess.
 */
import type { PeerCertificate } from 'node:tls';
import { parseSpiffeId, type ServiceIdentity } from '../../policy/index.js';

export function peerServiceIdentity(
  cert: PeerCertificate | undefined,
): ServiceIdentity | undefined {
  const san = cert?.subjectaltname;
  if (!san) return undefined;
  // Node joins SAN entries with ", "; a URI containing ", " would split, and then fail to parse.
  const uris = san.split(', ').filter((s) => s.startsWith('URI:'));
  if (uris.length !== 1) return undefined;
  const id = parseSpiffeId(uris[0]!.slice(4));
  return id?.kind === 'service' ? id : undefined;
}

/** The URI SANs of a certificate, for identity checks of servers we dial. */
export function uriSans(cert: PeerCertificate | undefined): string[] {
  const san = cert?.subjectaltname;
  if (!san) return [];
  return san
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}
