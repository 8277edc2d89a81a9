/**
 * Changing the virtual-IP range across server restarts: addresses inside the new range are
 * kept, the others are moved (in service-name order) or, without room, dropped; the change is a
 * logged command, so replaying the log (with or without snapshots) gives the same addresses.
 */
import { expect } from 'chai';
import { request } from 'undici';
import type { ServerOptions } from '../../../src/catalog/server.js';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';
import { removeDir } from '../../helpers/trellis-process.js';

async function call(url: string, method: 'GET' | 'PUT', body?: unknown): Promise<unknown> {
  const r = await request(url, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.body.text();
  expect(r.statusCode, text).to.equal(200);
  return JSON.parse(text);
}

const native = (t: TestServer, name: string): Promise<unknown> =>
  call(`${t.url}/v1/catalog/register`, 'PUT', {
    Node: 'n1',
    Address: '198.18.0.11',
    Service: { ID: name, Service: name, Port: 9000, Connect: { Native: true } },
  });

const vips = (t: TestServer): Promise<unknown> =>
  call(`${t.url}/v1/internal/trellis/virtual-ips`, 'GET');

describe('virtual IP range changes across restarts', function () {
  this.timeout(30_000);

  it('keeps addresses inside the new range and moves the others deterministically', async () => {
    const warnings: { obj: object; msg: string }[] = [];
    const log = {
      info() {},
      error() {},
      warn: (obj: object, msg: string) => warnings.push({ obj, msg }),
    };
    const first = await startTestServer();
    const dir = first.dir;
    let t: TestServer = first;
    const restart = async (opts: Partial<ServerOptions>): Promise<TestServer> => {
      await (t === first ? t.server.close() : t.close());
      t = await startTestServer({ dataDir: dir, log, ...opts });
      return t;
    };
    try {
      for (const name of ['web', 'api', 'pay']) await native(t, name);
      expect(await vips(t)).to.deep.equal({
        api: '240.0.0.2',
        pay: '240.0.0.3',
        web: '240.0.0.1',
      });

      // A smaller range that holds every address: nothing moves, nothing is logged.
      await restart({ vipRange: '240.0.0.0/24' });
      expect(await vips(t)).to.deep.equal({
        api: '240.0.0.2',
        pay: '240.0.0.3',
        web: '240.0.0.1',
      });
      expect(warnings).to.deep.equal([]);

      // A disjoint range: everything moves, in service-name order.
      await restart({ vipRange: '10.99.0.0/16', snapshotEvery: 2 });
      expect(await vips(t)).to.deep.equal({
        api: '10.99.0.1',
        pay: '10.99.0.2',
        web: '10.99.0.3',
      });
      expect(warnings.map((w) => w.msg)).to.deep.equal([
        'virtual IP range changed: addresses outside the new range were reallocated',
      ]);
      expect(warnings[0]!.obj).to.deep.include({ from: '240.0.0.0/24', to: '10.99.0.0/16' });
      await native(t, 'cart');
      expect(await vips(t)).to.include({ cart: '10.99.0.4' });

      // Room for two: the two lowest addresses stay, the others lose theirs...
      await restart({ vipRange: '10.99.0.0/30' });
      expect(await vips(t)).to.deep.equal({ api: '10.99.0.1', pay: '10.99.0.2' });
      // ...and get new ones, in name order, when there is room again.
      await restart({ vipRange: '10.99.0.0/29' });
      const final = { api: '10.99.0.1', pay: '10.99.0.2', cart: '10.99.0.3', web: '10.99.0.4' };
      expect(await vips(t)).to.deep.equal(final);

      // Replaying the same log (snapshots and range commands) gives the same addresses.
      warnings.length = 0;
      await restart({ vipRange: '10.99.0.0/29' });
      expect(await vips(t)).to.deep.equal(final);
      expect(warnings).to.deep.equal([]);
    } finally {
      await (t === first ? t.server.close() : t.close());
      removeDir(dir);
    }
  });
});
