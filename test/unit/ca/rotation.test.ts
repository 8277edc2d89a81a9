/**
 * Root rotation with real mutual-TLS handshakes (node:tls on 127.0.0.1, requestCert and
 * rejectUnauthorized on both sides). R1 is the old root, R2 the new one, X is R2 cross-signed by
 * R1 (what rotation stores in R2's IntermediateCerts), and Xr is R1 cross-signed by R2 (the
 * reverse, for old leaves meeting peers that already trust only R2).
 *
 * What these tests establish:
 *   peer sends          verifier trusts   result
 *   R2 leaf + X         [R1]              ok    (old proxy, new leaf: the point of cross-signing)
 *   R2 leaf             [R1]              FAIL  (why X must be sent in the chain)
 *   R2 leaf + X         [R1, R2]          ok    (X is simply not needed)
 *   R2 leaf + X         [R2]              ok    (X is ignored once R2 is trusted)
 *   R1 leaf             [R1, R2]          ok    (the rotation bundle carries both roots)
 *   R1 leaf             [R2]              FAIL  (old root already dropped, nothing bridges)
 *   R1 leaf + Xr        [R2]              ok    (the reverse cross-sign bridges it)
 *   foreign leaf, same SPIFFE URI         FAIL  (even with a forged copy of R2's subject)
 * Each row is also checked against verifyChain so the offline check agrees with OpenSSL.
 */
import { expect } from 'chai';
import type { KeyObject } from 'node:crypto';
import {
  createCsr,
  crossSign,
  generateRoot,
  issueCertificate,
  loadPrivateKey,
  publicOf,
  randomSerial,
  readCertificate,
  reverseCrossSign,
  signLeaf,
  verifyChain,
  type GeneratedRoot,
} from '../../../src/pki/index.js';
import { CLUSTER, DAY, ecKey, handshake, HOUR, spiffe, TD, type TlsSide } from './helpers.js';

/** OpenSSL's wording when a chain does not reach a trusted root. */
const CHAIN_ERROR =
  /unable to get local issuer certificate|self-signed certificate in certificate chain/;

interface Root extends GeneratedRoot {
  key: KeyObject;
}

