/**
 * One reading per request over HTTP/2, on both listeners of a real pair of proxies: the
 * public (mTLS, ALPN h2) listener of `api`, and web's outbound listener for api (h2c prior
 * knowledge, as gRPC clients speak it). The app is a real HTTP/1.1 server that records every
 * request it gets; every row checks the answer and what the app received.
 *
 * Semantic rows use node's HTTP/2 client. Malformed fields (CR, LF, NUL in values, spaces or
 * upper case in names) are rows of raw frames, since node's client refuses to send them: what
 * is tested is what reaches the proxy from the wire, whatever nghttp2 catches first.
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import {
  connect as h2connect,
  type ClientHttp2Session,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { systemClock } from '../../../src/core/index.js';
import { ServiceProxy, type ProxyPlan } from '../../../src/proxy/index.js';
import { spiffeUri, testCa } from '../../helpers/mesh-ca.js';
import { freePort } from '../../helpers/net.js';

const HOST = '127.0.0.1';
const mesh = testCa();
const quiet = { info() {}, warn() {} };

// ---- raw frames --------------------------------------------------------------------------

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7 };
const F = { END_STREAM: 1, END_HEADERS: 4 };

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** An HPACK string (no Huffman), lengths < 127. */
const str = (s: string): Buffer =>
  Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]);
/** HPACK literal without indexing, new name. */
const literal = (name: string, value: string): Buffer =>
  Buffer.concat([Buffer.from([0x00]), str(name), str(value)]);

/** GET `path`, :scheme http or https, :authority api, then `extra` fields. */
function getBlock(tls: boolean, path: string, extra: [string, string][]): Buffer {
  return Buffer.concat([
    Buffer.from([0x82, tls ? 0x87 : 0x86]), // :method GET, :scheme
    Buffer.from([0x04]), // :path, literal value
    str(path),
    Buffer.from([0x01]), // :authority, literal value
    str('api'),
    ...extra.map(([n, v]) => literal(n, v)),
  ]);
}

/** HPACK literal with incremental indexing, new name: the field joins the dynamic table. */
const indexed = (name: string, value: string): Buffer =>
  Buffer.concat([Buffer.from([0x40]), str(name), str(value)]);

type Answer = 'reset' | 'goaway' | 'closed' | 'status 200' | 'status 400' | 'other status';

/**
 * Requests with the header blocks `blocks` (streams 1, 3, 5, ...) on one fresh connection;
 * the first thing the proxy did with each stream.
 */
function rawExchange(
  open: () => { sock: Socket; ready: string },
  blocks: Buffer[],
  tls: boolean,
): Promise<Answer[]> {
  return new Promise<Answer[]>((resolve) => {
    const { sock, ready } = open();
    const answers: (Answer | undefined)[] = blocks.map(() => undefined);
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (rest: Answer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(answers.map((a) => a ?? rest));
    };
    const answer = (stream: number, a: Answer): void => {
      const i = (stream - 1) / 2;
      if (!Number.isInteger(i) || i >= answers.length || answers[i] !== undefined) return;
      answers[i] = a;
      if (answers.every((x) => x !== undefined)) finish('closed');
    };
    const timer = setTimeout(() => finish('closed'), 10_000);
    sock.on('error', () => {});
    sock.once('close', () => finish('closed'));
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3]!;
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        const first = buf[9];
        buf = buf.subarray(9 + len);
        if (type === T.GOAWAY) return finish('goaway');
        if (type === T.RST_STREAM) answer(stream, 'reset');
        else if (type === T.HEADERS)
          // nghttp2 sends a static-table status as one indexed byte: 0x88 200, 0x8c 400.
          answer(
            stream,
            first === 0x88 ? 'status 200' : first === 0x8c ? 'status 400' : 'other status',
          );
      }
    });
    sock.once(ready, () => {
      if (tls) expect((sock as unknown as { alpnProtocol: string }).alpnProtocol).to.equal('h2');
      sock.write(
        Buffer.concat([
          PREFACE,
          frame(T.SETTINGS, 0, 0, Buffer.alloc(0)),
          ...blocks.map((b, i) => frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 2 * i + 1, b)),
        ]),
      );
    });
  });
}

