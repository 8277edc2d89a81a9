/**
 * Several real `trellis server` processes over one real three-member etcd cluster (Debian's
 * etcd-server, on loopback ports picked here): writes on one server are seen on the others, a
 * blocking query wakes on a write sent elsewhere, `cas` increments from every server add up,
 * acknowledged writes survive a SIGKILLed etcd member, and without quorum writes fail with a
 * message naming etcd while reads are still answered.
 */
import { expect } from 'chai';
import { etcdClusterOrSkip, type EtcdCluster } from '../../helpers/etcd-cluster.js';
import { etcdServerArgs } from '../../helpers/etcd-servers.js';
import {
  eventually,
  startServerProcess,
  tempDirs,
  type TrellisProcess,
} from '../../helpers/trellis-process.js';

interface KvRow {
  Key: string;
  Value: string | null;
  ModifyIndex: number;
}

async function put(
  server: TrellisProcess,
  key: string,
  value: string,
  query = '',
): Promise<Response> {
  return fetch(`http://${server.address}/v1/kv/${key}${query}`, { method: 'PUT', body: value });
}

async function getKv(server: TrellisProcess, key: string): Promise<KvRow | undefined> {
  const r = await fetch(`http://${server.address}/v1/kv/${key}`);
  if (r.status === 404) return undefined;
  const rows = (await r.json()) as KvRow[];
  return rows[0];
}

function decode(row: KvRow | undefined): string | undefined {
  return row?.Value == null ? undefined : Buffer.from(row.Value, 'base64').toString();
}

/** Every key under a prefix on a server, as key -> value. */
async function kvMap(server: TrellisProcess, prefix: string): Promise<Map<string, string>> {
  const r = await fetch(`http://${server.address}/v1/kv/${prefix}?recurse`);
  if (r.status === 404) return new Map();
  const rows = (await r.json()) as KvRow[];
  return new Map(rows.map((row) => [row.Key, decode(row) ?? '']));
}

