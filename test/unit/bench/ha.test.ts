/**
 * The pure parts of the HA benchmark (bench/ha): the client's failover window, the wake
 * percentiles, and finding which loopback server a process is connected to (on real sockets
 * of this process, read back from /proc).
 */
import { expect } from 'chai';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { clientWindow } from '../../../bench/ha/gaps.js';
import { connectionsByPort } from '../../../bench/ha/sockets.js';
import { spread } from '../../../bench/ha/wake.js';

describe('bench/ha: client failover window', () => {
  it('counts from the kill to the first write sent after it, and the longest gap', () => {
    // Kill at 100. The write answered at 101 was sent at 90 (served by the dying server); the
    // next successes come at 180 (sent 150) and 205, the window ends at 300.
    const oks = [
      { sent: 60, at: 70 },
      { sent: 90, at: 101 },
      { sent: 150, at: 180 },
      { sent: 180, at: 205 },
    ];
    const failures = [
      { at: 95, why: 'before the kill' },
      { at: 120, why: 'reset' },
      { at: 140, why: 'reset' },
    ];
    const w = clientWindow(oks, failures, 100, 300);
    expect(w.firstOkMs).to.equal(80);
    // 101 -> 180 is 79; 205 -> 300 (the end of the window) is 95, the longest.
    expect(w.longestGapMs).to.equal(95);
    expect(w.errors).to.equal(2);
    expect(w.errorSamples).to.deep.equal(['reset']);
  });

  it('reports no first write (NaN) and the whole window as the gap when nothing succeeded', () => {
    const w = clientWindow([{ sent: 10, at: 20 }], [{ at: 150, why: 'refused' }], 100, 400);
    expect(Number.isNaN(w.firstOkMs)).to.equal(true);
    expect(w.longestGapMs).to.equal(300);
    expect(w.errors).to.equal(1);
  });
});

describe('bench/ha: wake spread', () => {
  it('gives nearest-rank p50/p90/p99 and the max', () => {
    const s = spread(Array.from({ length: 100 }, (_, i) => 100 - i));
    expect(s).to.deep.equal({ count: 100, p50: 50, p90: 90, p99: 99, max: 100 });
  });
});

describe('bench/ha: which server a process is connected to', () => {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  const listen = async (): Promise<number> => {
    const s = createServer((sock) => sockets.push(sock));
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    return (s.address() as { port: number }).port;
  };
  const dial = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const c = connect({ host: '127.0.0.1', port }, () => resolve());
      c.once('error', reject);
      sockets.push(c);
    });

  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  it('finds this process’s connections by the remote port, and only those', async () => {
    const [p1, p2, p3] = [await listen(), await listen(), await listen()];
    const before = connectionsByPort(process.pid, [p1, p2, p3]);
    expect([...before.values()]).to.deep.equal([0, 0, 0]);
    await dial(p2);
    await dial(p2);
    const counts = connectionsByPort(process.pid, [p1, p2, p3]);
    // Our two client sockets to p2; the accepted ends have p2 as their local port, not remote.
    expect([...counts]).to.deep.equal([
      [p1, 0],
      [p2, 2],
      [p3, 0],
    ]);
    await dial(p3);
    expect([...connectionsByPort(process.pid, [p1, p2, p3]).values()]).to.deep.equal([0, 2, 1]);
  });
});