// ---- the mesh ----------------------------------------------------------------------------

interface Seen {
  url: string;
  raw: string[];
}

type Via = 'inbound' | 'outbound';
const VIAS: Via[] = ['inbound', 'outbound'];

describe('proxy: one reading per request over HTTP/2 (both listeners)', function () {
  this.timeout(60_000);
  let app: Server;
  const seen: Seen[] = [];
  let api: ServiceProxy;
  let web: ServiceProxy;
  let upstreamPort = 0;
  const webLeaf = mesh.leaf('web');

  before(async () => {
    app = createServer((req, res) => {
      seen.push({ url: req.url ?? '', raw: req.rawHeaders });
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((r) => app.listen(0, HOST, () => r()));
    const opts = { clock: systemClock, log: quiet, accessLog: false as const };
    api = new ServiceProxy(opts);
    const planFor = (service: string, extra: Partial<ProxyPlan>): ProxyPlan => ({
      version: 1,
      service,
      identity: spiffeUri(service),
      tls: { ...mesh.leaf(service), roots: [mesh.rootPem], notAfter: Date.now() + 3_600_000 },
      intentions: [],
      defaultAllow: true,
      inbound: {
        bindAddress: HOST,
        bindPort: 0,
        localApp: { address: HOST, port: (app.address() as { port: number }).port },
        protocol: 'http',
      },
      upstreams: [],
      ...extra,
    });
    await api.setPlan(
      planFor('api', {
        intentions: [
          {
            ID: 'web => api',
            SourceName: 'web',
            DestinationName: 'api',
            Permissions: [
              { Action: 'deny', HTTP: { PathPrefix: '/admin' } },
              { Action: 'deny', HTTP: { Header: [{ Name: 'x-check', Exact: 'bad' }] } },
              { Action: 'deny', HTTP: { Header: [{ Name: ':authority', Exact: 'secret.svc' }] } },
            ],
          },
        ],
      }),
    );
    upstreamPort = await freePort();
    web = new ServiceProxy(opts);
    await web.setPlan({
      ...planFor('web', {}),
      tls: { ...webLeaf, roots: [mesh.rootPem], notAfter: Date.now() + 3_600_000 },
      upstreams: [
        {
          destination: 'api',
          bindAddress: HOST,
          bindPort: upstreamPort,
          identity: spiffeUri('api'),
          endpoints: [{ address: HOST, port: api.inboundPort()!, node: 'n1' }],
          protocol: 'http',
          balancer: 'round_robin',
        },
      ],
    });
  });

  after(async () => {
    await web?.stop();
    await api?.stop();
    app?.close();
  });

  const tlsOpen = (): { sock: Socket; ready: string } => ({
    sock: tlsConnect({
      host: HOST,
      port: api.inboundPort()!,
      cert: webLeaf.certChain,
      key: webLeaf.key,
      ca: [mesh.rootPem],
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
    }),
    ready: 'secureConnect',
  });
  const plainOpen = (): { sock: Socket; ready: string } => ({
    sock: netConnect({ host: HOST, port: upstreamPort }),
    ready: 'connect',
  });

  function session(via: Via): ClientHttp2Session {
    if (via === 'outbound') return h2connect(`http://${HOST}:${upstreamPort}`);
    return h2connect(`https://${HOST}:${api.inboundPort()!}`, {
      cert: webLeaf.certChain,
      key: webLeaf.key,
      ca: [mesh.rootPem],
      checkServerIdentity: () => undefined,
    });
  }

  /** One request with node's client: the status (0: the stream was reset). */
  async function send(via: Via, headers: OutgoingHttpHeaders): Promise<number> {
    const s = session(via);
    s.on('error', () => {});
    try {
      return await new Promise<number>((resolve) => {
        const r = s.request({ ':path': '/public/x', ...headers }, { endStream: true });
        r.on('response', (h) => resolve(Number(h[':status'])));
        r.on('error', () => resolve(0));
        r.on('close', () => resolve(0));
        r.resume();
      });
    } finally {
      s.close();
    }
  }

  const appSince = (mark: number): Seen[] => seen.slice(mark);
  const valuesOf = (s: Seen, name: string): string[] =>
    s.raw.filter((_, i) => i % 2 === 1 && s.raw[i - 1]!.toLowerCase() === name);

  interface Row {
    name: string;
    headers: OutgoingHttpHeaders;
    status: number;
    /** What the app must have received; default nothing. */
    app?: (s: Seen[]) => void;
  }

  const rows: Row[] = [
    {
      name: ':authority secret.svc with host other.svc (RFC 9113 8.3.1): 400',
      headers: { ':authority': 'secret.svc', host: 'other.svc' },
      status: 400,
    },
    {
      name: ':authority other.svc with host secret.svc: 400',
      headers: { ':authority': 'other.svc', host: 'secret.svc' },
      status: 400,
    },
    ...['secret.svc', 'SECRET.svc', 'secret.svc.', 'secret.svc:80', 'Secret.SVC.:443'].map(
      (a): Row => ({
        name: `:authority ${a} is secret.svc: the deny applies`,
        headers: { ':authority': a },
        status: 403,
      }),
    ),
    {
      name: 'host equal to :authority in another spelling is one authority (the deny applies)',
      headers: { ':authority': 'secret.svc', host: 'SECRET.svc:80' },
      status: 403,
    },
    {
      name: ':authority in another spelling reaches the app canonical',
      headers: { ':authority': 'Other.SVC.:80' },
      status: 200,
      app: (s) => expect(s.map((x) => valuesOf(x, 'host'))).to.deep.equal([['other.svc']]),
    },
    {
      name: ':authority user@secret.svc: 400',
      headers: { ':authority': 'user@secret.svc' },
      status: 400,
    },
    {
      name: 'x-check good then bad (two fields): the deny on "bad" applies',
      headers: { 'x-check': ['good', 'bad'] },
      status: 403,
    },
    {
      name: 'x-check "good, bad" (one field): the deny on "bad" applies',
      headers: { 'x-check': 'good, bad' },
      status: 403,
    },
    {
      name: 'x-check good and fine reach the app as two lines',
      headers: { 'x-check': ['good', 'fine'] },
      status: 200,
      app: (s) => expect(s.map((x) => valuesOf(x, 'x-check'))).to.deep.equal([['good', 'fine']]),
    },
    {
      name: 'split cookie fields reach the HTTP/1.1 app as one line',
      headers: { cookie: ['a=1', 'b=2'] },
      status: 200,
      app: (s) => expect(s.map((x) => valuesOf(x, 'cookie'))).to.deep.equal([['a=1; b=2']]),
    },
    { name: 'x_check (underscore): 400', headers: { x_check: 'bad' }, status: 400 },
    ...['//admin', '///a/..//admin', '/%2e%2e/admin'].map((p): Row => ({
      name: `path ${p} is /admin: the deny applies`,
      headers: { ':path': p },
      status: 403,
    })),
    ...['/admin%00', '/public/%00', '/%2fadmin', '/admin#x'].map((p): Row => ({
      name: `path ${p}: 400`,
      headers: { ':path': p },
      status: 400,
    })),
    {
      name: 'path ///public//x reaches the app as /public/x',
      headers: { ':path': '///public//x' },
      status: 200,
      app: (s) => expect(s.map((x) => x.url)).to.deep.equal(['/public/x']),
    },
  ];

  for (const row of rows)
    for (const via of VIAS)
      it(`${row.name} [${via}]`, async () => {
        const mark = seen.length;
        const status = await send(via, row.headers);
        await new Promise((r) => setTimeout(r, 50));
        expect(status, 'status').to.equal(row.status);
        if (row.app) row.app(appSince(mark));
        else expect(appSince(mark), 'what the app saw').to.deep.equal([]);
      });

  /**
   * RFC 9113 8.2.1: each of these makes the request malformed. nghttp2 resets the stream itself
   * for upper-case names and connection-specific fields; the rest it would drop silently (the
   * field) and deliver the request, so the proxy's header screen reads the header block first
   * and resets the stream. Either way: RST_STREAM PROTOCOL_ERROR, nothing reaches the app.
   */
  const malformed: [string, [string, string][]][] = [
    ['CR in a value', [['x-check', 'a\rb']]],
    ['LF in a value', [['x-check', 'a\nb']]],
    ['CRLF and a smuggled header in a value', [['x-check', 'a\r\nx-admin: 1']]],
    ['NUL in a value', [['x-check', 'a\u0000b']]],
    ['a leading space in a value', [['x-check', ' a']]],
    ['a trailing space in a value', [['x-check', 'a ']]],
    ['a leading tab in a value', [['x-check', '\ta']]],
    ['a trailing tab in a value', [['x-check', 'a\t']]],
    ['a space in a name', [['x check', 'a']]],
    ['a colon inside a name', [['x:check', 'a']]],
    ['a quote in a name (not a token)', [['x"check', 'a']]],
    ['a slash in a name (not a token)', [['x/check', 'a']]],
    ['a DEL in a name', [['x\u007fcheck', 'a']]],
    ['a byte above 0x7f in a name', [['x\u00e9check', 'a']]],
    ['an empty name', [['', 'a']]],
    ['an upper-case name', [['X-Check', 'a']]],
    ['a pseudo-header name with a digit', [[':path2', '/x']]],
    ['a Connection header', [['connection', 'close']]],
    ['a TE other than trailers', [['te', 'gzip']]],
    [
      'a bad field after good ones',
      [
        ['x-a', '1'],
        ['x-b', '2'],
        ['x-check', 'ok\r'],
      ],
    ],
  ];

  describe('malformed header fields in raw frames: the stream is reset, nothing forwarded', () => {
    for (const via of VIAS) {
      const tls = via === 'inbound';
      const open = tls ? tlsOpen : plainOpen;
      it(`control: a well-formed raw request is answered 200 [${via}]`, async () => {
        const mark = seen.length;
        const answers = await rawExchange(open, [getBlock(tls, '/public/raw', [])], tls);
        expect(answers).to.deep.equal(['status 200']);
        expect(appSince(mark).map((s) => s.url)).to.deep.equal(['/public/raw']);
      });
      for (const [what, fields] of malformed)
        it(`${what}: reset [${via}]`, async () => {
          const mark = seen.length;
          const [answer] = await rawExchange(open, [getBlock(tls, '/public/m', fields)], tls);
          await new Promise((r) => setTimeout(r, 50));
          expect(answer, 'the answer').to.equal('reset');
          expect(appSince(mark), 'what the app saw').to.deep.equal([]);
        });

      it(`a good request after a refused one on the same connection is served: the HPACK tables stay in step [${via}]`, async () => {
        const mark = seen.length;
        // Stream 1 adds x-good, then a bad field, to the dynamic table (bad is newest, index
        // 62, x-good 63); stream 3 refers to both by index: refused again; stream 5 to x-good
        // only: served, with the value the table holds.
        const first = getBlock(tls, '/public/one', []);
        const withTable = Buffer.concat([
          first,
          indexed('x-good', 'yes'),
          indexed('x-check', 'a\r\nx-admin: 1'),
        ]);
        const badAgain = Buffer.concat([
          getBlock(tls, '/public/two', []),
          Buffer.from([0xbf, 0xbe]),
        ]);
        const goodAgain = Buffer.concat([getBlock(tls, '/public/three', []), Buffer.from([0xbf])]);
        const answers = await rawExchange(open, [withTable, badAgain, goodAgain], tls);
        await new Promise((r) => setTimeout(r, 50));
        expect(answers).to.deep.equal(['reset', 'reset', 'status 200']);
        const got = appSince(mark);
        expect(got.map((s) => s.url)).to.deep.equal(['/public/three']);
        expect(valuesOf(got[0]!, 'x-good')).to.deep.equal(['yes']);
        expect(valuesOf(got[0]!, 'x-check')).to.deep.equal([]);
      });
    }
  });
});
