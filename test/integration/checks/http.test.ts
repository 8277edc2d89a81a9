import { expect } from 'chai';
import http from 'node:http';
import https from 'node:https';
import { HttpCheck } from '../../../src/agent/checks/index.js';
import { close, closedPort, listen, portOf, selfSignedCert, testHandler } from './helpers.js';

describe('checks/http (real sockets)', function () {
  this.timeout(20_000);
  let server: http.Server;
  let base: string;

  before(async () => {
    server = await listen(http.createServer(testHandler));
    base = `http://127.0.0.1:${portOf(server)}`;
  });
  after(() => close(server));

  it('2xx is passing, with Consul-style output', async () => {
    const r = await new HttpCheck({ HTTP: `${base}/ok` }).run(5000);
    expect(r).to.deep.equal({
      status: 'passing',
      output: `HTTP GET ${base}/ok: 200 OK Output: all good`,
    });
  });

  it('429 is warning, other codes critical', async () => {
    const busy = await new HttpCheck({ HTTP: `${base}/busy` }).run(5000);
    expect(busy).to.deep.equal({
      status: 'warning',
      output: `HTTP GET ${base}/busy: 429 Too Many Requests Output: slow down`,
    });
    const fail = await new HttpCheck({ HTTP: `${base}/fail` }).run(5000);
    expect(fail.status).to.equal('critical');
    expect(fail.output).to.equal(`HTTP GET ${base}/fail: 500 Internal Server Error Output: broken`);
    expect((await new HttpCheck({ HTTP: `${base}/nope` }).run(5000)).status).to.equal('critical');
  });

  it('times out as critical with a clear output', async () => {
    const r = await new HttpCheck({ HTTP: `${base}/slow` }).run(300);
    expect(r).to.deep.equal({
      status: 'critical',
      output: `HTTP GET ${base}/slow: timed out after 300ms`,
    });
  });

  it('a refused connection is critical', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/`;
    const r = await new HttpCheck({ HTTP: url }).run(5000);
    expect(r.status).to.equal('critical');
    expect(r.output).to.match(/ECONNREFUSED/);
  });

  it('reads no more than OutputMaxSize of the body (4KiB by default)', async () => {
    const def = await new HttpCheck({ HTTP: `${base}/big` }).run(5000);
    expect(def.output).to.equal(`HTTP GET ${base}/big: 200 OK Output: ${'x'.repeat(4096)}`);
    const small = await new HttpCheck({ HTTP: `${base}/big`, OutputMaxSize: 10 }).run(5000);
    expect(small.output).to.equal(`HTTP GET ${base}/big: 200 OK Output: ${'x'.repeat(10)}`);
  });

  it('sends Method, Header and Body', async () => {
    const r = await new HttpCheck({
      HTTP: `${base}/echo`,
      Method: 'post',
      Header: { 'X-Probe': ['a'], Accept: ['application/json'] },
      Body: '{"ping":1}',
    }).run(5000);
    expect(r.status).to.equal('passing');
    expect(r.output.startsWith(`HTTP POST ${base}/echo: 200 OK Output: `)).to.equal(true);
    const seen = JSON.parse(r.output.slice(r.output.indexOf('Output: ') + 8)) as {
      method: string;
      headers: Record<string, string>;
      body: string;
    };
    expect(seen.method).to.equal('POST');
    expect(seen.body).to.equal('{"ping":1}');
    expect(seen.headers['x-probe']).to.equal('a');
    expect(seen.headers['accept']).to.equal('application/json');
    expect(seen.headers['user-agent']).to.equal('Trellis Health Check');
  });

  it('follows redirects unless DisableRedirects', async () => {
    const followed = await new HttpCheck({ HTTP: `${base}/redirect` }).run(5000);
    expect(followed).to.deep.equal({
      status: 'passing',
      output: `HTTP GET ${base}/redirect: 200 OK Output: all good`,
    });
    const stopped = await new HttpCheck({ HTTP: `${base}/redirect`, DisableRedirects: true }).run(
      5000,
    );
    expect(stopped.status).to.equal('critical');
    expect(stopped.output).to.equal(`HTTP GET ${base}/redirect: 302 Found Output: `);
    const loop = await new HttpCheck({ HTTP: `${base}/loop` }).run(5000);
    expect(loop).to.deep.equal({
      status: 'critical',
      output: `HTTP GET ${base}/loop: stopped after 10 redirects`,
    });
  });

  it('an abort from the caller ends the run as critical', async () => {
    const ctl = new AbortController();
    const pending = new HttpCheck({ HTTP: `${base}/slow` }).run(10_000, ctl.signal);
    ctl.abort();
    expect(await pending).to.deep.equal({
      status: 'critical',
      output: `HTTP GET ${base}/slow: check cancelled`,
    });
  });

  describe('https', () => {
    let tlsServer: https.Server;
    let tlsBase: string;
    const sni: (string | false)[] = [];

    before(async () => {
      tlsServer = await listen(https.createServer(selfSignedCert(), testHandler));
      tlsServer.on('secureConnection', (s: { servername?: string | false }) =>
        sni.push(s.servername ?? false),
      );
      tlsBase = `https://127.0.0.1:${portOf(tlsServer)}`;
    });
    after(() => close(tlsServer));

    it('verifies certificates unless TLSSkipVerify', async () => {
      const strict = await new HttpCheck({ HTTP: `${tlsBase}/ok` }).run(5000);
      expect(strict.status).to.equal('critical');
      expect(strict.output).to.match(/self[- ]signed/i);
      const skip = await new HttpCheck({ HTTP: `${tlsBase}/ok`, TLSSkipVerify: true }).run(5000);
      expect(skip.status).to.equal('passing');
    });

    it('sends TLSServerName as SNI', async () => {
      sni.length = 0;
      const r = await new HttpCheck({
        HTTP: `${tlsBase}/ok`,
        TLSServerName: 'check.test',
        TLSSkipVerify: true,
      }).run(5000);
      expect(r.status).to.equal('passing');
      expect(sni).to.deep.equal(['check.test']);
    });
  });
});
