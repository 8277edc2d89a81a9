/**
 * With ACLs off (`trellis dev` by default, a server with `acl { enabled = false }`) every token
 * is ignored, as Consul does: a client that sends one anyway (an unknown one, or one from
 * another cluster) is served, not refused with 403 "ACL not found". Real processes, driven by
 * the consul npm client.
 */
import { expect } from 'chai';
import Consul from 'consul';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import {
  eventually,
  hostPort,
  startTrellis,
  tempDirs,
  TRELLIS_BIN,
  type TrellisProcess,
} from '../helpers/trellis-process.js';
import { spawnSync } from 'node:child_process';

const STRANGER = '6a1b3c5d-0000-4000-8000-00000000beef';

/** What an unknown token may do against `address` when ACLs are off: everything. */
async function servesAnyToken(address: string, node: string): Promise<void> {
  const consul = new Consul({ ...hostPort(address), defaults: { token: STRANGER } });
  await consul.agent.service.register({ name: 'anon', id: 'anon-1', port: 1 } as never);
  const nodes = (await consul.catalog.service.nodes('anon')) as { Node: string }[];
  expect(nodes.map((n) => n.Node)).to.deep.equal([node]);
  expect(await consul.kv.set('acl-off/key', 'v')).to.equal(true);
  expect(((await consul.kv.get('acl-off/key')) as { Value: string }).Value).to.equal('v');
  const self = (await consul.agent.self()) as { Config: { NodeName: string } };
  expect(self.Config.NodeName).to.equal(node);
  await consul.agent.service.deregister('anon-1');
  // The same with the token as a header and as a bearer token.
  for (const headers of [{ 'x-consul-token': STRANGER }, { authorization: `Bearer ${STRANGER}` }]) {
    const r = await request(`http://${address}/v1/catalog/services`, { headers });
    expect(r.statusCode).to.equal(200);
    expect(r.headers['x-consul-default-acl-policy']).to.equal('allow');
    await r.body.dump();
  }
  // The ACL API itself answers as Consul's does with ACLs off.
  const acl = await request(`http://${address}/v1/acl/tokens`);
  expect(acl.statusCode).to.equal(401);
  expect(await acl.body.text()).to.equal('ACL support disabled');
}

describe('ACLs off: tokens are ignored', function () {
  this.timeout(120_000);
  const dirs = tempDirs();
  const started: TrellisProcess[] = [];
  after(async () => {
    for (const p of started.reverse()) await p.stop();
    dirs.removeAll();
  });

  it('trellis dev serves requests with an unknown token', async () => {
    const dev = await startTrellis([
      'dev',
      '--bind',
      '127.0.0.1:0',
      '--data-dir',
      dirs.make('acl-off-dev'),
      '--node',
      'devnode',
      '--no-demo',
    ]);
    started.push(dev);
    await servesAnyToken(dev.address, 'devnode');
  });

  it('trellis dev --acl-default-policy allow turns ACLs on: an unknown token is refused', async () => {
    const dev = await startTrellis([
      'dev',
      '--bind',
      '127.0.0.1:0',
      '--data-dir',
      dirs.make('acl-on-dev'),
      '--no-demo',
      '--acl-default-policy',
      'allow',
    ]);
    started.push(dev);
    const r = await request(`http://${dev.address}/v1/catalog/services`, {
      headers: { 'x-consul-token': STRANGER },
    });
    expect(r.statusCode).to.equal(403);
    expect(await r.body.text()).to.equal('ACL not found');
    const anon = await request(`http://${dev.address}/v1/catalog/services`);
    expect(anon.statusCode).to.equal(200);
    await anon.body.dump();
  });

  it('a server with acl { enabled = false } and its agent ignore tokens', async () => {
    const config = dirs.make('acl-off-config');
    writeFileSync(join(config, 'acl.hcl'), 'acl {\n  enabled = false\n}\n');
    const server = await startTrellis([
      'server',
      '--data-dir',
      dirs.make('acl-off-srv'),
      '--config-dir',
      config,
      '--bind',
      '127.0.0.1:0',
      '--node',
      'srv',
      '--https-bind',
      'off',
    ]);
    started.push(server);
    await servesAnyToken(server.address, 'srv');
    const agent = await startTrellis([
      'agent',
      '--server',
      server.address,
      '--node',
      'host-off',
      '--data-dir',
      dirs.make('acl-off-agent'),
      '--bind',
      '127.0.0.1:0',
    ]);
    started.push(agent);
    await eventually(async () => {
      const r = await request(`http://${agent.address}/v1/catalog/nodes`);
      const nodes = (await r.body.json()) as { Node: string }[];
      return nodes.some((n) => n.Node === 'host-off');
    });
    await servesAnyToken(agent.address, 'host-off');
  });

  it('refuses to start a server with ACLs off and a deny default policy', () => {
    const config = dirs.make('acl-conflict');
    writeFileSync(join(config, 'acl.hcl'), 'acl {\n  enabled = false\n}\n');
    const r = spawnSync(
      process.execPath,
      [
        TRELLIS_BIN,
        'server',
        '--data-dir',
        dirs.make('acl-conflict-data'),
        '--config-dir',
        config,
        '--bind',
        '127.0.0.1:0',
        '--acl-default-policy',
        'deny',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.status).to.not.equal(0);
    expect(r.stderr.split('\n')[0]).to.equal(
      'Error: --acl-default-policy "deny" has no effect with acl.enabled = false: remove one of them',
    );
  });
});
