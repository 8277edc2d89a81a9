/**
 * Child process for h1-long-bodies.test.ts and h2-long-bodies.test.ts: a Trellis pair in its
 * own process, so the test can measure the pair's memory (RSS) apart from its own. web's
 * outbound listener forwards over mTLS to api's public listener, which forwards to the app on
 * the port given as argv[2]; argv[3] is the protocol of both (`http`, the default, or `http2`).
 * Prints one JSON line {"port": <web's outbound port for api>} once ready; stops on SIGTERM
 * or when stdin closes.
 */
import { systemClock } from '../../../src/core/index.js';
import { ServiceProxy, type ProxyPlan } from '../../../src/proxy/index.js';
import { spiffeUri, testCa } from '../../helpers/mesh-ca.js';
import { freePort } from '../../helpers/net.js';

const HOST = '127.0.0.1';
const appPort = Number(process.argv[2]);
const protocol = process.argv[3] === 'http2' ? 'http2' : 'http';
const ca = testCa();

const planFor = (service: string): ProxyPlan => ({
  version: 1,
  service,
  identity: spiffeUri(service),
  tls: { ...ca.leaf(service), roots: [ca.rootPem], notAfter: Date.now() + 3_600_000 },
  intentions: [{ ID: 'web => api', SourceName: 'web', DestinationName: 'api', Action: 'allow' }],
  defaultAllow: false,
  inbound: {
    bindAddress: HOST,
    bindPort: 0,
    localApp: { address: HOST, port: appPort },
    protocol,
  },
  upstreams: [],
});

async function main(): Promise<void> {
  const opts = { clock: systemClock, log: { info() {}, warn() {} }, accessLog: false as const };
  const api = new ServiceProxy(opts);
  await api.setPlan(planFor('api'));
  const web = new ServiceProxy(opts);
  await web.setPlan({
    ...planFor('web'),
    upstreams: [
      {
        destination: 'api',
        bindAddress: HOST,
        bindPort: await freePort(),
        identity: spiffeUri('api'),
        endpoints: [{ address: HOST, port: api.inboundPort()!, node: 'n1' }],
        protocol,
        balancer: 'round_robin',
      },
    ],
  });
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await web.stop();
    await api.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.stdin.once('end', () => void stop());
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ port: web.upstreamPort('api') })}\n`);
}

void main();
