/**
 * One elected leader among three real `trellis server` processes over a real three-member etcd:
 * every server reports the same leader and three peers; a node heartbeating only to a follower
 * stays passing and turns critical once when it stops; a session created on one server and
 * renewed only through another lives while renewed, across a SIGKILL of the leader, and is
 * destroyed exactly once when renewals stop; the killed leader is replaced and dropped from the
 * peers (the time it took is printed); without etcd quorum no server names a leader.
 */
import { expect } from 'chai';
import {
  etcdClusterOrSkip,
  writeCaEncryptionKey,
  type EtcdCluster,
} from '../../helpers/etcd-cluster.js';
import {
  eventually,
  startServerProcess,
  tempDirs,
  type TrellisProcess,
} from '../../helpers/trellis-process.js';

interface Server {
  proc: TrellisProcess;
  node: string;
  /** Its advertised "ip:8300", as the status endpoints report it. */
  rpc: string;
  alive: boolean;
}

async function getJSON<T>(
  s: Server,
  path: string,
): Promise<{ status: number; body: T; index: number }> {
  const r = await fetch(`http://${s.proc.address}${path}`);
  const text = await r.text();
  return {
    status: r.status,
    body: (text ? JSON.parse(text) : undefined) as T,
    index: Number(r.headers.get('x-consul-index') ?? 0),
  };
}

