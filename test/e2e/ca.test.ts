/**
 * The certificate authority end to end, with real processes: a `trellis server` with ACLs on
 * default deny and its HTTPS API, agents on two nodes, leaves issued through the agents,
 * issuance rules (the node must host the service, the identity comes from the catalog), root
 * rotation with real mutual-TLS handshakes between old and new leaves, leaves served from the
 * agent's cache while the server is down, and onboarding with join tokens that survives the
 * join token's expiry and restarts of the agent and the server.
 */
import { expect } from 'chai';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import {
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';
import { ecKey, handshake, rawCsr } from '../unit/ca/helpers.js';

interface Reply {
  status: number;
  body: unknown;
  text: string;
}

interface Leaf {
  SerialNumber: string;
  CertPEM: string;
  PrivateKeyPEM: string;
  ServiceURI: string;
  ValidAfter: string;
  ValidBefore: string;
  ModifyIndex: number;
}

interface Roots {
  ActiveRootID: string;
  TrustDomain: string;
  Roots: {
    ID: string;
    RootCert: string;
    Active: boolean;
    IntermediateCerts: string[] | null;
    TrellisSuccessorCrossCert?: string;
  }[];
}

async function call(
  url: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers['x-consul-token'] = opts.token;
  const r = await request(`${url}${path}`, {
    method: method as 'GET',
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await r.body.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: r.statusCode, body, text };
}

function sans(pem: string): string {
  return (
    new X509Certificate(pem.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!).subjectAltName ?? ''
  );
}

describe('certificate authority and onboarding (real processes)', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  let serverDir = '';
  let server: TrellisProcess;
  let base = '';
  let https = '';
  let mgmt = '';
  const agents: TrellisProcess[] = [];

  const ok = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const r = await call(base, method, path, { token: mgmt, body });
    expect(r.status, `${method} ${path}: ${r.text}`).to.equal(200);
    return r.body;
  };

  /** `keepHttps`: come back on the same HTTPS address, as a restarted server does. */
  const startServer = async (keepHttps = false): Promise<void> => {
    server = await startServerProcess(serverDir, 'srv', [
      '--acl-default-policy',
      'deny',
      '--https-bind',
      keepHttps ? https : '127.0.0.1:0',
    ]);
    base = `http://${server.address}`;
    https = /trellis server https on (\S+)/.exec(server.output())![1]!;
  };

  const startAgent = async (node: string, args: string[]): Promise<TrellisProcess> => {
    const p = await startTrellis([
      'agent',
      '--node',
      node,
      '--bind',
      '127.0.0.1:0',
      '--sync-interval',
      '1000',
      ...args,
    ]);
    agents.push(p);
    return p;
  };

  const nodeToken = async (node: string): Promise<string> =>
    (
      (await ok('PUT', '/v1/acl/token', {
        NodeIdentities: [{ NodeName: node, Datacenter: 'dc1' }],
      })) as { SecretID: string }
    ).SecretID;

  const serviceToken = async (svc: string): Promise<string> =>
    (
      (await ok('PUT', '/v1/acl/token', { ServiceIdentities: [{ ServiceName: svc }] })) as {
        SecretID: string;
      }
    ).SecretID;

  before(async () => {
    serverDir = tmp.make('ca-srv');
    await startServer();
    mgmt = ((await call(base, 'PUT', '/v1/acl/bootstrap')).body as { SecretID: string }).SecretID;
  });

  after(async () => {
    for (const a of agents) await a.stop();
    await server.stop();
    tmp.removeAll();
  });

  it('creates the root once, keeps its key on disk at 0600, and never shows the key', async () => {
    const roots = (await ok('GET', '/v1/connect/ca/roots')) as Roots;
    expect(roots.TrustDomain).to.match(/^[0-9a-f-]{36}\.consul$/);
    expect(roots.Roots).to.have.length(1);
    const keyFile = join(
      serverDir,
      'catalog',
      'ca-keys',
      `${roots.ActiveRootID.replace(/:/g, '')}.key`,
    );
    const text = readFileSync(keyFile, 'utf8');
    expect(() => createPrivateKey(text)).to.not.throw();
    const { statSync } = await import('node:fs');
    expect(statSync(keyFile).mode & 0o777).to.equal(0o600);
    const pem = await call(base, 'GET', '/v1/connect/ca/roots?pem=true');
    expect(pem.text).to.include('BEGIN CERTIFICATE').and.not.include('PRIVATE KEY');
    const cfg = await call(base, 'GET', '/v1/connect/ca/configuration', { token: mgmt });
    expect(cfg.text).to.not.include('PRIVATE KEY');
    expect((cfg.body as { Config: { LeafCertTTL: string } }).Config.LeafCertTTL).to.equal('72h');
    // Reading the CA configuration needs operator rights.
    expect((await call(base, 'GET', '/v1/connect/ca/configuration')).status).to.equal(403);
  });

  it('refuses bad CA configurations with the field, changing nothing', async () => {
    const bad: [unknown, string][] = [
      [{ Provider: 'vault', Config: {} }, 'Provider: "vault" is not supported'],
      [{ Config: { LeafCertTTL: '5s' } }, 'Config.LeafCertTTL: must be between 10s and 8760h'],
      [{ Config: { LeafCertTTL: 'soon' } }, 'Config.LeafCertTTL: "soon" is not a duration'],
      [
        { Config: { PrivateKeyType: 'rsa' } },
        'Config.PrivateKeyType: only "ec" (P-256) is supported',
      ],
      [
        { Config: { LeafCrtTTL: '1h' } },
        'Config.LeafCrtTTL: unknown field; did you mean "LeafCertTTL"?',
      ],
      [{ Config: { PrivateKey: 'x' } }, 'Config.PrivateKey and Config.RootCert: give both'],
    ];
    for (const [body, message] of bad) {
      const r = await call(base, 'PUT', '/v1/connect/ca/configuration', { token: mgmt, body });
      expect(r.status, JSON.stringify(body)).to.equal(400);
      expect(r.text).to.include(message);
    }
    const cfg = (await ok('GET', '/v1/connect/ca/configuration')) as {
      Config: { LeafCertTTL: string };
    };
    expect(cfg.Config.LeafCertTTL).to.equal('72h');
  });

  describe('leaves', () => {
    let agentA: TrellisProcess;
    let agentB: TrellisProcess;
    let tokenA = '';
    let apiToken = '';

    before(async () => {
      tokenA = await nodeToken('a');
      agentA = await startAgent('a', [
        '--server',
        server.address,
        '--token',
        tokenA,
        '--data-dir',
        tmp.make('ca-a'),
      ]);
      agentB = await startAgent('b', [
        '--server',
        server.address,
        '--token',
        await nodeToken('b'),
        '--data-dir',
        tmp.make('ca-b'),
      ]);
      apiToken = await serviceToken('api');
      const reg = await call(`http://${agentB.address}`, 'PUT', '/v1/agent/service/register', {
        token: apiToken,
        body: { Name: 'api', Port: 9090 },
      });
      expect(reg.status).to.equal(200);
      await eventually(async () => {
        const r = await call(base, 'GET', '/v1/catalog/service/api', { token: mgmt });
        return (r.body as unknown[]).length === 1;
      });
    });

    it('issues a leaf on the node that hosts the service, with the identity from the catalog', async () => {
      const r = await call(`http://${agentB.address}`, 'GET', '/v1/agent/connect/ca/leaf/api', {
        token: apiToken,
      });
      expect(r.status, r.text).to.equal(200);
      const leaf = r.body as Leaf;
      const roots = (await ok('GET', '/v1/connect/ca/roots')) as Roots;
      expect(leaf.ServiceURI).to.equal(`spiffe://${roots.TrustDomain}/ns/default/dc/dc1/svc/api`);
      expect(sans(leaf.CertPEM)).to.equal(`URI:${leaf.ServiceURI}`);
      const cert = new X509Certificate(leaf.CertPEM);
      const root = new X509Certificate(roots.Roots[0]!.RootCert);
      expect(cert.verify(root.publicKey)).to.equal(true);
      expect(cert.checkPrivateKey(createPrivateKey(leaf.PrivateKeyPEM))).to.equal(true);
      // Backdated one minute; 72h by default.
      const life = Date.parse(leaf.ValidBefore) - Date.parse(leaf.ValidAfter);
      expect(life).to.equal(72 * 3600_000);
      expect(Date.parse(leaf.ValidAfter)).to.be.below(Date.now() - 50_000);
      // A second request answers the cached leaf.
      const again = (
        await call(`http://${agentB.address}`, 'GET', '/v1/agent/connect/ca/leaf/api', {
          token: apiToken,
        })
      ).body as Leaf;
      expect(again.SerialNumber).to.equal(leaf.SerialNumber);
    });

    it('refuses a leaf to an agent whose node does not host the service, whatever the token', async () => {
      const r = await call(`http://${agentA.address}`, 'GET', '/v1/agent/connect/ca/leaf/api', {
        token: apiToken,
      });
      expect(r.status).to.equal(403);
      expect(r.text).to.equal('Permission denied: service "api" is not registered on node "a"');
      // Even management rights on the caller's token do not make node a host api.
      const m = await call(`http://${agentA.address}`, 'GET', '/v1/agent/connect/ca/leaf/api', {
        token: mgmt,
      });
      expect(m.status).to.equal(403);
      // Nor can agent a claim to be node b when asking the server directly.
      const csr = rawCsr(ecKey(), {});
      const direct = await call(base, 'PUT', '/v1/internal/trellis/connect/sign', {
        token: apiToken,
        headers: { 'x-trellis-agent-token': tokenA },
        body: { Service: 'api', Node: 'b', CSR: csr },
      });
      expect(direct.status).to.equal(403);
      expect(direct.text).to.include("lacks permission 'node:write");
      // Without service:write on the service, nothing either.
      const web = await serviceToken('web');
      const noWrite = await call(
        `http://${agentB.address}`,
        'GET',
        '/v1/agent/connect/ca/leaf/api',
        {
          token: web,
        },
      );
      expect(noWrite.status).to.equal(403);
    });

    it('refuses CSRs that ask for other identities or a CA, and bad names, with a 400', async () => {
      const roots = (await ok('GET', '/v1/connect/ca/roots')) as Roots;
      const other = `spiffe://${roots.TrustDomain}/ns/default/dc/dc1/svc/db`;
      const cases: [string, string][] = [
        [rawCsr(ecKey(), { uris: [other] }), 'CSR'],
        [rawCsr(ecKey(), { ca: true }), 'CA'],
        [rawCsr(ecKey(), { dnsNames: ['evil.example'] }), 'CSR'],
        ['-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', 'CSR'],
      ];
      const agentBToken = await nodeToken('b');
      for (const [csr, word] of cases) {
        const r = await call(base, 'PUT', '/v1/internal/trellis/connect/sign', {
          token: apiToken,
          headers: { 'x-trellis-agent-token': agentBToken },
          body: { Service: 'api', Node: 'b', CSR: csr },
        });
        expect(r.status, r.text).to.equal(400);
        expect(r.text).to.include(word);
      }
      const badName = await call(base, 'PUT', '/v1/internal/trellis/connect/sign', {
        token: mgmt,
        headers: { 'x-trellis-agent-token': agentBToken },
        body: { Service: '../db', Node: 'b', CSR: cases[0]![0] },
      });
      expect([badName.status, badName.text]).to.deep.equal([
        400,
        'Service: "../db" is not a valid service name',
      ]);
    });

    it('limits certificate signing per agent with 429', async () => {
      await ok('PUT', '/v1/connect/ca/configuration', { Config: { CSRMaxPerSecond: 1 } });
      try {
        const bToken = await nodeToken('b');
        const statuses: number[] = [];
        for (let i = 0; i < 6; i++) {
          const r = await call(base, 'PUT', '/v1/internal/trellis/connect/sign', {
            token: apiToken,
            headers: { 'x-trellis-agent-token': bToken },
            body: { Service: 'api', Node: 'b', CSR: rawCsr(ecKey(), {}) },
          });
          statuses.push(r.status);
          if (r.status === 429)
            expect(r.text).to.match(/too many certificate requests from node "b"/);
        }
        expect(statuses.slice(0, 2)).to.deep.equal([200, 200]);
        expect(statuses).to.include(429);
      } finally {
        await ok('PUT', '/v1/connect/ca/configuration', { Config: { CSRMaxPerSecond: 50 } });
      }
    });

    it('rotates the root: old and new leaves complete mTLS handshakes with either bundle', async () => {
      const agentUrl = `http://${agentB.address}`;
      const before = (
        await call(agentUrl, 'GET', '/v1/agent/connect/ca/leaf/api', { token: apiToken })
      ).body as Leaf;
      const r1 = (await ok('GET', '/v1/connect/ca/roots')) as Roots;
      await ok('PUT', '/v1/internal/trellis/ca/rotate');
      const r2 = (await ok('GET', '/v1/connect/ca/roots')) as Roots;
      expect(r2.Roots).to.have.length(2);
      expect(r2.ActiveRootID).to.not.equal(r1.ActiveRootID);
      // The agent re-issues the leaf by itself; a blocking read returns the new one.
      const after = (
        await call(
          agentUrl,
          'GET',
          `/v1/agent/connect/ca/leaf/api?index=${before.ModifyIndex}&wait=20s`,
          { token: apiToken },
        )
      ).body as Leaf;
      expect(after.SerialNumber).to.not.equal(before.SerialNumber);
      const oldRoot = r2.Roots.find((x) => !x.Active)!;
      const newRoot = r2.Roots.find((x) => x.Active)!;
      expect(
        new X509Certificate(after.CertPEM).verify(new X509Certificate(newRoot.RootCert).publicKey),
      ).to.equal(true);
      const oldSide = {
        key: createPrivateKey(before.PrivateKeyPEM),
        // An old-root leaf travels with its root cross-signed by the new one.
        certChain: before.CertPEM + oldRoot.TrellisSuccessorCrossCert!,
      };
      // The new leaf's CertPEM already carries the new root cross-signed by the old one.
      const newSide = { key: createPrivateKey(after.PrivateKeyPEM), certChain: after.CertPEM };
      const onlyOld = [oldRoot.RootCert];
      const onlyNew = [newRoot.RootCert];
      const cases = [
        { server: { ...oldSide, trust: onlyOld }, client: { ...newSide, trust: onlyNew } },
        { server: { ...newSide, trust: onlyNew }, client: { ...oldSide, trust: onlyOld } },
        { server: { ...oldSide, trust: onlyNew }, client: { ...newSide, trust: onlyOld } },
        { server: { ...newSide, trust: onlyOld }, client: { ...oldSide, trust: onlyNew } },
      ];
      for (const c of cases) {
        const h = await handshake(c.server, c.client);
        expect(h, JSON.stringify(h)).to.include({
          ok: true,
          clientAuthorized: true,
          serverAuthorized: true,
        });
      }
      // A leaf from a foreign CA with the same SPIFFE id is refused.
      const { generateRoot, signLeaf } = await import('../../src/pki/index.js');
      const foreign = generateRoot({
        clusterId: '99999999-9999-9999-9999-999999999999',
        trustDomain: r2.TrustDomain,
        ttlMs: 3600_000,
        now: new Date(),
      });
      const fKey = ecKey();
      const fLeaf = signLeaf({
        csrPem: rawCsr(fKey, { uris: [after.ServiceURI] }),
        expectedUri: after.ServiceURI,
        signerKey: createPrivateKey(foreign.keyPem),
        signerCertPem: foreign.certPem,
        ttlMs: 3600_000,
        now: new Date(),
      });
      const h = await handshake(
        { ...newSide, trust: [oldRoot.RootCert, newRoot.RootCert] },
        { key: fKey, certChain: fLeaf.certPem, trust: [oldRoot.RootCert, newRoot.RootCert] },
      );
      expect(h.ok).to.equal(false);
    });

    it('serves the cached leaf and roots while the server is down', async () => {
      const agentUrl = `http://${agentB.address}`;
      const leaf = (
        await call(agentUrl, 'GET', '/v1/agent/connect/ca/leaf/api', { token: apiToken })
      ).body as Leaf;
      await server.stop();
      try {
        // The agent checked this token with the servers before; its answer is cached.
        const r = await call(agentUrl, 'GET', '/v1/agent/connect/ca/leaf/api', { token: apiToken });
        expect(r.status, r.text).to.equal(200);
        expect((r.body as Leaf).SerialNumber).to.equal(leaf.SerialNumber);
        const roots = await call(agentUrl, 'GET', '/v1/agent/connect/ca/roots');
        expect(roots.status).to.equal(200);
      } finally {
        await startServer();
      }
    });
  });

  describe('joining', () => {
    it('a joined agent keeps renewing past its join token, across restarts of itself and the server', async () => {
      await ok('PUT', '/v1/connect/ca/configuration', { Config: { LeafCertTTL: '12s' } });
      const jt = (await ok('PUT', '/v1/internal/trellis/join-token', {
        TTL: '3s',
        Node: 'j1',
      })) as {
        SecretID: string;
        CAFingerprint: string;
        JoinAddress: string;
      };
      expect(jt.JoinAddress).to.equal(https);
      const dataDir = tmp.make('ca-j1');
      const joinArgs = ['--server', https, '--data-dir', dataDir];
      let agent = await startAgent('j1', [
        ...joinArgs,
        '--join-token',
        jt.SecretID,
        '--ca-fingerprint',
        jt.CAFingerprint,
      ]);
      const identity = (): { validBefore: string; token: string } =>
        JSON.parse(readFileSync(join(dataDir, 'identity.json'), 'utf8')) as {
          validBefore: string;
          token: string;
        };
      const { statSync } = await import('node:fs');
      expect(statSync(join(dataDir, 'identity.json')).mode & 0o777).to.equal(0o600);
      const first = identity().validBefore;
      await eventually(async () => {
        const r = await call(base, 'GET', '/v1/catalog/node/j1', { token: mgmt });
        return r.status === 200 && r.body !== null;
      });
      // The join token expires (3s) and the certificate (12s) is renewed all the same.
      await eventually(async () => identity().validBefore !== first, 20_000, 200);
      // Used: a second host cannot join with it.
      const again = await startTrellis([
        'agent',
        '--node',
        'j2',
        '--bind',
        '127.0.0.1:0',
        '--data-dir',
        tmp.make('ca-j2'),
        '--server',
        https,
        '--join-token',
        jt.SecretID,
        '--ca-fingerprint',
        jt.CAFingerprint,
      ]).then(
        () => 'started',
        (err: Error) => err.message,
      );
      expect(again, again).to.match(/join token (was already used|not found|has expired)/);
      // Restart the agent (no join token now) and the server; renewals go on.
      await agent.stop();
      agent = await startAgent('j1', joinArgs);
      await server.stop();
      await startServer(true);
      const beforeRestartRenewal = identity().validBefore;
      await eventually(async () => identity().validBefore !== beforeRestartRenewal, 25_000, 200);
      // And the joined agent still works: its API answers and the catalog sees it alive.
      await eventually(async () => {
        const r = await call(base, 'GET', '/v1/health/node/j1', { token: mgmt });
        return (r.body as { CheckID: string; Status: string }[]).some(
          (c) => c.CheckID === 'serfHealth' && c.Status === 'passing',
        );
      }, 20_000);
      await ok('PUT', '/v1/connect/ca/configuration', { Config: { LeafCertTTL: '72h' } });
    });

    it('refuses an expired join token, a wrong fingerprint, and a token for another node', async () => {
      const expired = (await ok('PUT', '/v1/internal/trellis/join-token', { TTL: '1s' })) as {
        SecretID: string;
        CAFingerprint: string;
      };
      await new Promise((r) => setTimeout(r, 1500));
      const tryJoin = (node: string, secret: string, fp: string): Promise<string> =>
        startTrellis([
          'agent',
          '--node',
          node,
          '--bind',
          '127.0.0.1:0',
          '--data-dir',
          tmp.make(`ca-${node}`),
          '--server',
          https,
          '--join-token',
          secret,
          '--ca-fingerprint',
          fp,
        ]).then(
          async (p) => {
            await p.stop();
            return 'started';
          },
          (err: Error) => err.message,
        );
      expect(await tryJoin('x1', expired.SecretID, expired.CAFingerprint)).to.include(
        'join token has expired',
      );
      const fresh = (await ok('PUT', '/v1/internal/trellis/join-token', { Node: 'only-this' })) as {
        SecretID: string;
        CAFingerprint: string;
      };
      expect(await tryJoin('x2', fresh.SecretID, 'ab'.repeat(32))).to.include(
        'does not hold the CA with fingerprint',
      );
      expect(await tryJoin('x3', fresh.SecretID, fresh.CAFingerprint)).to.include(
        'join token is for node "only-this"',
      );
    });
  });
});
