/**
 * Issue 14's quorum test: two real `trellis server --store etcd` processes over a real
 * three-member etcd cluster, and one real `trellis agent` that knows both servers and runs the
 * sidecars of `web` (an HTTP upstream to `api`) and `api` (in front of an app this test runs).
 *
 *   1. The mesh is up and `web -> api` is allowed: requests through web's upstream reach the app.
 *   2. Continuous load through the pair (one request every ~20 ms); two of the three etcd members
 *      are stopped. While quorum is lost (well after both servers noticed: they name no leader),
 *      a KV write and a catalog registration answer 500 naming etcd and quorum (no stack trace);
 *      an agent registration is kept by the agent, which says why it could not sync; reads still
 *      answer with X-Consul-LastContact; and not one proxied request fails.
 *   3. The members come back: writes succeed again, a leader is named, the agent's registration
 *      reaches the catalog, and the mesh follows new state (an intention turned to deny refuses
 *      requests with 403; back to allow, they pass again).
 *
 * The outage's length, the requests carried during it and how long after quorum returned the
 * first write succeeded are printed; nothing is asserted about time (the machine is shared).
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { etcdClusterOrSkip, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { etcdServerArgs } from '../helpers/etcd-servers.js';
import { App, failed, load, sleep } from '../helpers/http-load.js';
import { freePort } from '../helpers/net.js';
import {
  agentArgs,
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

/** How long quorum stays lost once both servers have noticed. */
const OUTAGE_MS = 10_000;

async function send(base: string, path: string, method = 'GET', body?: unknown): Promise<Response> {
  const text =
    body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return fetch(`${base}${path}`, { method, body: text });
}

