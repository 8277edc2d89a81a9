/**
 * Which of several loopback servers a process holds established TCP connections to, read from
 * /proc (Linux): the socket inodes among /proc/<pid>/fd, matched against /proc/net/tcp rows in
 * state ESTABLISHED whose remote end is 127.0.0.1:<port>. Used to find the server an agent is
 * talking to before killing it, instead of assuming it.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

const ESTABLISHED = '01';
/** 127.0.0.1 as /proc/net/tcp writes it (little-endian hex). */
const LOOPBACK_HEX = '0100007F';

function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      // The descriptor was closed while we looked.
    }
  }
  return out;
}

/** Established connections from `pid` to 127.0.0.1:<port>, counted by port. */
export function connectionsByPort(pid: number, ports: readonly number[]): Map<number, number> {
  const inodes = socketInodes(pid);
  const counts = new Map<number, number>(ports.map((p) => [p, 0]));
  const lines = readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1);
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== ESTABLISHED || !inodes.has(f[9]!)) continue;
    const [host, portHex] = f[2]!.split(':');
    const port = parseInt(portHex!, 16);
    if (host === LOOPBACK_HEX && counts.has(port)) counts.set(port, counts.get(port)! + 1);
  }
  return counts;
}
