/**
 * An agent without CAP_NET_ADMIN (run with the capability dropped by setpriv, in a test
 * namespace) cannot write its nftables table. It must say so by name, `redirect-traffic
 * --status` must not claim the table is absent when it cannot even read it, and the
 * transparent sidecar's check must turn critical saying capture failed, instead of passing.
 * Needs root, ip, nft and setpriv; skipped with the reason otherwise.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestNs, deleteTestNs, inNs, netnsSkipReason, tryInNs } from '../helpers/netns.js';
import {
  eventually,
  startTrellis,
  tempDirs,
  TRELLIS_BIN,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

const HOST = '198.18.202.1';
const AGENT = '127.0.0.1:8502';

const WEB_HCL = `service {
  name = "web"
  port = 18081
  connect {
    sidecar_service {
      port = 21000
      proxy {
        mode = "transparent"
        transparent_proxy { capture_user = "65534" }
      }
    }
  }
}
`;

describe('an agent without CAP_NET_ADMIN (setpriv, test namespace)', function () {
  this.timeout(120_000);
  const skip = netnsSkipReason();
  const tmp = tempDirs();
  let ns = '';
  let server: TrellisProcess | undefined;
  let agent: ChildProcess | undefined;
  let agentOut = '';

  before(async function () {
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    ns = createTestNs(HOST);
    // A table left there by an earlier run: the agent can neither read nor replace it.
    inNs(ns, ['nft', 'add', 'table', 'inet', 'trellis']);
    server = await startTrellis(
      [
        'server',
        '--data-dir',
        tmp.make('nocap-srv'),
        '--bind',
        '127.0.0.1:0',
        '--node',
        'srv',
        '--acl-default-policy',
        'allow',
      ],
      { netns: ns, timeoutMs: 60_000 },
    );
    const conf = tmp.make('nocap-conf');
    writeFileSync(join(conf, 'web.hcl'), WEB_HCL);
    // Root, but with CAP_NET_ADMIN gone from its bounding set: after exec it cannot have it,
    // and neither can the nft it runs.
    agent = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'setpriv',
        '--bounding-set',
        '-net_admin',
        '--inh-caps',
        '-net_admin',
        process.execPath,
        TRELLIS_BIN,
        'agent',
        '--server',
        server.address,
        '--node',
        'host1',
        '--advertise',
        HOST,
        '--data-dir',
        tmp.make('nocap-data'),
        '--config-dir',
        conf,
        '--bind',
        AGENT,
        '--dns-bind',
        '127.0.0.1:8600',
        '--sync-interval',
        '1000',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    agent.stdout!.on('data', (d: Buffer) => (agentOut += d.toString()));
    agent.stderr!.on('data', (d: Buffer) => (agentOut += d.toString()));
    await eventually(async () => agentOut.includes('trellis agent listening on'), 60_000);
  });

  after(async () => {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((r) => agent!.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }
    await server?.stop();
    if (ns) deleteTestNs(ns);
    tmp.removeAll();
  });

  const trellis = (...args: string[]) =>
    tryInNs(ns, [process.execPath, TRELLIS_BIN, ...args, '--http-addr', AGENT]);

  it('logs the missing capability by name', async () => {
    await eventually(async () => agentOut.includes('CAP_NET_ADMIN'), 30_000);
    expect(agentOut).to.match(
      /Operation not permitted: the agent lacks the CAP_NET_ADMIN capability/,
    );
  });

  it('redirect-traffic --status reports that it cannot read the table, not "absent"', async () => {
    const r = await eventually(async () => {
      const out = trellis('redirect-traffic', '--status');
      return /Error:/.test(out.stdout) && out;
    }, 30_000);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.match(/^State: {4}unknown$/m);
    expect(r.stdout).to.match(/^Status: {3}.*CAP_NET_ADMIN/m);
    expect(r.stdout).to.match(/^Error: {4}.*CAP_NET_ADMIN/m);
    expect(r.stdout).to.not.contain('absent');
    // The table really is there (root in the namespace still can read it).
    expect(inNs(ns, ['nft', 'list', 'table', 'inet', 'trellis'])).to.contain('table inet trellis');
  });

  it("the transparent sidecar's check is critical and says capture failed", async () => {
    let last = '';
    const check = await eventually(async () => {
      const out = tryInNs(ns, ['curl', '-s', `http://${AGENT}/v1/agent/checks`]).stdout;
      last = out;
      const checks = JSON.parse(out || '{}') as Record<
        string,
        { Name: string; ServiceID: string; Status: string; Output: string }
      >;
      const c = Object.values(checks).find(
        (x) => x.ServiceID === 'web-sidecar-proxy' && x.Name === 'Connect Sidecar Listening',
      );
      return c && c.Status === 'critical' && c;
    }, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${last}`);
    });
    expect(check.Output).to.match(/^transparent capture failed: .*CAP_NET_ADMIN/);
  });
});
