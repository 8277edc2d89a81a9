/**
 * The interception benchmark's helper inside its network namespace (the benchmark itself runs
 * in the host's namespace and cannot reach 127.0.0.1 in there). Started as
 * `ip netns exec <ns> [setpriv ...] node ns-helper.js <command> '<JSON>'`; prints
 * `INTERCEPTION-RESULT <JSON>` when done.
 *
 *   get            {url}                     GET; the status and body
 *   wait-http      {url, timeoutMs}          POSTs until one answers 200 (as whichever uid runs it)
 *   apply-timing   {runs, targets, vips}     times NftApplier.apply() of a generated plan (this
 *                                            namespace's `inet trellis`, removed afterwards)
 *   register-watch {origin, count, uid, ...} registers `count` api instances (node + api +
 *                                            api-sidecar-proxy) on the server, then polls the
 *                                            uid's nft map until every address is in it
 */
import { execFile } from 'node:child_process';
import { Pool, request } from 'undici';
import { NftApplier, applyText, listing } from '../../src/agent/nftables/nft.js';
import { wholeFile, type RedirectPlan } from '../../src/agent/nftables/ruleset.js';
import { describe } from '../lib/errors.js';
import { now, sleep } from '../lib/time.js';

import { RESULT_MARK } from './types.js';

export interface ApplyTimingJob {
  runs: number;
  targets: number;
  vips: number;
  /** The captured uid. */
  uid: number;
}

export interface ApplyTiming {
  targets: number;
  vips: number;
  /** wholeFile(plan) (what nft -f reads), bytes. */
  rulesetBytes: number;
  /** `nft list table inet trellis` after the apply, bytes. */
  listingBytes: number;
  /** Per run, ms: NftApplier.apply() (render + nft -f + listing). */
  applyMs: number[];
  /** Per run, ms: the parts, measured separately (render: wholeFile(), the text nft reads). */
  renderMs: number[];
  nftFileMs: number[];
  listMs: number[];
}

export interface RegisterWatchJob {
  /** http://127.0.0.1:PORT of the server. */
  origin: string;
  count: number;
  concurrency: number;
  /** The captured uid whose map is polled (out4_u<uid>). */
  uid: number;
  appPort: number;
  pollMs: number;
  timeoutMs: number;
}

export interface RegisterWatch {
  count: number;
  /** From the first registration to the answer of the last one, ms. */
  registerMs: number;
  /** From the answer of the last registration until the map held every address, ms. */
  convergeMs: number;
  /** Addresses of the registered instances found in the map at the end. */
  found: number;
  polls: number;
}

