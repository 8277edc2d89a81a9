/** The lab's topology, name and flag checks, command lines, and the demo app (no root needed). */
import { expect } from 'chai';
import { request } from 'undici';
import {
  etcdEndpoints,
  hostsProblem,
  leaderHost,
  isLabNamespace,
  labNameProblem,
  labTopology,
  labUsers,
  parseListen,
  serversProblem,
  startDemoApp,
} from '../../../src/lab/index.js';
import { etcdArgv } from '../../../src/lab/etcd.js';
import { inNamespace, setprivArgs } from '../../../src/lab/processes.js';

describe('lab topology', () => {
  it('has a server and N app hosts with fixed addresses and prefixed namespaces', () => {
    const t = labTopology('tlab', 3);
    expect(t.switchNamespace).to.equal('tlab-sw');
    expect(t.hosts.map((h) => [h.name, h.namespace, h.address])).to.deep.equal([
      ['server', 'tlab-server', '198.18.0.10'],
      ['app1', 'tlab-app1', '198.18.0.11'],
      ['app2', 'tlab-app2', '198.18.0.12'],
      ['app3', 'tlab-app3', '198.18.0.13'],
    ]);
    expect(t.hosts.map((h) => h.services.map((s) => s.name).join())).to.deep.equal([
      '',
      'web',
      'api',
      'api',
    ]);
    expect(labUsers(t)).to.deep.equal(['trellis', 'trellis-web', 'trellis-api']);
  });

  it('with --servers 3: three server hosts, each with an etcd member on its lab address', () => {
    const t = labTopology('tlab', 2, 3);
    expect(t.store).to.equal('etcd');
    expect(labTopology('tlab', 2).store).to.equal('embedded');
    expect(t.hosts.map((h) => [h.name, h.namespace, h.address, h.etcd?.clientUrl])).to.deep.equal([
      ['server1', 'tlab-server1', '198.18.0.101', 'http://198.18.0.101:2379'],
      ['server2', 'tlab-server2', '198.18.0.102', 'http://198.18.0.102:2379'],
      ['server3', 'tlab-server3', '198.18.0.103', 'http://198.18.0.103:2379'],
      ['app1', 'tlab-app1', '198.18.0.11', undefined],
      ['app2', 'tlab-app2', '198.18.0.12', undefined],
    ]);
    expect(etcdEndpoints(t)).to.equal(
      'http://198.18.0.101:2379,http://198.18.0.102:2379,http://198.18.0.103:2379',
    );
    const argv = etcdArgv('etcd', t, t.hosts[1]!, '/d').join(' ');
    expect(argv)
      .to.contain('--name server2 --data-dir /d')
      .and.contain('--listen-client-urls http://198.18.0.102:2379,http://127.0.0.1:2379')
      .and.contain('--listen-peer-urls http://198.18.0.102:2380')
      .and.contain(
        '--initial-cluster server1=http://198.18.0.101:2380,server2=http://198.18.0.102:2380,server3=http://198.18.0.103:2380',
      )
      .and.contain('--initial-cluster-token trellis-lab-tlab');
    expect(() => etcdArgv('etcd', t, t.hosts[3]!, '/d')).to.throw('runs no etcd member');
    expect(leaderHost(t.hosts, '198.18.0.102:8300')?.name).to.equal('server2');
    expect(leaderHost(t.hosts, '')).to.equal(undefined);
    expect(leaderHost(t.hosts, '10.0.0.1:8300')).to.equal(undefined);
  });

  it('refuses server counts other than 1 and 3', () => {
    expect(serversProblem(1)).to.equal(undefined);
    expect(serversProblem(3)).to.equal(undefined);
    for (const bad of [0, 2, 4, 5, 1.5, NaN])
      expect(serversProblem(bad)).to.contain('--servers must be 1').and.contain('or 3');
    expect(() => labTopology('tlab', 3, 2)).to.throw('--servers');
  });

  it('keeps every interface name within 15 characters, up to the largest lab', () => {
    for (const h of [
      ...labTopology('abcdefghijkl', 20).hosts,
      ...labTopology('abcdefghijkl', 20, 3).hosts,
    ])
      expect(h.switchPort.length, h.switchPort).to.be.at.most(15);
  });

  it('refuses bad names and host counts with a clear message', () => {
    expect(labNameProblem('tlab')).to.equal(undefined);
    expect(labNameProblem('Bad-Name')).to.contain('lowercase letters or digits');
    expect(labNameProblem('has-dash')).to.be.a('string');
    expect(labNameProblem('abcdefghijklm')).to.be.a('string');
    expect(hostsProblem(3)).to.equal(undefined);
    for (const bad of [0, -1, 21, 1.5, NaN])
      expect(hostsProblem(bad)).to.contain('--hosts must be an integer from 1 to 20');
    expect(() => labTopology('tlab', 0)).to.throw('--hosts');
  });

  it('recognizes only its own namespace names', () => {
    expect(isLabNamespace('tlab', 'tlab-sw')).to.equal(true);
    expect(isLabNamespace('tlab', 'tlab-server')).to.equal(true);
    expect(isLabNamespace('tlab', 'tlab-server3')).to.equal(true);
    expect(isLabNamespace('tlab', 'tlab-server12')).to.equal(false);
    expect(isLabNamespace('tlab', 'tlab-app12')).to.equal(true);
    expect(isLabNamespace('tlab', 'tlab-other')).to.equal(false);
    expect(isLabNamespace('tlab', 'tlab2-app1')).to.equal(false);
    expect(isLabNamespace('tlab', 'trellis-t-0a1b')).to.equal(false);
  });

  it('runs daemons through ip netns exec and setpriv, with ambient caps only when asked', () => {
    expect(inNamespace('tlab-app1', ['node', 'x.js'])).to.deep.equal([
      'ip',
      'netns',
      'exec',
      'tlab-app1',
      'node',
      'x.js',
    ]);
    expect(setprivArgs({ user: 'trellis', caps: ['net_admin'] })).to.deep.equal([
      'setpriv',
      '--reuid',
      'trellis',
      '--regid',
      'trellis',
      '--init-groups',
      '--inh-caps',
      '+net_admin',
      '--ambient-caps',
      '+net_admin',
      '--',
    ]);
    expect(setprivArgs({ user: 'trellis-api' })).to.not.include('--ambient-caps');
  });
});

describe('lab demo app', () => {
  it('parses listen addresses', () => {
    expect(parseListen('0.0.0.0:8080')).to.deep.equal({ host: '0.0.0.0', port: 8080 });
    expect(parseListen('[::1]:81')).to.deep.equal({ host: '::1', port: 81 });
    expect(() => parseListen('8080')).to.throw('expected host:port');
    expect(() => parseListen('a:70000')).to.throw('expected host:port');
  });

  it('answers every request with 200 and its name and host, and closes with open clients', async () => {
    const app = await startDemoApp({ name: 'api', listen: '127.0.0.1:0', host: 'app2' });
    try {
      for (const path of ['/', '/anything?x=1']) {
        const r = await request(`http://${app.address}${path}`, { method: 'POST', body: 'x' });
        expect(r.statusCode).to.equal(200);
        expect(await r.body.text()).to.equal('hello from api on app2\n');
      }
    } finally {
      await app.close();
    }
  });
});
