/**
 * The mesh across hosts, in the lab (`trellis lab`: network namespaces on a bridge, one server
 * host and app hosts running real agents and demo apps as their own unix users). Proves what
 * transparent interception promises between hosts:
 *
 * - `curl http://api.service.consul/` as the web user on app1 goes through web's and api's
 *   proxies with mutual TLS: the proxies count it, and tcpdump on api's host link sees only
 *   TLS, never the app's plaintext body; the control plane too (the agent joined with a join
 *   token and talks HTTPS to the server), so every TCP stream on the link is TLS records;
 * - dialing an api instance's real address is captured the same way, and the same dial from a
 *   host without an agent (plaintext) is refused;
 * - intentions deny and allow transparently;
 * - a restarted agent keeps its identity (no second join) and the mesh works again.
 *
 * Needs root, ip, nft, setpriv, curl and tcpdump; skipped with the reason otherwise.
 */
import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ACTIVE_FILE,
  labDown,
  labTopology,
  labUp,
  readState,
  LAB_USERS,
  SERVER_HTTP_ADDR,
  SERVER_HTTPS_ADDR,
  type Topology,
} from '../../src/lab/index.js';
import { netnsSkipReason } from '../helpers/netns.js';
import { eventually, TRELLIS_BIN } from '../helpers/trellis-process.js';

const NAME = 'tlmesh';
const OPTS = { name: NAME, hosts: 2, stateDir: `/run/trellis-lab/${NAME}` };

