/**
 * Agent failover: one `trellis agent` that knows the three etcd-backed servers (the first
 * through agentArgs, the others through more --server flags), and a client (src/client, all
 * three addresses) writing a KV key every 25 ms the whole time. Each round:
 *   1. find the server the agent is connected to (its sockets, bench/ha/sockets.ts), SIGKILL it;
 *   2. from the kill, register a new service through the agent's API (which answers once the
 *      catalog has it, or once it gave up on every server) over and over until one answered 200
 *      is also listed by every surviving server: that time is the agent's failover time;
 *   3. from the client's writes: the time to its first successful write after the kill, the
 *      longest time without one, and its failed writes;
 *   4. start the killed server again (same port, same data dir) and wait until it has caught up.
 * Requests to the agent and the visibility checks use a new connection each (node:http without
 * keep-alive), so the only server connections this process keeps are the client's, and those
 * tell which server the client was on at the kill.
 */
import { mkdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { Log } from '../lib/benchmark.js';
import { describe } from '../lib/errors.js';
import { now, sleep } from '../lib/time.js';
import { createClient, type TrellisClient } from '../../src/client/index.js';
import {
  agentArgs,
  hostPort,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../../test/helpers/trellis-process.js';
import type { HaServer } from './cluster.js';
import { clientWindow, type FailedWrite, type OkWrite } from './gaps.js';
import { trackChild, trackDir } from './leftovers.js';
import { connectionsByPort } from './sockets.js';

export interface FailoverRound {
  round: number;
  killed: string;
  /** How the killed server was chosen: the agent's only server connection, or kill order. */
  chosenBy: 'agent-sockets' | 'most-connections' | 'order';
  /** The agent's established connections to each server just before the kill ("none seen"). */
  agentWasOn: string;
  /** The same for the client's connections. */
  clientWasOn: string;
  /** Kill to a registration answered 200 and listed by every surviving server (NaN: never). */
  agentMs: number;
  /** The agent API's answer time for that registration, from when it was sent. */
  agentRegisterMs: number;
  agentAttempts: number;
  /** Kill to the answer of the client's first successful write sent after it. */
  clientFirstOkMs: number;
  /** The longest time without a successful client write, from the kill to the round's end. */
  clientLongestGapMs: number;
  clientErrors: number;
  clientErrorSamples: string[];
  /** Start of the restart to the killed server listing this round's service. */
  restartMs: number;
}

export interface FailoverResult {
  rounds: FailoverRound[];
  probeEveryMs: number;
}

const PROBE_EVERY_MS = 25;
const AGENT_START_MS = 30_000;
const ROUND_LIMIT_MS = 60_000;
const VISIBLE_WAIT_MS = 1_000;
/** The client keeps writing this long after the agent has failed over, so its gap is seen. */
const AFTER_MS = 2_000;

interface Reply {
  status: number;
  body: string;
}

/** One request on a new connection (no keep-alive), with a time limit. */
function once(
  url: string,
  method: 'GET' | 'PUT',
  body?: string,
  timeoutMs = 10_000,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function listedBy(server: HaServer, service: string): Promise<boolean> {
  try {
    const r = await once(`${server.origin}/v1/catalog/service/${service}`, 'GET');
    return r.status === 200 && (JSON.parse(r.body) as unknown[]).length > 0;
  } catch {
    return false;
  }
}

async function until(what: string, ok: () => Promise<boolean>, limitMs: number): Promise<void> {
  const end = now() + limitMs;
  while (!(await ok())) {
    if (now() > end) throw new Error(`${what} not within ${limitMs} ms`);
    await sleep(25);
  }
}

/** The client's writes: answer time and outcome of each, for the whole benchmark. */
class Prober {
  /** Successful writes: when each was sent and when its answer came. */
  readonly oks: OkWrite[] = [];
  readonly failures: FailedWrite[] = [];
  #stop = false;
  #done: Promise<void> | undefined;

  constructor(private readonly client: TrellisClient) {}

  start(): void {
    this.#done = (async () => {
      for (let i = 0; !this.#stop; i++) {
        const sent = now();
        try {
          await this.client.kv.put(`ha/failover/probe/${i % 64}`, String(i));
          this.oks.push({ sent, at: now() });
        } catch (err) {
          this.failures.push({ at: now(), why: describe(err) });
        }
        await sleep(Math.max(0, sent + PROBE_EVERY_MS - now()));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }
}

/** The servers `pid` holds established connections to, with how many. */
function serversConnected(
  pid: number,
  servers: readonly HaServer[],
  ports: readonly number[],
): { server: HaServer; n: number }[] {
  const counts = connectionsByPort(pid, ports);
  return servers
    .map((server, i) => ({ server, n: counts.get(ports[i]!) ?? 0 }))
    .filter((x) => x.n > 0);
}

function listConnections(on: readonly { server: HaServer; n: number }[]): string {
  return on.length ? on.map((x) => `${x.server.name} (${x.n})`).join(', ') : 'none seen';
}

export async function measureFailover(
  servers: readonly HaServer[],
  rounds: number,
  log: Log,
): Promise<FailoverResult> {
  const [a, ...others] = servers;
  if (!a || others.length < 2) throw new Error('failover needs three servers');
  const dirs = tempDirs();
  const ports = servers.map((s) => hostPort(s.address).port);
  let agent: TrellisProcess | undefined;
  const client = createClient({ addresses: servers.map((s) => s.address), timeoutMs: 5_000 });
  const prober = new Prober(client);
  try {
    const conf = trackDir(dirs.make('ha-agent-conf'));
    const data = trackDir(dirs.make('ha-agent-data'));
    mkdirSync(conf, { recursive: true });
    agent = await startTrellis(
      [
        ...agentArgs(a.address, 'ha-agent', data, conf),
        ...others.flatMap((s) => ['--server', s.address]),
      ],
      { timeoutMs: AGENT_START_MS },
    );
    trackChild(agent.proc);
    const agentApi = `http://${agent.address}`;
    const register = async (name: string, port: number): Promise<Reply> =>
      once(
        `${agentApi}/v1/agent/service/register`,
        'PUT',
        JSON.stringify({ ID: name, Name: name, Port: port }),
      );
    // The agent is joined and syncing before the first kill.
    const warm = await register('ha-fo-warm', 20000);
    if (warm.status !== 200) throw new Error(`agent register: HTTP ${warm.status} ${warm.body}`);
    await until(
      'the warm-up service on every server',
      async () => (await Promise.all(servers.map((s) => listedBy(s, 'ha-fo-warm')))).every(Boolean),
      30_000,
    );
    prober.start();
    await sleep(1_000);

    const out: FailoverRound[] = [];
    for (let r = 1; r <= rounds; r++) {
      const agentOn = serversConnected(agent.proc.pid!, servers, ports);
      const most = agentOn.reduce<(typeof agentOn)[number] | undefined>(
        (best, x) => (!best || x.n > best.n ? x : best),
        undefined,
      );
      const target = most?.server ?? servers[(r - 1) % servers.length]!;
      const agentWasOn = listConnections(agentOn);
      const clientWasOn = listConnections(serversConnected(process.pid, servers, ports));
      const chosenBy: FailoverRound['chosenBy'] =
        agentOn.length === 0
          ? 'order'
          : agentOn.length === 1
            ? 'agent-sockets'
            : 'most-connections';
      const survivors = servers.filter((s) => s !== target);
      log(
        `ha: failover round ${r}: SIGKILL ${target.name} (agent's connections: ${agentWasOn}; client's: ${clientWasOn})`,
      );
      const tKill = now();
      await target.kill();

      let agentMs = Number.NaN;
      let agentRegisterMs = Number.NaN;
      let attempts = 0;
      let lastService = '';
      while (now() - tKill < ROUND_LIMIT_MS) {
        attempts++;
        const name = `ha-fo-${r}-${attempts}`;
        const sent = now();
        let reply: Reply;
        try {
          reply = await register(name, 20000 + attempts);
        } catch {
          await sleep(PROBE_EVERY_MS);
          continue;
        }
        const answered = now();
        if (reply.status !== 200) {
          await sleep(PROBE_EVERY_MS);
          continue;
        }
        lastService = name;
        const seen = await until(
          name,
          async () => (await Promise.all(survivors.map((s) => listedBy(s, name)))).every(Boolean),
          VISIBLE_WAIT_MS,
        ).then(
          () => true,
          () => false,
        );
        if (seen) {
          agentMs = now() - tKill;
          agentRegisterMs = answered - sent;
          break;
        }
      }
      log(
        `  agent: registration visible on ${survivors.map((s) => s.name).join(' and ')} ${agentMs.toFixed(0)} ms after the kill (${attempts} attempt(s))`,
      );
      await sleep(AFTER_MS);
      const w = clientWindow(prober.oks, prober.failures, tKill, now());
      const client = {
        clientFirstOkMs: w.firstOkMs,
        clientLongestGapMs: w.longestGapMs,
        clientErrors: w.errors,
        clientErrorSamples: w.errorSamples,
      };
      log(
        `  client: first write ${client.clientFirstOkMs.toFixed(0)} ms after the kill, longest gap ${client.clientLongestGapMs.toFixed(0)} ms, ${client.clientErrors} failed`,
      );

      const tRestart = now();
      await target.restart();
      if (lastService)
        await until(`${target.name} catching up`, () => listedBy(target, lastService), 30_000);
      const restartMs = now() - tRestart;
      out.push({
        round: r,
        killed: target.name,
        chosenBy,
        agentWasOn,
        clientWasOn,
        agentMs,
        agentRegisterMs,
        agentAttempts: attempts,
        ...client,
        restartMs,
      });
      await sleep(1_000);
    }
    return { rounds: out, probeEveryMs: PROBE_EVERY_MS };
  } finally {
    await prober.stop();
    await client.close();
    await agent?.stop();
    dirs.removeAll();
  }
}
