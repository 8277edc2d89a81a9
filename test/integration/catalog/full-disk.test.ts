/**
 * A full disk: the server's data dir is a tiny tmpfs. Writes that do not fit fail with a clear
 * error, reads keep working, and after a restart every acknowledged write is there and nothing
 * that failed is. Needs root (mount); elsewhere it skips with the reason printed.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startTrellis, type TrellisProcess } from '../../helpers/trellis-process.js';

const isRoot = process.getuid?.() === 0;

describe('catalog server on a full disk', function () {
  this.timeout(60_000);
  let dir = '';
  let mounted = false;
  let server: TrellisProcess | undefined;

  before(function () {
    if (!isRoot) {
      console.log('    skipped: mounting a small tmpfs needs root (CI runs as root)');
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'trellis-test-fulldisk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m,mode=0700', 'tmpfs', dir]);
    mounted = true;
  });

  after(async () => {
    await server?.kill9();
    if (mounted) execFileSync('umount', [dir]);
    if (dir) rmdirSync(dir);
  });

  it('fails writes that do not fit, keeps serving, and loses nothing acknowledged', async () => {
    const start = (): Promise<TrellisProcess> =>
      startTrellis([
        'server',
        '--data-dir',
        dir,
        '--bind',
        '127.0.0.1:0',
        '--node',
        'full',
        '--acl-default-policy',
        'allow',
        '--snapshot-every',
        '1000000',
      ]);
    server = await start();
    const base = `http://${server.address}`;
    const acked = new Map<string, string>();
    const failures: string[] = [];
    for (let i = 0; i < 200 && failures.length < 3; i++) {
      const value = `${i}-`.padEnd(64 * 1024, String.fromCharCode(97 + (i % 26)));
      const r = await request(`${base}/v1/kv/fill/${i}`, { method: 'PUT', body: value });
      const text = await r.body.text();
      if (r.statusCode === 200 && text === 'true') acked.set(`fill/${i}`, value);
      else failures.push(`${r.statusCode} ${text}`);
    }
    expect(acked.size, 'some writes fit').to.be.greaterThan(5);
    expect(failures.length, 'the disk filled up').to.be.greaterThan(0);
    expect(failures[0]).to.match(/^500 /);
    expect(failures[0]).to.match(/ENOSPC|no space/i);

    // Reads still work while the disk is full.
    const services = await request(`${base}/v1/catalog/services`);
    expect(services.statusCode).to.equal(200);
    await services.body.dump();

    await server.kill9();
    server = await start();
    const r = await request(`http://${server.address}/v1/kv/fill/?recurse`);
    const entries = (await r.body.json()) as { Key: string; Value: string }[];
    const got = new Map(entries.map((e) => [e.Key, Buffer.from(e.Value, 'base64').toString()]));
    for (const [k, v] of acked)
      expect(got.get(k) === v, `acknowledged ${k} survives`).to.equal(true);
    expect(got.size, 'failed writes did not come back').to.equal(acked.size);
  });
});
