/**
 * Issue 14's failure test: three real `trellis server` processes over a real three-member etcd
 * cluster, an agent that knows all three servers (retry_join), and writers sending concurrent
 * registrations, KV `cas` increments and intention writes to all three servers. In the middle,
 * one Trellis server and one etcd member are SIGKILLed.
 *
 * Afterwards every acknowledged write is present on the surviving servers; the `cas` counter
 * accounts for every acknowledged increment (and the only increments it holds beyond those are
 * ones whose answer was lost with the killed server); a client that knows all three servers and
 * the agent fail over, and how long each saw errors is printed (no timing assertion: the
 * machine is shared).
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '../../src/client/index.js';
import { etcdClusterOrSkip, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { etcdServerArgs } from '../helpers/etcd-servers.js';
import {
  agentArgs,
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

interface KvRow {
  Value: string | null;
  ModifyIndex: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function kvGet(s: TrellisProcess, key: string): Promise<KvRow | undefined> {
  const r = await fetch(`http://${s.address}/v1/kv/${key}`);
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`GET ${key}: ${r.status}`);
  return ((await r.json()) as KvRow[])[0];
}

const decode = (row: KvRow | undefined): string =>
  row?.Value == null ? '' : Buffer.from(row.Value, 'base64').toString();

/**
 * A write's outcome: answered yes, answered no, not sent (the server was gone: connection
 * refused), or lost (sent, then no answer: it may have happened).
 */
type Outcome = 'acked' | 'refused' | 'unsent' | 'lost';

/** A few distinct messages of refused writes, by kind of write. */
const refusals = new Map<string, Set<string>>();

async function attempt(
  kind: string,
  fn: () => Promise<Response>,
  accepted: (r: Response) => Promise<boolean>,
): Promise<Outcome> {
  let r: Response;
  try {
    r = await fn();
  } catch (err) {
    await sleep(50); // a dead server: do not spin on it
    const code = (err as { cause?: { code?: string } }).cause?.code;
    return code === 'ECONNREFUSED' ? 'unsent' : 'lost';
  }
  if (r.status >= 500) {
    // A clear error: nothing was written. Kept to print (a few distinct messages).
    const text = (await r.text()).slice(0, 160);
    const seen = refusals.get(kind) ?? new Set<string>();
    if (seen.size < 3) seen.add(text);
    refusals.set(kind, seen);
    return 'refused';
  }
  return (await accepted(r)) ? 'acked' : 'refused';
}

