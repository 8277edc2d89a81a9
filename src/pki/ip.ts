/**
 * IP addresses as X.509 iPAddress SANs hold them: 4 or 16 raw bytes. Parsing is strict (no
 * leading zeros in IPv4, no zone ids) so one address has one spelling; formatting gives the
 * canonical text (dotted quad, or RFC 5952 compressed lower-case IPv6).
 */

const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HEXTET = /^[0-9a-fA-F]{1,4}$/;

function parseV4(text: string): Buffer | undefined {
  if (!V4.test(text)) return undefined;
  return Buffer.from(text.split('.').map(Number));
}

function parseV6(text: string): Buffer | undefined {
  if (text.length > 45) return undefined;
  let tail: Buffer | undefined;
  let body = text;
  // An embedded IPv4 tail (::ffff:1.2.3.4) fills the last two hextets.
  if (text.includes('.')) {
    const prefix = text.slice(0, text.lastIndexOf(':') + 1);
    tail = parseV4(text.slice(prefix.length));
    if (!tail) return undefined;
    body = prefix.endsWith('::') ? prefix : prefix.slice(0, -1);
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): string[] | undefined => {
    if (s === '') return [];
    const g = s.split(':');
    return g.every((h) => HEXTET.test(h)) ? g : undefined;
  };
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !rest) return undefined;
  const want = tail ? 6 : 8;
  const have = head.length + rest.length;
  if (halves.length === 1 ? have !== want : have >= want) return undefined;
  const all = [...head, ...Array<string>(want - have).fill('0'), ...rest];
  const out = Buffer.alloc(16);
  all.forEach((h, i) => out.writeUInt16BE(parseInt(h, 16), i * 2));
  if (tail) tail.copy(out, 12);
  return out;
}

/** The 4 or 16 bytes of an IP address, or undefined when `text` is not exactly one. */
export function parseIp(text: string): Buffer | undefined {
  return text.includes(':') ? parseV6(text) : parseV4(text);
}

/** Canonical text of 4 or 16 address bytes; undefined for any other length. */
export function formatIp(bytes: Buffer): string | undefined {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) return undefined;
  const words = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  // RFC 5952: compress the longest run (length >= 2) of zero words, the first on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The canonical spelling of an address, or undefined when it is not one. */
export function canonicalIp(text: string): string | undefined {
  const b = parseIp(text);
  return b && formatIp(b);
}