/** One request through web's upstream listener: its status (0 when it could not connect). */
async function through(port: number): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/`)).status;
  } catch {
    return 0;
  }
}

/** A refused write's answer: a 500 whose one-line message names etcd and its quorum. */
async function expectQuorumError(r: Response, what: string): Promise<string> {
  const text = await r.text();
  expect(r.status, `${what}: ${text}`).to.equal(500);
  expect(text, what).to.match(/etcd/);
  expect(text, what).to.match(/quorum/);
  expect(text, `${what}: no stack trace`).not.to.match(/\n\s+at /);
  return text;
}

describe('etcd quorum lost: writes refused clearly, proxied traffic flows, everything resumes', function () {
  this.timeout(180_000);
  const dirs = tempDirs();
  const app = new App('api-app');
  let etcd: EtcdCluster | undefined;
  const servers: TrellisProcess[] = [];
  let agent: TrellisProcess | undefined;
  let upstreamPort = 0;
  /** The servers' HTTP API bases. */
  let bases: string[] = [];
  /** Members stopped by the test and not started again yet. */
  const stopped = new Set<number>();

  const setIntention = async (action: 'allow' | 'deny'): Promise<void> => {
    const r = await send(
      bases[0]!,
      '/v1/connect/intentions/exact?source=web&destination=api',
      'PUT',
      {
        Action: action,
      },
    );
    expect(r.status, await r.text()).to.equal(200);
  };

  before(async function () {
    etcd = await etcdClusterOrSkip(this, 3);
    const args = etcdServerArgs(etcd, dirs, 'q');
    // The first server creates the CA (its key goes to etcd, encrypted); the second uses it.
    for (const name of ['q-srv-a', 'q-srv-b'])
      servers.push(await startServerProcess(dirs.make(name), name, args, { timeoutMs: 30_000 }));
    bases = servers.map((s) => `http://${s.address}`);
    const defaults = await send(bases[1]!, '/v1/config', 'PUT', {
      Kind: 'service-defaults',
      Name: 'api',
      Protocol: 'http',
    });
    expect(defaults.status, await defaults.text()).to.equal(200);
    await setIntention('allow');

    const appPort = await app.start();
    upstreamPort = await freePort();
    const conf = dirs.make('q-agent-conf');
    writeFileSync(
      join(conf, 'api.hcl'),
      `service {\n  name = "api"\n  port = ${appPort}\n  connect { sidecar_service {\n    address = "127.0.0.1"\n    port = ${await freePort()}\n  } }\n}\n`,
    );
    writeFileSync(
      join(conf, 'web.hcl'),
      `service {\n  name = "web"\n  port = 1\n  connect { sidecar_service {\n    address = "127.0.0.1"\n    port = ${await freePort()}\n    proxy { upstreams = [{ destination_name = "api", local_bind_port = ${upstreamPort} }] }\n  } }\n}\n`,
    );
    // The agent knows both servers (it talks to the first while it answers).
    agent = await startTrellis(
      [
        ...agentArgs(servers[0]!.address, 'q-host', dirs.make('q-agent'), conf),
        '--server',
        servers[1]!.address,
      ],
      { timeoutMs: 30_000 },
    );
  });

  after(async () => {
    await agent?.stop();
    // Whatever the last test did not stop (it failed, or a server hung): SIGKILL by PID.
    for (const s of servers) await s.kill9();
    await etcd?.destroy();
    if (app.server) await app.kill();
    dirs.removeAll();
  });

  it('the mesh is up: requests through web to api reach the app', async () => {
    await eventually(async () => (await through(upstreamPort)) === 200, 60_000, 200);
    const r = await fetch(`http://127.0.0.1:${upstreamPort}/`);
    expect(await r.text()).to.equal('api-app 0');
  });

  it('without quorum: writes answer 500 naming etcd, reads answer, and no proxied request fails', async () => {
    const cluster = etcd!;
    const [a, b] = bases as [string, string];
    expect((await send(a, '/v1/kv/quorum/key', 'PUT', 'before')).status).to.equal(200);
    await eventually(async () => (await send(b, '/v1/kv/quorum/key?raw')).status === 200);

    const traffic = load(upstreamPort, 1, 20);
    let lostAt = 0;
    let foundAt = 0;
    try {
      await sleep(1000);
      lostAt = Date.now();
      for (const i of [1, 2]) {
        await cluster.stop(i);
        stopped.add(i);
      }
      // Both servers have noticed: neither names a leader any more.
      await eventually(
        async () => {
          const answers = await Promise.all(
            bases.map(async (s) => (await send(s, '/v1/status/leader')).json()),
          );
          return answers.every((x) => x === '');
        },
        30_000,
        200,
      );
      const noticedMs = Date.now() - lostAt;

      // Writes through either server are refused, with the cause. An agent registration is kept
      // by the agent (as Consul's agent does: it answers once it tried to sync) and stays out
      // of the catalog until quorum returns.
      const agentBase = `http://${agent!.address}`;
      const writesSent = Date.now();
      let refusedMs = 0;
      const [kv, reg, agentReg] = await Promise.all([
        send(a, '/v1/kv/quorum/key', 'PUT', 'during').then((r) => {
          refusedMs = Date.now() - writesSent;
          return r;
        }),
        send(b, '/v1/catalog/register', 'PUT', {
          Node: 'q-outage-node',
          Address: '127.0.0.9',
          Service: { ID: 'during-1', Service: 'during', Port: 9000 },
        }),
        send(agentBase, '/v1/agent/service/register', 'PUT', {
          Name: 'late',
          ID: 'late-1',
          Port: 9001,
        }),
      ]);
      const kvError = await expectQuorumError(kv, 'KV put');
      await expectQuorumError(reg, 'catalog register');
      expect(agentReg.status, await agentReg.text()).to.equal(200);

      // The agent's answer does not wait for a refused sync to finish; its stats say why.
      const syncError = await eventually(
        async () => {
          const self = (await (await send(agentBase, '/v1/agent/self')).json()) as {
            Stats: { trellis: { sync_error: string; synced: string } };
          };
          expect(self.Stats.trellis.synced).to.equal('false');
          return self.Stats.trellis.sync_error;
        },
        30_000,
        200,
      );
      expect(syncError).to.match(/etcd/);
      expect(syncError).to.match(/quorum/);
      expect(syncError).not.to.match(/\n\s+at /);

      // Reads are still served, from the state each server holds, and say how old it is.
      for (const s of bases) {
        const r = await send(s, '/v1/kv/quorum/key?raw');
        expect(r.status).to.equal(200);
        expect(await r.text()).to.equal('before');
        expect(r.headers.get('x-consul-lastcontact'), 'X-Consul-LastContact').to.match(/^\d+$/);
        const late = (await (await send(s, '/v1/catalog/service/late')).json()) as unknown[];
        expect(late).to.deep.equal([]);
      }

      // Stay without quorum a good while after the servers noticed, load still running.
      const spent = Date.now() - lostAt - noticedMs;
      await sleep(Math.max(0, OUTAGE_MS - spent));
      foundAt = Date.now();
      const carried = traffic.outcomes.filter((o) => o.at >= lostAt && o.ended <= foundAt);
      console.log(
        `      quorum lost for ${foundAt - lostAt} ms (servers named no leader after ${noticedMs} ms); ` +
          `${carried.length} requests carried through web -> api meanwhile, ` +
          `${carried.filter(failed).length} failed`,
      );
      console.log(
        `      a KV write without quorum answered after ${refusedMs} ms: ${kvError.slice(0, 200)}`,
      );
      expect(carried.length).to.be.above(0);
    } finally {
      await traffic.end();
    }
    // Nothing failed: before, during or up to the end of the outage.
    const bad = traffic.outcomes.filter(failed);
    expect(
      bad.map((o) => `${o.method} ${o.status} ${o.reason || o.error} at +${o.at - lostAt}ms`),
    ).to.deep.equal([]);
  });

  it('with quorum back: writes succeed, a leader is named, the agent syncs, and the mesh follows new intentions', async () => {
    const cluster = etcd!;
    const [a, b] = bases as [string, string];
    const backAt = Date.now();
    for (const i of [...stopped]) {
      await cluster.restart(i);
      stopped.delete(i);
    }
    // The first KV write accepted again.
    await eventually(
      async () => {
        const r = await send(a, '/v1/kv/quorum/key', 'PUT', 'after');
        return r.status === 200 && (await r.text()) === 'true';
      },
      60_000,
      100,
    );
    const firstWriteMs = Date.now() - backAt;
    const reg = await send(b, '/v1/catalog/register', 'PUT', {
      Node: 'q-after-node',
      Address: '127.0.0.9',
      Service: { ID: 'after-1', Service: 'after', Port: 9000 },
    });
    expect(reg.status, await reg.text()).to.equal(200);
    for (const s of bases) {
      await eventually(
        async () => (await (await send(s, '/v1/kv/quorum/key?raw')).text()) === 'after',
      );
      const rows = (await (await send(s, '/v1/catalog/service/after')).json()) as unknown[];
      expect(rows).to.have.length(1);
    }
    // Both servers name the same leader again.
    const leader = await eventually(
      async () => {
        const answers = (await Promise.all(
          bases.map(async (s) => (await send(s, '/v1/status/leader')).json()),
        )) as string[];
        return answers[0] && answers.every((x) => x === answers[0]) ? answers[0] : undefined;
      },
      30_000,
      200,
    );
    // The registration the agent kept during the outage reaches the catalog.
    await eventually(
      async () => {
        const rows = (await (await send(a, '/v1/catalog/service/late')).json()) as {
          Node: string;
        }[];
        return rows.length === 1 && rows[0]!.Node === 'q-host';
      },
      60_000,
      200,
    );
    console.log(
      `      quorum back: first write accepted ${firstWriteMs} ms after the members were started again; leader ${leader}`,
    );

    // The mesh follows new state: deny refuses with 403, allow lets requests through again.
    await setIntention('deny');
    await eventually(async () => (await through(upstreamPort)) === 403, 60_000, 200);
    await setIntention('allow');
    await eventually(async () => (await through(upstreamPort)) === 200, 60_000, 200);
  });

  it('after the outage the agent and both servers stop on SIGTERM', async () => {
    // A server that lost its etcd lease during the outage once kept a second lease alive
    // after close, and never exited.
    const exitsWithin = async (p: TrellisProcess, what: string): Promise<void> => {
      const stopped = p.stop().then(() => true);
      const limit = new Promise<false>((r) => setTimeout(() => r(false), 30_000).unref());
      expect(await Promise.race([stopped, limit]), `${what} exited on SIGTERM`).to.equal(true);
    };
    await exitsWithin(agent!, 'the agent');
    for (const [i, s] of servers.entries()) await exitsWithin(s, `server ${i}`);
  });
});