describe('CA: root rotation over real mTLS', function () {
  this.timeout(20_000);
  // Handshakes check validity against the real clock, so these certificates are made "now".
  const now = new Date();
  const mkRoot = (): Root => {
    const g = generateRoot({ clusterId: CLUSTER, trustDomain: TD, ttlMs: 3650 * DAY, now });
    return { ...g, key: loadPrivateKey(g.keyPem) };
  };
  const R1 = mkRoot();
  const R2 = mkRoot();
  const X = crossSign({
    newRootPem: R2.certPem,
    oldRootPem: R1.certPem,
    oldRootKey: R1.key,
    now,
    ttlMs: 7 * DAY,
  });
  const Xr = reverseCrossSign({
    newRootPem: R2.certPem,
    newRootKey: R2.key,
    oldRootPem: R1.certPem,
    now,
    ttlMs: 7 * DAY,
  });

  /** A service leaf from `root`, with `chain` appended as the TLS certificate chain. */
  const leaf = (root: { key: KeyObject; certPem: string }, svc: string, chain: string[] = []) => {
    const key = ecKey();
    const signed = signLeaf({
      csrPem: createCsr(key, spiffe(svc)),
      expectedUri: spiffe(svc),
      signerKey: root.key,
      signerCertPem: root.certPem,
      ttlMs: 72 * HOUR,
      now,
    });
    return { key, leafPem: signed.certPem, certChain: signed.certPem + chain.join('') };
  };
  const side = (l: ReturnType<typeof leaf>, trust: Root[]): TlsSide => ({
    key: l.key,
    certChain: l.certChain,
    trust: trust.map((r) => r.certPem),
  });
  /** verifyChain as the peer verifying `l` would run it. */
  const offline = (l: ReturnType<typeof leaf>, chain: string[], trust: Root[]) =>
    verifyChain(
      l.leafPem,
      chain,
      trust.map((r) => r.certPem),
      now,
    );

  it('X carries R2 subject, key and key id, issued by R1 (issuer, AKI), as a CA', () => {
    const x = readCertificate(X);
    const r1 = readCertificate(R1.certPem);
    const r2 = readCertificate(R2.certPem);
    expect(x.subjectName.equals(r2.subjectName)).to.equal(true);
    expect(x.issuerName.equals(r1.subjectName)).to.equal(true);
    expect(x.subjectKeyId!.equals(r2.subjectKeyId!)).to.equal(true);
    expect(x.authorityKeyId!.equals(r1.subjectKeyId!)).to.equal(true);
    expect(x.x509.publicKey.equals(r2.x509.publicKey)).to.equal(true);
    expect(x.isCA).to.equal(true);
    expect(x.keyUsage).to.include('keyCertSign');
    expect(x.uris).to.deep.equal([`spiffe://${TD}`]);
    expect(x.x509.verify(r1.publicKey)).to.equal(true);
    expect(x.x509.checkIssued(r1.x509)).to.equal(true);
    expect(now.getTime() - x.notBefore.getTime()).to.be.within(60_000, 61_000);
    expect(x.notAfter.getTime() - x.notBefore.getTime()).to.be.closeTo(7 * DAY + 60_000, 1000);
  });

  it('new leaf + X, verifier trusts only R1: mutual TLS succeeds (both directions)', async () => {
    const server = leaf(R2, 'api', [X]);
    const client = leaf(R1, 'web');
    const r = await handshake(side(server, [R1, R2]), side(client, [R1]));
    expect(r, JSON.stringify(r)).to.include({
      ok: true,
      clientAuthorized: true,
      serverAuthorized: true,
    });
    expect(r.clientSawServer).to.equal(`URI:${spiffe('api')}`);
    expect(r.serverSawClient).to.equal(`URI:${spiffe('web')}`);
    expect(offline(server, [X], [R1])).to.equal(true);
    // Roles swapped: an old server that trusts only R1 accepts a new client sending X.
    const oldServer = leaf(R1, 'db');
    const newClient = leaf(R2, 'web', [X]);
    const r2 = await handshake(side(oldServer, [R1]), side(newClient, [R1, R2]));
    expect(r2, JSON.stringify(r2)).to.include({ ok: true, serverAuthorized: true });
  });

  it('new leaf WITHOUT X, verifier trusts only R1: refused by the client', async () => {
    const server = leaf(R2, 'api');
    const r = await handshake(side(server, [R1, R2]), side(leaf(R1, 'web'), [R1]));
    expect(r.ok).to.equal(false);
    // The server's TLS stack appends its own root from its CA list; that does not help.
    expect(r.clientError).to.match(CHAIN_ERROR);
    expect(r.clientAuthorized).to.equal(false);
    expect(offline(server, [], [R1])).to.match(/no trusted root or intermediate/);
  });

  it('new leaf + X, verifier trusts [R1, R2] or only [R2]: succeeds', async () => {
    const server = leaf(R2, 'api', [X]);
    for (const trust of [[R1, R2], [R2]]) {
      const r = await handshake(side(server, [R1, R2]), side(leaf(R2, 'web', [X]), trust));
      expect(r, JSON.stringify(r)).to.include({ ok: true, clientAuthorized: true });
      expect(offline(server, [X], trust)).to.equal(true);
    }
  });

  it('old leaf, verifier holds the rotation bundle [R1, R2]: succeeds', async () => {
    const server = leaf(R1, 'api');
    const r = await handshake(side(server, [R1, R2]), side(leaf(R2, 'web', [X]), [R1, R2]));
    expect(r, JSON.stringify(r)).to.include({
      ok: true,
      clientAuthorized: true,
      serverAuthorized: true,
    });
    expect(offline(server, [], [R1, R2])).to.equal(true);
  });

  it('old leaf alone, verifier trusts only [R2]: refused by the client', async () => {
    const server = leaf(R1, 'api');
    const r = await handshake(side(server, [R1, R2]), side(leaf(R2, 'web'), [R2]));
    expect(r.ok).to.equal(false);
    // The server's TLS stack appends its own root from its CA list; that does not help.
    expect(r.clientError).to.match(CHAIN_ERROR);
    expect(r.clientAuthorized).to.equal(false);
    expect(offline(server, [], [R2])).to.match(/no trusted root or intermediate/);
  });

  it('old leaf + Xr (R1 cross-signed by R2), verifier trusts only [R2]: succeeds', async () => {
    const server = leaf(R1, 'api', [Xr]);
    const client = leaf(R2, 'web');
    const r = await handshake(side(server, [R1, R2]), side(client, [R2]));
    expect(r, JSON.stringify(r)).to.include({
      ok: true,
      clientAuthorized: true,
      serverAuthorized: true,
    });
    expect(offline(server, [Xr], [R2])).to.equal(true);
    // And the other direction: an old client sending Xr to a server that trusts only R2.
    const r2 = await handshake(side(leaf(R2, 'db'), [R2]), side(leaf(R1, 'web', [Xr]), [R2]));
    expect(r2, JSON.stringify(r2)).to.include({ ok: true, serverAuthorized: true });
  });

  it("refuses a foreign CA's leaf with the same SPIFFE URI, even under a copy of R2's name", async () => {
    const foreign = mkRoot();
    // A forged root: R2's exact subject and key id, but the attacker's key.
    const fKey = ecKey();
    const r2 = readCertificate(R2.certPem);
    const forgedRoot = issueCertificate({
      serial: randomSerial(),
      subjectName: r2.subjectName,
      issuerName: r2.subjectName,
      subjectKeyId: r2.subjectKeyId,
      authorityKeyId: r2.subjectKeyId,
      notBefore: new Date(now.getTime() - HOUR),
      notAfter: new Date(now.getTime() + DAY),
      publicKey: publicOf(fKey),
      signerKey: fKey,
      isCA: true,
      uris: [`spiffe://${TD}`],
    });
    const forged = { key: fKey, certPem: forgedRoot };
    for (const [bad, chain] of [
      [leaf(foreign, 'web'), []],
      [leaf(forged, 'web'), []],
      [leaf(forged, 'web', [forgedRoot]), [forgedRoot]],
    ] as const) {
      // As a client: the server (trusting R1+R2) refuses it.
      const asClient = await handshake(side(leaf(R2, 'api'), [R1, R2]), side(bad, [R1, R2]));
      expect(asClient.ok).to.equal(false);
      expect(asClient.serverAuthorized).to.equal(false);
      expect(asClient.serverSawClient).to.equal(undefined);
      // As a server: the client refuses it.
      const asServer = await handshake(side(bad, [R1, R2]), side(leaf(R2, 'web'), [R1, R2]));
      expect(asServer.ok).to.equal(false);
      expect(asServer.clientAuthorized).to.equal(false);
      expect(offline(bad, [...chain], [R1, R2])).to.be.a('string');
    }
  });
});
