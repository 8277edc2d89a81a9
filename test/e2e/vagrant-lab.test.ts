/**
 * The Vagrant lab (vagrant/) without booting a VM: Vagrant itself validates the Vagrantfile
 * (each provider's block, with no plugin at all too), the Vagrantfile's own description of what
 * it configures (`TRELLIS_LAB_DUMP=FILE vagrant validate`) is checked against the
 * network-namespace lab (src/lab topology, deploy/lab/services), Ansible resolves the variables
 * of every host from an inventory written as Vagrant's ansible provisioner writes it, and
 * `ansible-playbook --syntax-check` accepts the playbook run with exactly the provisioner's
 * arguments.
 *
 * Nothing here talks to the network: Vagrant's version check is off, and Ansible's debug module
 * and --syntax-check never connect to a host.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseServiceDefinitions } from '../../src/config/index.js';
import { parseIpv4Range } from '../../src/core/ipv4-range.js';
import { LAB_SUBNET, labTopology } from '../../src/lab/topology.js';
import { removeDir, tempDir } from '../helpers/trellis-process.js';

const REPO = resolve('.');
const LAB_DIR = join(REPO, 'vagrant');
const SERVICES_DIR = join(REPO, 'deploy/lab/services');
const MESH_SUBNET = '198.18.0.0/15';

interface Machine {
  name: string;
  group: string;
  ip: string;
}

/** What the Vagrantfile writes with TRELLIS_LAB_DUMP. */
interface LabDump {
  box: string;
  subnet: string;
  machines: Machine[];
  groups: Record<string, string[]>;
  providers: Record<string, { memory: number; cpus: number }>;
  provisioner: {
    type: string;
    machine: string;
    playbook: string;
    limit: string;
    become: boolean;
    extra_vars: Record<string, string>;
    raw_arguments: string[];
  };
}

/** The variables the test asks Ansible to resolve for every host. */
interface HostVars {
  groups: string[];
  address: string;
  advertise: string;
  manager: string;
  deb: string;
  apps: string[];
  services: Record<string, unknown>[];
  demo: Record<string, { user: string; listen: string }>;
  intentions: { source: string; destination: string; action?: string }[];
  entries: Record<string, unknown>[];
}

