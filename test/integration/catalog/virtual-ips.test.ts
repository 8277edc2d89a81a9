/**
 * Virtual IPs over real HTTP: mesh services (with a sidecar, or Connect-native) get stable
 * addresses from 240.0.0.0/4, lose them with their last mesh instance, and keep them across a
 * server restart from its snapshot and log.
 */
import { expect } from 'chai';
import { request } from 'undici';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';
import { removeDir } from '../../helpers/trellis-process.js';
import { createClient } from '../../../src/client/index.js';

async function call(url: string, method: 'GET' | 'PUT', body?: unknown): Promise<unknown> {
  const r = await request(url, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.body.text();
  expect(r.statusCode, text).to.equal(200);
  return JSON.parse(text);
}

const register = (t: TestServer, svc: Record<string, unknown>): Promise<unknown> =>
  call(`${t.url}/v1/catalog/register`, 'PUT', {
    Node: 'n1',
    Address: '198.18.0.11',
    Service: svc,
  });

const vips = (t: TestServer): Promise<unknown> =>
  call(`${t.url}/v1/internal/trellis/virtual-ips`, 'GET');

describe('virtual IPs of mesh services', function () {
  this.timeout(20_000);

  it('assigns, frees and keeps them across a restart', async () => {
    const t = await startTestServer({ snapshotEvery: 3 });
    let t2: TestServer | undefined;
    try {
      await register(t, { ID: 'db', Service: 'db', Port: 5432 });
      await register(t, { ID: 'api', Service: 'api', Port: 8080 });
      await register(t, {
        ID: 'api-sidecar-proxy',
        Service: 'api-sidecar-proxy',
        Kind: 'connect-proxy',
        Port: 21000,
        Proxy: { DestinationServiceName: 'api', DestinationServiceID: 'api' },
      });
      await register(t, { ID: 'pay', Service: 'pay', Port: 9000, Connect: { Native: true } });
      await register(t, {
        ID: 'web-sidecar-proxy',
        Service: 'web-sidecar-proxy',
        Kind: 'connect-proxy',
        Port: 21001,
        Proxy: { DestinationServiceName: 'web' },
      });
      // db has no sidecar: not in the mesh, no address.
      expect(await vips(t)).to.deep.equal({
        api: '240.0.0.1',
        pay: '240.0.0.2',
        web: '240.0.0.3',
      });
      await call(`${t.url}/v1/catalog/deregister`, 'PUT', { Node: 'n1', ServiceID: 'pay' });
      expect(await vips(t)).to.deep.equal({ api: '240.0.0.1', web: '240.0.0.3' });

      await t.server.close();
      t2 = await startTestServer({ dataDir: t.dir });
      expect(await vips(t2)).to.deep.equal({ api: '240.0.0.1', web: '240.0.0.3' });
      const client = createClient({ addresses: [t2.server.address] });
      expect((await client.catalog.virtualIps()).value).to.deep.equal({
        api: '240.0.0.1',
        web: '240.0.0.3',
      });
      // The freed address is the first one reused.
      await register(t2, { ID: 'cart', Service: 'cart', Port: 7000, Connect: { Native: true } });
      expect(await vips(t2)).to.include({ cart: '240.0.0.2' });
    } finally {
      await t2?.close();
      removeDir(t.dir);
    }
  });
});
