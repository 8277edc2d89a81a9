/**
 * The Ansible roles applied for real: a server host and an agent host, each a chroot made of an
 * overlayfs over the host's `/` (read-only lower; the upper dir in this test's temp dir), both
 * inside one private mount namespace and one throwaway network namespace, driven through
 * Ansible's community.general.chroot connection with the `direct` service manager
 * (start-stop-daemon and pidfiles; no systemd runs here). The package is built from this checkout
 * (test/helpers/deb-package.ts, shared with the other package tests) and installed by the roles into the chroots; nothing is installed on the
 * host, and the daemons listen only inside the namespace.
 *
 * Needs root, ip, nsenter, unshare, overlayfs, ansible-playbook and dpkg-deb; skipped otherwise.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestNs, deleteTestNs, inNs } from '../../helpers/netns.js';
import { recap } from '../../helpers/ansible-recap.js';
import { chrootHostsSkipReason, ChrootHosts } from '../../helpers/chroot-hosts.js';
import { debPackage } from '../../helpers/deb-package.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const ADDRESS = '10.231.0.2';
const SERVER_HTTP = '127.0.0.1:18500';
const AGENT_HTTP = '127.0.0.1:18510';
const HOSTS = ['server1', 'agent1'] as const;

describe('ansible/ roles on chroot hosts in a network namespace (direct service manager)', function () {
  this.timeout(600_000);
  let tmp = '';
  let ns = '';
  let hosts: ChrootHosts | undefined;
  let token = '';
  const outputs: string[] = [];

  const root = (host: string): string => hosts!.root(host);
  /** A command in the chroots' mount namespace. */
  const inMounts = (argv: string[]): string => hosts!.inMounts(argv);

  const playbook = (extraVars?: object): { status: number | null; output: string } => {
    const r = hosts!.playbook(
      join(tmp, 'inventory.yml'),
      join(REPO, 'ansible', 'site.yml'),
      join(REPO, 'ansible', 'ansible.cfg'),
      extraVars ? ['-e', JSON.stringify(extraVars)] : [],
    );
    outputs.push(r.output);
    return r;
  };

  /** GET on the server's plain HTTP API inside the namespace, with the management token. */
  const api = (path: string): { status: number; body: string } => {
    const out = inNs(ns, [
      'curl',
      '-s',
      '-w',
      '\n%{http_code}',
      '-H',
      `X-Consul-Token: ${token}`,
      `http://${SERVER_HTTP}${path}`,
    ]);
    const cut = out.lastIndexOf('\n');
    return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
  };

  before(function () {
    const reason = chrootHostsSkipReason(REPO);
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    tmp = mkdtempSync('/tmp/trellis-ansible-');
    const deb = debPackage();

    ns = createTestNs(ADDRESS);
    hosts = ChrootHosts.make(tmp, ns, HOSTS);
    // The demo's web service is captured by its unix user (deploy/lab/services/web.hcl): the
    // application's user comes with the application, not with the roles.
    inMounts([
      'chroot',
      root('agent1'),
      'adduser',
      '--system',
      '--quiet',
      '--group',
      '--no-create-home',
      'trellis-web',
    ]);

    const inventory = {
      all: {
        vars: {
          ansible_connection: 'community.general.chroot',
          ansible_python_interpreter: '/usr/bin/python3',
          trellis_service_manager: 'direct',
          trellis_deb: deb,
          trellis_management_token_file: join(tmp, 'secrets', 'management-token'),
          trellis_advertise_addr: ADDRESS,
          // Server and agent share the namespace here: each on ports of its own.
          trellis_server_http_port: 18500,
          trellis_server_https_port: 18501,
          trellis_intentions: [{ source: 'web', destination: 'api', action: 'allow' }],
          trellis_config_entries: [{ Kind: 'service-defaults', Name: 'api', Protocol: 'http' }],
        },
        children: {
          trellis_servers: { hosts: { server1: { ansible_host: root('server1') } } },
          trellis_agents: {
            hosts: {
              agent1: {
                ansible_host: root('agent1'),
                trellis_agent_http_addr: AGENT_HTTP,
                trellis_agent_dns_addr: '127.0.0.1:18610',
                trellis_agent_settings: { proxy_workers: 0 },
                // deploy/lab/services/web.hcl as variables.
                trellis_services: [
                  {
                    name: 'web',
                    port: 8081,
                    connect: {
                      sidecar_service: {
                        port: 21000,
                        proxy: {
                          mode: 'transparent',
                          transparent_proxy: { capture_user: 'trellis-web', redirect_dns: true },
                        },
                      },
                    },
                    check: {
                      id: 'web-http',
                      name: 'web answers HTTP',
                      http: 'http://127.0.0.1:8081/',
                      interval: '5s',
                      timeout: '2s',
                    },
                  },
                ],
              },
            },
          },
        },
      },
    };
    writeFileSync(join(tmp, 'inventory.yml'), JSON.stringify(inventory, null, 2));
  });

  after(function () {
    if (hosts) {
      // The daemons the roles started, by the pidfiles their direct mode wrote.
      for (const host of HOSTS) hosts.killDaemons(host, ['server', 'agent']);
      hosts.close();
    }
    if (ns) deleteTestNs(ns);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    if (this.currentTest?.state === 'failed') for (const o of outputs) console.log(o);
  });

  it('installs, configures and starts a server and an agent that joins', function () {
    const r = playbook();
    expect(r.status, r.output).to.equal(0);
    const counts = recap(r.output);
    expect(counts.get('server1')?.failed, r.output).to.equal(0);
    expect(counts.get('agent1')?.failed, r.output).to.equal(0);
    expect(counts.get('agent1')?.changed ?? 0).to.be.greaterThan(0);

    // The management token was written on the controller only, mode 0600, and never printed.
    const tokenFile = join(tmp, 'secrets', 'management-token');
    expect(statSync(tokenFile).mode & 0o777).to.equal(0o600);
    token = readFileSync(tokenFile, 'utf8').trim();
    expect(token).to.match(/^[0-9a-f-]{36}$/);
    expect(r.output).not.to.include(token);

    // The package went into the chroots, not onto the host.
    expect(existsSync(join(tmp, 'server1', 'upper', 'usr', 'bin', 'trellis'))).to.equal(true);
    expect(
      existsSync(join(tmp, 'agent1', 'upper', 'var', 'lib', 'trellis', 'agent', 'identity.json')),
    ).to.equal(true);
  });

  it('gives a working mesh: agent joined, service registered, intention and config entry written', function () {
    if (!token) this.skip();
    expect(api('/v1/status/leader').status).to.equal(200);
    const nodes = JSON.parse(api('/v1/catalog/nodes').body) as { Node: string }[];
    expect(nodes.map((n) => n.Node)).to.include.members(['server1', 'agent1']);

    const web = JSON.parse(api('/v1/catalog/service/web').body) as {
      Node: string;
      ServicePort: number;
    }[];
    expect(web.map((s) => [s.Node, s.ServicePort])).to.deep.equal([['agent1', 8081]]);
    const sidecar = JSON.parse(api('/v1/catalog/service/web-sidecar-proxy').body) as {
      ServicePort: number;
    }[];
    expect(sidecar.map((s) => s.ServicePort)).to.deep.equal([21000]);

    const intention = api('/v1/connect/intentions/exact?source=web&destination=api');
    expect(intention.status).to.equal(200);
    expect((JSON.parse(intention.body) as { Action: string }).Action).to.equal('allow');
    const entry = JSON.parse(api('/v1/config/service-defaults/api').body) as { Protocol: string };
    expect(entry.Protocol).to.equal('http');

    // The agent joined over HTTPS with its own identity and registered web with the service
    // token the role made (a joined agent's own token may only write its node).
    const agentToken = inMounts(['cat', join(root('agent1'), 'etc', 'trellis.d', 'web.hcl')]);
    expect(agentToken).to.match(/^\s*token = "[0-9a-f-]{36}"$/m);
    expect(outputs.join('\n')).not.to.include(/token = "([^"]+)"/m.exec(agentToken)![1]!);
  });

  it('reports changed=0 on a second run', function () {
    if (!token) this.skip();
    const r = playbook();
    expect(r.status, r.output).to.equal(0);
    const counts = recap(r.output);
    expect([...counts.keys()].sort()).to.deep.equal(['agent1', 'server1']);
    for (const [host, c] of counts) {
      expect(c.changed, `${host} in\n${r.output}`).to.equal(0);
      expect(c.failed, host).to.equal(0);
    }
  });

  it('writes a changed intention (changed=1), having left the same one alone (changed=0 above)', function () {
    if (!token) this.skip();
    const deny = { trellis_intentions: [{ source: 'web', destination: 'api', action: 'deny' }] };
    const r = playbook(deny);
    expect(r.status, r.output).to.equal(0);
    expect(recap(r.output).get('agent1')?.changed, r.output).to.equal(1);
    const intention = api('/v1/connect/intentions/exact?source=web&destination=api');
    expect((JSON.parse(intention.body) as { Action: string }).Action).to.equal('deny');
  });
});