/** 10.77.x.y for instance i (1-based), never .0 or .255. */
export function instanceAddress(i: number): string {
  return `10.77.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

export function syntheticPlan(job: ApplyTimingJob): RedirectPlan {
  const targets: RedirectPlan['outbound'][number]['targets'] = [];
  for (let i = 1; i <= job.targets; i++)
    targets.push({ address: instanceAddress(i), port: 8080, toPort: 15001 + (i % 50) });
  const vips: NonNullable<RedirectPlan['outbound'][number]['vips']> = [];
  for (let i = 1; i <= job.vips; i++)
    vips.push({ address: `240.0.${Math.floor(i / 250)}.${(i % 250) + 1}`, toPort: 15001 + i });
  return {
    proxyUid: 0,
    outbound: [{ uid: job.uid, targets, ...(job.vips ? { vips } : {}) }],
    inbound: [{ port: 18081, toPort: 21000 }],
    exclude: { inboundPorts: [8500], outboundPorts: [], outboundCidrs: [], uids: [] },
  };
}

async function applyTiming(job: ApplyTimingJob): Promise<ApplyTiming> {
  const plan = syntheticPlan(job);
  const applier = new NftApplier();
  const out: ApplyTiming = {
    targets: job.targets,
    vips: job.vips,
    rulesetBytes: Buffer.byteLength(wholeFile(plan)),
    listingBytes: 0,
    applyMs: [],
    renderMs: [],
    nftFileMs: [],
    listMs: [],
  };
  try {
    // One unmeasured apply: the first one also loads the nat modules of this namespace.
    await applier.apply(plan);
    for (let r = 0; r < job.runs; r++) {
      let t = now();
      const res = await applier.apply(plan);
      out.applyMs.push(now() - t);
      out.listingBytes = Buffer.byteLength(res.listing);
      t = now();
      const text = wholeFile(plan);
      out.renderMs.push(now() - t);
      t = now();
      await applyText(text);
      out.nftFileMs.push(now() - t);
      t = now();
      await listing();
      out.listMs.push(now() - t);
    }
  } finally {
    await applier.remove();
  }
  return out;
}

async function put(pool: Pool, path: string, body: unknown): Promise<void> {
  const res = await pool.request({
    method: 'PUT',
    path,
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`PUT ${path}: HTTP ${res.statusCode} ${text}`);
}

function nft(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('nft', args, { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    ),
  );
}

/** How many of the instances' address . port are in the map now. */
async function inMap(uid: number, appPort: number, count: number): Promise<number> {
  let text: string;
  try {
    text = await nft(['list', 'map', 'inet', 'trellis', `out4_u${uid}`]);
  } catch {
    return 0;
  }
  const wanted = new Set<string>();
  for (let i = 1; i <= count; i++) wanted.add(instanceAddress(i));
  let n = 0;
  for (const m of text.matchAll(/(10\.77\.\d+\.\d+) \. (\d+) :/g))
    if (Number(m[2]) === appPort && wanted.delete(m[1]!)) n++;
  return n;
}

async function registerWatch(job: RegisterWatchJob): Promise<RegisterWatch> {
  const pool = new Pool(job.origin, { connections: job.concurrency, pipelining: 1 });
  const bodies: unknown[][] = [];
  for (let i = 1; i <= job.count; i++) {
    const node = { Node: `api-node-${i}`, Address: instanceAddress(i) };
    bodies.push([
      { ...node, Service: { ID: 'api', Service: 'api', Port: job.appPort } },
      {
        ...node,
        Service: {
          ID: 'api-sidecar-proxy',
          Service: 'api-sidecar-proxy',
          Kind: 'connect-proxy',
          Port: 21000,
          Proxy: {
            DestinationServiceName: 'api',
            DestinationServiceID: 'api',
            LocalServicePort: job.appPort,
          },
        },
      },
    ]);
  }
  const t0 = now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const pair = bodies[next++]!;
      for (const b of pair) await put(pool, '/v1/catalog/register', b);
    }
  };
  try {
    await Promise.all(Array.from({ length: job.concurrency }, () => worker()));
  } finally {
    await pool.close();
  }
  const tLast = now();
  let found = 0;
  let polls = 0;
  while (now() - tLast < job.timeoutMs) {
    polls++;
    found = await inMap(job.uid, job.appPort, job.count);
    if (found === job.count) break;
    await sleep(job.pollMs);
  }
  return {
    count: job.count,
    registerMs: tLast - t0,
    convergeMs: found === job.count ? now() - tLast : Number.NaN,
    found,
    polls,
  };
}

async function waitHttp(job: { url: string; timeoutMs: number }): Promise<{ ms: number }> {
  const t0 = now();
  let last = '';
  while (now() - t0 < job.timeoutMs) {
    try {
      const r = await request(job.url, { method: 'POST', body: 'x', headersTimeout: 2000 });
      await r.body.text();
      if (r.statusCode === 200) return { ms: now() - t0 };
      last = `HTTP ${r.statusCode}`;
    } catch (err) {
      last = describe(err);
    }
    await sleep(200);
  }
  throw new Error(`${job.url}: no 200 within ${job.timeoutMs} ms (last: ${last})`);
}

async function get(job: { url: string }): Promise<{ status: number; body: string }> {
  const r = await request(job.url);
  return { status: r.statusCode, body: await r.body.text() };
}

async function main(command: string, job: unknown): Promise<unknown> {
  switch (command) {
    case 'get':
      return get(job as { url: string });
    case 'wait-http':
      return waitHttp(job as { url: string; timeoutMs: number });
    case 'apply-timing':
      return applyTiming(job as ApplyTimingJob);
    case 'register-watch':
      return registerWatch(job as RegisterWatchJob);
    default:
      throw new Error(`unknown command ${command}`);
  }
}

const [command, arg] = process.argv.slice(2);
if (command && arg) {
  main(command, JSON.parse(arg)).then(
    (r) => process.stdout.write(`${RESULT_MARK} ${JSON.stringify(r)}\n`),
    (err: unknown) => {
      process.stderr.write(
        `ns-helper ${command}: ${err instanceof Error ? err.stack : String(err)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