function run(ns: string, argv: string[], timeoutMs = 15_000): { code: number; out: string } {
  try {
    const out = execFileSync('ip', ['netns', 'exec', ns, ...argv], {
      encoding: 'utf8',
      timeout: timeoutMs,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { code: 0, out };
  } catch (e) {
    const err = e as { status?: number | null; stdout?: string; stderr?: string };
    return { code: err.status ?? -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

interface TcpStream {
  /** The payload of each packet, in order. */
  packets: Buffer[];
  /** The capture saw the connection open (a SYN), so the stream starts at its first byte. */
  fromStart: boolean;
}

/**
 * The TCP payload of each direction of each connection in a pcap (Ethernet, IPv4), in order.
 * The lab link is a local veth: no loss or reordering to undo.
 */
function tcpStreams(pcap: Buffer): Map<string, TcpStream> {
  const streams = new Map<string, TcpStream>();
  let off = 24; // global header
  while (off + 16 <= pcap.length) {
    const incl = pcap.readUInt32LE(off + 8);
    const pkt = pcap.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    if (pkt.length < 14 || pkt.readUInt16BE(12) !== 0x0800) continue;
    const ip = pkt.subarray(14);
    const ihl = (ip[0]! & 0x0f) * 4;
    if (ip[9] !== 6) continue;
    const total = ip.readUInt16BE(2);
    const tcp = ip.subarray(ihl, total);
    const key = `${ip.subarray(12, 16).join('.')}:${tcp.readUInt16BE(0)}>${ip.subarray(16, 20).join('.')}:${tcp.readUInt16BE(2)}`;
    const stream = streams.get(key) ?? { packets: [], fromStart: false };
    streams.set(key, stream);
    if (tcp[13]! & 0x02 && stream.packets.length === 0) stream.fromStart = true; // SYN
    const payload = tcp.subarray((tcp[12]! >> 4) * 4);
    if (payload.length > 0) stream.packets.push(payload);
  }
  for (const [key, stream] of streams) if (stream.packets.length === 0) streams.delete(key);
  return streams;
}

/** Whether a byte stream is nothing but well-formed TLS records (a cut-off last one allowed). */
function onlyTlsRecords(stream: Buffer): boolean {
  let i = 0;
  while (i + 5 <= stream.length) {
    const type = stream[i]!;
    const version = stream.readUInt16BE(i + 1);
    if (type < 20 || type > 23 || version < 0x0301 || version > 0x0304) return false;
    i += 5 + stream.readUInt16BE(i + 3);
  }
  return true;
}

/** The largest TLS record on the wire: a 5-byte header and 2^14 + 256 bytes of ciphertext. */
const MAX_TLS_RECORD = 5 + 16384 + 256;

/**
 * Whether a captured stream is only TLS records. A connection opened before the capture (the
 * agent's kept-alive HTTPS connections to the server) may be caught in the middle of a record:
 * its first packets may then be that record's tail, at most one record's worth of bytes.
 */
function tlsOnly(stream: TcpStream): boolean {
  if (stream.fromStart) return onlyTlsRecords(Buffer.concat(stream.packets));
  let skipped = 0;
  for (let k = 0; k < stream.packets.length && skipped <= MAX_TLS_RECORD; k++) {
    if (onlyTlsRecords(Buffer.concat(stream.packets.slice(k)))) return true;
    skipped += stream.packets[k]!.length;
  }
  return false;
}

function existsPid(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
}

function asUser(user: string, argv: string[]): string[] {
  return ['setpriv', '--reuid', user, '--regid', user, '--init-groups', ...argv];
}

describe('the mesh between lab hosts (transparent, mTLS, intentions)', function () {
  this.timeout(240_000);
  // One lab per machine: a lab someone else has up (their `tlab`) is left alone, and so is
  // this test.
  const skip =
    netnsSkipReason(['curl', 'tcpdump']) ??
    (existsSync(ACTIVE_FILE) && !readFileSync(ACTIVE_FILE, 'utf8').includes(`"${NAME}"`)
      ? `another lab is up on this machine (${ACTIVE_FILE})`
      : undefined);
  let topo: Topology;
  let app1 = '';
  let app2 = '';
  let serverNs = '';
  const apiAddress = '198.18.0.12';

  const curlAsWeb = (url: string): { code: number; out: string } =>
    run(app1, asUser(LAB_USERS.web, ['curl', '-sS', '-m', '5', url]));
  // The server's plain-HTTP API is on its host's loopback only.
  const trellisOnServer = (...args: string[]) =>
    run(serverNs, [process.execPath, TRELLIS_BIN, ...args, '--http-addr', SERVER_HTTP_ADDR]);
  const outbound = (): number => {
    const m =
      /trellis_tcp_connections_opened_total\{direction="outbound",source_service="web",destination_service="api"\} (\d+)/.exec(
        run(app1, ['curl', '-s', 'http://127.0.0.1:8500/v1/agent/metrics?format=prometheus']).out,
      );
    return m ? Number(m[1]) : 0;
  };
  const inbound = (): number => {
    const m =
      /trellis_tcp_connections_opened_total\{direction="inbound",source_service="web",destination_service="api"\} (\d+)/.exec(
        run(app2, ['curl', '-s', 'http://127.0.0.1:8500/v1/agent/metrics?format=prometheus']).out,
      );
    return m ? Number(m[1]) : 0;
  };

  before(async function () {
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    topo = labTopology(NAME, OPTS.hosts);
    const ns = (h: string): string => topo.hosts.find((x) => x.name === h)!.namespace;
    app1 = ns('app1');
    app2 = ns('app2');
    serverNs = ns('server');
    await labDown(OPTS).catch(() => undefined); // a lab left by an interrupted run
    await labUp(OPTS);
    // Ready when web reaches api by name through the mesh.
    await eventually(
      () => Promise.resolve(curlAsWeb('http://api.service.consul/').out.includes('hello from api')),
      90_000,
      500,
    );
  });

  after(async () => {
    if (!skip) await labDown(OPTS);
  });

  it('carries curl http://api.service.consul/ as the web user through both proxies, only TLS on the wire', async () => {
    const pcap = join(tmpdir(), `trellis-lab-${process.pid}.pcap`);
    // tcpdump on api's host link: every TCP packet between the hosts, the control plane too.
    const dump = spawn(
      'ip',
      [
        'netns',
        'exec',
        app2,
        'tcpdump',
        '-i',
        'eth0',
        '--immediate-mode',
        '-U',
        '-n',
        '-w',
        pcap,
        'tcp',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let dumpErr = '';
    dump.stderr!.on('data', (d: Buffer) => (dumpErr += d.toString()));
    await eventually(() => Promise.resolve(dumpErr.includes('listening on')), 10_000, 50);
    const [out0, in0] = [outbound(), inbound()];
    const r = curlAsWeb('http://api.service.consul/');
    // Long enough for the agent's heartbeats (every 2 s) to the server to cross the link.
    await new Promise((res) => setTimeout(res, 3000));
    dump.kill('SIGINT');
    await new Promise((res) => dump.once('exit', res));
    const bytes = readFileSync(pcap);
    rmSync(pcap, { force: true });

    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.match(/^hello from api on app2/);
    expect(outbound()).to.equal(out0 + 1);
    expect(inbound()).to.equal(in0 + 1);
    // The connection crossed the link (to api's public listener, 21000) ...
    const streams = tcpStreams(bytes);
    const mesh = [...streams.keys()].filter((k) => k.endsWith(`${apiAddress}:21000`));
    expect(mesh, [...streams.keys()].join(', ')).to.not.be.empty;
    // ... and so did the agent's control plane, to the server's HTTPS port only.
    const control = [...streams.keys()].filter((k) => k.endsWith(`>${SERVER_HTTPS_ADDR}`));
    expect(control, [...streams.keys()].join(', ')).to.not.be.empty;
    expect([...streams.keys()].filter((k) => /:8500(>|$)/.test(k))).to.deep.equal([]);
    // Every byte between the hosts, the control plane included, is a TLS record.
    for (const [flow, stream] of streams)
      expect(tlsOnly(stream), `${flow} carries something other than TLS`).to.equal(true);
    const asText = bytes.toString('latin1');
    // ... and carried a TLS handshake, never the plaintext request or answer.
    expect(asText).to.not.contain('hello from api');
    expect(asText).to.not.contain('GET / HTTP/1.1');
    expect(asText).to.not.contain('api.service.consul');
    expect(bytes.includes(Buffer.from([0x16, 0x03, 0x01]))).to.equal(true); // TLS ClientHello record
  });

  it('captures a dial to the real address of an api instance the same way', () => {
    const before = inbound();
    const r = curlAsWeb(`http://${apiAddress}:8080/`);
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.match(/^hello from api on app2/);
    expect(inbound()).to.equal(before + 1);
  });

  it('refuses the same plaintext dial from a host without an agent', () => {
    const r = run(serverNs, ['curl', '-sS', '-m', '5', `http://${apiAddress}:8080/`]);
    expect(r.code).to.not.equal(0);
    expect(r.out).to.not.contain('hello from api');
  });

  it('applies intentions transparently: deny, then allow again', async () => {
    const deny = trellisOnServer('intention', 'create', 'web', 'api', '--deny');
    expect(deny.code, deny.out).to.equal(0);
    try {
      await eventually(
        () => Promise.resolve(curlAsWeb('http://api.service.consul/').code !== 0),
        20_000,
        300,
      );
      expect(curlAsWeb(`http://${apiAddress}:8080/`).out).to.not.contain('hello from api');
    } finally {
      const del = trellisOnServer('intention', 'delete', 'web', 'api');
      expect(del.code, del.out).to.equal(0);
    }
    await eventually(
      () => Promise.resolve(curlAsWeb('http://api.service.consul/').out.includes('hello from api')),
      20_000,
      300,
    );
  });

  it('keeps working after an agent restart: its identity is in its data dir, no second join', async () => {
    const state = readState(OPTS.stateDir)!;
    const agent = state.processes.find((p) => p.host === 'app2' && p.role === 'agent')!;
    expect(agent.argv).to.include('--join-token').and.include(SERVER_HTTPS_ADDR);
    process.kill(agent.pid!, 'SIGTERM');
    await eventually(() => Promise.resolve(!existsPid(agent.pid!)), 15_000, 100);
    // The same command line, join token (spent) included, as `lab up` started it.
    const fd = openSync(agent.log, 'a');
    try {
      const caps = ['--inh-caps', '+net_admin', '--ambient-caps', '+net_admin'];
      const child = spawn(
        'ip',
        ['netns', 'exec', app2, ...asUser(LAB_USERS.agent, [...caps, '--', ...agent.argv])],
        { detached: true, stdio: ['ignore', fd, fd] },
      );
      child.unref();
    } finally {
      closeSync(fd);
    }
    await eventually(
      () => Promise.resolve(curlAsWeb('http://api.service.consul/').out.includes('hello from api')),
      30_000,
      300,
    );
    const log = readFileSync(agent.log, 'utf8');
    expect(log).to.contain('already joined; the join token is not needed');
    expect(log.match(/"joined the cluster"/g) ?? []).to.have.length(1);
  });
});
