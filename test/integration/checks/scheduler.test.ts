import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import { CheckScheduler, TTL_EXPIRED } from '../../../src/agent/checks/index.js';
import type { CheckResult } from '../../../src/agent/checks/index.js';
import { close, closedPort, listen, portOf, waitFor } from './helpers.js';

describe('checks/scheduler (real runners)', function () {
  this.timeout(30_000);
  let code = 200;
  let server: http.Server;
  let base: string;
  let changes: [string, CheckResult][];
  let scheduler: CheckScheduler;

  const last = (id: string): CheckResult | undefined =>
    [...changes].reverse().find(([i]) => i === id)?.[1];

  before(async () => {
    server = await listen(
      http.createServer((_req, res) => res.writeHead(code).end(`code ${code}`)),
    );
    base = `http://127.0.0.1:${portOf(server)}`;
  });
  after(() => close(server));

  beforeEach(() => {
    changes = [];
    scheduler = new CheckScheduler({
      minIntervalMs: 50,
      enableScriptChecks: true,
      onChange: (id, r) => changes.push([id, r]),
    });
  });
  afterEach(() => scheduler.stop());

  it('follows an HTTP endpoint through its states', async () => {
    code = 200;
    scheduler.add('web', { HTTP: `${base}/`, Interval: '100ms' });
    await waitFor(() => last('web')?.status === 'passing', 5000, 'passing');
    code = 429;
    await waitFor(() => last('web')?.status === 'warning', 5000, 'warning');
    code = 500;
    await waitFor(() => last('web')?.status === 'critical', 5000, 'critical');
    expect(last('web')!.output).to.equal(
      `HTTP GET ${base}/: 500 Internal Server Error Output: code 500`,
    );
    expect(changes.map(([, r]) => r.status)).to.deep.equal(['passing', 'warning', 'critical']);
  });

  it('runs TCP, script and TTL checks side by side', async () => {
    const listener = await listen(net.createServer((s) => s.destroy()));
    try {
      const open = `127.0.0.1:${portOf(listener)}`;
      const shut = `127.0.0.1:${await closedPort()}`;
      scheduler.add('tcp-open', { TCP: open, Interval: '100ms' });
      scheduler.add('tcp-shut', { TCP: shut, Interval: '100ms' }, 'passing');
      scheduler.add('script', {
        ScriptArgs: ['/bin/sh', '-c', 'echo hmm; exit 1'],
        Interval: '100ms',
      });
      scheduler.add('ttl', { TTL: '200ms' }, 'passing');
      await waitFor(() => changes.length >= 4, 10_000, 'four changes');
      expect(last('tcp-open')).to.deep.equal({
        status: 'passing',
        output: `TCP connect ${open}: Success`,
      });
      expect(last('tcp-shut')!.status).to.equal('critical');
      expect(last('script')).to.deep.equal({ status: 'warning', output: 'hmm\n' });
      expect(last('ttl')).to.deep.equal({ status: 'critical', output: TTL_EXPIRED });
      scheduler.ttlUpdate('ttl', 'passing', 'back');
      expect(last('ttl')).to.deep.equal({ status: 'passing', output: 'back' });
      expect(
        scheduler
          .list()
          .map((s) => s.id)
          .sort(),
      ).to.deep.equal(['script', 'tcp-open', 'tcp-shut', 'ttl']);
    } finally {
      await close(listener);
    }
  });

  it('a script that outlives its timeout goes critical', async () => {
    scheduler.add(
      'slow',
      {
        ScriptArgs: ['/bin/sh', '-c', 'sleep 5'],
        Interval: '300ms',
        Timeout: '100ms',
      },
      'passing',
    );
    await waitFor(() => last('slow')?.status === 'critical', 5000, 'critical');
    expect(last('slow')!.output).to.equal('Script check timed out after 100ms');
  });

  it('FailuresBeforeCritical: critical only after three failures, with nothing in between', async () => {
    code = 200;
    scheduler.add(
      'web',
      { HTTP: `${base}/`, Interval: '100ms', FailuresBeforeCritical: 3 },
      'passing',
    );
    await waitFor(() => last('web')?.status === 'passing', 5000, 'first run');
    code = 500;
    await waitFor(() => last('web')?.status === 'critical', 5000, 'critical after three failures');
    expect(changes.map(([, r]) => r.status)).to.deep.equal(['passing', 'critical']);
  });
});
