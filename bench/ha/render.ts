/** The `ha` section of docs/benchmarks.md: three tables, each with how to read it. */
import { int, ms, table } from '../lib/format.js';
import type { HaResult } from '../ha.js';
import type { FailoverRound } from './failover.js';
import type { WakeRow } from './wake.js';
import type { WriteRow } from './writes.js';

const pct = (v: number | undefined): string => (v === undefined ? '-' : `${Math.round(v)}%`);

function writesTable(rows: readonly WriteRow[]): string {
  return table(
    [
      { title: 'Store, servers' },
      { title: 'Writers', align: 'right' },
      { title: 'Writes', align: 'right' },
      { title: 'Errors', align: 'right' },
      { title: 'Writes/s', align: 'right' },
      { title: 'p50 ms', align: 'right' },
      { title: 'p99 ms', align: 'right' },
      { title: 'Trellis CPU', align: 'right' },
      { title: 'etcd CPU', align: 'right' },
      { title: 'Client CPU', align: 'right' },
    ],
    rows.map((w) => [
      w.layout,
      String(w.writers),
      int(w.ops),
      int(w.errors),
      int(w.perSecond),
      ms(w.latency.p50),
      ms(w.latency.p99),
      pct(w.cpu.trellis),
      pct(w.cpu.etcd),
      pct(w.cpu.client),
    ]),
  );
}

function wakeTable(rows: readonly WakeRow[]): string {
  return table(
    [
      { title: 'Store' },
      { title: 'Watch on' },
      { title: 'Write to' },
      { title: 'Samples', align: 'right' },
      { title: 'Write ack p50 ms', align: 'right' },
      { title: 'Wake p50 ms', align: 'right' },
      { title: 'Wake p90 ms', align: 'right' },
      { title: 'Wake p99 ms', align: 'right' },
      { title: 'Wake max ms', align: 'right' },
      { title: 'Errors', align: 'right' },
    ],
    rows.map((w) => [
      w.layout,
      w.watchOn,
      w.writeTo,
      int(w.samples),
      ms(w.writeAck.p50),
      ms(w.wake.p50),
      ms(w.wake.p90),
      ms(w.wake.p99),
      ms(w.wake.max),
      int(w.errors),
    ]),
  );
}

function failoverTable(rows: readonly FailoverRound[]): string {
  return table(
    [
      { title: 'Round', align: 'right' },
      { title: 'Killed (SIGKILL)' },
      { title: "Agent's connections" },
      { title: "Client's connections" },
      { title: 'Agent: registered and visible, ms', align: 'right' },
      { title: 'Attempts', align: 'right' },
      { title: 'Client: first write after kill, ms', align: 'right' },
      { title: 'Client: longest gap, ms', align: 'right' },
      { title: 'Client: failed writes', align: 'right' },
      { title: 'Restart caught up, ms', align: 'right' },
    ],
    rows.map((r) => [
      String(r.round),
      `${r.killed}${r.chosenBy === 'order' ? ' (by order)' : ''}`,
      r.agentWasOn,
      r.clientWasOn,
      ms(r.agentMs),
      int(r.agentAttempts),
      ms(r.clientFirstOkMs),
      ms(r.clientLongestGapMs),
      int(r.clientErrors),
      ms(r.restartMs),
    ]),
  );
}