describe('catalog on etcd: several servers over a 3-member etcd cluster', function () {
  this.timeout(120_000);
  const dirs = tempDirs();
  let etcd: EtcdCluster | undefined;
  const servers: TrellisProcess[] = [];

  before(async function () {
    etcd = await etcdClusterOrSkip(this, 3);
    const args = etcdServerArgs(etcd, dirs, 'etcd');
    // The first server creates the CA (its key goes to etcd, encrypted); the others use it.
    for (const name of ['srv-a', 'srv-b', 'srv-c']) {
      const dir = dirs.make(`etcd-${name}`);
      servers.push(await startServerProcess(dir, name, args, { timeoutMs: 30_000 }));
    }
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await etcd?.destroy();
    dirs.removeAll();
  });

  it('a KV write on A is read on B and C, with the same index', async () => {
    const [a, b, c] = servers as [TrellisProcess, TrellisProcess, TrellisProcess];
    const r = await put(a, 'shared/greeting', 'hello');
    expect(r.status).to.equal(200);
    expect(await r.text()).to.equal('true');
    const onA = await getKv(a, 'shared/greeting');
    expect(decode(onA)).to.equal('hello');
    for (const s of [b, c]) {
      const row = await eventually(async () => getKv(s, 'shared/greeting'));
      expect(decode(row)).to.equal('hello');
      expect(row.ModifyIndex).to.equal(onA!.ModifyIndex);
    }
  });

  it('a blocking query on A wakes on a write sent to B', async () => {
    const [a, b] = servers as [TrellisProcess, TrellisProcess];
    expect((await put(a, 'blocking/key', 'v1')).status).to.equal(200);
    const first = await fetch(`http://${a.address}/v1/kv/blocking/key`);
    const index = Number(first.headers.get('x-consul-index'));
    expect(index).to.be.greaterThan(0);
    const blocked = fetch(`http://${a.address}/v1/kv/blocking/key?index=${index}&wait=30s`);
    // Give the query time to block on A before the write goes to B.
    await new Promise((r) => setTimeout(r, 300));
    expect((await put(b, 'blocking/key', 'v2')).status).to.equal(200);
    const woke = await blocked;
    expect(woke.status).to.equal(200);
    const rows = (await woke.json()) as KvRow[];
    expect(decode(rows[0])).to.equal('v2');
    expect(Number(woke.headers.get('x-consul-index'))).to.be.greaterThan(index);
  });

  it('a service registered on B and an intention written on C are visible on A', async () => {
    const [a, b, c] = servers as [TrellisProcess, TrellisProcess, TrellisProcess];
    const reg = await fetch(`http://${b.address}/v1/catalog/register`, {
      method: 'PUT',
      body: JSON.stringify({
        Node: 'web-host',
        Address: '127.0.0.2',
        Service: { ID: 'web-1', Service: 'web', Port: 8080 },
      }),
    });
    expect(reg.status).to.equal(200);
    const ixn = await fetch(
      `http://${c.address}/v1/connect/intentions/exact?source=web&destination=db`,
      { method: 'PUT', body: JSON.stringify({ Action: 'allow' }) },
    );
    expect(ixn.status).to.equal(200);
    const svc = await eventually(async () => {
      const r = await fetch(`http://${a.address}/v1/catalog/service/web`);
      const rows = (await r.json()) as { ServiceID: string; Node: string }[];
      return rows.length > 0 ? rows : undefined;
    });
    expect(svc.map((s) => `${s.Node}/${s.ServiceID}`)).to.deep.equal(['web-host/web-1']);
    const got = await eventually(async () => {
      const r = await fetch(
        `http://${a.address}/v1/connect/intentions/exact?source=web&destination=db`,
      );
      return r.status === 200 ? ((await r.json()) as { Action: string }) : undefined;
    });
    expect(got.Action).to.equal('allow');
  });

  it('concurrent cas increments sent to every server: the counter equals the acknowledged ones', async () => {
    const [a] = servers as [TrellisProcess];
    expect((await put(a, 'counter', '0')).status).to.equal(200);
    // Every worker starts from a read of the counter: wait until each server has it.
    for (const s of servers) await eventually(async () => getKv(s, 'counter'));
    let acked = 0;
    let refused = 0;
    const worker = async (s: TrellisProcess): Promise<void> => {
      for (let i = 0; i < 25; i++) {
        const row = await getKv(s, 'counter');
        const n = Number(decode(row));
        const r = await put(s, 'counter', String(n + 1), `?cas=${row!.ModifyIndex}`);
        expect(r.status).to.equal(200);
        if ((await r.text()) === 'true') acked++;
        else refused++;
      }
    };
    await Promise.all(servers.flatMap((s) => [worker(s), worker(s)]));
    expect(acked + refused).to.equal(servers.length * 2 * 25);
    expect(acked).to.be.greaterThan(0);
    console.log(`      ${acked} increments acknowledged, ${refused} refused by cas`);
    for (const s of servers) {
      const final = await eventually(async () => {
        const v = Number(decode(await getKv(s, 'counter')));
        return v === acked ? v : undefined;
      });
      expect(final).to.equal(acked);
    }
  });

  it('SIGKILL of one etcd member during writes: every acknowledged write is kept, writes go on with 2 of 3', async () => {
    const cluster = etcd!;
    const acked = new Map<string, string>();
    let failed = 0;
    let afterKill = 0;
    let killed = false;
    const writer = async (s: TrellisProcess, w: number): Promise<void> => {
      for (let i = 0; i < 40; i++) {
        const key = `kill/${w}-${i}`;
        const r = await put(s, key, `v${i}`).catch(() => undefined);
        if (r?.status === 200 && (await r.text()) === 'true') {
          acked.set(key, `v${i}`);
          if (killed) afterKill++;
        } else failed++;
      }
    };
    const writes = Promise.all(servers.map((s, w) => writer(s, w)));
    await eventually(async () => acked.size >= 20);
    await cluster.kill(0);
    killed = true;
    await writes;
    // Writes acknowledged after the kill went through the two members left.
    expect(afterKill).to.be.greaterThan(0);
    for (const s of servers) {
      const map = await eventually(async () => {
        const m = await kvMap(s, 'kill/');
        return [...acked.keys()].every((k) => m.has(k)) ? m : undefined;
      }, 20_000);
      for (const [k, v] of acked) expect(map.get(k), `${k} on ${s.address}`).to.equal(v);
    }
    console.log(
      `      ${acked.size} writes acknowledged (${afterKill} after the kill), ${failed} failed`,
    );
    await cluster.restart(0);
  });

  it('without quorum a write answers 500 naming etcd and its quorum, reads are still served; writes resume with quorum', async () => {
    const cluster = etcd!;
    const [a, b] = servers as [TrellisProcess, TrellisProcess];
    expect((await put(a, 'quorum/key', 'before')).status).to.equal(200);
    await eventually(async () => decode(await getKv(b, 'quorum/key')) === 'before');
    await cluster.stop(1);
    await cluster.stop(2);
    const r = await put(a, 'quorum/key', 'during');
    expect(r.status).to.equal(500);
    const message = await r.text();
    expect(message).to.match(/etcd/);
    expect(message).to.match(/quorum/);
    for (const s of [a, b]) expect(decode(await getKv(s, 'quorum/key'))).to.equal('before');
    await cluster.restart(1);
    await eventually(async () => {
      const w = await put(b, 'quorum/key', 'after');
      return w.status === 200 && (await w.text()) === 'true';
    }, 30_000);
    for (const s of servers)
      await eventually(async () => decode(await getKv(s, 'quorum/key')) === 'after', 20_000);
    await cluster.restart(2);
  });
});
