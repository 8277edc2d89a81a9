/**
 * What `trellis server` does with a damaged data dir, as an operator sees it: a torn last record
 * is dropped with a warning and the server starts with everything before it; damage in the
 * middle of the log stops the start with the file and byte offset, and no data is touched.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { startServerProcess, tempDirs, TRELLIS_BIN } from '../../helpers/trellis-process.js';

async function fill(dir: string, keys: number): Promise<void> {
  const server = await startServerProcess(dir, 'dmg');
  for (let i = 0; i < keys; i++) {
    const r = await request(`http://${server.address}/v1/kv/k/${i}`, {
      method: 'PUT',
      body: `value-${i}`,
    });
    expect(await r.body.text()).to.equal('true');
  }
  await server.kill9();
}

function newestSegment(dir: string): string {
  const segs = readdirSync(join(dir, 'catalog'))
    .filter((f) => f.startsWith('wal-') && f.endsWith('.log'))
    .map((f) => join(dir, 'catalog', f))
    .filter((f) => statSync(f).size > 64)
    .sort();
  return segs[segs.length - 1]!;
}

describe('catalog server with a damaged write-ahead log', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.removeAll());

  it('drops a torn last record with a warning and keeps everything before it', async () => {
    const dir = tmp.make('torn');
    await fill(dir, 20);
    const seg = newestSegment(dir);
    truncateSync(seg, statSync(seg).size - 3); // the last record loses its tail
    const server = await startServerProcess(dir, 'dmg');
    try {
      const r = await request(`http://${server.address}/v1/kv/k/?recurse`);
      const keys = ((await r.body.json()) as { Key: string }[]).map((e) => e.Key);
      expect(keys).to.include.members(Array.from({ length: 19 }, (_, i) => `k/${i}`));
      expect(server.output()).to.match(/torn|truncat/i);
    } finally {
      await server.stop();
    }
  });

  it('refuses to start on damage in the middle of the log, naming the file and offset', async () => {
    const dir = tmp.make('corrupt');
    await fill(dir, 20);
    const seg = newestSegment(dir);
    const bytes = readFileSync(seg);
    const at = Math.floor(bytes.length / 3);
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(seg, bytes);
    const child = spawn(
      process.execPath,
      [TRELLIS_BIN, 'server', '--data-dir', dir, '--bind', '127.0.0.1:0', '--log-level', 'warn'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).to.not.equal(0);
    expect(out).to.include(seg);
    expect(out).to.match(/offset \d+/);
    expect(out).to.not.match(/\n\s+at /);
    expect(readFileSync(seg).equals(bytes), 'the damaged file is left as it was').to.equal(true);
  });
});
