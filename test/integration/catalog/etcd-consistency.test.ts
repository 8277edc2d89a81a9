/**
 * Consistency modes of servers on etcd (real etcd members, real `trellis server` processes):
 * `?consistent` on B right after a write acknowledged by A sees that write; every read carries
 * X-Consul-LastContact; without etcd quorum `?consistent` answers 500 naming etcd, `max_stale`
 * is enforced, and default reads are still answered with a LastContact that keeps growing.
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
  Value: string | null;
  ModifyIndex: number;
}

async function readKv(
  s: TrellisProcess,
  key: string,
  q = '',
): Promise<{ status: number; value?: string; headers: Headers; text: string }> {
  const r = await fetch(`http://${s.address}/v1/kv/${key}${q}`);
  const text = await r.text();
  if (r.status !== 200) return { status: r.status, headers: r.headers, text };
  const row = (JSON.parse(text) as KvRow[])[0]!;
  return {
    status: 200,
    value: Buffer.from(row.Value ?? '', 'base64').toString(),
    headers: r.headers,
    text,
  };
}

function lastContact(h: Headers): number {
  const v = h.get('x-consul-lastcontact');
  expect(v, 'X-Consul-LastContact').to.match(/^\d+$/);
  return Number(v);
}

describe('catalog on etcd: ?consistent reads and X-Consul-LastContact', function () {
  this.timeout(180_000);
  const dirs = tempDirs();
  let etcd: EtcdCluster | undefined;
  const servers: TrellisProcess[] = [];

  before(async function () {
    etcd = await etcdClusterOrSkip(this, 3);
    const args = etcdServerArgs(etcd, dirs, 'cons');
    for (const name of ['srv-a', 'srv-b'])
      servers.push(
        await startServerProcess(dirs.make(`cons-${name}`), name, args, { timeoutMs: 30_000 }),
      );
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await etcd?.destroy();
    dirs.removeAll();
  });

  it('?consistent on B right after a write acknowledged by A returns that write (200 rounds)', async () => {
    const [a, b] = servers as [TrellisProcess, TrellisProcess];
    let staleDefault = 0;
    for (let i = 0; i < 200; i++) {
      const w = await fetch(`http://${a.address}/v1/kv/cons/k`, { method: 'PUT', body: `v${i}` });
      expect(await w.text()).to.equal('true');
      // Alternate which read goes first, so neither always gets the head start.
      const plainFirst = i % 2 === 0;
      const plain = plainFirst ? await readKv(b, 'cons/k') : undefined;
      const c = await readKv(b, 'cons/k', '?consistent');
      expect(c.status, c.text).to.equal(200);
      expect(c.value, `round ${i}`).to.equal(`v${i}`);
      expect(c.headers.get('x-consul-effective-consistency')).to.equal('consistent');
      const p = plain ?? (await readKv(b, 'cons/k'));
      if (p.value !== `v${i}`) staleDefault++;
    }
    console.log(
      `      200/200 consistent reads current; default reads on B stale: ${staleDefault}`,
    );
  });

  it('reads carry X-Consul-LastContact (ms since the state was confirmed with etcd)', async () => {
    const [a, b] = servers as [TrellisProcess, TrellisProcess];
    for (const s of [a, b]) {
      for (const path of ['/v1/kv/cons/k', '/v1/catalog/services', '/v1/health/service/consul'])
        lastContact((await fetch(`http://${s.address}${path}`)).headers);
      // The heartbeat keeps it from growing while etcd is up.
      await eventually(async () => {
        const r = await fetch(`http://${s.address}/v1/catalog/nodes?stale`);
        return lastContact(r.headers) < 5_000;
      }, 30_000);
    }
    const ok = await fetch(`http://${b.address}/v1/kv/cons/k?stale&max_stale=30s`);
    expect(ok.status).to.equal(200);
    const bad = await fetch(`http://${b.address}/v1/kv/cons/k?stale&max_stale=soon`);
    expect(bad.status).to.equal(400);
    expect(await bad.text()).to.match(/max_stale/);
  });

  it('without etcd quorum: ?consistent answers 500 naming etcd, default reads answer with a growing LastContact', async () => {
    const [, b] = servers as [TrellisProcess, TrellisProcess];
    const cluster = etcd!;
    await cluster.stop(1);
    await cluster.stop(2);
    try {
      const c = await fetch(`http://${b.address}/v1/kv/cons/k?consistent`);
      const text = await c.text();
      console.log(`      ?consistent without quorum: ${c.status} ${text.slice(0, 200)}`);
      expect(c.status).to.equal(500);
      expect(text).to.match(/etcd/);
      expect(text).to.match(/quorum/);

      const first = await readKv(b, 'cons/k');
      expect(first.status).to.equal(200);
      expect(first.value).to.equal('v199');
      const l1 = lastContact(first.headers);
      const later = await eventually(async () => {
        const r = await readKv(b, 'cons/k', '?stale');
        return r.status === 200 && lastContact(r.headers) > l1 + 2_000 ? r : undefined;
      }, 60_000);
      console.log(`      LastContact grew from ${l1} to ${lastContact(later.headers)} ms`);

      const refused = await fetch(`http://${b.address}/v1/kv/cons/k?stale&max_stale=1s`);
      expect(refused.status).to.equal(500);
      expect(await refused.text()).to.match(/more than max_stale \(1000 ms\)/);
    } finally {
      await cluster.restart(1);
      await cluster.restart(2);
    }
    // Quorum back: consistent reads work again and LastContact drops.
    const back = await eventually(async () => {
      const r = await readKv(b, 'cons/k', '?consistent');
      return r.status === 200 ? r : undefined;
    }, 60_000);
    expect(back.value).to.equal('v199');
    await eventually(async () => lastContact((await readKv(b, 'cons/k')).headers) < 5_000, 30_000);
  });
});
