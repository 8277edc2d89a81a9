/**
 * Leaf certificate issuance. The anchor is Consul's default CSRMaxPerSecond of 50 leaves/s for
 * the whole cluster; Trellis signs with native EC P-256 and aims for thousands per core.
 *
 *   1. in this process, one thread: the CA's work per leaf (check the CSR's proof of
 *      possession and shape, build and sign the certificate), on CSRs made beforehand
 *   2. the agent's side per leaf: a new P-256 key and its CSR
 *   3. over HTTP against a real server: PUT /v1/internal/trellis/connect/sign (token and node
 *      checks, catalog lookup, signing, JSON) at BENCH_LEAF_CONCURRENCY, with the per-agent rate
 *      limit off; leaves/s and the server's CPU, so leaves per second per core = rate / CPU share
 *
 * BENCH_LEAF_COUNT (3000)        leaves per measurement
 * BENCH_LEAF_CONCURRENCY (16)    requests in flight for the HTTP measurement
 */
import { generateKeyPairSync } from 'node:crypto';
import type { Benchmark } from './lib/benchmark.js';
import { envInt } from './lib/config.js';
import { measureCpu, type CpuShare } from './lib/cpu.js';
import { int, ms, table } from './lib/format.js';
import { makePool, putJson, send } from './lib/http.js';
import { startServer } from './lib/server.js';
import { summarize, type LatencySummary } from './lib/stats.js';
import { now } from './lib/time.js';
import { createCsr, generateRoot, loadPrivateKey, signLeaf } from '../src/pki/index.js';

export interface LeafSigningResult {
  count: number;
  concurrency: number;
  /** CA work per leaf, one thread. */
  signPerSecond: number;
  /** Agent work per leaf (key + CSR), one thread. */
  csrPerSecond: number;
  http: {
    perSecond: number;
    errors: number;
    errorSample: string;
    latency: LatencySummary;
    cpu: CpuShare;
  };
}

const URI = (td: string): string => `spiffe://${td}/ns/default/dc/dc1/svc/web`;

export const leafSigning: Benchmark<LeafSigningResult> = {
  name: 'leaf-signing',
  title: 'leaf certificates issued per second',
  async run(log) {
    const count = envInt('BENCH_LEAF_COUNT', 3000);
    const concurrency = envInt('BENCH_LEAF_CONCURRENCY', 16);
    const td = '11111111-2222-3333-4444-555555555555.consul';
    const root = generateRoot({
      clusterId: '11111111-2222-3333-4444-555555555555',
      trustDomain: td,
      ttlMs: 3600_000 * 24,
      now: new Date(),
    });
    const rootKey = loadPrivateKey(root.keyPem);

    log(`leaf-signing: making ${int(count)} keys and CSRs`);
    let t0 = now();
    const csrs: string[] = [];
    for (let i = 0; i < count; i++) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      csrs.push(createCsr(privateKey, URI(td)));
    }
    const csrPerSecond = count / ((now() - t0) / 1000);

    log('leaf-signing: signing in process');
    t0 = now();
    for (const csrPem of csrs) {
      signLeaf({
        csrPem,
        expectedUri: URI(td),
        signerKey: rootKey,
        signerCertPem: root.certPem,
        ttlMs: 72 * 3600_000,
        now: new Date(),
      });
    }
    const signPerSecond = count / ((now() - t0) / 1000);

    log(`leaf-signing: over HTTP at ${concurrency} in flight`);
    const server = await startServer({ name: 'leaf' });
    const pool = makePool(server.origin, { connections: concurrency });
    try {
      await putJson(pool, '/v1/connect/ca/configuration', { Config: { CSRMaxPerSecond: 0 } });
      await putJson(pool, '/v1/catalog/register', {
        Node: 'bench-node',
        Address: '198.18.0.7',
        Service: { Service: 'web', Port: 80 },
      });
      const rootsReply = await send(pool, 'GET', '/v1/connect/ca/roots');
      const serverTd = (JSON.parse(rootsReply.body) as { TrustDomain: string }).TrustDomain;
      const serverCsrs = csrs.map((_, i) => {
        // The server's trust domain differs from the in-process one: new CSRs for it.
        if (i >= count) return '';
        const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
        return createCsr(privateKey, URI(serverTd));
      });
      const latencies: number[] = [];
      let errors = 0;
      let errorSample = '';
      let next = 0;
      const started = now();
      const { cpu } = await measureCpu(server.cpuMs, async () => {
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < count) {
              const csr = serverCsrs[next++]!;
              const t = now();
              const r = await pool.request({
                method: 'PUT',
                path: '/v1/internal/trellis/connect/sign',
                headers: {
                  'content-type': 'application/json',
                  // The calling agent's credential (ACLs allow everything in this run).
                  'x-trellis-agent-token': 'anonymous',
                },
                body: JSON.stringify({ Service: 'web', Node: 'bench-node', CSR: csr }),
              });
              const text = await r.body.text();
              latencies.push(now() - t);
              if (r.statusCode !== 200) {
                errors++;
                if (errorSample === '') errorSample = `${r.statusCode} ${text.slice(0, 200)}`;
              }
            }
          }),
        );
      });
      const wall = now() - started;
      return {
        count,
        concurrency,
        signPerSecond,
        csrPerSecond,
        http: {
          perSecond: count / (wall / 1000),
          errors,
          errorSample,
          latency: summarize(latencies),
          cpu,
        },
      };
    } finally {
      await pool.close();
      await server.stop();
    }
  },
  render(r) {
    const perCore = r.http.perSecond / Math.max(0.01, r.http.cpu.server / 100);
    const t = table(
      [
        { title: 'What' },
        { title: 'Leaves', align: 'right' },
        { title: 'Per second', align: 'right' },
        { title: 'p50 ms', align: 'right' },
        { title: 'p99 ms', align: 'right' },
        { title: 'Server CPU', align: 'right' },
      ],
      [
        [
          'CA work per leaf (check CSR, build, sign), 1 thread',
          int(r.count),
          int(r.signPerSecond),
          '',
          '',
          '',
        ],
        [
          'Agent work per leaf (P-256 key + CSR), 1 thread',
          int(r.count),
          int(r.csrPerSecond),
          '',
          '',
          '',
        ],
        [
          `HTTP sign endpoint, ${r.concurrency} in flight (${int(r.http.errors)} errors)`,
          int(r.count),
          int(r.http.perSecond),
          ms(r.http.latency.p50),
          ms(r.http.latency.p99),
          `${Math.round(r.http.cpu.server)}%`,
        ],
      ],
    );
    return (
      `${t}\n` +
      (r.http.errorSample ? `First error: ${r.http.errorSample}\n\n` : '') +
      `Through HTTP that is about ${int(perCore)} leaves per second per server core ` +
      `(rate / server CPU share). Consul's default limit is 50 leaves/s (CSRMaxPerSecond) for ` +
      `the whole cluster. Trellis limits signing per agent instead (CSRMaxPerSecond, default ` +
      `50 per agent; off for this measurement), so one busy host cannot starve the others.\n`
    );
  },
};
