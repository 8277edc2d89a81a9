/**
 * Moving a cluster between stores with real processes: a snapshot saved from an embedded
 * `trellis server` is restored into three servers over a real three-member etcd cluster. All
 * three serve the restored data at the restore's index (the revision of the restore command),
 * a blocking query on another server wakes on it, a hostile file changes nothing, and a new
 * server with an empty data dir loads the restored state from etcd.
 */
import { expect } from 'chai';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSnapshotFile } from '../../../src/api/index.js';
import { etcdMissing, startEtcdCluster, type EtcdCluster } from '../../helpers/etcd-cluster.js';
import { etcdServerArgs } from '../../helpers/etcd-servers.js';
import { bootstrap, call, fingerprint, seed } from '../../helpers/snapshot-api.js';
import {
  eventually,
  startServerProcess,
  tempDirs,
  type TrellisProcess,
} from '../../helpers/trellis-process.js';

describe('snapshot: from an embedded server into three servers on etcd', function () {
  this.timeout(180_000);
  const dirs = tempDirs();
  let etcd: EtcdCluster | undefined;
  let etcdArgs: string[] = [];
  let caKeys = '';
  const servers: TrellisProcess[] = [];
  let file: Buffer = Buffer.alloc(0);
  let token = '';
  let saved: unknown;

  before(async function () {
    const missing = etcdMissing();
    if (missing) {
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    // The old cluster: one embedded server with some state, saved to a file.
    const oldDir = dirs.make('snap-old');
    // The old server's CA keys, which an operator carries along with the snapshot (docs/ha.md).
    caKeys = join(oldDir, 'catalog', 'ca-keys');
    const old = await startServerProcess(oldDir, 'old-1');
    try {
      token = await bootstrap(old.address);
      await seed(old.address, token);
      saved = await fingerprint(old.address, token);
      const r = await call(old.address, 'GET', '/v1/snapshot', { token });
      expect(r.status).to.equal(200);
      file = r.bytes;
    } finally {
      await old.stop();
    }
    etcd = await startEtcdCluster(3);
    etcdArgs = etcdServerArgs(etcd, dirs, 'snap-etcd');
    for (const name of ['srv-a', 'srv-b', 'srv-c']) {
      const dir = dirs.make(`snap-etcd-${name}`);
      servers.push(await startServerProcess(dir, name, etcdArgs, { timeoutMs: 30_000 }));
    }
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await etcd?.destroy();
    dirs.removeAll();
  });

  it('restores on A; A, B and C serve the restored data; a blocked read on C wakes', async () => {
    const [a, b, c] = servers as [TrellisProcess, TrellisProcess, TrellisProcess];
    // The new cluster's own management token, only good until the restore replaces the ACLs.
    const fresh = await bootstrap(a.address);
    expect(
      (await call(a.address, 'PUT', '/v1/kv/new-only', { token: fresh, body: 'n' })).status,
    ).to.equal(200);
    const seen = await eventually(async () => {
      const r = await call(c.address, 'GET', '/v1/kv/new-only', { token: fresh });
      return r.status === 200 ? r : undefined;
    });
    const blocked = call(c.address, 'GET', `/v1/kv/new-only?index=${seen.index}&wait=120s`, {
      token: fresh,
    });
    const r = await call(a.address, 'PUT', '/v1/snapshot', { token: fresh, body: file });
    expect(r.status, r.text).to.equal(200);
    const restoredAt = (r.json as { Index: number }).Index;
    expect(restoredAt).to.be.greaterThan(seen.index);
    const woke = await blocked;
    expect(woke.status).to.equal(404);
    expect(woke.index).to.equal(restoredAt);
    for (const s of [a, b, c]) {
      // The old cluster's token works everywhere; the new cluster's is gone with its ACLs.
      const fp = await eventually(async () => {
        const got = await fingerprint(s.address, token);
        return JSON.stringify(got) === JSON.stringify(saved) ? got : undefined;
      });
      expect(fp).to.deep.equal(saved);
      // Catalog reads report the restore's index on every server.
      const svc = await call(s.address, 'GET', '/v1/catalog/service/web', { token });
      expect(svc.index).to.be.at.least(restoredAt);
    }
    // Writes go on, above the restore's index, seen on every server.
    const w = await call(b.address, 'PUT', '/v1/kv/after', { token, body: 'y' });
    expect(w.status).to.equal(200);
    for (const s of [a, c]) {
      const got = await eventually(async () => {
        const g = await call(s.address, 'GET', '/v1/kv/after', { token });
        return g.status === 200 ? g : undefined;
      });
      expect((got.json as { ModifyIndex: number }[])[0]!.ModifyIndex).to.be.greaterThan(restoredAt);
    }
  });

  it('a hostile file is refused by an etcd-backed server and changes nothing', async () => {
    const [a, b] = servers as [TrellisProcess, TrellisProcess];
    const before = await fingerprint(b.address, token);
    const idx = (await call(b.address, 'GET', '/v1/kv/after', { token })).index;
    const wrongDc = encodeSnapshotFile(Buffer.from('{}'), { index: 1, datacenter: 'elsewhere' });
    const r = await call(a.address, 'PUT', '/v1/snapshot', { token, body: wrongDc });
    expect(r.status).to.equal(400);
    expect(r.json).to.deep.include({ field: 'datacenter' });
    const truncated = await call(a.address, 'PUT', '/v1/snapshot', {
      token,
      body: file.subarray(0, 40),
    });
    expect(truncated.status).to.equal(400);
    expect(await fingerprint(b.address, token)).to.deep.equal(before);
    expect((await call(b.address, 'GET', '/v1/kv/after', { token })).index).to.equal(idx);
  });

  it('a new server loads the restored state from etcd; given the old key files it signs under the old root, and then so do the others', async () => {
    const dir = dirs.make('snap-etcd-d');
    cpSync(caKeys, join(dir, 'catalog', 'ca-keys'), { recursive: true });
    const d = await startServerProcess(dir, 'srv-d', etcdArgs, { timeoutMs: 30_000 });
    servers.push(d);
    expect(await fingerprint(d.address, token)).to.deep.equal(saved);
    const after = await call(d.address, 'GET', '/v1/kv/after', { token });
    expect(after.status).to.equal(200);
    // The moved cluster signs under the old root: d was given the old server's key file and
    // uploads it to etcd (encrypted) when it first needs it; then A, which never had the
    // file, signs with the key from etcd.
    for (const s of [d, servers[0]!]) {
      const reg = await call(s.address, 'PUT', '/v1/agent/service/register', {
        token,
        body: JSON.stringify({ Name: 'moved-web', Port: 18090 }),
      });
      expect(reg.status, reg.bytes.toString()).to.equal(200);
      const leaf = await call(s.address, 'GET', '/v1/agent/connect/ca/leaf/moved-web', { token });
      expect(leaf.status, `${s.address}: ${leaf.bytes.toString()}`).to.equal(200);
    }
  });
});
