import { expect } from 'chai';
import { refusedAddress, routes, startFakeApi, type FakeApi } from '../client/fake-api.js';
import { trellis } from './harness.js';

const kvPair = (value: string, index: number) => ({
  Key: 'color',
  CreateIndex: 1,
  ModifyIndex: index,
  LockIndex: 0,
  Flags: 0,
  Value: Buffer.from(value).toString('base64'),
});

describe('trellis watch', () => {
  let fake: FakeApi;
  afterEach(async () => {
    await fake?.close();
  });

  /** Index 10 at first; a blocking query on 10 answers 11 after a moment; on 11 it holds. */
  async function changingKey(): Promise<void> {
    fake = await startFakeApi(
      routes({
        'GET /v1/kv/color': async (req) => {
          const index = Number(req.query.get('index') ?? 0);
          if (index === 0) return { json: [kvPair('red', 10)], index: 10 };
          if (index === 10) {
            await new Promise((r) => setTimeout(r, 30));
            return { json: [kvPair('blue', 11)], index: 11 };
          }
          return { hang: true };
        },
        'GET /v1/health/service/web': (req) =>
          req.query.get('index')
            ? { hang: true }
            : {
                json: [
                  {
                    Node: { Node: 'n1', Address: '10.0.0.1' },
                    Service: { ID: 'web-1', Service: 'web', Address: '', Port: 80, Tags: [] },
                    Checks: [{ CheckID: 'serfHealth', Status: 'passing' }],
                  },
                ],
                index: 4,
              },
      }),
    );
  }

  it('prints the current value, then each change, until interrupted', async () => {
    await changingKey();
    const stop = new AbortController();
    const r = await trellis(['watch', 'key', 'color'], {
      env: { TRELLIS_HTTP_ADDR: fake.address },
      signal: stop.signal,
      onStdout: (out) => {
        if (out.includes('blue')) stop.abort();
      },
    });
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal('red\n\nblue\n');
    // The interrupt lands right after "blue", before or after the next query goes out.
    expect(fake.requests.slice(0, 2).map((q) => q.query.get('index'))).to.deep.equal([null, '10']);
  });

  it('prints one JSON document per line with --format json', async () => {
    await changingKey();
    const stop = new AbortController();
    const r = await trellis(['watch', 'key', 'color', '--format', 'json'], {
      env: { TRELLIS_HTTP_ADDR: fake.address },
      signal: stop.signal,
      onStdout: (out) => {
        if (out.split('\n').length > 2) stop.abort();
      },
    });
    const docs = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { ModifyIndex: number });
    expect(docs.map((d) => d.ModifyIndex)).to.deep.equal([10, 11]);
  });

  it('watches a service as a health table', async () => {
    await changingKey();
    const stop = new AbortController();
    const r = await trellis(['watch', 'service', 'web', '--passing'], {
      env: { TRELLIS_HTTP_ADDR: fake.address },
      signal: stop.signal,
      onStdout: () => stop.abort(),
    });
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(
      /^Node\s+ServiceID\s+Address\s+Port\s+Status\s+Tags\nn1\s+web-1\s+10\.0\.0\.1\s+80\s+passing\n$/,
    );
    expect(fake.requests[0]!.query.get('passing')).to.equal('true');
  });

  it('exits 1 when the first value cannot be fetched', async () => {
    const dead = await refusedAddress();
    const r = await trellis(['watch', 'prefix', 'cfg/', '--http-addr', dead]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain('Error: Cannot reach the Trellis HTTP API');
  });
});
