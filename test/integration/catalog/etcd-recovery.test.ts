/**
 * A `trellis server` on etcd rebuilds its state from etcd alone (the stored snapshot, then the
 * log after it), and snapshots keep the log short: real etcd members, real server processes.
 */
import { expect } from 'chai';
import { Etcd3 } from 'etcd3';
import {
  etcdClusterOrSkip,
  writeCaEncryptionKey,
  type EtcdCluster,
} from '../../helpers/etcd-cluster.js';
import {
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../../helpers/trellis-process.js';

interface KvRow {
  Key: string;
  Value: string | null;
  ModifyIndex: number;
}

async function values(server: TrellisProcess, prefix: string): Promise<Map<string, string>> {
  const r = await fetch(`http://${server.address}/v1/kv/${prefix}?recurse`);
  if (r.status === 404) return new Map();
  const rows = (await r.json()) as KvRow[];
  return new Map(rows.map((x) => [x.Key, Buffer.from(x.Value ?? '', 'base64').toString()]));
}

describe('catalog on etcd: restart and compaction', function () {
  this.timeout(120_000);
  const dirs = tempDirs();
  let etcd: EtcdCluster | undefined;
  let client: Etcd3 | undefined;
  let keyFile = '';
  const running: TrellisProcess[] = [];

  before(async function () {
    etcd = await etcdClusterOrSkip(this, 3);
    keyFile = writeCaEncryptionKey(dirs.make('etcd-key'));
    client = new Etcd3({ hosts: etcd.endpoints.split(',') });
  });

  after(async () => {
    for (const s of running) await s.stop();
    client?.close();
    await etcd?.destroy();
    dirs.removeAll();
  });

  const args = (prefix: string, extra: string[] = []): string[] => [
    '--store',
    'etcd',
    '--etcd-endpoints',
    etcd!.endpoints,
    '--etcd-prefix',
    prefix,
    '--https-bind',
    'off',
    '--ca-encryption-key-file',
    keyFile,
    ...extra,
  ];

  const start = async (dir: string, node: string, a: string[]): Promise<TrellisProcess> => {
    const s = await startServerProcess(dir, node, a, { timeoutMs: 30_000 });
    running.push(s);
    return s;
  };

  it('a restarted server, and a new one with an empty data dir, recover every write from etcd', async () => {
    const dir = dirs.make('etcd-restart');
    const first = await start(dir, 'srv-r', args('/restart', ['--snapshot-every', '15']));
    const written = new Map<string, string>();
    for (let i = 0; i < 60; i++) {
      const r = await fetch(`http://${first.address}/v1/kv/data/k${i}`, {
        method: 'PUT',
        body: `value-${i}`,
      });
      expect(await r.text()).to.equal('true');
      written.set(`data/k${i}`, `value-${i}`);
    }
    const indexBefore = Number(
      (await fetch(`http://${first.address}/v1/kv/data/?recurse`)).headers.get('x-consul-index'),
    );
    await first.stop();

    // Entries after the newest snapshot are applied from the log (the snapshot alone is older).
    const snap = await client!.get('/restart/snapshot').string();
    expect(snap, 'a snapshot is stored in etcd').to.be.a('string');
    const snapIndex = Number(snap!.slice(0, 20));
    expect(snapIndex).to.be.lessThan(indexBefore);

    const again = await start(dir, 'srv-r', args('/restart', ['--snapshot-every', '15']));
    expect(await values(again, 'data/')).to.deep.equal(written);
    const indexAfter = Number(
      (await fetch(`http://${again.address}/v1/kv/data/?recurse`)).headers.get('x-consul-index'),
    );
    expect(indexAfter).to.equal(indexBefore);

    // A server that never ran before has nothing local: everything comes from etcd, CA key too.
    const fresh = dirs.make('etcd-fresh');
    const other = await start(fresh, 'srv-fresh', args('/restart', ['--snapshot-every', '15']));
    expect(await values(other, 'data/')).to.deep.equal(written);
  });

  it('snapshots keep the log short: entries a stored snapshot covers are deleted', async () => {
    const dir = dirs.make('etcd-compact');
    const s = await start(dir, 'srv-c', args('/compact', ['--snapshot-every', '20']));
    for (let i = 0; i < 200; i++) {
      const r = await fetch(`http://${s.address}/v1/kv/many/k${i % 10}`, {
        method: 'PUT',
        body: String(i),
      });
      expect(await r.text()).to.equal('true');
    }
    // Snapshots run in the background, and one stores its pointer before it deletes what it
    // covers: wait until one has finished (the log under two intervals, every entry newer than
    // the snapshot, one snapshot's chunks left), reading each state in one range.
    const done = await eventually(async () => {
      const log = await client!.getAll().prefix('/compact/log/').exec();
      if (log.kvs.length > 40) return undefined;
      const snap = await client!.get('/compact/snapshot').string();
      if (snap === null) return undefined;
      const snapIndex = Number(snap.slice(0, 20));
      // The log read again after the pointer: a snapshot made between the reads only shortens it.
      const after = await client!.getAll().prefix('/compact/log/').exec();
      if (!after.kvs.every((kv) => Number(kv.mod_revision) > snapIndex)) return undefined;
      const chunks = await client!.getAll().prefix('/compact/snapshot-data/').keys();
      if (new Set(chunks.map((k) => k.split('/')[3])).size !== 1) return undefined;
      return { left: after.kvs.length, snapIndex };
    }, 30_000);
    console.log(
      `      200 writes: ${done.left} log entries left, snapshot at index ${done.snapIndex}`,
    );
    await s.stop();
    const again = await start(dir, 'srv-c', args('/compact', ['--snapshot-every', '20']));
    const kv = await values(again, 'many/');
    expect(kv.size).to.equal(10);
    expect(kv.get('many/k9')).to.equal('199');
  });

  it('refuses to start when etcd is unreachable, with a message naming etcd', async () => {
    const dir = dirs.make('etcd-unreachable');
    const p = startTrellis(
      [
        'server',
        '--data-dir',
        dir,
        '--bind',
        '127.0.0.1:0',
        '--https-bind',
        'off',
        '--store',
        'etcd',
        '--etcd-endpoints',
        'http://127.0.0.1:1',
        '--ca-encryption-key-file',
        keyFile,
      ],
      { timeoutMs: 60_000 },
    );
    const err = await p.then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.match(/exited with 1/);
    expect(err?.message).to.match(/could not load the catalog from etcd: no etcd endpoint/);
  });
});
