/**
 * Registering for someone else (the class of Consul CVE-2021-38698): a token that may write
 * "sa" (service_prefix "sa") but not "sb" must not be able to make an instance that receives
 * sb's traffic: a connect-proxy, a sidecar block or a gateway naming sb as its destination, nor
 * take over, re-point, mark healthy or remove a proxy of sb that exists. Every write path is
 * tried (catalog register and deregister, the server's own agent API, a separate agent's API,
 * the agent's sync of a config file, /v1/txn), each with the same vectors, against a real
 * `trellis server --acl-default-policy deny` and a real `trellis agent`. The same rows with a
 * token that may also write sb succeed, so the refusals are about the destination only.
 *
 * The audit log is checked on the way: each refusal writes exactly one `acl.denied` line
 * naming the accessor, the permission, the resource and the remote address, and no secret
 * ever appears in the processes' output.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import {
  agentArgs,
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

interface Reply {
  status: number;
  text: string;
  body: unknown;
}

async function call(
  base: string,
  method: string,
  path: string,
  token: string,
  body?: unknown,
): Promise<Reply> {
  const r = await request(`${base}${path}`, {
    method: method as 'PUT',
    headers: token ? { 'x-consul-token': token } : {},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.body.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: r.statusCode, text, body: parsed };
}

/** The audit lines among a process's output lines. */
function auditLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.includes('"audit"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

type Who = 'saOnly' | 'saSb';

/** A registration vector: the body for the catalog, and for the agent API. */
interface Vector {
  what: string;
  agent?: Record<string, unknown>;
  catalog?: Record<string, unknown>;
}

const PROXY_FOR_SB = {
  Kind: 'connect-proxy',
  Name: 'sa',
  ID: 'sa-proxy',
  Port: 21000,
  Proxy: { DestinationServiceName: 'sb' },
};

const VECTORS: Vector[] = [
  { what: 'a connect-proxy named sa for sb', agent: PROXY_FOR_SB },
  {
    what: 'a connect-proxy with a spelling of the keys Consul also accepts',
    agent: {
      kind: 'connect-proxy',
      name: 'sa',
      id: 'sa-proxy2',
      port: 21001,
      proxy: { destination_service_name: 'sb' },
    },
  },
  {
    what: 'a sidecar block of sa whose proxy names sb',
    agent: {
      Name: 'sa',
      ID: 'sa-app',
      Port: 7000,
      Connect: { SidecarService: { Port: 21002, Proxy: { DestinationServiceName: 'sb' } } },
    },
  },
  {
    what: 'a mesh-gateway named sa carrying a Proxy block for sb',
    agent: {
      Kind: 'mesh-gateway',
      Name: 'sa',
      ID: 'sa-gw',
      Port: 21003,
      Proxy: { DestinationServiceName: 'sb' },
    },
  },
];

describe('ACL: registering a proxy or gateway for another service (every write path)', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  let agent: TrellisProcess | undefined;
  let base = '';
  let mgmt = '';
  const tokens = {} as Record<Who, string>;
  const accessors = {} as Record<Who, string>;
  const ok = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const r = await call(base, method, path, mgmt, body);
    expect(r.status, `${method} ${path}: ${r.text}`).to.equal(200);
    return r.body;
  };
  /** Nodes that list a passing connect endpoint for sb. */
  const sbEndpoints = async (): Promise<string[]> => {
    const list = (await ok('GET', '/v1/health/connect/sb?passing')) as {
      Service: { ID: string };
    }[];
    return list.map((e) => e.Service.ID).sort();
  };

  before(async () => {
    server = await startServerProcess(tmp.make('acl-dest-srv'), 'srv', [
      '--acl-default-policy',
      'deny',
    ]);
    base = `http://${server.address}`;
    mgmt = ((await call(base, 'PUT', '/v1/acl/bootstrap', '')).body as { SecretID: string })
      .SecretID;
    const rules: Record<Who, string> = {
      saOnly: `service_prefix "sa" { policy = "write" }
               service_prefix "" { policy = "read" }
               node_prefix "" { policy = "write" }`,
      saSb: `service_prefix "sa" { policy = "write" }
             service "sb" { policy = "write" }
             service_prefix "" { policy = "read" }
             node_prefix "" { policy = "write" }`,
    };
    for (const who of ['saOnly', 'saSb'] as Who[]) {
      await ok('PUT', '/v1/acl/policy', { Name: who, Rules: rules[who] });
      const t = (await ok('PUT', '/v1/acl/token', {
        Description: who,
        Policies: [{ Name: who }],
      })) as { SecretID: string; AccessorID: string };
      tokens[who] = t.SecretID;
      accessors[who] = t.AccessorID;
    }
    // sb itself, and a proxy of sb (named within "sa" on purpose) that only mgmt registered.
    await ok('PUT', '/v1/catalog/register', {
      Node: 'n1',
      Address: '198.18.0.1',
      Service: { Service: 'sb', Port: 80 },
    });
    await ok('PUT', '/v1/catalog/register', {
      Node: 'n1',
      Address: '198.18.0.1',
      Service: {
        ID: 'sb-proxy',
        Service: 'sa-legacy',
        Kind: 'connect-proxy',
        Port: 21000,
        Proxy: { DestinationServiceName: 'sb' },
      },
      Check: {
        CheckID: 'sb-proxy-alive',
        Name: 'alive',
        ServiceID: 'sb-proxy',
        Status: 'critical',
      },
    });
  });

  after(async () => {
    await agent?.stop();
    await server.stop();
    tmp.removeAll();
  });

  it('catalog register: each vector is refused without sb write, naming sb, and accepted with it', async () => {
    for (const v of VECTORS.filter((x) => !x.agent?.Connect)) {
      const a = v.agent!;
      const svc: Record<string, unknown> = { ...a, Service: a.Name ?? a.name };
      delete svc.Name;
      delete svc.name;
      const body = { Node: 'n2', Address: '198.18.0.2', Service: svc };
      const before = auditLines(server.output()).length;
      const refused = await call(base, 'PUT', '/v1/catalog/register', tokens.saOnly, body);
      expect([refused.status, refused.text], v.what).to.deep.equal([
        403,
        `Permission denied: token with AccessorID '${accessors.saOnly}' lacks permission 'service:write' on "sb" (the destination of ${String(a.Kind ?? a.kind)} "sa": registering, changing or removing a proxy or gateway for a service needs service:write on that service too)`,
      ]);
      // Exactly one audit line for the refusal, naming who, what and from where.
      const lines = await eventually(async () => {
        const l = auditLines(server.output()).slice(before);
        return l.length >= 1 ? l : undefined;
      });
      expect(lines, v.what).to.have.length(1);
      expect(lines[0]).to.include({
        component: 'audit',
        audit: 'acl.denied',
        accessor: accessors.saOnly,
        permission: 'service:write',
        resource: 'sb',
        remote: '127.0.0.1',
        method: 'PUT',
        path: '/v1/catalog/register',
      });
      expect(await sbEndpoints(), v.what).to.deep.equal([]);
    }
    // The token that may write sb registers the same thing.
    const r = await call(base, 'PUT', '/v1/catalog/register', tokens.saSb, {
      Node: 'n2',
      Address: '198.18.0.2',
      Service: { ...PROXY_FOR_SB, Name: undefined, Service: 'sa' },
    });
    expect(r.status, r.text).to.equal(200);
    await ok('PUT', '/v1/catalog/deregister', { Node: 'n2', ServiceID: 'sa-proxy' });
  });

  it("catalog: an existing proxy of sb cannot be taken over, re-pointed, marked passing or removed with only sa's rights", async () => {
    const rows: [string, string, unknown][] = [
      [
        'replace it with a plain service of the same id',
        '/v1/catalog/register',
        { Node: 'n1', Address: '198.18.0.1', Service: { ID: 'sb-proxy', Service: 'sa', Port: 1 } },
      ],
      [
        'mark its check passing',
        '/v1/catalog/register',
        {
          Node: 'n1',
          Address: '198.18.0.1',
          SkipNodeUpdate: true,
          Check: {
            CheckID: 'sb-proxy-alive',
            Name: 'alive',
            ServiceID: 'sb-proxy',
            Status: 'passing',
          },
        },
      ],
    ];
    for (const [what, path, body] of rows) {
      const r = await call(base, 'PUT', path, tokens.saOnly, body);
      expect([r.status, r.text.includes('on "sb"')], what).to.deep.equal([403, true]);
    }
    // Deregistering needs sb write as well (the token has node write on n1 through
    // node_prefix; a node's owner may clean its node: so try with a token without node write).
    await ok('PUT', '/v1/acl/policy', {
      Name: 'sa-no-node',
      Rules: 'service_prefix "sa" { policy = "write" }',
    });
    const noNode = (
      (await ok('PUT', '/v1/acl/token', { Policies: [{ Name: 'sa-no-node' }] })) as {
        SecretID: string;
      }
    ).SecretID;
    for (const body of [
      { Node: 'n1', ServiceID: 'sb-proxy' },
      { Node: 'n1', CheckID: 'sb-proxy-alive' },
    ]) {
      const r = await call(base, 'PUT', '/v1/catalog/deregister', noNode, body);
      expect([r.status, r.text.includes('on "sb"')], JSON.stringify(body)).to.deep.equal([
        403,
        true,
      ]);
    }
    const still = (await ok('GET', '/v1/catalog/service/sa-legacy')) as { ServiceID: string }[];
    expect(still.map((s) => s.ServiceID)).to.deep.equal(['sb-proxy']);
    expect(await sbEndpoints()).to.deep.equal([]);
    // With sb write the check can be marked passing.
    const fine = await call(base, 'PUT', '/v1/catalog/register', tokens.saSb, rows[1]![2]);
    expect(fine.status, fine.text).to.equal(200);
    expect(await sbEndpoints()).to.deep.equal(['sb-proxy']);
  });

  it('/v1/txn: service operations are refused outright (only KV is supported), changing nothing', async () => {
    const r = await call(base, 'PUT', '/v1/txn', tokens.saOnly, [
      { Service: { Verb: 'set', Node: 'n2', Service: { ...PROXY_FOR_SB, Service: 'sa' } } },
    ]);
    expect([r.status, r.text]).to.deep.equal([
      400,
      '[0]: only KV operations are supported (got Service)',
    ]);
  });

  it("the server's own agent API refuses every vector without sb write and accepts it with", async () => {
    for (const v of VECTORS) {
      const refused = await call(base, 'PUT', '/v1/agent/service/register', tokens.saOnly, v.agent);
      expect(
        [refused.status, refused.text.includes(`'service:write' on "sb"`)],
        v.what,
      ).to.deep.equal([403, true]);
      const local = (await ok('GET', '/v1/agent/services')) as Record<string, unknown>;
      expect(
        Object.keys(local).filter((k) => k.startsWith('sa')),
        v.what,
      ).to.deep.equal([]);
    }
    const accepted = await call(
      base,
      'PUT',
      '/v1/agent/service/register',
      tokens.saSb,
      PROXY_FOR_SB,
    );
    expect(accepted.status, accepted.text).to.equal(200);
    // Removing it, or putting it in maintenance, needs sb write too.
    const r = await call(base, 'PUT', '/v1/agent/service/deregister/sa-proxy', tokens.saOnly);
    expect([r.status, r.text.includes('on "sb"')]).to.deep.equal([403, true]);
    const m = await call(
      base,
      'PUT',
      '/v1/agent/service/maintenance/sa-proxy?enable=true',
      tokens.saOnly,
    );
    expect([m.status, m.text.includes('on "sb"')]).to.deep.equal([403, true]);
    const d = await call(base, 'PUT', '/v1/agent/service/deregister/sa-proxy', tokens.saSb);
    expect(d.status, d.text).to.equal(200);
  });

  it('a separate agent: its API refuses the vectors, and its sync of a config-file proxy for sb is refused by the servers', async () => {
    const agentToken = (await ok('PUT', '/v1/acl/token', {
      Description: 'agent a1',
      NodeIdentities: [{ NodeName: 'a1', Datacenter: 'dc1' }],
    })) as { SecretID: string };
    const configDir = tmp.make('acl-dest-cfg');
    // The file's token may write sa only: the agent loads it (files are the operator's), but
    // the servers refuse to list a proxy for sb written with that token.
    writeFileSync(
      join(configDir, 'sa.hcl'),
      `service {
  name = "sa"
  id = "sa-file"
  port = 7100
  token = "${tokens.saOnly}"
  connect {
    sidecar_service {
      port = 21010
      proxy { destination_service_name = "sb" }
    }
  }
}
`,
    );
    agent = await startTrellis([
      ...agentArgs(server.address, 'a1', tmp.make('acl-dest-agent'), configDir),
      '--token',
      agentToken.SecretID,
    ]);
    const url = `http://${agent.address}`;
    for (const v of VECTORS) {
      const r = await call(url, 'PUT', '/v1/agent/service/register', tokens.saOnly, v.agent);
      expect([r.status, r.text.includes(`'service:write' on "sb"`)], v.what).to.deep.equal([
        403,
        true,
      ]);
    }
    // The sync reports the servers' refusal; the catalog never lists the proxy.
    const err = await eventually(async () => {
      const self = (await call(url, 'GET', '/v1/agent/self', mgmt)).body as {
        Stats: { trellis: { sync_error: string } };
      };
      return self.Stats.trellis.sync_error || undefined;
    }, 20_000);
    expect(err).to.include(`'service:write' on "sb"`);
    const onA1 = (await ok('GET', '/v1/catalog/node/a1')) as { Services: Record<string, unknown> };
    expect(Object.keys(onA1.Services)).to.not.include('sa-file-sidecar-proxy');
    // Only the proxy mgmt registered (the one the server's agent had is gone with its removal).
    await eventually(async () => JSON.stringify(await sbEndpoints()) === '["sb-proxy"]');
  });

  it('no secret ever appears in the output of either process', () => {
    for (const p of [server, agent!]) {
      const out = p.output();
      for (const secret of [mgmt, tokens.saOnly, tokens.saSb]) expect(out).to.not.include(secret);
      // Every audit line has the stable shape.
      for (const line of auditLines(out))
        expect(line).to.include.keys('audit', 'accessor', 'remote', 'component');
    }
  });
});
