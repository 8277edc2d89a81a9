/** trellis dns resolved-config: the drop-in's text, --write into a directory, bad input. */
import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trellis } from './harness.js';

describe('cli: dns resolved-config', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-resolved-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints a drop-in that routes only ~consul to 127.0.0.1:8600', async () => {
    const r = await trellis(['dns', 'resolved-config']);
    expect(r.stderr).to.equal('');
    expect(r.code).to.equal(0);
    const lines = r.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines).to.deep.equal([
      '[Resolve]',
      'DNS=127.0.0.1:8600',
      'DNSSEC=false',
      'Domains=~consul',
    ]);
    expect(r.stdout).to.include('systemctl restart systemd-resolved');
  });

  it('takes another address and domain (IPv6 in brackets, no port for 53)', async () => {
    const r = await trellis([
      'dns',
      'resolved-config',
      '--dns-addr',
      '[::1]:8600',
      '--domain',
      'Mesh.Example.',
    ]);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.include('DNS=[::1]:8600\n').and.include('Domains=~mesh.example\n');
    const v4 = await trellis(['dns', 'resolved-config', '--dns-addr', '10.0.0.5:53']);
    expect(v4.stdout).to.include('DNS=10.0.0.5\n');
    const noPort = await trellis(['dns', 'resolved-config', '--dns-addr', '127.0.0.2']);
    expect(noPort.stdout).to.include('DNS=127.0.0.2:8600\n');
  });

  it('writes trellis.conf atomically with --write', async () => {
    const target = join(dir, 'resolved.conf.d');
    const r = await trellis(['dns', 'resolved-config', '--write', '--dir', target]);
    expect(r.stderr).to.equal('');
    expect(r.code).to.equal(0);
    const path = join(target, 'trellis.conf');
    expect(r.stdout).to.include(`Wrote ${path}`);
    const printed = await trellis(['dns', 'resolved-config']);
    expect(readFileSync(path, 'utf8')).to.equal(printed.stdout);
    expect(statSync(path).mode & 0o777).to.equal(0o644);
    // No temp file is left behind; writing again replaces the file.
    await trellis(['dns', 'resolved-config', '--write', '--dir', target, '--domain', 'mesh']);
    expect(readdirSync(target)).to.deep.equal(['trellis.conf']);
    expect(readFileSync(path, 'utf8')).to.include('Domains=~mesh\n');
  });

  it('refuses a bad --dns-addr or --domain with exit 2 and one error line', async () => {
    for (const bad of ['localhost:8600', '127.0.0.1:99999', '[::1', 'nope']) {
      const r = await trellis([
        'dns',
        'resolved-config',
        '--dns-addr',
        bad,
        '--write',
        '--dir',
        dir,
      ]);
      expect(r.code, bad).to.equal(2);
      expect(r.stdout).to.equal('');
      expect(r.stderr.split('\n')[0]).to.equal(
        `Error: --dns-addr ${JSON.stringify(bad)}: use the agent's DNS address as an IP and port, such as 127.0.0.1:8600 (resolved takes no host names)`,
      );
    }
    const d = await trellis(['dns', 'resolved-config', '--domain', 'bad domain']);
    expect(d.code).to.equal(2);
    expect(d.stderr).to.match(/^Error: --domain: invalid domain "bad domain"/);
    expect(readdirSync(dir)).to.deep.equal([]);
  });
});
