import { expect } from 'chai';
import net from 'node:net';
import type { Clock } from '../../../src/core/index.js';
import { TcpCheck } from '../../../src/agent/checks/index.js';
import { close, closedPort, listen, portOf } from './helpers.js';

describe('checks/tcp (real sockets)', function () {
  this.timeout(20_000);

  it('a listener is passing', async () => {
    const server = await listen(net.createServer((s) => s.destroy()));
    try {
      const target = `127.0.0.1:${portOf(server)}`;
      expect(await new TcpCheck({ TCP: target }).run(5000)).to.deep.equal({
        status: 'passing',
        output: `TCP connect ${target}: Success`,
      });
    } finally {
      await close(server);
    }
  });

  it('a closed port is critical with the error', async () => {
    const target = `127.0.0.1:${await closedPort()}`;
    const r = await new TcpCheck({ TCP: target }).run(5000);
    expect(r.status).to.equal('critical');
    expect(r.output.startsWith(`TCP connect ${target}: `)).to.equal(true);
    expect(r.output).to.match(/ECONNREFUSED/);
  });

  it('a timeout while connecting is critical and says so', async () => {
    // fire the deadline by hand before the event loop can complete a real connect
    const timers: (() => void)[] = [];
    const clock: Clock = {
      now: () => 0,
      setTimeout: (fn) => (timers.push(fn), {}),
      clearTimeout: () => undefined,
    };
    const server = await listen(net.createServer((s) => s.destroy()));
    try {
      const target = `127.0.0.1:${portOf(server)}`;
      const pending = new TcpCheck({ TCP: target }, clock).run(250);
      expect(timers).to.have.lengthOf(1);
      timers[0]!();
      expect(await pending).to.deep.equal({
        status: 'critical',
        output: `TCP connect ${target}: timed out after 250ms`,
      });
    } finally {
      await close(server);
    }
  });
});