interface Run {
  code: number | null;
  out: string;
  stdout: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd = LAB_DIR): Run {
  const r = spawnSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

function onPath(cmd: string): boolean {
  return !spawnSync(cmd, ['--version']).error;
}

function ipv4(address: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  expect(m, `${address} is an IPv4 address`).to.not.equal(null);
  return m!.slice(1).reduce((a, o) => a * 256 + Number(o), 0);
}

function inRange(address: string, cidr: string): boolean {
  const r = parseIpv4Range(cidr, 'subnet');
  const n = ipv4(address);
  return n >= r.base && n < r.base + r.size;
}

/** A service definition as the agent decodes it, from HCL or JSON text. */
function decodeService(text: string, file: string): unknown {
  const d = parseServiceDefinitions(text, file);
  expect(d.errors, `${file}: ${JSON.stringify(d.errors)}`).to.deep.equal([]);
  expect(d.services, file).to.have.length(1);
  return d.services[0];
}

describe('Vagrant lab (vagrant/)', function () {
  this.timeout(60_000);
  let dir: string;
  let vagrantEnv: NodeJS.ProcessEnv;
  let dump: LabDump;

  before(function () {
    for (const tool of ['vagrant', 'ansible', 'ansible-playbook']) {
      if (!onPath(tool)) {
        throw new Error(`${tool} is missing: install Debian's vagrant and ansible (.ci/run does)`);
      }
    }
    dir = tempDir('vagrant');
    // Vagrant's machine state and its home go to the scratch dir, not the checkout or ~.
    vagrantEnv = {
      VAGRANT_CWD: LAB_DIR,
      VAGRANT_DOTFILE_PATH: join(dir, 'dotfile'),
      VAGRANT_CHECKPOINT_DISABLE: '1',
      VAGRANT_NO_COLOR: '1',
    };
    const file = join(dir, 'dump.json');
    const r = run('vagrant', ['validate'], { ...vagrantEnv, TRELLIS_LAB_DUMP: file });
    expect(r.code, r.out).to.equal(0);
    dump = JSON.parse(readFileSync(file, 'utf8')) as LabDump;
  });
  after(() => removeDir(dir));

  describe('vagrant validate', () => {
    it('passes with no provider plugin loaded (provider blocks ignored)', () => {
      const r = run('vagrant', ['validate', '--ignore-provider'], {
        ...vagrantEnv,
        VAGRANT_NO_PLUGINS: '1',
      });
      expect(r.code, r.out).to.equal(0);
      expect(r.out).to.contain('Vagrantfile validated successfully.');
    });

    /**
     * Vagrant checks the virtualbox block only when VirtualBox is usable, i.e. when
     * `VBoxManage --version` answers a supported version. A stand-in VBoxManage answers that
     * and nothing else (it records every call, and the test checks that --version was all).
     */
    function withStandInVBoxManage(vagrantDir: string): { r: Run; calls: string[] } {
      const bin = join(dir, 'bin');
      const calls = join(dir, 'vboxmanage-calls');
      mkdirSync(bin, { recursive: true });
      writeFileSync(calls, '');
      writeFileSync(
        join(bin, 'VBoxManage'),
        `#!/bin/sh\necho "$*" >> '${calls}'\n[ "$1" = --version ] && echo 7.0.14r161095 && exit 0\nexit 1\n`,
        { mode: 0o755 },
      );
      const r = run('vagrant', ['validate'], {
        ...vagrantEnv,
        VAGRANT_CWD: vagrantDir,
        VAGRANT_DEFAULT_PROVIDER: 'virtualbox',
        PATH: `${bin}:${process.env.PATH ?? ''}`,
      });
      return { r, calls: readFileSync(calls, 'utf8').split('\n').filter(Boolean) };
    }

    /** A copy of the repository's package.json and vagrant/ with one edit to the Vagrantfile. */
    function brokenCopy(from: string, to: string): string {
      const root = join(dir, `broken-${to.replace(/\W/g, '')}`);
      cpSync(LAB_DIR, join(root, 'vagrant'), { recursive: true });
      cpSync(join(REPO, 'package.json'), join(root, 'package.json'));
      const file = join(root, 'vagrant/Vagrantfile');
      const text = readFileSync(file, 'utf8');
      expect(text).to.contain(from);
      writeFileSync(file, text.replace(from, to));
      return join(root, 'vagrant');
    }

    it('passes for the virtualbox provider, and fails on a bad virtualbox setting', () => {
      const ok = withStandInVBoxManage(LAB_DIR);
      expect(ok.r.code, ok.r.out).to.equal(0);
      expect(ok.calls.length).to.be.greaterThan(0);
      expect(
        ok.calls.every((c) => c === '--version'),
        ok.calls.join('\n'),
      ).to.equal(true);

      const bad = withStandInVBoxManage(brokenCopy('vb.cpus =', 'vb.cpuz ='));
      expect(bad.r.code).to.not.equal(0);
      expect(bad.r.out).to.contain('VirtualBox Provider').and.contain('cpuz');
    });

    it('passes for the libvirt provider, and fails on a bad libvirt setting', function () {
      const env = { ...vagrantEnv, VAGRANT_DEFAULT_PROVIDER: 'libvirt' };
      const ok = run('vagrant', ['validate'], env);
      // Debian's vagrant recommends vagrant-libvirt; without it there is nothing to check here.
      if (ok.code !== 0 && /provider 'libvirt' could not be found/.test(ok.out)) this.skip();
      expect(ok.code, ok.out).to.equal(0);
      const bad = run('vagrant', ['validate'], {
        ...env,
        VAGRANT_CWD: brokenCopy('lv.cpus =', 'lv.cpuz ='),
      });
      expect(bad.code).to.not.equal(0);
      expect(bad.out).to.contain('Libvirt Provider').and.contain('cpuz');

      // The machines Vagrant itself knows, in order.
      const status = run('vagrant', ['status', '--machine-readable'], env);
      expect(status.code, status.out).to.equal(0);
      const names = status.stdout
        .split('\n')
        .map((l) => l.split(','))
        .filter((f) => f[2] === 'provider-name')
        .map((f) => f[1]);
      expect(names).to.deep.equal(dump.machines.map((m) => m.name));
    });
  });

  describe('what the Vagrantfile configures', () => {
    it('has the hosts of the network-namespace lab, on Debian 12', () => {
      const lab = labTopology('tlab', 3);
      expect(dump.box).to.equal('debian/bookworm64');
      expect(dump.machines.map((m) => m.name)).to.deep.equal(lab.hosts.map((h) => h.name));
      expect(dump.groups).to.deep.equal({
        trellis_servers: ['server'],
        trellis_agents: ['app1', 'app2', 'app3'],
      });
      for (const m of dump.machines) {
        expect(dump.groups[m.group], m.name).to.include(m.name);
      }
    });

    it('puts them on one private subnet inside 198.18.0.0/15, apart from the netns lab', () => {
      const subnet = parseIpv4Range(dump.subnet, 'subnet');
      const mesh = parseIpv4Range(MESH_SUBNET, 'subnet');
      expect(subnet.base).to.be.at.least(mesh.base);
      expect(subnet.base + subnet.size).to.be.at.most(mesh.base + mesh.size);
      const ips = dump.machines.map((m) => m.ip);
      expect(new Set(ips).size).to.equal(ips.length);
      for (const ip of ips) {
        expect(inRange(ip, dump.subnet), ip).to.equal(true);
        expect(inRange(ip, LAB_SUBNET), `${ip} is in the netns lab's ${LAB_SUBNET}`).to.equal(
          false,
        );
        const last = ipv4(ip) - subnet.base;
        expect(last, `${ip} is the network's, its broadcast or .1 (the host's side)`).to.be.within(
          2,
          subnet.size - 2,
        );
      }
    });

    it('configures both providers with memory and CPUs', () => {
      expect(Object.keys(dump.providers).sort()).to.deep.equal(['libvirt', 'virtualbox']);
      for (const [name, p] of Object.entries(dump.providers)) {
        expect(p.memory, name).to.be.at.least(512);
        expect(p.cpus, name).to.be.at.least(1);
      }
      const text = readFileSync(join(LAB_DIR, 'Vagrantfile'), 'utf8');
      expect(text).to.match(/config\.vm\.provider :virtualbox do \|vb\|/);
      expect(text).to.match(/config\.vm\.provider :libvirt do \|lv\|/);
    });

    it('provisions once, from the last VM, with the playbook that imports ansible/site.yml', () => {
      const p = dump.provisioner;
      expect(p.type).to.equal('ansible');
      expect(p.machine).to.equal(dump.machines[dump.machines.length - 1]!.name);
      expect(p.limit).to.equal('all');
      expect(p.become).to.equal(true);
      expect(p.playbook).to.equal(join(LAB_DIR, 'provision.yml'));
      const playbook = readFileSync(p.playbook, 'utf8');
      expect(playbook).to.match(
        /^\s*ansible\.builtin\.import_playbook: \.\.\/ansible\/site\.yml$/m,
      );
      expect(p.raw_arguments).to.deep.equal([`--inventory=${join(LAB_DIR, 'inventory')}`]);
      const version = (
        JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
      expect(p.extra_vars.trellis_deb).to.equal(join(REPO, 'dist', `trellis_${version}_all.deb`));
      expect(p.extra_vars.trellis_management_token_file).to.equal(
        join(LAB_DIR, '.secrets/trellis-management-token'),
      );
    });
  });

  describe('Ansible, with the inventory Vagrant generates', () => {
    let inventory: string;
    let ansibleEnv: NodeJS.ProcessEnv;
    let extraVars: string;

    before(() => {
      // As Vagrant's ansible provisioner writes it (.vagrant/provisioners/ansible/inventory):
      // how to reach each VM (a forwarded port on 127.0.0.1), then the groups.
      const lines = dump.machines.map(
        (m, i) =>
          `${m.name} ansible_host=127.0.0.1 ansible_port=${2200 + i} ansible_user='vagrant' ` +
          `ansible_ssh_private_key_file='${join(dir, 'dotfile/machines', m.name, 'virtualbox/private_key')}'`,
      );
      for (const [group, hosts] of Object.entries(dump.groups)) {
        lines.push('', `[${group}]`, ...hosts);
      }
      inventory = join(dir, 'vagrant_ansible_inventory');
      writeFileSync(inventory, `${lines.join('\n')}\n`);
      extraVars = JSON.stringify(dump.provisioner.extra_vars);
      ansibleEnv = {
        ANSIBLE_HOME: join(dir, 'ansible-home'),
        ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-tmp'),
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_HOST_KEY_CHECKING: 'false',
      };
    });

    let cached: Record<string, HostVars> | undefined;
    function resolvedVars(): Record<string, HostVars> {
      cached ??= askAnsible();
      return cached;
    }

    /** Every host's variables as Ansible resolves them for the playbook run. */
    function askAnsible(): Record<string, HostVars> {
      const msg =
        '{{ {"groups": group_names, "address": trellis_lab_address, ' +
        '"advertise": trellis_advertise_addr, "manager": trellis_service_manager, ' +
        '"deb": trellis_deb, "apps": trellis_lab_apps | default([]), ' +
        '"services": trellis_services | default([]), "demo": trellis_lab_demo_apps, ' +
        '"intentions": trellis_intentions, "entries": trellis_config_entries} }}';
      const out = run(
        'ansible',
        [
          'all',
          '-i',
          inventory,
          ...dump.provisioner.raw_arguments,
          '-e',
          extraVars,
          '-m',
          'ansible.builtin.debug',
          '-a',
          `msg=${msg}`,
        ],
        { ...ansibleEnv, ANSIBLE_LOAD_CALLBACK_PLUGINS: '1', ANSIBLE_STDOUT_CALLBACK: 'json' },
      );
      expect(out.code, out.out).to.equal(0);
      const report = JSON.parse(out.stdout) as {
        plays: { tasks: { hosts: Record<string, { msg: HostVars }> }[] }[];
      };
      const hosts = report.plays[0]!.tasks[0]!.hosts;
      const vars: Record<string, HostVars> = {};
      for (const [name, h] of Object.entries(hosts)) vars[name] = h.msg;
      return vars;
    }

    it('gives every host its group, address and the package', () => {
      const vars = resolvedVars();
      expect(Object.keys(vars).sort()).to.deep.equal(dump.machines.map((m) => m.name).sort());
      for (const m of dump.machines) {
        const v = vars[m.name]!;
        expect(v.groups, m.name).to.deep.equal([m.group]);
        expect(v.address, m.name).to.equal(m.ip);
        expect(v.advertise, m.name).to.equal(m.ip);
        expect(v.manager, m.name).to.equal('systemd');
        expect(v.deb, m.name).to.equal(dump.provisioner.extra_vars.trellis_deb);
      }
    });

    it('assigns the services of deploy/lab/services as the netns lab does, unchanged', () => {
      const vars = resolvedVars();
      const lab = labTopology('tlab', 3);
      const files = readdirSync(SERVICES_DIR).filter((f) => f.endsWith('.hcl'));
      const defined = new Map(
        files.map((f) => [
          f.replace(/\.hcl$/, ''),
          decodeService(readFileSync(join(SERVICES_DIR, f), 'utf8'), f),
        ]),
      );
      const assigned = new Set<string>();
      for (const host of lab.hosts) {
        const v = vars[host.name]!;
        const want = host.services.map((s) => s.name);
        expect(v.apps, host.name).to.deep.equal(want);
        expect(v.services.length, host.name).to.equal(want.length);
        v.services.forEach((svc, i) => {
          const name = want[i]!;
          assigned.add(name);
          // The variable, written as a JSON definition file, decodes to exactly what the
          // .hcl file does.
          const asJson = decodeService(
            JSON.stringify({ service: svc }),
            `${host.name}-${name}.json`,
          );
          expect(asJson, `${host.name}: ${name}`).to.deep.equal(defined.get(name));
        });
        for (const s of host.services) {
          const app = v.demo[s.name]!;
          expect(app, `${host.name}: demo app for ${s.name}`).to.deep.equal({
            user: s.user,
            listen: s.listen,
          });
          const svc = v.services.find((x) => x.name === s.name) as {
            port: number;
            connect: {
              sidecar_service: { proxy: { transparent_proxy: { capture_user: string } } };
            };
          };
          expect(svc.connect.sidecar_service.proxy.transparent_proxy.capture_user).to.equal(
            app.user,
          );
          expect(app.listen.endsWith(`:${svc.port}`), app.listen).to.equal(true);
        }
      }
      expect([...assigned].sort()).to.deep.equal([...defined.keys()].sort());
    });

    it('allows web -> api and makes api an HTTP service', () => {
      const v = resolvedVars().server!;
      expect(v.intentions).to.deep.include({ source: 'web', destination: 'api', action: 'allow' });
      expect(v.entries).to.deep.include({
        Kind: 'service-defaults',
        Name: 'api',
        Protocol: 'http',
      });
    });

    it('ansible-playbook --syntax-check accepts the run the provisioner makes', function () {
      const site = join(REPO, 'ansible/site.yml');
      expect(existsSync(site), `${site} (branch m8-ansible) is missing`).to.equal(true);
      const r = run(
        'ansible-playbook',
        [
          '--syntax-check',
          // Vagrant 2.3's command line (plugins/provisioners/ansible/provisioner/host.rb):
          '--connection=ssh',
          '--timeout=30',
          '--user=vagrant',
          '--limit=all',
          `--inventory-file=${inventory}`,
          '--become',
          `--extra-vars=${extraVars}`,
          ...dump.provisioner.raw_arguments,
          dump.provisioner.playbook,
        ],
        ansibleEnv,
      );
      expect(r.code, r.out).to.equal(0);
      expect(r.out).to.contain('playbook: ');
    });
  });
});
