/**
 * The data-plane supervisor's socket (real unix sockets, real worker processes when a plan
 * arrives): who may connect and what a broken or hostile peer gets. An agent is welcomed with
 * the plans served; a second one is told busy; a peer of another protocol is refused with a
 * message naming both releases; a frame over the limit or garbage closes only that connection;
 * a stale socket file is replaced, a live one is not taken over.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../../src/core/index.js';
import { ProxyWorkers } from '../../../src/proxy/index.js';
import { DataPlaneClient } from '../../../src/proxy/workers/data-plane-client.js';
import { DataPlaneInUse, DataPlaneServer } from '../../../src/proxy/workers/data-plane-server.js';
import { FrameReader, frame } from '../../../src/proxy/workers/frames.js';
import type { FromDataPlane } from '../../../src/proxy/workers/protocol.js';

const quiet = { info() {}, warn() {} };

/** Connects, sends `bytes`, and collects what comes back until the server closes. */
function exchange(path: string, bytes: Buffer): Promise<FromDataPlane[]> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    const reader = new FrameReader();
    const got: FromDataPlane[] = [];
    s.on('connect', () => s.write(bytes));
    s.on('data', (d: Buffer) => got.push(...(reader.push(d) as FromDataPlane[])));
    s.on('error', reject);
    s.on('close', () => resolve(got));
    setTimeout(() => s.destroy(), 5000).unref();
  });
}

describe('data-plane socket (trellis proxy <-> agent)', function () {
  this.timeout(60_000);
  let dir: string;
  let path: string;
  let workers: ProxyWorkers;
  let server: DataPlaneServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-test-dps-'));
    path = join(dir, 'data-plane.sock');
    // A stale socket file (a crashed supervisor's) is replaced.
    writeFileSync(path, '');
    workers = new ProxyWorkers({ count: 1, log: quiet, logLevel: 'warn', clock: systemClock });
    server = new DataPlaneServer({ socketPath: path, workers, version: '9.9.9', log: quiet });
    await server.listen();
  });

  after(async () => {
    await server.close();
    await workers.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes the socket with mode 0600', () => {
    expect(statSync(path).mode & 0o777).to.equal(0o600);
    expect(statSync(path).isSocket()).to.equal(true);
  });

  it('refuses to take over a socket another supervisor serves', async () => {
    const second = new DataPlaneServer({ socketPath: path, workers, version: '9.9.9', log: quiet });
    const err = await second.listen().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(DataPlaneInUse);
    expect(String(err)).to.contain('another trellis proxy already serves');
  });

  it('refuses a peer of another protocol, naming both releases; what it sent next is ignored', async () => {
    const bytes = Buffer.concat([
      frame({ t: 'hello', version: '0.0.1', protocol: 999 }),
      frame({ t: 'stop', seq: 1, id: 'web-sidecar-proxy' }),
      frame({ t: 'metrics', seq: 2 }),
    ]);
    const got = await exchange(path, bytes);
    expect(got).to.have.length(1);
    expect(got[0]!.t).to.equal('refused');
    const message = (got[0] as { message: string }).message;
    expect(message).to.contain('0.0.1').and.to.contain('9.9.9').and.to.contain('protocol 999');
    expect(server.agentConnected).to.equal(false);
    // Nothing reached the workers: none was even started.
    expect(workers.pids()).to.deep.equal([]);
  });

  it('closes a connection whose frame is over the limit, and serves the next one', async () => {
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(0xffffffff, 0);
    expect(await exchange(path, huge)).to.deep.equal([]);
    expect(await exchange(path, Buffer.from('GET / HTTP/1.1\r\n\r\n'))).to.deep.equal([]);
    expect(server.agentConnected).to.equal(false);
  });

  it('welcomes one agent with the plans served, and tells a second one it is busy', async () => {
    const agent = new DataPlaneClient({
      socketPath: path,
      version: '9.9.9',
      clock: systemClock,
      log: quiet,
    });
    await agent.connect();
    expect(agent.pid).to.equal(process.pid);
    expect(agent.untaken()).to.deep.equal([]);
    expect(server.agentConnected).to.equal(true);
    const got = await exchange(path, frame({ t: 'hello', version: '9.9.9', protocol: 1 }));
    expect(got.map((m) => m.t)).to.deep.equal(['busy']);
    agent.close();
    await server.agentGone();
    expect(server.agentConnected).to.equal(false);
  });

  it('an agent gives up with a clear error when no data plane answers', async () => {
    const agent = new DataPlaneClient({
      socketPath: join(dir, 'nothing.sock'),
      version: '9.9.9',
      clock: systemClock,
      log: quiet,
      connectTimeoutMs: 300,
    });
    const err = await agent.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(err)).to.match(
      /no data plane \(trellis proxy\) answers at .*nothing\.sock: ENOENT/,
    );
  });
});
