/**
 * The CA's once-only work on three real `trellis server` processes over a real three-member
 * etcd: leaf signing limits hold across servers (one bucket per node in etcd); a root rotation
 * acknowledged just before the leader's SIGKILL completes after it (surviving servers sign with
 * the new root, and the new leader prunes the old root once); a root that became due while the
 * leader was frozen is rotated by the next leader as soon as it is elected; with etcd's quorum
 * lost, signing is refused with the error naming etcd instead of going unlimited.
 *
 * The servers run with --ca-clock-skew 0, so a rotated-out root is due for pruning LeafCertTTL
 * (10 s) after its rotation instead of 70 s: the same code path, a shorter wait.
 */
import { expect } from 'chai';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { createCsr, generateRoot } from '../../../src/pki/index.js';
import { agentSpiffeId } from '../../../src/policy/index.js';
import { etcdClusterOrSkip, type EtcdCluster } from '../../helpers/etcd-cluster.js';
import { etcdServerArgs } from '../../helpers/etcd-servers.js';
import {
  eventually,
  startServerProcess,
  tempDirs,
  type TrellisProcess,
} from '../../helpers/trellis-process.js';

interface Server {
  proc: TrellisProcess;
  rpc: string;
  alive: boolean;
}

interface Roots {
  ActiveRootID: string;
  TrustDomain: string;
  Roots: { ID: string; RootCert: string; Active: boolean; NotBefore: string }[];
}

const PREFIX = '/trellis';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function getJSON<T>(s: Server, path: string): Promise<{ body: T; index: number }> {
  const r = await fetch(`http://${s.proc.address}${path}`);
  return {
    body: (await r.json()) as T,
    index: Number(r.headers.get('x-consul-index') ?? 0),
  };
}

