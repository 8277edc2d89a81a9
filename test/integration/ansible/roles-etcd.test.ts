/**
 * The Ansible roles applied for real, in the etcd layout: three server hosts, each running an
 * etcd member (role trellis_etcd) and a `trellis server --store etcd` over all three members,
 * and one agent host that joins and runs the demo's web service (deploy/lab/services/web.hcl as
 * variables) with an intention and a config entry; every host a chroot on an overlayfs over `/` (test/helpers/chroot-hosts.ts),
 * all in one test network namespace with addresses in 198.18.214.0/24, the `direct` service
 * manager (start-stop-daemon and pidfiles). Debian's etcd-server is installed on the machine, so
 * the role's apt task finds it in every chroot and downloads nothing.
 *
 * The one-server layout (embedded store) runs through the same roles in
 * test/e2e/ansible-systemd.test.ts, under systemd; one chroot test covers what the direct
 * service manager and the service roles do, to keep the suite short.
 *
 * Needs root, ip, nsenter, unshare, overlayfs, ansible-playbook, dpkg-deb, curl and etcd;
 * skipped otherwise, with the reason printed.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createTestNs, deleteTestNs, inNs, tryInNs } from '../../helpers/netns.js';
import { recap } from '../../helpers/ansible-recap.js';
import { demoWebService } from '../../helpers/ansible-demo.js';
import { chrootHostsSkipReason, ChrootHosts } from '../../helpers/chroot-hosts.js';
import { debPackage } from '../../helpers/deb-package.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const SERVERS = [
  { name: 'server1', address: '198.18.214.11', http: '127.0.0.1:18511' },
  { name: 'server2', address: '198.18.214.12', http: '127.0.0.1:18512' },
  { name: 'server3', address: '198.18.214.13', http: '127.0.0.1:18513' },
] as const;
const AGENT = { name: 'agent1', address: '198.18.214.21' };
const HOSTS = [...SERVERS.map((s) => s.name), AGENT.name];
const PREFIX = '/trellis-ansible';

interface Member {
  name: string;
  clientURLs: string[];
}

describe('ansible/ etcd layout: three servers on etcd and an agent, on chroot hosts (direct)', function () {
  this.timeout(900_000);
  let tmp = '';
  let ns = '';
  let hosts: ChrootHosts | undefined;
  let token = '';
  const outputs: string[] = [];
  const started = Date.now();

  const run = (extra: string[] = []): { status: number | null; output: string } => {
    const r = hosts!.playbook(
      join(tmp, 'inventory.json'),
      join(REPO, 'ansible', 'site.yml'),
      join(REPO, 'ansible', 'ansible.cfg'),
      extra,
    );
    outputs.push(r.output);
    return r;
  };

  /** curl inside the namespace: status and body. */
  const curl = (args: string[]): { status: number; body: string } => {
    const out = inNs(ns, ['curl', '-s', '-m', '20', '-w', '\n%{http_code}', ...args], 30_000);
    const cut = out.lastIndexOf('\n');
    return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
  };
  const api = (server: string, path: string, method = 'GET', data?: string) =>
    curl([
      ...['-X', method, '-H', `X-Consul-Token: ${token}`],
      ...(data === undefined ? [] : ['--data-binary', data]),
      `http://${server}${path}`,
    ]);
  /** etcd's v3 JSON gateway on a member. */
  const etcd = (address: string, path: string, body: object) =>
    curl(['-X', 'POST', '--data-binary', JSON.stringify(body), `http://${address}:2379${path}`]);

  before(function () {
    const reason = chrootHostsSkipReason(REPO, ['etcd', 'curl']);
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    tmp = mkdtempSync('/tmp/trellis-ansible-etcd-');
    const deb = debPackage();
    ns = createTestNs(SERVERS[0].address);
    for (const a of [...SERVERS.slice(1).map((s) => s.address), AGENT.address])
      inNs(ns, ['ip', 'addr', 'add', `${a}/24`, 'dev', 'tv0']);
    hosts = ChrootHosts.make(tmp, ns, HOSTS);
    // The demo's web service is captured by its unix user (deploy/lab/services/web.hcl): the
    // application's user comes with the application, not with the roles.
    hosts.inMounts([
      'chroot',
      hosts.root(AGENT.name),
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
          trellis_server_ca_encryption_key_source: join(tmp, 'secrets', 'ca-encryption.key'),
          trellis_server_store: 'etcd',
          trellis_server_etcd_prefix: PREFIX,
          trellis_server_https_port: 18501,
          trellis_intentions: [{ source: 'web', destination: 'api', action: 'allow' }],
          trellis_config_entries: [{ Kind: 'service-defaults', Name: 'api', Protocol: 'http' }],
        },
        children: {
          trellis_servers: {
            hosts: Object.fromEntries(
              SERVERS.map((s) => [
                s.name,
                {
                  ansible_host: hosts!.root(s.name),
                  trellis_advertise_addr: s.address,
                  // The hosts share one namespace: plain HTTP on loopback needs a port each,
                  // HTTPS listens on the host's own address.
                  trellis_server_bind: s.http,
                  trellis_server_https_bind: `${s.address}:18501`,
                },
              ]),
            ),
          },
          trellis_etcd: { children: { trellis_servers: {} } },
          trellis_agents: {
            hosts: {
              [AGENT.name]: {
                ansible_host: hosts.root(AGENT.name),
                trellis_advertise_addr: AGENT.address,
                trellis_agent_http_addr: '127.0.0.1:18520',
                trellis_agent_dns_addr: '127.0.0.1:18620',
                trellis_agent_settings: { proxy_workers: 0 },
                // deploy/lab/services/web.hcl as variables.
                trellis_services: [demoWebService({ check: true })],
              },
            },
          },
        },
      },
    };
    writeFileSync(join(tmp, 'inventory.json'), JSON.stringify(inventory, null, 2));
  });

  after(function () {
    if (hosts) {
      for (const host of HOSTS) hosts.killDaemons(host, ['agent', 'server', 'etcd']);
      hosts.close();
    }
    if (ns) deleteTestNs(ns);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    if (this.currentTest?.state === 'failed') for (const o of outputs) console.log(o);
    if (tmp)
      console.log(
        `      (etcd layout test: ${Math.round((Date.now() - started) / 1000)} s in all)`,
      );
  });

  it('installs three etcd members, three servers on etcd and an agent that joins', function () {
    const t0 = Date.now();
    const r = run();
    console.log(`      (first run: ${Math.round((Date.now() - t0) / 1000)} s)`);
    expect(r.status, r.output).to.equal(0);
    const counts = recap(r.output);
    expect([...counts.keys()].sort()).to.deep.equal([...HOSTS].sort());
    for (const [host, c] of counts) expect(c.failed, `${host}\n${r.output}`).to.equal(0);
    // The management token was written on the controller only, mode 0600, and never printed.
    const tokenFile = join(tmp, 'secrets', 'management-token');
    expect(statSync(tokenFile).mode & 0o777).to.equal(0o600);
    token = readFileSync(tokenFile, 'utf8').trim();
    expect(token).to.match(/^[0-9a-f-]{36}$/);
    expect(r.output).not.to.include(token);
    // The package went into the chroots, not onto the host.
    expect(existsSync(join(tmp, 'server1', 'upper', 'usr', 'bin', 'trellis'))).to.equal(true);
    expect(
      existsSync(join(tmp, AGENT.name, 'upper', 'var', 'lib', 'trellis', 'agent', 'identity.json')),
    ).to.equal(true);
  });

  it('makes one etcd cluster of the three members', function () {
    if (!token) this.skip();
    const clusterIds = new Set<string>();
    for (const s of SERVERS) {
      const health = curl([`http://${s.address}:2379/health`]);
      expect(JSON.parse(health.body), s.name).to.deep.include({ health: 'true' });
      const list = etcd(s.address, '/v3/cluster/member/list', {});
      expect(list.status, list.body).to.equal(200);
      const answer = JSON.parse(list.body) as { header: { cluster_id: string }; members: Member[] };
      clusterIds.add(answer.header.cluster_id);
      expect(answer.members.map((m) => m.name).sort()).to.deep.equal(SERVERS.map((x) => x.name));
      expect(answer.members.flatMap((m) => m.clientURLs).sort()).to.deep.equal(
        SERVERS.map((x) => `http://${x.address}:2379`),
      );
    }
    expect([...clusterIds]).to.have.length(1);
  });

  it('runs three servers that agree on a leader and share the catalog', function () {
    if (!token) this.skip();
    const advertised = SERVERS.map((s) => `${s.address}:8300`).sort();
    const leaders = new Set<string>();
    for (const s of SERVERS) {
      const peers = api(s.http, '/v1/status/peers');
      expect(peers.status, peers.body).to.equal(200);
      expect((JSON.parse(peers.body) as string[]).sort(), s.name).to.deep.equal(advertised);
      leaders.add(JSON.parse(api(s.http, '/v1/status/leader').body) as string);
    }
    expect([...leaders]).to.have.length(1);
    expect(advertised).to.include([...leaders][0]);

    const value = `written on server1 ${randomBytes(4).toString('hex')}`;
    expect(api(SERVERS[0].http, '/v1/kv/ansible/etcd-layout', 'PUT', value).body).to.equal('true');
    const read = api(SERVERS[2].http, '/v1/kv/ansible/etcd-layout?raw&consistent');
    expect(read.status, read.body).to.equal(200);
    expect(read.body).to.equal(value);

    for (const s of SERVERS) {
      const nodes = JSON.parse(api(s.http, '/v1/catalog/nodes').body) as { Node: string }[];
      expect(
        nodes.map((n) => n.Node),
        s.name,
      ).to.include.members(HOSTS);
    }
  });

  it("registers the agent's service and sidecar, and writes the intention and config entry", function () {
    if (!token) this.skip();
    const server = SERVERS[1].http;
    const web = JSON.parse(api(server, '/v1/catalog/service/web').body) as {
      Node: string;
      ServicePort: number;
    }[];
    expect(web.map((x) => [x.Node, x.ServicePort])).to.deep.equal([[AGENT.name, 8081]]);
    const sidecar = JSON.parse(api(server, '/v1/catalog/service/web-sidecar-proxy').body) as {
      ServicePort: number;
    }[];
    expect(sidecar.map((x) => x.ServicePort)).to.deep.equal([21000]);
    const intention = api(server, '/v1/connect/intentions/exact?source=web&destination=api');
    expect(intention.status, intention.body).to.equal(200);
    expect((JSON.parse(intention.body) as { Action: string }).Action).to.equal('allow');
    const entry = JSON.parse(api(server, '/v1/config/service-defaults/api').body) as {
      Protocol: string;
    };
    expect(entry.Protocol).to.equal('http');
    // The service was registered with the service token the role made (a joined agent's own
    // token may only write its node), which is in no output.
    const hcl = hosts!.inMounts([
      'cat',
      join(hosts!.root(AGENT.name), 'etc', 'trellis.d', 'web.hcl'),
    ]);
    expect(hcl).to.match(/^\s*token = "[0-9a-f-]{36}"$/m);
    expect(outputs.join('\n')).not.to.include(/token = "([^"]+)"/m.exec(hcl)![1]!);
  });

  it('lists every server in the agent’s retry_join', function () {
    if (!token) this.skip();
    const settings = hosts!.inMounts([
      'cat',
      join(hosts!.root(AGENT.name), 'etc', 'trellis.d', '00-trellis-agent.hcl'),
    ]);
    for (const s of SERVERS) expect(settings).to.include(`"${s.address}:18501"`);
  });

  it('puts the same CA encryption key on every server, 0600, and never in etcd or the output', function () {
    if (!token) this.skip();
    const source = join(tmp, 'secrets', 'ca-encryption.key');
    expect(statSync(source).mode & 0o777).to.equal(0o600);
    const key = readFileSync(source, 'utf8');
    expect(key).to.match(/^[A-Za-z0-9+/]{43}=\n$/);
    const uid = Number(hosts!.inMounts(['chroot', hosts!.root('server1'), 'id', '-u', 'trellis']));
    for (const s of SERVERS) {
      const file = join(tmp, s.name, 'upper', 'etc', 'trellis', 'ca-encryption.key');
      expect(readFileSync(file, 'utf8'), s.name).to.equal(key);
      const st = statSync(file);
      expect(st.mode & 0o777, s.name).to.equal(0o600);
      expect(st.uid, s.name).to.equal(uid);
    }
    for (const o of outputs) expect(o).not.to.include(key.trim());

    // Every value under the prefix: the CA key is there only sealed, never as PEM.
    const prefix = Buffer.from(PREFIX);
    const end = Buffer.from(
      PREFIX.slice(0, -1) + String.fromCharCode(PREFIX.charCodeAt(PREFIX.length - 1) + 1),
    );
    const range = etcd(SERVERS[1].address, '/v3/kv/range', {
      key: prefix.toString('base64'),
      range_end: end.toString('base64'),
    });
    const kvs = (JSON.parse(range.body) as { kvs?: { key: string; value?: string }[] }).kvs ?? [];
    const sealed = kvs.filter((kv) =>
      Buffer.from(kv.key, 'base64').toString().includes('/ca-keys/'),
    );
    expect(sealed, 'a CA key record in etcd').to.have.length.greaterThan(0);
    for (const kv of kvs) {
      const v = Buffer.from(kv.value ?? '', 'base64').toString('latin1');
      expect(v, Buffer.from(kv.key, 'base64').toString()).not.to.include('PRIVATE KEY');
    }
    for (const kv of sealed)
      expect(JSON.parse(Buffer.from(kv.value!, 'base64').toString())).to.include({
        alg: 'A256GCM',
      });
  });

  it('reports changed=0 on a second run', function () {
    if (!token) this.skip();
    const t0 = Date.now();
    const r = run();
    console.log(`      (second run: ${Math.round((Date.now() - t0) / 1000)} s)`);
    expect(r.status, r.output).to.equal(0);
    const counts = recap(r.output);
    expect([...counts.keys()].sort()).to.deep.equal([...HOSTS].sort());
    for (const [host, c] of counts) {
      expect(c.changed, `${host} in\n${r.output}`).to.equal(0);
      expect(c.failed, host).to.equal(0);
    }
  });

  it('writes a changed intention (changed=1), having left the same one alone (changed=0 above)', function () {
    if (!token) this.skip();
    const deny = { trellis_intentions: [{ source: 'web', destination: 'api', action: 'deny' }] };
    const r = run(['--limit', AGENT.name, '-e', JSON.stringify(deny)]);
    expect(r.status, r.output).to.equal(0);
    expect(recap(r.output).get(AGENT.name)?.changed, r.output).to.equal(1);
    const intention = api(
      SERVERS[2].http,
      '/v1/connect/intentions/exact?source=web&destination=api',
    );
    expect((JSON.parse(intention.body) as { Action: string }).Action).to.equal('deny');
  });

  it('refuses to replace a server’s CA encryption key with another one', function () {
    if (!token) this.skip();
    const other = randomBytes(32).toString('base64');
    const file = join(tmp, 'server2', 'upper', 'etc', 'trellis', 'ca-encryption.key');
    const before = readFileSync(file, 'utf8');
    const r = run([
      '--limit',
      'server2',
      '-e',
      JSON.stringify({ trellis_server_ca_encryption_key: other }),
    ]);
    expect(r.status, r.output).not.to.equal(0);
    expect(r.output).to.include('already holds a different CA encryption key');
    expect(r.output).not.to.include(other);
    expect(readFileSync(file, 'utf8')).to.equal(before);
    // The server still runs with the cluster's key.
    const peers = tryInNs(ns, ['curl', '-s', `http://${SERVERS[1].http}/v1/status/peers`]);
    expect(peers.code).to.equal(0);
    expect(JSON.parse(peers.stdout) as string[]).to.have.length(3);
  });
});
