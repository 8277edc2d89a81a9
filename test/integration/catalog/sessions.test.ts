/** Session TTLs over real HTTP: renewals keep a session, silence ends it and frees its lock. */
import { expect } from 'chai';
import { request } from 'undici';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';
import { eventually } from '../../helpers/trellis-process.js';

async function put(url: string, body?: unknown): Promise<unknown> {
  const r = await request(url, {
    method: 'PUT',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.body.text();
  expect(r.statusCode, text).to.equal(200);
  return JSON.parse(text);
}

describe('session TTLs', function () {
  this.timeout(20_000);
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ sessionMinTTLms: 500 });
  });
  after(() => t.close());

  it('keeps a renewed session and expires a silent one, releasing its lock', async () => {
    const kept = (await put(`${t.url}/v1/session/create`, { TTL: '500ms', Name: 'kept' })) as {
      ID: string;
    };
    const lapsed = (await put(`${t.url}/v1/session/create`, {
      TTL: '500ms',
      Name: 'lapsed',
      LockDelay: '0s',
    })) as { ID: string };
    expect(await put(`${t.url}/v1/kv/leader?acquire=${lapsed.ID}`, 'me')).to.equal(true);
    const renewer = setInterval(
      () => void put(`${t.url}/v1/session/renew/${kept.ID}`).catch(() => {}),
      200,
    );
    try {
      // Consul invalidates after twice the TTL without a renewal.
      await eventually(async () => {
        const r = await request(`${t.url}/v1/session/info/${lapsed.ID}`);
        return ((await r.body.json()) as unknown[]).length === 0;
      }, 10_000);
      const lock = await request(`${t.url}/v1/kv/leader`);
      const [entry] = (await lock.body.json()) as { Session?: string }[];
      expect(entry!.Session).to.equal(undefined);
      const info = await request(`${t.url}/v1/session/info/${kept.ID}`);
      expect((await info.body.json()) as unknown[]).to.have.length(1);
    } finally {
      clearInterval(renewer);
    }
  });

  it('answers 404 when renewing an unknown session', async () => {
    const r = await request(`${t.url}/v1/session/renew/00000000-0000-0000-0000-000000000000`, {
      method: 'PUT',
    });
    expect(r.statusCode).to.equal(404);
    expect(await r.body.text()).to.include('not found');
  });
});
