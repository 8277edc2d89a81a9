/** The lab's topology, name and flag checks, command lines, and the demo app (no root needed). */
import { expect } from 'chai';
import { request } from 'undici';
import {
  hostsProblem,
  isLabNamespace,
  labNameProblem,
  labTopology,
  labUsers,
  parseListen,
  startDemoApp,
} from '../../../src/lab/index.js';
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

  it('keeps every interface name within 15 characters, up to the largest lab', () => {
    for (const h of labTopology('abcdefghijkl', 20).hosts)
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