export function renderHa(r: HaResult): string {
  const errors = [
    ...r.writes.flatMap((w) =>
      w.errorSamples.map((e) => `- writes, ${w.layout}, ${w.writers} writer(s): ${e}`),
    ),
    ...r.wakes.flatMap((w) =>
      w.errorSamples.map((e) => `- wake, ${w.layout}, ${w.watchOn}/${w.writeTo}: ${e}`),
    ),
    ...r.failover.rounds.flatMap((f) =>
      f.clientErrorSamples.map((e) => `- failover round ${f.round}, client: ${e}`),
    ),
  ];
  const early = r.wakes.filter((w) => w.early > 0);
  return [
    'Everything runs on this machine in one run, on 127.0.0.1, each layout with fresh data dirs: ' +
      'one `trellis server` with the embedded store (the baseline), a fresh three-member etcd ' +
      "(Debian's `etcd`, every member on this machine and its disk) with one `trellis server " +
      "--store etcd`, and another fresh three-member etcd with three servers. So etcd's three " +
      'members, the Trellis servers and the client share the cores and the disk: on separate ' +
      "hosts etcd's members would not compete with each other, and its commits would pay a " +
      'network round trip instead.',
    '',
    '### Write throughput',
    '',
    `Closed-loop writers (each sends its next write when the last is answered) PUT distinct KV ` +
      `keys with 100-byte values for ${r.durationMs / 1000} s after a warm-up; with three ` +
      'servers, writer w sends every write to server w mod 3 (so 1 writer uses one server ' +
      'while the other two still apply every write through their etcd watch).',
    '',
    writesTable(r.writes),
    '',
    'Read it this way: a write is answered once it is durable (the embedded store fsyncs its ' +
      'log; etcd commits on two of three members, each fsyncing) and applied by the server ' +
      'that took it, so at 1 writer the latency is the cost of one commit and writes/s is its ' +
      'inverse; 16 writers show how well each store batches concurrent commits. CPU columns ' +
      'are % of one core over the measurement (Trellis and etcd summed over their processes, ' +
      "the client is this benchmark's process). Their sum against the machine's " +
      `${r.cores * 100}% (${r.cores} cores) says whether CPU was the limit and which party used ` +
      'it; all of them low with writes queued means everyone was waiting (on fsync, or for the ' +
      "machine's other processes: see the machine CPU figure above).",
    '',
    '### Blocking-query wake latency',
    '',
    'A watcher holds `GET /v1/kv/<key>?index=N&wait=30s` on one server; after it has been ' +
      'parked 60 ms, the key is written on the "Write to" server. Wake is the time from just ' +
      "before that write is sent until the watcher's answer arrives (headers parsed), so it " +
      'includes the write\'s own commit; "Write ack" is the write\'s round trip as its sender saw it.',
    '',
    wakeTable(r.wakes),
    '',
    'Read it this way: on the embedded store and on etcd with the watcher on the server that ' +
      "took the write, wake is about the write's commit plus answering the watcher, so it " +
      'tracks "Write ack". With the watcher on another server, the write is applied there when ' +
      "etcd's watch delivers it to that server, which does not wait for the writing server: " +
      'the difference between the two etcd rows is the cost of that delivery.',
    ...(early.length
      ? [
          '',
          `Watchers that answered before their write (samples redone): ${early.map((w) => `${w.watchOn}/${w.writeTo} ${w.early}`).join(', ')}.`,
        ]
      : []),
    '',
    '### Agent failover',
    '',
    'One `trellis agent` knows the three etcd-backed servers (`--server` three times), and a ' +
      'client (`src/client`, all three addresses) writes a KV key every ' +
      `${r.failover.probeEveryMs} ms throughout. Each round SIGKILLs the server the agent is ` +
      'connected to: the one it holds established connections to (read from /proc just ' +
      'before the kill, listed with their number for the agent and the client; with several, ' +
      'the one with the most; "(by order)" when none was seen), then ' +
      "registers a new service through the agent's API (`PUT /v1/agent/service/register`, " +
      'answered once the catalog has it) until one answered 200 is listed by both surviving ' +
      'servers (checked every 25 ms), and finally restarts the killed server on its address ' +
      'and data dir.',
    '',
    failoverTable(r.failover.rounds),
    '',
    'Read it this way: "Agent: registered and visible" is the agent\'s failover time as an ' +
      'application sees it, from the kill to a registration that reached the catalog (a ' +
      "SIGKILLed server's sockets are closed by the kernel, so the agent's next request is " +
      'refused at once and it moves to the next server in its list). The client columns are ' +
      'the same for an API client: the answer to its first successful write sent after the ' +
      'kill, and the longest time between successful answers from the kill to the end of the ' +
      'round. A write sent to the killed server over a connection it had open ends in a reset ' +
      'after it was sent; the client does not send a write twice when it may have been applied, so ' +
      'that write fails and counts in "failed writes" (the caller decides whether to retry). ' +
      '"Restart caught up" is how long the ' +
      'killed server took to start again and load the catalog from etcd.',
    ...(errors.length ? ['', 'Errors seen (first few):', '', ...errors] : []),
  ].join('\n');
}
