/**
 * Our own code against the libraries that could replace it (docs/architecture.md, "Dependencies
 * and why"). Everything runs in this process; no server is started.
 *
 *  1. Regular expressions (L7 intentions' PathRegex and Header Regex, config entries' regexes,
 *     ?filter= `matches`): compile time and full-match time on the patterns intentions use,
 *     hostile patterns on long subjects (time, and heap kept by the compiled matcher after a
 *     full garbage collection), and how each engine answers what RE2 does not accept.
 *     Engines: core/re2's compileRegex (whatever backs it), re2js used directly, and V8's
 *     RegExp as the backtracking baseline (ordinary patterns only: it would not finish the
 *     hostile ones).
 *  2. DNS wire format: parsing a query and encoding a three-record response with our codec
 *     (agent/dns/wire.ts) and with dns-packet; response sizes (name compression); hostile packets
 *     (what each decoder does with them) and random packets.
 *
 * BENCH_LIB_MS (1000)       time per speed row
 * BENCH_LIB_HOSTILE (100000) subject length for the hostile regex rows
 */
import dnsPacket, { type Packet } from 'dns-packet';
import { RE2JS } from 're2js';
import vm from 'node:vm';
import v8 from 'node:v8';
import {
  decodeResponse,
  encodeQuery,
  encodeResponse,
  parseQuery,
  QTYPE,
  type Response,
} from '../src/agent/dns/wire.js';
import { compileFullMatch } from '../src/policy/intentions.js';
import { fuzzedDnsQueries } from '../test/helpers/dns-fuzz.js';
import type { Benchmark, Log } from './lib/benchmark.js';
import { envInt } from './lib/config.js';
import { bytes, int, ms, table } from './lib/format.js';
import { now } from './lib/time.js';

type Test = (subject: string) => boolean;

interface RegexEngine {
  name: string;
  /** A full-match tester, or the reason the pattern was refused. */
  compile(pattern: string): Test | string;
  hostile: boolean;
}

const full = (p: string): string => `^(?:${p})$`;
const reason = (e: unknown): string => (e instanceof Error ? e.message : String(e));

const ENGINES: RegexEngine[] = [
  {
    name: 'Trellis (compileFullMatch)',
    hostile: true,
    compile(p) {
      const r = compileFullMatch(p);
      return r.ok ? r.test : r.reason;
    },
  },
  {
    name: 're2js (direct)',
    hostile: true,
    compile(p) {
      try {
        // matches() is re2js's anchored whole-input test (its DFA, no captures).
        const re = RE2JS.compile(p);
        return (s) => re.matches(s);
      } catch (e) {
        return reason(e);
      }
    },
  },
  {
    name: 'V8 RegExp (backtracking)',
    hostile: false,
    compile(p) {
      try {
        // V8 (Node 20) has no inline flags: a leading (?i) becomes the i flag.
        const i = p.startsWith('(?i)');
        const re = new RegExp(full(i ? p.slice(4) : p), i ? 'ui' : 'u');
        return (s) => re.test(s);
      } catch (e) {
        return reason(e);
      }
    },
  },
];

