/**
 * /v1/snapshot on a real embedded `trellis server`: save, change everything, restore, and the
 * saved state is back, with indexes still going up, blocked reads woken, and the restored state
 * surviving a restart. Hostile files (empty, not gzip, truncated, corrupt, another format or
 * version, another datacenter) are refused with a JSON error naming what is wrong, and nothing
 * changes.
 */
import { expect } from 'chai';
import { gunzipSync, gzipSync } from 'node:zlib';
import { encodeSnapshotFile } from '../../../src/api/index.js';
import {
  bootstrap,
  call,
  fingerprint,
  scramble,
  seed,
  SAVED_SECRET,
} from '../../helpers/snapshot-api.js';
import {
  startServerProcess,
  tempDirs,
  type TrellisProcess,
} from '../../helpers/trellis-process.js';

describe('snapshot save and restore on the embedded store', function () {
  this.timeout(120_000);
  const dirs = tempDirs();
  let dir = '';
  let server: TrellisProcess | undefined;
  let token = '';
  let file: Buffer = Buffer.alloc(0);
  let savedIndex = 0;
  let saved: unknown;

  before(async () => {
    dir = dirs.make('snap-embedded');
    server = await startServerProcess(dir, 'snap-1');
    token = await bootstrap(server.address);
    await seed(server.address, token);
    saved = await fingerprint(server.address, token);
  });

  after(async () => {
    await server?.stop();
    dirs.removeAll();
  });

  it('GET /v1/snapshot needs a management token', async () => {
    const anon = await call(server!.address, 'GET', '/v1/snapshot');
    expect(anon.status).to.equal(403);
    const restore = await call(server!.address, 'PUT', '/v1/snapshot', { body: 'x' });
    expect(restore.status).to.equal(403);
  });

  it('saves the state at one index, named in X-Consul-Index and in the file', async () => {
    const r = await call(server!.address, 'GET', '/v1/snapshot', { token });
    expect(r.status).to.equal(200);
    expect(r.index).to.be.greaterThan(0);
    file = r.bytes;
    savedIndex = r.index;
    const header = JSON.parse(gunzipSync(file).toString().split('\n')[0]!) as {
      format: string;
      index: number;
      datacenter: string;
    };
    expect(header).to.include({ format: 'trellis-snapshot', index: savedIndex, datacenter: 'dc1' });
  });

  it('restore brings back what was saved, wakes a blocked read and moves the index forward', async () => {
    const a = server!.address;
    await scramble(a, token);
    expect(await fingerprint(a, token)).to.not.deep.equal(saved);
    const before = await call(a, 'GET', '/v1/kv/app/added-later', { token });
    expect(before.status).to.equal(200);
    // A read blocked on a key the restore removes.
    const blocked = call(a, 'GET', `/v1/kv/app/added-later?index=${before.index}&wait=60s`, {
      token,
    });
    const r = await call(a, 'PUT', '/v1/snapshot', { token, body: file });
    expect(r.status, r.text).to.equal(200);
    const restoredAt = (r.json as { Index: number }).Index;
    expect(restoredAt).to.be.greaterThan(before.index);
    expect(r.index).to.equal(restoredAt);
    const woke = await blocked;
    expect(woke.status).to.equal(404);
    expect(woke.index).to.equal(restoredAt);
    expect(await fingerprint(a, token)).to.deep.equal(saved);
    // Writes go on above the restore's index.
    const w = await call(a, 'PUT', '/v1/kv/after-restore', { token, body: '1' });
    expect(w.status).to.equal(200);
    const got = await call(a, 'GET', '/v1/kv/after-restore', { token });
    expect((got.json as { ModifyIndex: number }[])[0]!.ModifyIndex).to.be.greaterThan(restoredAt);
  });

  it('the restored state survives a restart', async () => {
    const before = await call(server!.address, 'GET', '/v1/kv/after-restore', { token });
    await server!.stop();
    server = await startServerProcess(dir, 'snap-1');
    expect(await fingerprint(server.address, token)).to.deep.equal(saved);
    const after = await call(server.address, 'GET', '/v1/kv/after-restore', { token });
    expect(after.status).to.equal(200);
    expect(after.index).to.be.at.least(before.index);
    // The restored token works after the restart too.
    const self = await call(server.address, 'GET', '/v1/acl/token/self', { token: SAVED_SECRET });
    expect(self.status).to.equal(200);
  });

  describe('hostile files are refused and change nothing', () => {
    const wrongHeader = (header: object): Buffer =>
      gzipSync(Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), Buffer.from('{}')]));
    const cases: [string, () => Buffer, string, RegExp][] = [
      ['an empty body', () => Buffer.alloc(0), 'file', /empty/],
      [
        'a file that is not gzip',
        () => Buffer.from('hello, not a snapshot'),
        'file',
        /not a Trellis snapshot/,
      ],
      [
        'a truncated file',
        () => file.subarray(0, Math.floor(file.length / 2)),
        'file',
        /truncated/,
      ],
      [
        'a corrupt file (one byte flipped in the state)',
        () => corrupt(file),
        'checksum',
        /corrupt/,
      ],
      [
        'another format',
        () => wrongHeader({ format: 'consul-raft', version: 1 }),
        'format',
        /not a Trellis snapshot/,
      ],
      [
        'a newer version',
        () => wrongHeader({ format: 'trellis-snapshot', version: 7 }),
        'version',
        /version 7 is not supported/,
      ],
      [
        'another datacenter',
        () => encodeSnapshotFile(stateOf(file), { index: savedIndex, datacenter: 'dc2' }),
        'datacenter',
        /datacenter "dc2", this cluster is datacenter "dc1"/,
      ],
      [
        'a well-formed file whose state is not a state',
        () => encodeSnapshotFile(Buffer.from('{"v":1}'), { index: 3, datacenter: 'dc1' }),
        'state.lastIndex',
        /lastIndex/,
      ],
    ];
    for (const [name, make, field, message] of cases) {
      it(name, async () => {
        const a = server!.address;
        const fp = await fingerprint(a, token);
        const idx = (await call(a, 'GET', '/v1/kv/after-restore', { token })).index;
        const r = await call(a, 'PUT', '/v1/snapshot', { token, body: make() });
        expect(r.status, r.text).to.equal(400);
        expect(r.json).to.be.an('object');
        const err = r.json as { error: string; field: string };
        expect(err.field).to.equal(field);
        expect(err.error).to.match(message);
        expect(await fingerprint(a, token)).to.deep.equal(fp);
        expect((await call(a, 'GET', '/v1/kv/after-restore', { token })).index).to.equal(idx);
      });
    }
  });
});

/** The state bytes inside a snapshot file. */
function stateOf(file: Buffer): Buffer {
  const raw = gunzipSync(file);
  return raw.subarray(raw.indexOf(0x0a) + 1);
}

/** The same file with one byte of the state changed, re-gzipped (so only the checksum catches it). */
function corrupt(file: Buffer): Buffer {
  const raw = Buffer.from(gunzipSync(file));
  const at = raw.indexOf(Buffer.from('"web-host"'));
  raw[at + 1] = 'W'.charCodeAt(0);
  return gzipSync(raw);
}
