/**
 * Transparent interception on one host, for real: a server, an agent and an app run inside a
 * network namespace the test creates (`trellis-t-*`); the agent owns the namespace's
 * `inet trellis` table. A client running as the captured user (uid 65534) dials a mesh
 * service's virtual IP or its real address and is carried through both proxies; the agent
 * repairs drift, refuses bad capture settings without touching the rules in force, restores
 * its rules at start, and a SIGKILLed agent leaves captured traffic refused, not plaintext.
 * Needs root, ip, nft, setpriv and curl; skipped with the reason otherwise.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ChildProcess } from 'node:child_process';
import {
  asUid,
  createTestNs,
  deleteTestNs,
  inNs,
  netnsSkipReason,
  spawnInNs,
  tryInNs,
} from '../helpers/netns.js';
import {
  eventually,
  startTrellis,
  TRELLIS_BIN,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

const HOST = '198.18.201.1';
const AGENT = '127.0.0.1:8502';
const NOBODY = 65534;
const APP_BODY = 'api-app-TRELLIS-MARK';

const WEB_HCL = `service {
  name = "web"
  port = 18081
  connect {
    sidecar_service {
      port = 21000
      proxy {
        mode = "transparent"
        transparent_proxy {
          capture_user = "${NOBODY}"
          redirect_dns = true
        }
      }
    }
  }
}
`;
const API_HCL = `service {
  name = "api"
  port = 18080
  connect {
    sidecar_service {
      port = 21001
      proxy { mode = "transparent" }
    }
  }
}
`;

describe('transparent interception on one host (network namespace, real nft)', function () {
  this.timeout(120_000);
  const skip = netnsSkipReason(['curl', 'dig']);
  let ns = '';
  let dir = '';
  let server: TrellisProcess | undefined;
  let agent: TrellisProcess | undefined;
  let app: ChildProcess | undefined;

  const trellis = (...args: string[]) =>
    tryInNs(ns, [process.execPath, TRELLIS_BIN, ...args, '--http-addr', AGENT]);
  const table = (): string => tryInNs(ns, ['nft', 'list', 'table', 'inet', 'trellis']).stdout;
  /** curl as `uid` (or as root, the agent's uid, when undefined): the body, or "FAILED <why>". */
  const curl = (url: string, uid?: number): string => {
    const argv = ['curl', '-sS', '-m', '5', url];
    const r = tryInNs(ns, uid === undefined ? argv : asUid(uid, argv));
    return r.code === 0 ? r.stdout : `FAILED ${r.code} ${r.stderr.trim()}`;
  };
  /** PUT /v1/agent/service/register on the agent inside the namespace. */
  const register = (body: string) =>
    tryInNs(ns, [
      'curl',
      '-s',
      '-f',
      '-X',
      'PUT',
      '--data',
      body,
      `http://${AGENT}/v1/agent/service/register`,
    ]);
  const outboundConnections = (): number => {
    const text = curl(`http://${AGENT}/v1/agent/metrics?format=prometheus`);
    const m =
      /trellis_tcp_connections_opened_total\{direction="outbound",source_service="web",destination_service="api"\} (\d+)/.exec(
        text,
      );
    return m ? Number(m[1]) : 0;
  };
  const startAgent = async (): Promise<TrellisProcess> =>
    startTrellis(
      [
        'agent',
        '--server',
        server!.address,
        '--node',
        'host1',
        '--advertise',
        HOST,
        '--data-dir',
        join(dir, 'agent'),
        '--config-dir',
        join(dir, 'conf'),
        '--bind',
        AGENT,
        '--dns-bind',
        '127.0.0.1:8600',
        '--sync-interval',
        '1000',
      ],
      { netns: ns },
    );
  let vip = '';

  before(async function () {
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    ns = createTestNs(HOST);
    dir = mkdtempSync(join(tmpdir(), 'trellis-test-tproxy-'));
    inNs(ns, ['mkdir', '-p', join(dir, 'conf')]);
    writeFileSync(join(dir, 'conf', 'web.hcl'), WEB_HCL);
    writeFileSync(join(dir, 'conf', 'api.hcl'), API_HCL);
    app = spawnInNs(ns, [
      process.execPath,
      '-e',
      `require('http').createServer((q, s) => s.end('${APP_BODY}')).listen(18080, '0.0.0.0')`,
    ]);
    server = await startTrellis(
      [
        'server',
        '--data-dir',
        join(dir, 'server'),
        '--bind',
        '127.0.0.1:8500',
        '--node',
        'srv',
        '--acl-default-policy',
        'allow',
      ],
      { netns: ns },
    );
    agent = await startAgent();
    vip = await eventually(
      async () => {
        const r = trellis('catalog', 'services');
        if (r.code !== 0) return undefined;
        const v = tryInNs(ns, ['curl', '-s', `http://${AGENT}/v1/internal/trellis/virtual-ips`]);
        return (JSON.parse(v.stdout || '{}') as Record<string, string>).api;
      },
      30_000,
      300,
    );
    // Both sidecars serving and the rules in force.
    await eventually(() => Promise.resolve(table().includes(`${vip} : `)), 30_000, 200);
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
    if (app?.pid) app.kill('SIGKILL');
    if (ns) deleteTestNs(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('carries the captured user to a virtual IP, on any port, through both proxies', async () => {
    const before = outboundConnections();
    const body = await eventually(
      () => Promise.resolve(curl(`http://${vip}/`, NOBODY).includes(APP_BODY)),
      20_000,
      200,
    );
    expect(body).to.equal(true);
    expect(curl(`http://${vip}:8080/anything`, NOBODY)).to.equal(APP_BODY);
    expect(outboundConnections()).to.be.greaterThan(before);
  });

  it('captures a dial to the real address of an api instance the same way', () => {
    const before = outboundConnections();
    expect(curl(`http://${HOST}:18080/`, NOBODY)).to.equal(APP_BODY);
    expect(outboundConnections()).to.equal(before + 1);
  });

  it('captures a dial to an IPv6 instance address through the ::1 listener', async () => {
    const v6 = 'fd00:198:18::1';
    inNs(ns, ['ip', '-6', 'addr', 'add', `${v6}/64`, 'dev', 'tv0', 'nodad']);
    const reg = JSON.stringify({
      ID: 'api-v6',
      Name: 'api',
      Address: v6,
      Port: 18080,
      Connect: { SidecarService: { Address: v6, Port: 21002 } },
    });
    const put = register(reg);
    expect(put.code, put.stdout + put.stderr).to.equal(0);
    try {
      await eventually(() => Promise.resolve(table().includes(`${v6} . 18080 : `)), 20_000, 200);
      const before = outboundConnections();
      expect(curl(`http://[${v6}]:18080/`, NOBODY)).to.equal(APP_BODY);
      expect(outboundConnections()).to.equal(before + 1);
    } finally {
      inNs(ns, ['curl', '-s', '-X', 'PUT', `http://${AGENT}/v1/agent/service/deregister/api-v6`]);
    }
  });

  it("redirects the captured user's DNS to the agent: api.service.consul is the virtual IP", () => {
    expect(curl('http://api.virtual.consul/', NOBODY)).to.equal(APP_BODY);
    // port 80: only the virtual IP is captured on every port, so this proves the VIP answer
    expect(curl('http://api.service.consul/', NOBODY)).to.equal(APP_BODY);
    const dig = tryInNs(ns, ['dig', '+short', '@127.0.0.1', '-p', '8600', 'api.service.consul']);
    expect(dig.stdout.trim()).to.equal(vip);
  });

  it('never captures the agent user (the proxies themselves): no loops', () => {
    // root is the agent's uid here: a virtual IP means nothing to it.
    expect(curl(`http://${vip}/`)).to.match(/^FAILED/);
  });

  it('prints the ruleset with --dry-run and reports in-sync with --status', () => {
    const dry = trellis('redirect-traffic', '--dry-run');
    expect(dry.code).to.equal(0);
    expect(dry.stdout).to.contain('table inet trellis {');
    expect(dry.stdout).to.contain(`${vip} : `);
    const st = trellis('redirect-traffic', '--status');
    expect(st.code, st.stderr).to.equal(0);
    expect(st.stdout).to.contain('State:    in-sync');
  });

  it('applies the same rules twice with identical results', () => {
    const first = table();
    expect(trellis('redirect-traffic').code).to.equal(0);
    expect(trellis('redirect-traffic').code).to.equal(0);
    expect(table()).to.equal(first);
  });

  it('repairs drift on its own within seconds and says so', async () => {
    const good = table();
    inNs(ns, ['nft', 'flush', 'chain', 'inet', 'trellis', 'output']);
    expect(table()).to.not.equal(good);
    await eventually(() => Promise.resolve(table() === good), 15_000, 100);
    // The warning is logged before the repair, but the log reaches us through a pipe.
    const logged = (line: string) => () => Promise.resolve(agent!.output().includes(line));
    await eventually(logged('was changed; repairing it'), 5_000, 100);
    inNs(ns, ['nft', 'delete', 'table', 'inet', 'trellis']);
    await eventually(() => Promise.resolve(table() === good), 15_000, 100);
    await eventually(logged('was deleted; restoring it'), 5_000, 100);
    const st = JSON.parse(
      tryInNs(ns, ['curl', '-s', `http://${AGENT}/v1/agent/trellis/redirect`]).stdout,
    ) as { Repairs: number };
    expect(st.Repairs).to.be.at.least(2);
  });

  it('refuses a capture user that does not exist and keeps the rules in force', async () => {
    const good = table();
    const reg = JSON.stringify({
      Name: 'bad',
      Port: 18090,
      Connect: {
        SidecarService: {
          Port: 21009,
          Proxy: { Mode: 'transparent', TransparentProxy: { CaptureUser: 'no-such-user-q7' } },
        },
      },
    });
    const put = register(reg);
    expect(put.code, put.stdout + put.stderr).to.equal(0);
    const st = await eventually(
      () => {
        const r = trellis('redirect-traffic', '--status');
        return Promise.resolve(r.stdout.includes('no-such-user-q7') ? r : undefined);
      },
      20_000,
      200,
    );
    expect(st.code).to.equal(1);
    expect(st.stdout).to.contain('capture_user "no-such-user-q7": no such user on this host');
    expect(table()).to.equal(good);
    // Traffic still flows under the old rules.
    expect(curl(`http://${vip}/`, NOBODY)).to.equal(APP_BODY);
    inNs(ns, ['curl', '-s', '-f', '-X', 'PUT', `http://${AGENT}/v1/agent/service/deregister/bad`]);
    await eventually(
      () => Promise.resolve(trellis('redirect-traffic', '--status').code === 0),
      20_000,
      200,
    );
  });

  it('--remove leaves no trace and pauses capture until redirect-traffic', async () => {
    const r = trellis('redirect-traffic', '--remove');
    expect(r.code, r.stderr).to.equal(0);
    expect(tryInNs(ns, ['nft', 'list', 'tables']).stdout).to.not.contain('trellis');
    // Not restored by the drift check: paused on purpose.
    await new Promise((res) => setTimeout(res, 3000));
    expect(tryInNs(ns, ['nft', 'list', 'tables']).stdout).to.not.contain('trellis');
    expect(curl(`http://${vip}/`, NOBODY)).to.match(/^FAILED/);
    expect(trellis('redirect-traffic').code).to.equal(0);
    expect(table()).to.contain(`${vip} : `);
    expect(curl(`http://${vip}/`, NOBODY)).to.equal(APP_BODY);
  });

  it('with the agent SIGKILLed, captured traffic is refused, not sent in plaintext; a restart restores it', async () => {
    await agent!.kill9();
    agent = undefined;
    expect(table()).to.contain(`${vip} : `);
    const viaVip = curl(`http://${vip}/`, NOBODY);
    const viaAddress = curl(`http://${HOST}:18080/`, NOBODY);
    expect(viaVip).to.match(/^FAILED 7 /); // curl 7: connection refused
    expect(viaAddress).to.match(/^FAILED 7 /);
    expect(viaAddress).to.not.contain(APP_BODY);
    agent = await startAgent();
    await eventually(
      () => Promise.resolve(curl(`http://${vip}/`, NOBODY) === APP_BODY),
      30_000,
      300,
    );
  });

  it('exits with a clear error when its API port is taken, leaving the rules alone', async () => {
    const good = table();
    const r = tryInNs(
      ns,
      [
        process.execPath,
        TRELLIS_BIN,
        'agent',
        '--server',
        server!.address,
        '--node',
        'dup',
        '--data-dir',
        join(dir, 'dup'),
        '--bind',
        AGENT,
      ],
      30_000,
    );
    expect(r.code).to.not.equal(0);
    expect(r.stderr + r.stdout).to.match(/EADDRINUSE|already in use/);
    expect(r.stderr + r.stdout).to.not.match(/^\s+at /m);
    expect(table()).to.equal(good);
  });
});