/** Patterns of the kind intentions and config entries carry, with a subject each. */
const ORDINARY: Array<[string, string]> = [
  ['/api/v[0-9]+/users/[^/]+', '/api/v2/users/8f14e45f-ceea-467f-a0e6-0c4a7e2e9a1b'],
  ['/(health|ready|live)z?', '/readyz'],
  ['Bearer [A-Za-z0-9._~+/-]+=*', 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ3ZWIifQ.c2lnbmF0dXJl'],
  ['(?i)application/(json|grpc)(;.*)?', 'Application/JSON; charset=utf-8'],
  ['web-[0-9]+\\.(dc1|dc2)', 'web-17.dc2'],
];

/**
 * Patterns that make backtracking engines explode, or that build many automaton states, each on
 * a subject that holds the literals the pattern needs (so no literal prefilter can skip the work)
 * and does not match as a whole.
 */
function hostile(n: number): Array<[string, string, string]> {
  const a = 'a'.repeat(n);
  let ab = '';
  let seed = 7;
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    ab += i % 10 === 9 ? 'c' : seed & 0x10000 ? 'a' : 'b';
  }
  return [
    ['(a*)*b', `${a}ba`, `'a' x ${n}, 'ba'`],
    ['(x+x+)+y', `${'x'.repeat(n)}yx`, `'x' x ${n}, 'yx'`],
    ['.*.*.*.*.*.*.*.*!', `${a}!a`, `'a' x ${n}, '!a'`],
    ['[ab]*a[ab]{15}c', ab, `a/b at random, 'c' every 10th, ${n}`],
    ['(?:\\w?){600}x', `${a.slice(0, 2000)}x`, `'a' x 2000, 'x'`],
    ['(((((((((((a)*)*)*)*)*)*)*)*)*)*)*b', `${a}ba`, `'a' x ${n}, 'ba'`],
  ];
}

/** What RE2 (Go's regexp, which Consul uses) refuses; each engine should refuse it clearly. */
const REFUSED: string[] = [
  '(a)\\1',
  'a(?=b)',
  '(?<!a)b',
  'a{1001}',
  '(?:a{1000}){3}',
  '((((a{100}){100}){100}){100})',
  '('.repeat(128) + 'a' + ')'.repeat(128),
  'a'.repeat(300),
];

export interface SpeedRow {
  engine: string;
  what: string;
  perSecond: number;
  nsPer: number;
}

export interface HostileRow {
  engine: string;
  pattern: string;
  subject: string;
  msTotal: number;
  retained: number;
  outcome: string;
}

export interface RefusalRow {
  pattern: string;
  answers: string[];
}

export interface DnsHostileRow {
  packet: string;
  ours: string;
  dnsPacket: string;
}

export interface LibrariesResult {
  regexSpeed: SpeedRow[];
  regexHostile: HostileRow[];
  refusals: RefusalRow[];
  engines: string[];
  dnsSpeed: SpeedRow[];
  dnsSizes: Array<{ what: string; ours: number; dnsPacket: number }>;
  dnsHostile: DnsHostileRow[];
  dnsFuzz: Array<{ codec: string; packets: number; ms: number; thrown: string }>;
}

/** Calls `fn` repeatedly for about `budgetMs` and returns calls per second. */
function rate(budgetMs: number, fn: () => void): number {
  for (let i = 0; i < 200; i++) fn(); // warm up
  let calls = 0;
  const start = now();
  let elapsed = 0;
  while (elapsed < budgetMs) {
    for (let i = 0; i < 100; i++) fn();
    calls += 100;
    elapsed = now() - start;
  }
  return (calls * 1000) / elapsed;
}

// A full collection before reading the heap, so kept memory is what the matcher holds.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function regexSpeed(budget: number): SpeedRow[] {
  const rows: SpeedRow[] = [];
  for (const e of ENGINES) {
    let i = 0;
    const compileRate = rate(budget, () => {
      const [p] = ORDINARY[i++ % ORDINARY.length];
      if (typeof e.compile(p) === 'string') throw new Error(`${e.name} refused ${p}`);
    });
    rows.push({
      engine: e.name,
      what: 'compile',
      perSecond: compileRate,
      nsPer: 1e9 / compileRate,
    });
    const tests = ORDINARY.map(([p, s]) => {
      const t = e.compile(p);
      if (typeof t === 'string') throw new Error(`${e.name} refused ${p}`);
      if (!t(s)) throw new Error(`${e.name}: ${p} does not match ${s}`);
      return (): boolean => t(s);
    });
    let k = 0;
    const matchRate = rate(budget, () => {
      tests[k++ % tests.length]();
    });
    rows.push({ engine: e.name, what: 'full match', perSecond: matchRate, nsPer: 1e9 / matchRate });
  }
  return rows;
}

