/**
 * systemd readiness (Type=notify) with a stand-in for systemd: a unix datagram socket the test
 * listens on (a few lines of Python) named by $NOTIFY_SOCKET. `READY=1` must come only once the process really
 * serves: the server's API answers at that moment, and an agent restarted with no server
 * reachable already serves its saved plan (its sidecar's port accepts). STOPPING=1 comes on
 * SIGTERM. The messages are sent by systemd's own systemd-notify, as under systemd.
 */
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { accepts, freePort } from '../helpers/net.js';
import {
  agentArgs,
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

/** The notify socket's receiving end: every datagram, in order. */
interface Receiver {
  path: string;
  /** Resolves once a datagram holding `field` has arrived. */
  waitFor(field: string, timeoutMs?: number): Promise<void>;
  text(): string;
  close(): Promise<void>;
}

/**
 * What systemd does with the socket, in Python (Node has no unix datagram sockets): print each
 * message, and close the file descriptors a message carries, which is how systemd-notify's
 * barrier learns the message was taken.
 */
const RECEIVER = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(64 * 4))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array('i')
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    sys.stdout.write(msg.decode() + '\\n')
    sys.stdout.flush()
`;

async function notifySocket(dir: string): Promise<Receiver> {
  const path = join(dir, 'notify.sock');
  const proc: ChildProcess = spawn('python3', ['-c', RECEIVER, path], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const waiters: { field: string; resolve: () => void }[] = [];
  proc.stdout!.on('data', (d: Buffer) => {
    text += d.toString();
    for (const w of [...waiters])
      if (text.includes(w.field)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
  });
  await eventually(async () => readdirSync(dir).includes('notify.sock'), 5000, 20);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    path,
    text: () => text,
    waitFor: (field, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        if (text.includes(field)) return resolve();
        const timer = setTimeout(
          () =>
            reject(new Error(`no ${field} within ${timeoutMs} ms; got ${JSON.stringify(text)}`)),
          timeoutMs,
        );
        waiters.push({
          field,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      }),
    async close() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}

describe('systemd readiness (READY=1 on $NOTIFY_SOCKET)', function () {
  this.timeout(120_000);
  const dirs = tempDirs();
  const started: TrellisProcess[] = [];
  const receivers: Receiver[] = [];

  before(function () {
    for (const tool of ['socat', 'systemd-notify'])
      if (spawnSync(tool, ['--version']).error)
        throw new Error(
          `${tool} is missing: install the socat and systemd packages (.ci/run does)`,
        );
  });
  after(async () => {
    for (const p of started.splice(0)) await p.stop();
    for (const r of receivers.splice(0)) await r.close();
    dirs.removeAll();
  });

  it('the server says READY=1 once its API answers, and STOPPING=1 on SIGTERM', async () => {
    const dir = dirs.make('notify-server');
    const notify = await notifySocket(dir);
    receivers.push(notify);
    const ready = notify.waitFor('READY=1');
    const withSocket = await startTrellis(
      [
        'server',
        '--data-dir',
        join(dir, 'data'),
        '--bind',
        '127.0.0.1:0',
        '--node',
        'notify-server',
        '--acl-default-policy',
        'allow',
      ],
      { env: { NOTIFY_SOCKET: notify.path } },
    );
    started.push(withSocket);
    await ready;
    // One attempt, no retry: at READY=1 the API must already answer.
    const r = await request(`http://${withSocket.address}/v1/status/leader`);
    expect(r.statusCode).to.equal(200);
    await r.body.text();
    expect(notify.text()).to.match(/STATUS=serving the API on 127\.0\.0\.1:\d+/);
    // The barrier completed: systemd-notify saw the message taken, as under systemd.
    expect(withSocket.output()).to.not.include('could not notify systemd');
    const stopping = notify.waitFor('STOPPING=1');
    await withSocket.stop();
    started.splice(started.indexOf(withSocket), 1);
    await stopping;
  });

  it('an agent restarted with no server says READY=1 only once its saved plan serves', async () => {
    const serverDir = dirs.make('notify-srv');
    const dataDir = dirs.make('notify-agent-data');
    const confDir = dirs.make('notify-agent-conf');
    const sidecarPort = await freePort();
    writeFileSync(
      join(confDir, 'api.hcl'),
      `service {\n  name = "api"\n  port = ${await freePort()}\n  connect {\n    sidecar_service {\n      address = "127.0.0.1"\n      port    = ${sidecarPort}\n    }\n  }\n}\n`,
    );
    const server = await startServerProcess(serverDir, 'notify-srv');
    started.push(server);
    const args = agentArgs(server.address, 'notify-host', dataDir, confDir);
    const first = await startTrellis(args);
    started.push(first);
    // A complete plan served and saved.
    await eventually(async () => accepts(sidecarPort), 30_000, 100);
    await eventually(
      async () => readdirSync(join(dataDir, 'proxy-plans')).some((f) => f.endsWith('.json')),
      30_000,
      100,
    );
    await first.stop();
    await server.stop();
    started.splice(0);

    const notify = await notifySocket(dirs.make('notify-agent-sock'));
    receivers.push(notify);
    let servingAtReady: boolean | undefined;
    const ready = notify.waitFor('READY=1').then(async () => {
      // One attempt at the moment READY=1 arrives: the saved plan's listener must be open.
      servingAtReady = await accepts(sidecarPort);
    });
    const again = await startTrellis(args, { env: { NOTIFY_SOCKET: notify.path } });
    started.push(again);
    await ready;
    expect(servingAtReady, 'the sidecar accepted connections when READY=1 arrived').to.equal(true);
  });
});
