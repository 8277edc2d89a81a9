/**
 * Connection limits on the API listener, with real sockets: one client address may hold at
 * most 200 connections (the default, as Consul's http_max_conns_per_client); the 201st gets a
 * 429 and its request never runs, while the first 200 and other addresses (127.0.0.2, ...)
 * keep working, and a closed connection frees its place. A connection that sends no request
 * is closed after the first-request timeout, but a request may then wait as long as it needs.
 */
import { expect } from 'chai';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  agentArgs,
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../../helpers/trellis-process.js';

/** Opens a socket from `localAddress` and resolves once it is connected. */
function open(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends a raw request and collects what comes back until the server closes or `until` matches. */
function exchange(s: Socket, raw: string, until: RegExp): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const done = (): void => {
      s.off('data', onData);
      resolve(got);
    };
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (until.test(got)) done();
    };
    s.on('data', onData);
    s.once('close', done);
    s.write(raw);
  });
}

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`;

/** A KV write from its own address (127.0.0.9), so it never takes one of 127.0.0.1's places. */
async function putKey(port: number, key: string, value: string): Promise<void> {
  const s = await open(port, '127.0.0.9');
  const raw = `PUT /v1/kv/${key} HTTP/1.1\r\nHost: t\r\nContent-Length: ${value.length}\r\n\r\n${value}`;
  const answer = await exchange(s, raw, /true$/);
  s.destroy();
  expect(answer).to.match(/^HTTP\/1\.1 200/);
}
/** A complete response with a body (Content-Length framed). */
const RESPONSE = /^HTTP\/1\.1 \d{3}[\s\S]*\r\n\r\n[\s\S]*$/;

describe('API connection limits (real sockets)', function () {
  this.timeout(60_000);

  describe('per client address: 200 by default', () => {
    let t: TestServer;
    let port = 0;
    const held: Socket[] = [];
    before(async () => {
      // No first-request timeout here, so held connections stay however slow the machine is.
      t = await startTestServer({ httpLimits: { maxPerClient: 200, handshakeTimeoutMs: 0 } });
      port = Number(new URL(t.url).port);
    });
    after(async () => {
      for (const s of held) s.destroy();
      await t.close();
    });

    it('holds 200 connections from 127.0.0.1, refuses the 201st with a 429 without running it', async () => {
      await putKey(port, 'wake', 'a');
      const index = t.server.state.lastIndex;
      for (let i = 0; i < 200; i++) {
        const s = await open(port, '127.0.0.1');
        s.on('error', () => {});
        // Each holds a blocking query: an in-flight request, not an idle connection.
        s.write(get(`/v1/kv/wake?index=${index}&wait=60s`));
        held.push(s);
      }
      await eventually(async () => t.server.connections.open('127.0.0.1') === 200);

      const extra = await open(port, '127.0.0.1');
      extra.on('error', () => {});
      const answer = await exchange(
        extra,
        'PUT /v1/kv/over-the-limit HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx',
        /limit 200 per client address[\s\S]*\n$/,
      );
      extra.destroy();
      expect(answer).to.match(/^HTTP\/1\.1 429 Too Many Requests\r\n/);
      expect(answer).to.include('Too many connections from this address (limit 200');
      expect(t.server.state.kv.get('over-the-limit'), 'the refused request never ran').to.equal(
        undefined,
      );
      expect(t.server.connections.open('127.0.0.1')).to.equal(200);
    });

    it('other client addresses are served meanwhile', async () => {
      for (const addr of ['127.0.0.2', '127.0.0.3']) {
        const s = await open(port, addr);
        const answer = await exchange(s, get('/v1/status/leader'), /"\s*$/);
        s.destroy();
        expect(answer, addr).to.match(/^HTTP\/1\.1 200 OK/);
      }
    });

    it('the first 200 still work, and a closed one frees its place', async () => {
      // A write wakes every held blocking query: each of the 200 connections gets its answer.
      const answers = held.map((s) => exchange(s, '', /\r\n\r\n[\s\S]*"Key":"wake"[\s\S]*\]$/));
      await putKey(port, 'wake', 'b');
      const got = await Promise.all(answers);
      const odd = got.filter((a) => !a.startsWith('HTTP/1.1 200 OK'));
      expect(odd, odd.slice(0, 2).join('\n---\n')).to.deep.equal([]);
      // A second request on one of them (keep-alive) is served too.
      expect(await exchange(held[0]!, get('/v1/status/leader'), /"\s*$/)).to.match(
        /^HTTP\/1\.1 200 OK/,
      );
      // Closing one lets a new connection from the same address in.
      held.pop()!.destroy();
      await eventually(async () => t.server.connections.open('127.0.0.1') === 199);
      const again = await open(port, '127.0.0.1');
      const answer = await exchange(again, get('/v1/status/leader'), /"\s*$/);
      again.destroy();
      expect(answer).to.match(/^HTTP\/1\.1 200 OK/);
    });
  });

  describe('first-request timeout', () => {
    let t: TestServer;
    let port = 0;
    before(async () => {
      t = await startTestServer({ httpLimits: { maxPerClient: 5, handshakeTimeoutMs: 300 } });
      port = Number(new URL(t.url).port);
    });
    after(() => t.close());

    it('closes connections that never send a request, which frees their places', async () => {
      const idle: Socket[] = [];
      for (let i = 0; i < 5; i++) idle.push(await open(port, '127.0.0.4'));
      const closed = idle.map((s) => new Promise((r) => s.once('close', r)));
      await Promise.all(closed);
      await eventually(async () => t.server.connections.open('127.0.0.4') === 0);
      const s = await open(port, '127.0.0.4');
      expect(await exchange(s, get('/v1/status/leader'), /"\s*$/)).to.match(/^HTTP\/1\.1 200/);
      s.destroy();
    });

    it('does not cut a request that waits longer than the timeout (a blocking query)', async () => {
      const index = t.server.state.lastIndex;
      const s = await open(port, '127.0.0.5');
      const answer = await exchange(s, get(`/v1/kv/none?index=${index}&wait=1s`), RESPONSE);
      s.destroy();
      expect(answer).to.match(/^HTTP\/1\.1 404/);
    });
  });
});

describe('API connection limits on the HTTPS listener', function () {
  this.timeout(60_000);
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      https: { host: '127.0.0.1', port: 0 },
      httpLimits: { maxPerClient: 2, handshakeTimeoutMs: 0 },
    });
  });
  after(() => t.close());

  /** A TLS connection from `localAddress`: 'ok' once the handshake is done, else the error. */
  const handshake = (port: number, localAddress: string): Promise<[string, TLSSocket]> =>
    new Promise((resolve) => {
      const tcp = connect({ port, host: '127.0.0.1', localAddress });
      const s = tlsConnect({ socket: tcp, rejectUnauthorized: false });
      s.once('secureConnect', () => resolve(['ok', s]));
      s.once('error', (err) => resolve([err.message, s]));
      s.once('close', () => resolve(['closed', s]));
    });

  it('closes the connection over the limit before the TLS handshake; other addresses still connect', async () => {
    const port = Number(t.server.httpsAddress!.split(':').pop());
    const held: TLSSocket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const [r, s] = await handshake(port, '127.0.0.1');
        expect(r).to.equal('ok');
        held.push(s);
      }
      const [over, s3] = await handshake(port, '127.0.0.1');
      s3.destroy();
      expect(over, 'no handshake for the third connection').to.not.equal('ok');
      const [other, s4] = await handshake(port, '127.0.0.2');
      s4.destroy();
      expect(other).to.equal('ok');
    } finally {
      for (const s of held) s.destroy();
    }
  });
});

describe('API connection limits of a real agent process, from its config file', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  let server: TrellisProcess | undefined;
  let agent: TrellisProcess | undefined;
  after(async () => {
    await agent?.stop();
    await server?.stop();
    tmp.removeAll();
  });

  it('limits { http_max_conns_per_client = 3 }: the 4th connection from one address gets a 429', async () => {
    server = await startServerProcess(tmp.make('limits-srv'), 'srv');
    const configDir = tmp.make('limits-cfg');
    writeFileSync(
      join(configDir, 'limits.hcl'),
      'limits {\n  http_max_conns_per_client = 3\n  http_handshake_timeout = "60s"\n}\n',
    );
    agent = await startTrellis(
      agentArgs(server.address, 'a1', tmp.make('limits-agent'), configDir),
    );
    const port = Number(agent.address.split(':').pop());
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const s = await open(port, '127.0.0.1');
        // A complete answer proves the agent admitted (and counted) the connection.
        expect(await exchange(s, get('/v1/agent/services'), /\{\}$/)).to.match(/^HTTP\/1\.1 200/);
        held.push(s);
      }
      const extra = await open(port, '127.0.0.1');
      const answer = await exchange(extra, get('/v1/agent/services'), /them\.\n$/);
      extra.destroy();
      expect(answer).to.match(/^HTTP\/1\.1 429 Too Many Requests/);
      expect(answer).to.include('limit 3 per client address');
      const other = await open(port, '127.0.0.2');
      expect(await exchange(other, get('/v1/agent/services'), /\{\}$/)).to.match(/^HTTP\/1\.1 200/);
      other.destroy();
    } finally {
      for (const s of held) s.destroy();
    }
  });
});