function regexHostile(n: number, log: Log): HostileRow[] {
  const rows: HostileRow[] = [];
  for (const [pattern, subject, label] of hostile(n)) {
    for (const e of ENGINES.filter((x) => x.hostile)) {
      const before = heapAfterGc();
      const start = now();
      const t = e.compile(pattern);
      let outcome: string;
      if (typeof t === 'string') outcome = `refused: ${t}`;
      else outcome = t(subject) ? 'match' : 'no match';
      const msTotal = now() - start;
      const retained = heapAfterGc() - before;
      rows.push({ engine: e.name, pattern, subject: label, msTotal, retained, outcome });
      log(`regex ${e.name} ${pattern}: ${ms(msTotal)} ms, ${outcome}`);
      // Keep `t` alive until after the second heap reading.
      if (typeof t === 'function' && t.length < 0) log('unreachable');
    }
  }
  return rows;
}

function refusals(): RefusalRow[] {
  return REFUSED.map((p) => ({
    pattern: p.length > 40 ? `${p.slice(0, 20)}... (${p.length} chars)` : p,
    answers: ENGINES.map((e) => {
      try {
        const t = e.compile(p);
        return typeof t === 'string' ? `refused: ${t}` : 'accepted';
      } catch (err) {
        return `threw ${reason(err)}`;
      }
    }),
  }));
}

// ---------------------------------------------------------------------------------------------
// DNS

const RECORDS: Response = {
  rcode: 0,
  authoritative: true,
  answers: [1, 2, 3].map((i) => ({
    name: 'web.service.consul.',
    type: 'A' as const,
    ttl: 0,
    address: `10.0.0.${i}`,
  })),
  authority: [],
  additional: [],
};

function packetResponse(id: number, name: string): Packet {
  return {
    type: 'response',
    id,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: 'A', class: 'IN' }],
    answers: [1, 2, 3].map((i) => ({
      name,
      type: 'A' as const,
      class: 'IN' as const,
      ttl: 0,
      data: `10.0.0.${i}`,
    })),
  };
}

function dnsSpeed(budget: number): SpeedRow[] {
  const query = encodeQuery(0x1234, 'web.service.consul', QTYPE.A);
  const q = parseQuery(query);
  const rows: SpeedRow[] = [];
  const add = (engine: string, what: string, fn: () => void): void => {
    const r = rate(budget, fn);
    rows.push({ engine, what, perSecond: r, nsPer: 1e9 / r });
  };
  add('agent/dns/wire.ts', 'parse query', () => parseQuery(query));
  add('dns-packet', 'parse query', () => dnsPacket.decode(query));
  add('agent/dns/wire.ts', 'encode 3 A answers', () => encodeResponse(q, RECORDS));
  add('dns-packet', 'encode 3 A answers', () =>
    dnsPacket.encode(packetResponse(0x1234, 'web.service.consul')),
  );
  return rows;
}

function dnsSizes(): LibrariesResult['dnsSizes'] {
  const q = parseQuery(encodeQuery(1, 'web.service.consul', QTYPE.A));
  const many: Response = {
    ...RECORDS,
    answers: Array.from({ length: 20 }, (_, i) => ({
      name: 'web.service.consul.',
      type: 'A' as const,
      ttl: 0,
      address: `10.0.0.${i}`,
    })),
  };
  const manyPacket = packetResponse(1, 'web.service.consul');
  manyPacket.answers = many.answers.map((a) => ({
    name: a.name,
    type: 'A' as const,
    class: 'IN' as const,
    ttl: 0,
    data: a.type === 'A' ? a.address : '',
  }));
  return [
    {
      what: '3 A answers',
      ours: encodeResponse(q, RECORDS).length,
      dnsPacket: dnsPacket.encode(packetResponse(1, 'web.service.consul')).length,
    },
    {
      what: '20 A answers',
      ours: encodeResponse(q, many, 4096).length,
      dnsPacket: dnsPacket.encode(manyPacket).length,
    },
  ];
}

