/**
 * Settings from the config dir: a server and an agent started with little more than
 * `--config-dir`, everything else read from a settings.hcl next to the service files, as an
 * operator (or Ansible) would lay out /etc/trellis.d. A flag given on the command line still wins.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import {
  eventually,
  startTrellis,
  TRELLIS_BIN,
  type TrellisProcess,
  getJSON,
  tempDirs,
} from '../helpers/trellis-process.js';

interface CatalogNode {
  Node: { Node: string; Meta: Record<string, string> } | null;
  Services: Record<string, { Service: string; Port: number }>;
}

describe('settings in the config dir', function () {
  this.timeout(60_000);
  let server: TrellisProcess;
  const started: TrellisProcess[] = [];

  const tmp = tempDirs();
  const dir = (name: string): string => tmp.make(name);

  const start = async (args: string[]): Promise<TrellisProcess> => {
    const p = await startTrellis(args);
    started.push(p);
    return p;
  };

  const settingsHcl = (nodeName: string, data: string, ttl = '3s'): string =>
    `node_name          = "${nodeName}"
retry_join         = ["${server.address}"]
data_dir           = "${data}"
heartbeat_interval = "300ms"
heartbeat_ttl      = "${ttl}"
sync_interval      = "2s"
node_meta {
  role = "web"
}
`;

  /** An agent config dir: settings.hcl next to a service file. */
  const agentConfig = (nodeName: string): { conf: string; data: string } => {
    const conf = dir('conf');
    const data = dir('data');
    writeFileSync(join(conf, 'settings.hcl'), settingsHcl(nodeName, data));
    writeFileSync(
      join(conf, 'web.hcl'),
      'service {\n  name = "settings-web"\n  port = 8080\n  check { ttl = "30s" }\n}\n',
    );
    return { conf, data };
  };

  const node = (name: string) =>
    getJSON<CatalogNode | null>(`http://${server.address}/v1/catalog/node/${name}`);

  before(async () => {
    const conf = dir('srvconf');
    writeFileSync(
      join(conf, 'server.hcl'),
      `node_name = "srv-from-file"\ndata_dir = "${dir('srv')}"\nsnapshot_every = 50\nacl { default_policy = "allow" }\n`,
    );
    server = await start(['server', '--config-dir', conf, '--bind', '127.0.0.1:0']);
  });

  after(async () => {
    for (const p of started.reverse()) await p.stop();
    tmp.removeAll();
  });

  it('a server takes its node name and data dir from the config dir', async () => {
    const nodes = await getJSON<{ Node: string }[]>(`http://${server.address}/v1/catalog/nodes`);
    expect(nodes.map((n) => n.Node)).to.include('srv-from-file');
  });

  it('an agent started with only --config-dir and --bind joins under the node name of its file', async () => {
    const { conf, data } = agentConfig('settings-node');
    const agent = await start(['agent', '--config-dir', conf, '--bind', '127.0.0.1:0']);
    const n = await eventually(async () => {
      const r = await node('settings-node');
      return r?.Services['settings-web'] ? r : undefined;
    });
    expect(n.Node?.Meta).to.include({ role: 'web' });
    expect(n.Services['settings-web']!.Port).to.equal(8080);

    // SIGHUP: services reload at once; a changed setting only says it needs a restart.
    writeFileSync(
      join(conf, 'api.hcl'),
      'service {\n  name = "settings-api"\n  port = 9090\n}\nheartbeat_ttl = "5s"\n',
    );
    // heartbeat_ttl now conflicts with settings.hcl: the reload is refused as a whole.
    agent.proc.kill('SIGHUP');
    await eventually(async () => agent.output().includes('reload refused'));
    expect((await node('settings-node'))?.Services['settings-api']).to.equal(undefined);

    writeFileSync(join(conf, 'api.hcl'), 'service {\n  name = "settings-api"\n  port = 9090\n}\n');
    writeFileSync(join(conf, 'settings.hcl'), settingsHcl('settings-node', data, '5s'));
    agent.proc.kill('SIGHUP');
    await eventually(async () => (await node('settings-node'))?.Services['settings-api']);
    await eventually(async () =>
      agent.output().includes('setting heartbeat_ttl changed; needs a restart'),
    );
  });

  it('an agent serves Prometheus metrics on its metrics port when metrics_addr is set', async () => {
    const { conf } = agentConfig('metrics-node');
    writeFileSync(join(conf, 'metrics.hcl'), 'metrics_addr = "127.0.0.1:0"\n');
    const agent = await start(['agent', '--config-dir', conf, '--bind', '127.0.0.1:0']);
    const m = /trellis agent metrics on (http:\/\/[^\s]+)/.exec(agent.output());
    expect(m, agent.output()).to.not.equal(null);
    const r = await request(m![1]!);
    expect(r.statusCode).to.equal(200);
    expect(String(r.headers['content-type'])).to.match(/^text\/plain/);
    expect(await r.body.text()).to.match(/^trellis_process_cpu_seconds_total /m);
    const other = await request(m![1]!.replace('/metrics', '/v1/agent/self'));
    expect(other.statusCode).to.equal(404);
    await other.body.text();
  });

  it('a flag given on the command line overrides the file', async () => {
    const { conf } = agentConfig('file-name');
    await start([
      'agent',
      '--config-dir',
      conf,
      '--bind',
      '127.0.0.1:0',
      '--node',
      'other',
      '--data-dir',
      dir('data-other'),
    ]);
    const n = await eventually(async () => {
      const r = await node('other');
      return r?.Services['settings-web'] ? r : undefined;
    });
    expect(n.Node?.Meta).to.include({ role: 'web' });
    expect(await node('file-name')).to.equal(null);
  });

  it('without a server address from either place: a usage error, exit 2', async () => {
    const conf = dir('noserver');
    writeFileSync(join(conf, 'settings.hcl'), `data_dir = "${dir('d')}"\n`);
    const child = spawn(process.execPath, [TRELLIS_BIN, 'agent', '--config-dir', conf], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).to.equal(2);
    expect(err).to.include(
      'Error: no server address: pass --server or set retry_join in a config file',
    );
  });
});