async function put(s: Server, path: string, body?: unknown): Promise<Response> {
  return fetch(`http://${s.proc.address}${path}`, {
    method: 'PUT',
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

/** The leader every live server reports, when they all agree on one. */
async function agreedLeader(servers: Server[]): Promise<string | undefined> {
  const answers = await Promise.all(
    servers
      .filter((s) => s.alive)
      .map(async (s) => (await getJSON<string>(s, '/v1/status/leader')).body),
  );
  const first = answers[0];
  return first && answers.every((a) => a === first) ? first : undefined;
}

async function serfOf(
  s: Server,
  node: string,
): Promise<{ Status: string; ModifyIndex: number } | undefined> {
  const r = await getJSON<{ CheckID: string; Status: string; ModifyIndex: number }[]>(
    s,
    `/v1/health/node/${node}`,
  );
  return r.body.find((c) => c.CheckID === 'serfHealth');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('catalog on etcd: one elected leader for once-only work', function () {
  this.timeout(180_000);
  const dirs = tempDirs();
  let etcd: EtcdCluster | undefined;
  const servers: Server[] = [];

  before(async function () {
    etcd = await etcdClusterOrSkip(this, 3);
    const args = [
      '--store',
      'etcd',
      '--etcd-endpoints',
      etcd.endpoints,
      '--ca-encryption-key-file',
      writeCaEncryptionKey(dirs.make('leader-key')),
      '--https-bind',
      'off',
      '--session-min-ttl',
      '1000',
      '--node-grace',
      '3000',
    ];
    const first = dirs.make('leader-a');
    // Distinct advertised addresses (never dialled here), so the servers can be told apart.
    const advertise = (i: number): string[] => ['--advertise', `127.0.0.${11 + i}`];
    const names = ['srv-a', 'srv-b', 'srv-c'];
    for (const [i, name] of names.entries()) {
      // The first server creates the CA (its key goes to etcd, encrypted); the others use it.
      const dir = i === 0 ? first : dirs.make(`leader-${name}`);
      const proc = await startServerProcess(dir, name, [...args, ...advertise(i)], {
        timeoutMs: 30_000,
      });
      servers.push({ proc, node: name, rpc: `127.0.0.${11 + i}:8300`, alive: true });
    }
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const s of servers) console.log(`--- ${s.rpc}:\n${s.proc.output().slice(-4000)}`);
  });

  after(async () => {
    for (const s of servers) await s.proc.stop();
    await etcd?.destroy();
    dirs.removeAll();
  });

  /** The leader, a follower (B) and the remaining server, by role. */
  async function roles(): Promise<{ leader: Server; b: Server; other: Server }> {
    const addr = await eventually(() => agreedLeader(servers), 30_000);
    const leader = servers.find((s) => s.rpc === addr && s.alive)!;
    const [b, other] = servers.filter((s) => s !== leader && s.alive) as [Server, Server];
    return { leader, b, other };
  }

  it('every server reports the same leader and the three servers as peers', async () => {
    const leader = await eventually(() => agreedLeader(servers), 30_000);
    expect(servers.map((s) => s.rpc)).to.include(leader);
    for (const s of servers) {
      const peers = await eventually(async () => {
        const r = await getJSON<string[]>(s, '/v1/status/peers');
        return r.body.length === 3 ? r.body : undefined;
      }, 30_000);
      expect([...peers].sort()).to.deep.equal(servers.map((x) => x.rpc).sort());
      const raft = await getJSON<{ Servers: { Address: string; Leader: boolean }[] }>(
        s,
        '/v1/operator/raft/configuration',
      );
      expect(raft.body.Servers.filter((x) => x.Leader).map((x) => x.Address)).to.deep.equal([
        leader,
      ]);
    }
  });

  it('a node heartbeating only to a follower stays passing, then turns critical once', async () => {
    const { leader, b } = await roles();
    const hb = { Node: 'hb-node', Address: '198.18.1.1', TTL: '2s', ID: '' };
    const beat = async (): Promise<void> => {
      const r = await put(b, '/v1/internal/trellis/heartbeat', hb);
      expect(r.status).to.equal(200);
    };
    // Three TTLs' worth of heartbeats, each well within the TTL: always passing on the leader.
    for (let i = 0; i < 12; i++) {
      await beat();
      await sleep(500);
      const serf = await serfOf(leader, 'hb-node');
      expect(serf?.Status, `after ${i + 1} heartbeats`).to.equal('passing');
    }
    const critical = await eventually(async () => {
      const serf = await serfOf(leader, 'hb-node');
      return serf?.Status === 'critical' ? serf : undefined;
    }, 30_000);
    // Turned critical once: the check is not written again while the node stays silent.
    await sleep(4_000);
    for (const s of servers) {
      const serf = await serfOf(s, 'hb-node');
      expect(serf?.Status).to.equal('critical');
      expect(serf?.ModifyIndex).to.equal(critical.ModifyIndex);
    }
  });

  it('a session renewed only through a follower lives across a leader SIGKILL, then expires once', async () => {
    const { leader, b, other } = await roles();
    const a = leader; // created on the leader, which is killed below
    // The session belongs to B's node (alive throughout): only its TTL can end it.
    const created = await put(a, '/v1/session/create', {
      Node: b.node,
      TTL: '2s',
      Behavior: 'release',
      LockDelay: '0s',
    });
    expect(created.status).to.equal(200);
    const { ID: id } = (await created.json()) as { ID: string };
    const acquired = await put(a, `/v1/kv/locked/key?acquire=${id}`, 'held');
    expect(await acquired.text()).to.equal('true');

    let renewing = true;
    const renewals = (async () => {
      while (renewing) {
        const r = await put(b, `/v1/session/renew/${id}`);
        expect(r.status, 'a renewal through B').to.equal(200);
        await sleep(700);
      }
    })();

    // Renewed for several TTLs (the session would expire after 4 s without renewals).
    await sleep(6_000);
    expect((await getJSON<unknown[]>(b, `/v1/session/info/${id}`)).body).to.have.length(1);

    // SIGKILL the leader while the session is renewed; another server leads.
    const killedAt = Date.now();
    await leader.proc.kill9();
    leader.alive = false;
    const next = await eventually(async () => {
      const l = await agreedLeader(servers);
      return l && l !== leader.rpc ? l : undefined;
    }, 60_000);
    const tookMs = Date.now() - killedAt;
    console.log(`      new leader ${next} elected ${tookMs} ms after the SIGKILL`);
    expect([b.rpc, other.rpc]).to.include(next);
    for (const s of [b, other]) {
      const peers = await eventually(async () => {
        const r = await getJSON<string[]>(s, '/v1/status/peers');
        return r.body.length === 2 ? r.body : undefined;
      }, 30_000);
      expect([...peers].sort()).to.deep.equal([b.rpc, other.rpc].sort());
    }

    // Still renewed through B, for longer than the new leader's full period: it lives.
    await sleep(6_000);
    for (const s of [b, other])
      expect((await getJSON<unknown[]>(s, `/v1/session/info/${id}`)).body).to.have.length(1);

    renewing = false;
    await renewals;
    const stoppedAt = Date.now();
    const gone = await eventually(async () => {
      const r = await getJSON<unknown[]>(other, `/v1/session/info/${id}`);
      return (r.body ?? []).length === 0 ? r : undefined;
    }, 30_000);
    console.log(`      session destroyed ${Date.now() - stoppedAt} ms after the last renewal`);
    // Destroyed once: the lock was released by it, and nothing touches sessions or the key again.
    const key = await getJSON<{ Session?: string; ModifyIndex: number }[]>(b, '/v1/kv/locked/key');
    expect(key.body[0]!.Session).to.equal(undefined);
    const list = await getJSON<unknown[]>(b, '/v1/session/list');
    await sleep(6_000);
    for (const s of [b, other]) {
      const after = await getJSON<{ ModifyIndex: number }[]>(s, '/v1/kv/locked/key');
      expect(after.body[0]!.ModifyIndex).to.equal(key.body[0]!.ModifyIndex);
      const l = await getJSON<unknown[]>(s, '/v1/session/list');
      expect(l.body).to.deep.equal([]);
      expect(l.index).to.equal(list.index);
    }
    expect(gone.status).to.equal(200);
  });

  it('without etcd quorum no server names a leader; with quorum back one leads again', async () => {
    const live = servers.filter((s) => s.alive);
    await etcd!.stop(1);
    await etcd!.stop(2);
    // Within about one lease TTL every server stops naming (or being) a leader.
    await eventually(async () => {
      const answers = await Promise.all(
        live.map(async (s) => (await getJSON<string>(s, '/v1/status/leader')).body),
      );
      return answers.every((a) => a === '');
    }, 30_000);
    await etcd!.restart(1);
    const leader = await eventually(() => agreedLeader(servers), 60_000);
    expect(live.map((s) => s.rpc)).to.include(leader);
    await etcd!.restart(2);
  });
});