function header(qd: number, an = 0, ns = 0, ar = 0): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(1, 0);
  b.writeUInt16BE(0x0100, 2);
  b.writeUInt16BE(qd, 4);
  b.writeUInt16BE(an, 6);
  b.writeUInt16BE(ns, 8);
  b.writeUInt16BE(ar, 10);
  return b;
}
const QTAIL = Buffer.from([0, 1, 0, 1]);
const label = (n: number, byte = 0x61): Buffer =>
  Buffer.concat([Buffer.from([n]), Buffer.alloc(n, byte)]);

const HOSTILE_PACKETS: Array<[string, Buffer]> = [
  ['11 octets', Buffer.alloc(11)],
  ['pointer to itself', Buffer.concat([header(1), Buffer.from([0xc0, 12]), QTAIL])],
  [
    'pointer loop a -> b -> a',
    Buffer.concat([header(1), Buffer.from([1, 0x61, 0xc0, 16, 1, 0x62, 0xc0, 12]), QTAIL]),
  ],
  ['pointer truncated', Buffer.concat([header(1), Buffer.from([0xc0])])],
  ['label of 64 octets', Buffer.concat([header(1), label(64), Buffer.from([0]), QTAIL])],
  [
    '300-octet name',
    Buffer.concat([
      header(1),
      label(63),
      label(63),
      label(63),
      label(63),
      label(40),
      Buffer.from([0]),
      QTAIL,
    ]),
  ],
  ['question without type/class', Buffer.concat([header(1), label(3), Buffer.from([0, 0, 1])])],
  ['qdcount 5, one question', Buffer.concat([header(5), Buffer.from([0]), QTAIL])],
  ['arcount 65535, no records', Buffer.concat([header(1, 0, 0, 0xffff), Buffer.from([0]), QTAIL])],
  [
    "label containing '.' (a.b vs a, b)",
    Buffer.concat([header(1), Buffer.from([3, 0x61, 0x2e, 0x62, 0]), QTAIL]),
  ],
  [
    'label with invalid UTF-8 (0xff)',
    Buffer.concat([header(1), label(2, 0xff), Buffer.from([0]), QTAIL]),
  ],
];

function describeOutcome(fn: () => unknown): string {
  try {
    const v = fn() as { name?: string; questions?: Array<{ name: string }> };
    const name = v.questions ? v.questions[0]?.name : v.name;
    return `parsed${name !== undefined ? ` (name ${JSON.stringify(name)})` : ''}`;
  } catch (e) {
    const n = e instanceof Error ? e.name : typeof e;
    return `${n}: ${reason(e)}`;
  }
}

function dnsHostile(): DnsHostileRow[] {
  return HOSTILE_PACKETS.map(([packet, buf]) => ({
    packet,
    ours: describeOutcome(() => parseQuery(buf)),
    dnsPacket: describeOutcome(() => dnsPacket.decode(buf)),
  }));
}

function dnsFuzz(): LibrariesResult['dnsFuzz'] {
  const packets = fuzzedDnsQueries(20000);
  const run = (
    codec: string,
    decode: (b: Buffer) => unknown,
  ): LibrariesResult['dnsFuzz'][number] => {
    const kinds = new Map<string, number>();
    const start = now();
    for (const p of packets) {
      try {
        decode(p);
      } catch (e) {
        const n = e instanceof Error ? e.name : typeof e;
        kinds.set(n, (kinds.get(n) ?? 0) + 1);
      }
    }
    const other = [...kinds].map(([k, v]) => `${k} x ${v}`).join(', ');
    return { codec, packets: packets.length, ms: now() - start, thrown: other || 'none' };
  };
  return [
    run('agent/dns/wire.ts parseQuery', parseQuery),
    run('agent/dns/wire.ts decodeResponse', decodeResponse),
    run('dns-packet decode', (b) => dnsPacket.decode(b)),
  ];
}

