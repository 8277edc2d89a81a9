/**
 * Durability under SIGKILL: a writer keeps thousands of KV and catalog writes in flight against
 * a real `trellis server`, the server is killed at a random moment (and, in some rounds, while a
 * snapshot file is being written), restarted on the same data dir, and every write that was
 * acknowledged must be there.
 */
import { expect } from 'chai';
import { existsSync, readdirSync, watch } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import {
  removeDir,
  startServerProcess,
  tempDir,
  type TrellisProcess,
} from '../../helpers/trellis-process.js';

interface Acked {
  kv: Map<string, string>;
  services: Set<string>;
}

/** Writes until stopped; records what the server acknowledged. */
async function writeUntilKilled(
  address: string,
  round: number,
  acked: Acked,
  stop: { done: boolean },
): Promise<number> {
  const pool = new Pool(`http://${address}`, { connections: 32, pipelining: 1 });
  let n = 0;
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !stop.done && i < 100_000; i++) {
      const id = `${round}-${w}-${i}`;
      try {
        if (i % 4 === 3) {
          const r = await pool.request({
            method: 'PUT',
            path: '/v1/catalog/register',
            body: JSON.stringify({
              Node: `crash-node-${w}`,
              Address: '198.18.1.1',
              Service: { Service: 'crash', ID: `svc-${id}`, Port: 1000 + (i % 1000) },
            }),
          });
          const ok = r.statusCode === 200 && (await r.body.text()) === 'true';
          if (ok) acked.services.add(`svc-${id}`);
        } else {
          const value = `value-${id}`;
          const r = await pool.request({ method: 'PUT', path: `/v1/kv/crash/${id}`, body: value });
          const ok = r.statusCode === 200 && (await r.body.text()) === 'true';
          if (ok) acked.kv.set(`crash/${id}`, value);
        }
        n++;
      } catch {
        return; // the server died: stop this worker
      }
    }
  };
  await Promise.all(Array.from({ length: 64 }, (_, w) => worker(w)));
  await pool.destroy().catch(() => {});
  return n;
}

async function verify(address: string, acked: Acked): Promise<void> {
  const pool = new Pool(`http://${address}`);
  try {
    const kvRes = await pool.request({ method: 'GET', path: '/v1/kv/crash/?recurse' });
    const entries =
      kvRes.statusCode === 404
        ? []
        : ((await kvRes.body.json()) as { Key: string; Value: string }[]);
    const got = new Map(entries.map((e) => [e.Key, Buffer.from(e.Value, 'base64').toString()]));
    const missingKv = [...acked.kv].filter(([k, v]) => got.get(k) !== v);
    expect(
      missingKv.length,
      `acknowledged KV writes lost: ${missingKv
        .slice(0, 5)
        .map(([k]) => k)
        .join(', ')}`,
    ).to.equal(0);
    const svcRes = await pool.request({ method: 'GET', path: '/v1/catalog/service/crash' });
    const ids = new Set(
      ((await svcRes.body.json()) as { ServiceID: string }[]).map((s) => s.ServiceID),
    );
    const missingSvc = [...acked.services].filter((id) => !ids.has(id));
    expect(
      missingSvc.length,
      `acknowledged registrations lost: ${missingSvc.slice(0, 5).join(', ')}`,
    ).to.equal(0);
  } finally {
    await pool.close();
  }
}

describe('catalog server durability under SIGKILL', function () {
  this.timeout(180_000);
  let dir: string;
  let server: TrellisProcess | undefined;
  const acked: Acked = { kv: new Map(), services: new Set() };

  before(() => {
    dir = tempDir('crash');
  });
  after(async () => {
    await server?.kill9();
    removeDir(dir);
  });

  const start = (): Promise<TrellisProcess> =>
    startServerProcess(dir, 'crash-srv', ['--snapshot-every', '500'], { timeoutMs: 60_000 });

  for (const [round, mode] of [
    [0, 'random'],
    [1, 'during-snapshot'],
    [2, 'random'],
    [3, 'during-snapshot'],
    [4, 'random'],
  ] as const) {
    it(`keeps every acknowledged write after kill -9 (round ${round}, ${mode})`, async () => {
      server = await start();
      await verify(server.address, acked); // everything from earlier rounds survived the restart
      const stop = { done: false };
      const writing = writeUntilKilled(server.address, round, acked, stop);
      const victim = server;
      let watcher: ReturnType<typeof watch> | undefined;
      const killed = new Promise<void>((resolve) => {
        const kill = (): void => {
          watcher?.close();
          stop.done = true;
          void victim.kill9().then(resolve);
        };
        if (mode === 'random') {
          setTimeout(kill, 300 + Math.floor(Math.random() * 1500));
        } else {
          // Kill the moment a snapshot's temporary file appears (or after 8s at the latest).
          const fallback = setTimeout(kill, 8000);
          // A .tmp event also fires when recovery deletes a leftover file or a snapshot is
          // renamed into place: act only on one that exists, i.e. is being written now.
          watcher = watch(join(dir, 'catalog'), (_ev, name) => {
            if (
              name &&
              String(name).endsWith('.tmp') &&
              existsSync(join(dir, 'catalog', String(name)))
            ) {
              clearTimeout(fallback);
              kill();
            }
          });
        }
      });
      await killed;
      const written = await writing;
      expect(written, 'the writer made progress before the kill').to.be.greaterThan(0);
      server = await start();
      await verify(server.address, acked);
      await server.stop();
      server = undefined;
      expect(readdirSync(join(dir, 'catalog')).some((f) => f.endsWith('.log'))).to.equal(true);
    });
  }
});