describe('catalog on etcd: a Trellis server and an etcd member SIGKILLed under load', function () {
  this.timeout(240_000);
  const dirs = tempDirs();
  let etcd: EtcdCluster | undefined;
  const servers: TrellisProcess[] = [];
  let agent: TrellisProcess | undefined;

  before(async function () {
    etcd = await etcdClusterOrSkip(this, 3);
    const args = etcdServerArgs(etcd, dirs, 'fo');
    // The first server creates the CA (its key goes to etcd, encrypted); the others use it.
    for (const name of ['fo-srv-a', 'fo-srv-b', 'fo-srv-c'])
      servers.push(await startServerProcess(dirs.make(name), name, args, { timeoutMs: 30_000 }));
    const conf = dirs.make('fo-agent-conf');
    writeFileSync(join(conf, 'web.hcl'), 'service {\n  name = "web"\n  port = 18080\n}\n');
    const [a, b, c] = servers as [TrellisProcess, TrellisProcess, TrellisProcess];
    // The agent knows all three servers; it talks to the first (A) until A fails.
    agent = await startTrellis(
      [
        ...agentArgs(a.address, 'fo-agent', dirs.make('fo-agent'), conf),
        '--server',
        b.address,
        '--server',
        c.address,
      ],
      { timeoutMs: 30_000 },
    );
    await eventually(async () => {
      const r = await fetch(`http://${b.address}/v1/catalog/service/web`);
      return r.status === 200 && ((await r.json()) as unknown[]).length === 1;
    }, 30_000);
  });

  after(async () => {
    await agent?.stop();
    for (const s of servers) await s.stop();
    await etcd?.destroy();
    dirs.removeAll();
  });

  it('every acknowledged write survives, the cas counter adds up, the agent and clients fail over', async () => {
    const cluster = etcd!;
    const [a, b, c] = servers as [TrellisProcess, TrellisProcess, TrellisProcess];
    expect(
      (await fetch(`http://${a.address}/v1/kv/fo/counter`, { method: 'PUT', body: '0' })).status,
    ).to.equal(200);

    let stop = false;
    let killedAt = 0;
    const regs = new Map<string, Outcome>();
    const intentions = new Map<string, Outcome>();
    /** Counter value -> the writer that was told its increment to that value was applied. */
    const ackedIncrements = new Map<number, string>();
    let lostIncrements = 0;

    const registrar = async (s: TrellisProcess, w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const node = `fo-node-${w}-${i}`;
        const out = await attempt(
          'register',
          () =>
            fetch(`http://${s.address}/v1/catalog/register`, {
              method: 'PUT',
              body: JSON.stringify({
                Node: node,
                Address: '198.18.7.1',
                Service: { Service: `svc-${w}`, ID: `svc-${w}-${i}`, Port: 1000 + i },
              }),
            }),
          async (r) => r.status === 200,
        );
        regs.set(node, out);
        await sleep(20);
      }
    };
    const intender = async (s: TrellisProcess, w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const src = `fo-src-${w}-${i}`;
        const out = await attempt(
          'intention',
          () =>
            fetch(
              `http://${s.address}/v1/connect/intentions/exact?source=${src}&destination=fo-db`,
              { method: 'PUT', body: JSON.stringify({ Action: i % 2 ? 'allow' : 'deny' }) },
            ),
          async (r) => r.status === 200,
        );
        intentions.set(src, out);
        await sleep(20);
      }
    };
    const incrementer = async (s: TrellisProcess, w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        let row: KvRow | undefined;
        try {
          row = await kvGet(s, 'fo/counter');
        } catch {
          await sleep(50); // this server is gone or refusing: its writer idles
          continue;
        }
        if (!row) continue;
        const next = Number(decode(row).split(' ')[0]) + 1;
        const out = await attempt(
          'cas',
          () =>
            fetch(`http://${s.address}/v1/kv/fo/counter?cas=${row.ModifyIndex}`, {
              method: 'PUT',
              body: `${next} ${w}-${i}`,
            }),
          async (r) => (await r.text()) === 'true',
        );
        if (out === 'acked') {
          expect(ackedIncrements.has(next), `two writers acknowledged value ${next}`).to.equal(
            false,
          );
          ackedIncrements.set(next, `${w}-${i}`);
        } else if (out === 'lost') lostIncrements++;
      }
    };
    // A client that knows all three servers (as the CLI and agents do): its longest run of
    // failures around the kill is its failover time.
    const client = createClient({ addresses: [a.address, b.address, c.address], timeoutMs: 5_000 });
    let lastOk = 0;
    let longestGap = 0;
    let clientErrors = 0;
    const prober = async (): Promise<void> => {
      for (let i = 0; !stop; i++) {
        try {
          await client.kv.put(`fo/probe/${i % 50}`, String(i));
          const t = performance.now();
          if (killedAt && lastOk) longestGap = Math.max(longestGap, t - Math.max(lastOk, killedAt));
          lastOk = t;
        } catch {
          clientErrors++;
        }
        await sleep(25);
      }
    };

    const work = Promise.all([
      ...servers.flatMap((s, w) => [registrar(s, w), intender(s, w), incrementer(s, w)]),
      incrementer(b, 3),
      prober(),
    ]);
    await eventually(async () => ackedIncrements.size >= 15 && regs.size >= 30, 60_000);
    killedAt = performance.now();
    const killedWallMs = Date.now();
    await Promise.all([a.kill9(), cluster.kill(0)]);
    // The agent's next change after the kill goes through another server.
    const reg = await fetch(`http://${agent!.address}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Name: 'after-kill', Port: 18081 }),
    });
    const agentChangeMs = performance.now() - killedAt;
    expect(reg.status, await reg.text()).to.equal(200);
    await eventually(async () => ackedIncrements.size >= 30, 60_000);
    await sleep(1000);
    stop = true;
    await work;
    await client.close();

    // Every acknowledged registration and intention is on both surviving servers.
    const ackedRegs = [...regs].filter(([, o]) => o === 'acked').map(([n]) => n);
    const ackedInts = [...intentions].filter(([, o]) => o === 'acked').map(([s]) => s);
    for (const s of [b, c]) {
      await eventually(async () => {
        const nodes = (await (await fetch(`http://${s.address}/v1/catalog/nodes`)).json()) as {
          Node: string;
        }[];
        const have = new Set(nodes.map((n) => n.Node));
        return ackedRegs.every((n) => have.has(n));
      }, 30_000);
      const list = (await (await fetch(`http://${s.address}/v1/connect/intentions`)).json()) as {
        SourceName: string;
      }[];
      const have = new Set(list.map((x) => x.SourceName));
      for (const src of ackedInts)
        expect(have.has(src), `intention ${src} on ${s.address}`).to.equal(true);
    }
    // The counter: every acknowledged increment is one of its steps, and the steps nobody was
    // told about are at most the increments whose answer was lost with the killed server.
    const final = Number(decode(await kvGet(b, 'fo/counter')).split(' ')[0]);
    for (const v of ackedIncrements.keys()) expect(v).to.be.within(1, final);
    const unacknowledged = final - ackedIncrements.size;
    expect(unacknowledged).to.be.within(0, lostIncrements);
    expect(decode(await kvGet(c, 'fo/counter'))).to.equal(decode(await kvGet(b, 'fo/counter')));
    // The agent's own errors after the kill (heartbeats, syncs, watches), from its log.
    const agentErrors = agent!
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; time: number; msg: string })
      .filter((l) => l.level >= 40 && l.time >= killedWallMs);
    const agentWindow = agentErrors.length
      ? Math.max(...agentErrors.map((l) => l.time)) - killedWallMs
      : 0;
    const count = (m: Map<string, Outcome>, o: Outcome): number =>
      [...m.values()].filter((x) => x === o).length;
    console.log(
      `      registrations: ${count(regs, 'acked')} acknowledged, ${count(regs, 'lost')} lost with the killed server, ${count(regs, 'unsent')} not sent (it was gone), ${count(regs, 'refused')} refused (${[...(refusals.get('register') ?? [])].join('; ')})\n` +
        `      intentions: ${count(intentions, 'acked')} acknowledged, ${count(intentions, 'lost')} lost, ${count(intentions, 'unsent')} not sent, ${count(intentions, 'refused')} refused\n` +
        `      cas counter ${final}: ${ackedIncrements.size} acknowledged increments, ${unacknowledged} applied whose answer was lost (${lostIncrements} lost in all)\n` +
        `      client with three addresses: longest time without a successful write after the kill ${Math.round(longestGap)} ms, ${clientErrors} failed request(s)\n` +
        `      agent: a service registered through it ${Math.round(agentChangeMs)} ms after the kill was accepted; ${agentErrors.length} warning(s) in its log after the kill, the last ${agentWindow} ms after it`,
    );
    await cluster.restart(0);
  });
});
