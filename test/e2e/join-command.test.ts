/**
 * The command `trellis acl token create --join` prints is the command a new host runs: here it
 * is run as printed, with two changes a test machine needs (the `trellis` of this checkout, and
 * a temporary data dir and free ports instead of /var/lib/trellis/agent and 8500/8600), and the
 * node joins. An agent pointed at the server's plain-HTTP address gets a sentence, not
 * OpenSSL's "wrong version number".
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  TRELLIS_BIN,
  eventually,
  getJSON,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

const run = promisify(execFile);

describe('the join command printed by acl token create --join', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  const agents: TrellisProcess[] = [];

  before(async () => {
    server = await startServerProcess(tmp.make('join-server'), 'js1');
  });
  after(async () => {
    for (const a of agents) await a.stop();
    await server?.stop();
    tmp.removeAll();
  });

  it('joins the node when run as printed', async () => {
    const { stdout } = await run(process.execPath, [
      TRELLIS_BIN,
      'acl',
      'token',
      'create',
      '--join',
      '--node',
      'jn1',
      '--http-addr',
      server.address,
    ]);
    const printed = /^ {2}(trellis agent .*)$/m.exec(stdout)?.[1];
    expect(printed, stdout).to.be.a('string');
    expect(printed)
      .to.match(/ --node jn1 /)
      .and.match(/ --data-dir \/var\/lib\/trellis\/agent$/);
    // The printed words, as a shell would split them (nothing in them needs quoting here).
    const words = printed!.split(' ');
    expect(words.slice(0, 2)).to.deep.equal(['trellis', 'agent']);
    const dataDir = tmp.make('join-agent');
    const args = words.slice(1).map((w, i, all) => (all[i - 1] === '--data-dir' ? dataDir : w));
    const agent = await startTrellis([...args, '--bind', '127.0.0.1:0'], { timeoutMs: 60_000 });
    agents.push(agent);
    await eventually(async () => {
      const nodes = await getJSON<{ Node: string }[]>(`http://${server.address}/v1/catalog/nodes`);
      return nodes.some((n) => n.Node === 'jn1');
    }, 30_000);
  });

  it('joins with the token in TRELLIS_JOIN_TOKEN, off the command line', async () => {
    const { stdout } = await run(process.execPath, [
      TRELLIS_BIN,
      'acl',
      'token',
      'create',
      '--join',
      '--node',
      'jn2',
      '--format',
      'json',
      '--http-addr',
      server.address,
    ]);
    const token = JSON.parse(stdout) as { SecretID: string; CAFingerprint: string };
    const https = /(?:--retry-join|--server) (\S+)/.exec(
      (
        await run(process.execPath, [
          TRELLIS_BIN,
          'acl',
          'token',
          'create',
          '--join',
          '--node',
          'jn-unused',
          '--http-addr',
          server.address,
        ])
      ).stdout,
    )?.[1];
    expect(https, 'the HTTPS address printed for joins').to.be.a('string');
    const agent = await startTrellis(
      [
        'agent',
        '--ca-fingerprint',
        token.CAFingerprint,
        '--retry-join',
        https!,
        '--node',
        'jn2',
        '--data-dir',
        tmp.make('join-env'),
        '--bind',
        '127.0.0.1:0',
      ],
      { timeoutMs: 60_000, env: { TRELLIS_JOIN_TOKEN: token.SecretID } },
    );
    agents.push(agent);
    expect(agent.proc.spawnargs.join(' ')).to.not.contain(token.SecretID);
    await eventually(async () => {
      const nodes = await getJSON<{ Node: string }[]>(`http://${server.address}/v1/catalog/nodes`);
      return nodes.some((n) => n.Node === 'jn2');
    }, 30_000);
  });

  it('an agent given the plain-HTTP address says so in one sentence', async () => {
    const { stdout } = await run(process.execPath, [
      TRELLIS_BIN,
      'acl',
      'token',
      'create',
      '--join',
      '--format',
      'json',
      '--http-addr',
      server.address,
    ]);
    const token = JSON.parse(stdout) as { SecretID: string; CAFingerprint: string };
    const r = await run(process.execPath, [
      TRELLIS_BIN,
      'agent',
      '--join-token',
      token.SecretID,
      '--ca-fingerprint',
      token.CAFingerprint,
      '--retry-join',
      server.address, // the HTTP API, not the HTTPS one
      '--data-dir',
      tmp.make('join-plain'),
      '--bind',
      '127.0.0.1:0',
      '--dns-bind',
      '127.0.0.1:0',
      '--log-level',
      'error',
    ]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.contain(
      "it answered in plain HTTP, not HTTPS: joining needs the server's HTTPS address",
    );
    expect(r.stderr).to.not.match(/wrong version number|\n\s+at /);
  });
});
