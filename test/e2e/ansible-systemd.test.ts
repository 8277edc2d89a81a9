/**
 * The Ansible roles in their default mode (`trellis_service_manager: systemd`), applied for real
 * to two hosts that each run a real systemd (test/helpers/systemd-host.ts) and share one test
 * network namespace: site.yml installs the package built from this checkout, configures and
 * starts trellis-server on one host and trellis-agent (which pulls in trellis-proxy) on the
 * other, which joins with a join token; the demo's web service with a transparent sidecar, an
 * intention and a config entry come from variables. Ansible reaches each host through its
 * chroot connection, whose chroot is replaced by nsenter into all of the host's namespaces, so
 * systemctl talks to that host's systemd as a local client. Then: the
 * units are enabled and active, the mesh has both nodes, and a second run reports changed=0.
 *
 * Needs root, ansible-playbook, dpkg-deb, nsenter, unshare and systemd; skipped otherwise.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestNs, deleteTestNs, inNs, netnsSkipReason } from '../helpers/netns.js';
import { SystemdHost } from '../helpers/systemd-host.js';
import { recap } from '../helpers/ansible-recap.js';
import { demoWebService } from '../helpers/ansible-demo.js';
import { debPackage } from '../helpers/deb-package.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const ADDRESS = '198.18.231.2';
const SERVER_HTTP = '127.0.0.1:18500';

function skipReason(): string | undefined {
  const ns = netnsSkipReason();
  if (ns) return ns;
  for (const bin of ['ansible-playbook', 'dpkg-deb', 'nsenter', 'unshare'])
    if (spawnSync(bin, ['--version'], { stdio: 'ignore', timeout: 60_000 }).status !== 0)
      return `needs ${bin}`;
  if (spawnSync('/lib/systemd/systemd', ['--version']).error) return 'needs systemd';
  return undefined;
}

describe('ansible/ roles on hosts running systemd (the default service manager)', function () {
  this.timeout(900_000);
  let tmp = '';
  let ns = '';
  const hosts = new Map<string, SystemdHost>();
  const outputs: string[] = [];

  const playbook = (): { status: number | null; output: string } => {
    const r = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'ansible-playbook',
        '-i',
        join(tmp, 'inventory.yml'),
        join(REPO, 'ansible', 'site.yml'),
      ],
      {
        cwd: tmp,
        encoding: 'utf8',
        timeout: 600_000,
        env: {
          ...process.env,
          ANSIBLE_CONFIG: join(REPO, 'ansible', 'ansible.cfg'),
          ANSIBLE_NOCOLOR: '1',
          ANSIBLE_LOCAL_TEMP: join(tmp, 'ansible-local'),
        },
      },
    );
    const output = `${r.stdout}${r.stderr}`;
    outputs.push(output);
    return { status: r.status, output };
  };

  before(async function () {
    const reason = skipReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    tmp = mkdtempSync('/tmp/trellis-ansible-sd-');
    const deb = debPackage();
    ns = createTestNs(ADDRESS);
    for (const name of ['server1', 'agent1'])
      hosts.set(
        name,
        await SystemdHost.boot(
          `trellis-test-${name}-${process.pid}`,
          mkdtempSync(join(tmp, `${name}-`)),
          {
            netns: ns,
          },
        ),
      );
    // The demo's web service is captured by its unix user: the application's user comes with
    // the application, not with the roles.
    hosts
      .get('agent1')!
      .must(['adduser', '--system', '--quiet', '--group', '--no-create-home', 'trellis-web']);
    const root = (name: string): string => `/proc/${hosts.get(name)!.pid}/root`;
    // The chroot connection's chroot, replaced by an entry into all of the host's namespaces:
    // a chroot alone would run systemctl outside the host's PID namespace, which its systemd
    // does not answer.
    const enter = join(tmp, 'enter-host');
    writeFileSync(
      enter,
      '#!/bin/sh\n# $1 is /proc/<pid>/root of a test host; the rest is the command.\npid=${1#/proc/}\npid=${pid%/root}\nshift\nexec nsenter -t "$pid" -m -p -u -i -n -C -r -w "$@"\n',
      { mode: 0o755 },
    );
    const inventory = {
      all: {
        vars: {
          ansible_connection: 'community.general.chroot',
          ansible_chroot_exe: enter,
          ansible_python_interpreter: '/usr/bin/python3',
          trellis_deb: deb,
          trellis_management_token_file: join(tmp, 'secrets', 'management-token'),
          trellis_advertise_addr: ADDRESS,
          // Both hosts share the test namespace: each on ports of its own.
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
                trellis_agent_http_addr: '127.0.0.1:18510',
                trellis_agent_dns_addr: '127.0.0.1:18610',
                trellis_services: [demoWebService()],
              },
            },
          },
        },
      },
    };
    writeFileSync(join(tmp, 'inventory.yml'), JSON.stringify(inventory, null, 2));
  });

  after(async function () {
    for (const h of hosts.values()) await h.stop();
    if (ns) deleteTestNs(ns);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    if (this.currentTest?.state === 'failed') for (const o of outputs) console.log(o);
  });

  it('installs and starts trellis-server, and trellis-agent with trellis-proxy, under systemd', function () {
    const r = playbook();
    expect(r.status, r.output).to.equal(0);
    const counts = recap(r.output);
    expect(counts.get('server1')?.failed, r.output).to.equal(0);
    expect(counts.get('agent1')?.failed, r.output).to.equal(0);
    const server = hosts.get('server1')!;
    const agent = hosts.get('agent1')!;
    expect(server.unit('trellis-server', 'ActiveState')).to.equal('active');
    expect(server.unit('trellis-server', 'UnitFileState')).to.equal('enabled');
    for (const unit of ['trellis-agent', 'trellis-proxy'])
      expect(agent.unit(unit, 'ActiveState'), unit).to.equal('active');
    expect(agent.unit('trellis-agent', 'UnitFileState')).to.equal('enabled');
    expect(statSync(join(tmp, 'secrets', 'management-token')).mode & 0o777).to.equal(0o600);
    const token = readFileSync(join(tmp, 'secrets', 'management-token'), 'utf8').trim();
    expect(r.output).not.to.include(token);
    const nodes = JSON.parse(
      inNs(ns, [
        'curl',
        '-sf',
        '-H',
        `X-Consul-Token: ${token}`,
        `http://${SERVER_HTTP}/v1/catalog/nodes`,
      ]),
    ) as { Node: string }[];
    expect(nodes.map((n) => n.Node)).to.include.members(['server1', 'agent1']);
    const sidecar = JSON.parse(
      inNs(ns, [
        'curl',
        '-sf',
        '-H',
        `X-Consul-Token: ${token}`,
        `http://${SERVER_HTTP}/v1/health/service/web-sidecar-proxy`,
      ]),
    ) as { Node: { Node: string } }[];
    expect(sidecar.map((e) => e.Node.Node)).to.deep.equal(['agent1']);
  });

  it('reports changed=0 on a second run', function () {
    if (outputs.length === 0) this.skip();
    const r = playbook();
    expect(r.status, r.output).to.equal(0);
    const counts = recap(r.output);
    expect([...counts.keys()].sort()).to.deep.equal(['agent1', 'server1']);
    for (const [host, c] of counts) {
      expect(c.changed, `${host} in\n${r.output}`).to.equal(0);
      expect(c.failed, host).to.equal(0);
    }
  });
});