export const libraries: Benchmark<LibrariesResult> = {
  name: 'libraries',
  title: 'our regex and DNS code against re2js and dns-packet',
  async run(log) {
    const budget = envInt('BENCH_LIB_MS', 1000);
    const n = envInt('BENCH_LIB_HOSTILE', 100_000);
    log('regex: compile and match speed');
    const regexSpeedRows = regexSpeed(budget);
    log('regex: hostile patterns');
    const regexHostileRows = regexHostile(n, log);
    log('dns: speed, sizes, hostile packets');
    return {
      regexSpeed: regexSpeedRows,
      regexHostile: regexHostileRows,
      refusals: refusals(),
      engines: ENGINES.map((e) => e.name),
      dnsSpeed: dnsSpeed(budget),
      dnsSizes: dnsSizes(),
      dnsHostile: dnsHostile(),
      dnsFuzz: dnsFuzz(),
    };
  },
  render(r) {
    const speed = (rows: SpeedRow[]): string =>
      table(
        [
          { title: 'implementation' },
          { title: 'operation' },
          { title: 'per second', align: 'right' },
          { title: 'ns each', align: 'right' },
        ],
        rows.map((x) => [x.engine, x.what, int(x.perSecond), int(x.nsPer)]),
      );
    return [
      '### Regular expressions',
      '',
      `Compile and full match (the whole subject, as intentions match) over ${ORDINARY.length} ` +
        'patterns of the kind intentions carry (path, bearer header, content type, names). ' +
        '"Trellis (compileFullMatch)" is what intentions call: re2js behind the core/re2 adapter ' +
        'since M5 (the figures of the matcher it replaced are in docs/architecture.md).',
      '',
      speed(r.regexSpeed),
      '',
      'Hostile patterns: compile plus one match, and the heap the compiled matcher keeps ' +
        'afterwards (after a full garbage collection).',
      '',
      table(
        [
          { title: 'engine' },
          { title: 'pattern' },
          { title: 'subject' },
          { title: 'ms', align: 'right' },
          { title: 'heap kept', align: 'right' },
          { title: 'result' },
        ],
        r.regexHostile.map((x) => [
          x.engine,
          `\`${x.pattern}\``,
          x.subject,
          ms(x.msTotal),
          bytes(Math.max(0, x.retained)),
          x.outcome,
        ]),
      ),
      '',
      'What RE2 refuses, as each engine answers it:',
      '',
      table(
        [{ title: 'pattern' }, ...r.engines.map((e) => ({ title: e }))],
        r.refusals.map((x) => [`\`${x.pattern}\``, ...x.answers]),
      ),
      '',
      '### DNS wire format',
      '',
      speed(r.dnsSpeed),
      '',
      table(
        [
          { title: 'response' },
          { title: 'agent/dns/wire.ts (bytes)', align: 'right' },
          { title: 'dns-packet (bytes)', align: 'right' },
        ],
        r.dnsSizes.map((x) => [x.what, int(x.ours), int(x.dnsPacket)]),
      ),
      '',
      'Hostile queries, as each decoder answers them:',
      '',
      table(
        [
          { title: 'packet' },
          { title: 'agent/dns/wire.ts parseQuery' },
          { title: 'dns-packet decode' },
        ],
        r.dnsHostile.map((x) => [x.packet, x.ours, x.dnsPacket]),
      ),
      '',
      'The same 20,000 random and mutated packets as test/unit/dns/wire.test.ts:',
      '',
      table(
        [
          { title: 'decoder' },
          { title: 'packets', align: 'right' },
          { title: 'ms', align: 'right' },
          { title: 'what it threw (by error name)' },
        ],
        r.dnsFuzz.map((x) => [x.codec, int(x.packets), ms(x.ms), x.thrown]),
      ),
    ].join('\n');
  },
};