async function put(s: Server, path: string, body?: unknown): Promise<Response> {
  return fetch(`http://${s.proc.address}${path}`, {
    method: 'PUT',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function roots(s: Server): Promise<Roots> {
  return (await getJSON<Roots>(s, '/v1/connect/ca/roots')).body;
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

/** An agent certificate for `node` signed by `s`. */
async function signAgent(s: Server, node: string, trustDomain: string): Promise<Response> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const csr = createCsr(privateKey, agentSpiffeId(trustDomain, 'dc1', node));
  return put(s, '/v1/internal/trellis/connect/sign-agent', { Node: node, CSR: csr });
}

/** Signs an agent certificate on `s` and checks it verifies against the root `rootId`. */
async function expectSignsWith(s: Server, rootId: string): Promise<void> {
  const r = await roots(s);
  const res = await signAgent(s, `host-${s.rpc.split(':')[0]}`, r.TrustDomain);
  expect(res.status, await res.clone().text()).to.equal(200);
  const cert = (await res.json()) as { CertPEM: string; RootID: string };
  expect(cert.RootID, `signed by ${s.rpc}`).to.equal(rootId);
  const root = r.Roots.find((x) => x.ID === rootId)!;
  const leaf = new X509Certificate(cert.CertPEM);
  expect(leaf.verify(new X509Certificate(root.RootCert).publicKey), `leaf of ${s.rpc}`).to.equal(
    true,
  );
}

describe('catalog on etcd: CA work on the leader, signing limits across servers', function () {
  this.timeout(240_000);
  const dirs = tempDirs();
  let etcd: EtcdCluster | undefined;
  let client: Etcd3 | undefined;
  const servers: Server[] = [];

  /** The CA commands of `type` in the etcd log, in order. */
  async function logged(type: string): Promise<{ ids?: string[] }[]> {
    const all = await client!.getAll().prefix(`${PREFIX}/log/`).strings();
    return Object.values(all)
      .map((v) => JSON.parse(v) as { type: string; ids?: string[] })
      .filter((c) => c.type === type);
  }

  before(async function () {
    etcd = await etcdClusterOrSkip(this, 3);
    client = new Etcd3({ hosts: etcd.endpoints.split(',') });
    const args = [...etcdServerArgs(etcd, dirs, 'leader-ca'), '--ca-clock-skew', '0'];
    for (const [i, name] of ['srv-a', 'srv-b', 'srv-c'].entries()) {
      const proc = await startServerProcess(
        dirs.make(`leader-ca-${name}`),
        name,
        [...args, '--advertise', `127.0.0.${21 + i}`],
        { timeoutMs: 30_000 },
      );
      servers.push({ proc, rpc: `127.0.0.${21 + i}:8300`, alive: true });
    }
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const s of servers) console.log(`--- ${s.rpc}:\n${s.proc.output().slice(-4000)}`);
  });

  after(async () => {
    for (const s of servers) await s.proc.kill9();
    client?.close();
    await etcd?.destroy();
    dirs.removeAll();
  });

  async function leaderOf(): Promise<{ leader: Server; followers: Server[] }> {
    const addr = await eventually(() => agreedLeader(servers), 60_000);
    const leader = servers.find((s) => s.rpc === addr && s.alive)!;
    return { leader, followers: servers.filter((s) => s !== leader && s.alive) };
  }

  it('a node asking three servers gets no more than its rate and burst across them', async () => {
    const { leader } = await leaderOf();
    // 1 signing per second, burst 2: one bucket per server would allow 6 at once.
    const set = await put(leader, '/v1/connect/ca/configuration', {
      Provider: 'consul',
      Config: { CSRMaxPerSecond: 1, LeafCertTTL: '10s' },
    });
    expect(set.status, await set.clone().text()).to.equal(200);
    for (const s of servers)
      await eventually(async () => {
        const c = await getJSON<{ Config: { CSRMaxPerSecond: number } }>(
          s,
          '/v1/connect/ca/configuration',
        );
        return c.body.Config.CSRMaxPerSecond === 1 ? true : undefined;
      }, 30_000);
    const { TrustDomain } = await roots(leader);
    const started = Date.now();
    // 30 requests at once, spread over the three servers in turn.
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        signAgent(servers[i % 3]!, 'greedy-host', TrustDomain).then(async (r) => ({
          status: r.status,
          text: await r.text(),
        })),
      ),
    );
    const elapsedSec = (Date.now() - started) / 1000;
    const ok = answers.filter((a) => a.status === 200).length;
    const limited = answers.filter((a) => a.status === 429);
    console.log(
      `      ${ok} signed, ${limited.length} refused (429) in ${elapsedSec.toFixed(1)} s`,
    );
    for (const a of answers) expect([200, 429], a.text).to.include(a.status);
    expect(limited[0]?.text).to.include('too many certificate requests from node "greedy-host"');
    // Burst 2, plus at most one token per second that passed (whatever the machine's speed).
    expect(ok).to.be.at.least(1);
    expect(ok).to.be.at.most(2 + Math.floor(elapsedSec * 1));
    // The bucket is in etcd, under a lease (it goes once it would be full again).
    const kv = await client!.get(`${PREFIX}/sign-bucket/greedy-host`).json();
    expect(kv).to.have.property('tokens');
    // Another node has its own bucket.
    const other = await signAgent(servers[1]!, 'modest-host', TrustDomain);
    expect(other.status, await other.clone().text()).to.equal(200);
  });

  it('a rotation acknowledged just before the leader is SIGKILLed completes after it', async () => {
    const { leader, followers } = await leaderOf();
    const oldRoot = (await roots(leader)).ActiveRootID;
    const rot = await put(leader, '/v1/internal/trellis/ca/rotate');
    expect(rot.status, await rot.clone().text()).to.equal(200);
    const { ActiveRootID: newRoot } = (await rot.json()) as { ActiveRootID: string };
    await leader.proc.kill9();
    leader.alive = false;
    const killedAt = Date.now();

    const next = await eventually(async () => {
      const l = await agreedLeader(servers);
      return l && l !== leader.rpc ? l : undefined;
    }, 60_000);
    console.log(`      new leader ${next} ${Date.now() - killedAt} ms after the SIGKILL`);
    // Every surviving server signs with the new root.
    for (const s of followers) {
      await eventually(async () => ((await roots(s)).ActiveRootID === newRoot ? true : undefined));
      await expectSignsWith(s, newRoot);
    }
    // The old root's leaves expire 10 s after the rotation: the new leader then drops it.
    for (const s of followers) {
      const r = await eventually(async () => {
        const x = await roots(s);
        return x.Roots.length === 1 ? x : undefined;
      }, 90_000);
      expect(r.Roots.map((x) => x.ID)).to.deep.equal([newRoot]);
    }
    console.log(`      old root pruned ${Date.now() - killedAt} ms after the SIGKILL`);
    // Pruned exactly once, by the new leader; nothing changes the roots afterwards.
    const newLeader = servers.find((s) => s.rpc === next)!;
    const prunes = (await logged('ca-prune')).filter((c) => c.ids?.includes(oldRoot));
    expect(prunes).to.have.length(1);
    const said = (s: Server): number => s.proc.output().split('"audit":"ca.prune"').length - 1;
    expect(said(newLeader)).to.equal(1);
    for (const s of followers.filter((f) => f !== newLeader)) expect(said(s)).to.equal(0);
    const index = (await getJSON<Roots>(newLeader, '/v1/connect/ca/roots')).index;
    await sleep(3_000);
    for (const s of followers) {
      const again = await getJSON<Roots>(s, '/v1/connect/ca/roots');
      expect(again.body.Roots.map((x) => x.ID)).to.deep.equal([newRoot]);
      expect(again.index).to.equal(index);
    }
  });

  it('a root that fell due while the leader was frozen is rotated by the next leader', async () => {
    const { leader, followers } = await leaderOf();
    const [successor] = followers as [Server];
    const before = await roots(successor);
    // Freeze the leader: it keeps its lease for up to 5 s but can do nothing.
    leader.proc.proc.kill('SIGSTOP');
    // Import a root made two hours ago with a RotationPeriod of one hour: due at once.
    const clusterId = before.TrustDomain.replace(/\.consul$/, '');
    const old = generateRoot({
      clusterId,
      trustDomain: before.TrustDomain,
      ttlMs: 24 * 3600_000,
      now: new Date(Date.now() - 2 * 3600_000),
    });
    const imported = await put(successor, '/v1/connect/ca/configuration', {
      Provider: 'consul',
      Config: { PrivateKey: old.keyPem, RootCert: old.root.RootCert, RotationPeriod: '1h' },
    });
    expect(imported.status, await imported.clone().text()).to.equal(200);
    expect((await roots(successor)).ActiveRootID).to.equal(old.root.ID);
    await leader.proc.kill9();
    leader.alive = false;

    // The survivor leads, finds the imported root due, and rotates away from it once.
    const after = await eventually(async () => {
      const r = await roots(successor);
      return r.ActiveRootID !== old.root.ID ? r : undefined;
    }, 90_000);
    expect(await agreedLeader(servers)).to.equal(successor.rpc);
    const fresh = after.Roots.find((x) => x.Active)!;
    expect(Date.now() - Date.parse(fresh.NotBefore)).to.be.below(3600_000);
    expect(after.Roots.find((x) => x.ID === old.root.ID)?.Active).to.equal(false);
    await expectSignsWith(successor, fresh.ID);
    const rotations = (await logged('ca-rotate')) as { previousId?: string }[];
    expect(rotations.filter((c) => c.previousId === old.root.ID)).to.have.length(1);
  });

  it('without etcd quorum, signing is refused naming etcd (no unlimited fallback)', async () => {
    const survivor = servers.find((s) => s.alive)!;
    const { TrustDomain } = await roots(survivor);
    await etcd!.stop(1);
    await etcd!.stop(2);
    try {
      const res = await signAgent(survivor, 'quorumless-host', TrustDomain);
      const text = await res.text();
      console.log(`      ${res.status} ${text.slice(0, 200)}`);
      expect(res.status).to.equal(500);
      expect(text).to.include('certificate signing limit in etcd');
      expect(text).to.match(/quorum/);
    } finally {
      await etcd!.restart(1);
      await etcd!.restart(2);
    }
    const res = await eventually(async () => {
      const r = await signAgent(survivor, 'quorumless-host', TrustDomain);
      return r.status === 200 ? r : undefined;
    }, 60_000);
    expect(res.status).to.equal(200);
  });
});
