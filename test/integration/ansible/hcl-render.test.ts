/**
 * The roles' HCL writer (ansible/roles/trellis_common/filter_plugins/trellis_hcl.py) read back by
 * Trellis's own config loader: the example inventory's services are exactly the lab's
 * deploy/lab/services/*.hcl, and awkward values (quotes, backslashes, newlines, non-ASCII, `${`,
 * maps, lists of maps) come back as the same definitions as their JSON form.
 * Needs Debian's python3 with ansible (the filter imports ansible.errors); skipped otherwise.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseServiceDefinitions } from '../../../src/config/load.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const PLUGIN_DIR = join(REPO, 'ansible', 'roles', 'trellis_common', 'filter_plugins');
const PYTHON = '/usr/bin/python3';

function render(data: object): string {
  const r = spawnSync(
    PYTHON,
    [
      '-c',
      'import sys, json; sys.path.insert(0, sys.argv[1]); from trellis_hcl import trellis_hcl; ' +
        'sys.stdout.write(trellis_hcl(json.load(sys.stdin)))',
      PLUGIN_DIR,
    ],
    { input: JSON.stringify(data), encoding: 'utf8', timeout: 30_000 },
  );
  if (r.status !== 0) throw new Error(`trellis_hcl failed: ${r.stderr}`);
  return r.stdout;
}

function parsed(text: string, file: string): ReturnType<typeof parseServiceDefinitions> {
  const result = parseServiceDefinitions(text, file);
  expect(result.errors, `${file}:\n${text}`).to.deep.equal([]);
  return result;
}

describe('ansible/ roles: service definitions written as HCL', function () {
  this.timeout(60_000);

  before(function () {
    const ok = spawnSync(PYTHON, ['-c', 'import ansible.errors'], { stdio: 'ignore' });
    const inv = spawnSync('ansible-inventory', ['--version'], { stdio: 'ignore' });
    if (ok.status !== 0 || inv.status !== 0) this.skip();
  });

  for (const [host, file] of [
    ['app1', 'web.hcl'],
    ['app2', 'api.hcl'],
  ] as const) {
    it(`deploys deploy/lab/services/${file} exactly, from the example inventory (${host})`, function () {
      const r = spawnSync(
        'ansible-inventory',
        ['-i', join(REPO, 'ansible', 'inventory.example.ini'), '--host', host],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(r.status, r.stderr).to.equal(0);
      const vars = JSON.parse(r.stdout) as { trellis_services: object[] };
      expect(vars.trellis_services).to.have.length(1);
      const ours = parsed(render({ service: vars.trellis_services[0] }), `${host}-${file}`);
      const lab = parsed(readFileSync(join(REPO, 'deploy', 'lab', 'services', file), 'utf8'), file);
      expect(ours.services).to.deep.equal(lab.services);
      expect(ours.checks).to.deep.equal(lab.checks);
    });
  }

  it('writes awkward values so that they read back as their JSON form does', function () {
    const service = {
      name: 'odd',
      id: 'odd-1',
      port: 9000,
      address: '10.0.0.7',
      tags: ['a "quoted" tag', 'back\\slash', '${not.interpolated}', 'ünïcödé ✓', 'emoji 😀'],
      meta: { 'dash-key': 'a = "b" \\ c', under_score: '{ not: a block }' },
      weights: { passing: 3, warning: 1 },
      tagged_addresses: { lan: { address: '10.0.0.7', port: 9000 } },
      enable_tag_override: false,
      checks: [
        {
          id: 'odd-http',
          name: 'odd answers',
          http: 'http://127.0.0.1:9000/health?x=1&y="2"',
          header: { 'X-Probe': ['one', 'two'] },
          method: 'POST',
          body: 'line one\nline two\t"quoted" \\ end',
          notes: 'multi\nline',
          interval: '10s',
          timeout: '1s',
        },
        { id: 'odd-ttl', name: 'odd ttl', ttl: '30s' },
      ],
      connect: {
        sidecar_service: {
          proxy: {
            upstreams: [
              { destination_name: 'db', local_bind_port: 9191 },
              { destination_name: 'cache', local_bind_port: 9192, local_bind_address: '127.0.0.2' },
            ],
            config: { protocol: 'http', nested: { list: [1, 2.5, true, null] } },
          },
        },
      },
    };
    const hcl = render({ service });
    const fromHcl = parsed(hcl, 'odd.hcl');
    const fromJson = parsed(JSON.stringify({ service }), 'odd.json');
    expect(fromHcl.services).to.deep.equal(fromJson.services);
    expect(fromHcl.checks).to.deep.equal(fromJson.checks);
    expect(fromHcl.services[0]?.Meta?.['dash-key']).to.equal('a = "b" \\ c');
    expect(hcl).to.include('line one\\nline two');
  });
});
