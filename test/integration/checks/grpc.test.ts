import { expect } from 'chai';
import http2 from 'node:http2';
import { GrpcCheck } from '../../../src/agent/checks/index.js';
import { close, closedPort, listen, portOf, selfSignedCert } from './helpers.js';

/**
 * A hand-written grpc.health.v1.Health/Check: "" and "web" are SERVING, "db" NOT_SERVING,
 * "hang" never answers, anything else NOT_FOUND (grpc-status 5) as a trailers-only response.
 */
function healthHandler(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  if (headers[':path'] !== '/grpc.health.v1.Health/Check') {
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' },
      {
        endStream: true,
      },
    );
    return;
  }
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => {
    const body = Buffer.concat(chunks);
    const length = body.readUInt32BE(1);
    const msg = body.subarray(5, 5 + length);
    // field 1, wire type 2: 0x0a, length, bytes (names here are short: one-byte lengths)
    const service =
      msg.length > 0 && msg[0] === 0x0a ? msg.subarray(2, 2 + msg[1]!).toString() : '';
    const statuses: Record<string, number> = { '': 1, web: 1, db: 2 };
    if (service === 'hang') return;
    const status = statuses[service];
    if (status === undefined) {
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '5',
          'grpc-message': 'unknown service',
        },
        { endStream: true },
      );
      return;
    }
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc' },
      { waitForTrailers: true },
    );
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, status]));
  });
}

describe('checks/grpc (real http2 server)', function () {
  this.timeout(20_000);
  let server: http2.Http2Server;
  let addr: string;
  const seen: http2.IncomingHttpHeaders[] = [];

  before(async () => {
    server = await listen(http2.createServer());
    server.on('stream', (stream, headers) => {
      seen.push(headers);
      healthHandler(stream, headers);
    });
    addr = `127.0.0.1:${portOf(server)}`;
  });
  after(() => close(server));

  it('SERVING is passing, for the server and for a named service', async () => {
    seen.length = 0;
    expect(await new GrpcCheck({ GRPC: addr }).run(5000)).to.deep.equal({
      status: 'passing',
      output: `gRPC check ${addr}: success`,
    });
    expect((await new GrpcCheck({ GRPC: `${addr}/web` }).run(5000)).status).to.equal('passing');
    expect(seen[0]).to.include({
      ':method': 'POST',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
  });

  it('NOT_SERVING is critical', async () => {
    expect(await new GrpcCheck({ GRPC: `${addr}/db` }).run(5000)).to.deep.equal({
      status: 'critical',
      output: `gRPC check ${addr}/db: failed: service is NOT_SERVING`,
    });
  });

  it('a non-zero grpc-status is critical with its message', async () => {
    expect(await new GrpcCheck({ GRPC: `${addr}/other` }).run(5000)).to.deep.equal({
      status: 'critical',
      output: `gRPC check ${addr}/other: failed: grpc-status 5 (NOT_FOUND): unknown service`,
    });
  });

  it('times out as critical', async () => {
    expect(await new GrpcCheck({ GRPC: `${addr}/hang` }).run(300)).to.deep.equal({
      status: 'critical',
      output: `gRPC check ${addr}/hang: failed: timed out after 300ms`,
    });
  });

  it('a closed port is critical', async () => {
    const target = `127.0.0.1:${await closedPort()}`;
    const r = await new GrpcCheck({ GRPC: target }).run(5000);
    expect(r.status).to.equal('critical');
    expect(r.output).to.match(/ECONNREFUSED/);
  });

  describe('GRPCUseTLS', () => {
    let tls: http2.Http2SecureServer;
    let tlsAddr: string;

    before(async () => {
      tls = await listen(http2.createSecureServer(selfSignedCert()));
      tls.on('stream', healthHandler);
      tlsAddr = `127.0.0.1:${portOf(tls)}`;
    });
    after(() => close(tls));

    it('speaks TLS, verifying unless TLSSkipVerify', async () => {
      const skip = await new GrpcCheck({
        GRPC: tlsAddr,
        GRPCUseTLS: true,
        TLSSkipVerify: true,
      }).run(5000);
      expect(skip.status).to.equal('passing');
      const strict = await new GrpcCheck({ GRPC: tlsAddr, GRPCUseTLS: true }).run(5000);
      expect(strict.status).to.equal('critical');
      expect(strict.output).to.match(/self[- ]signed/i);
    });
  });
});
