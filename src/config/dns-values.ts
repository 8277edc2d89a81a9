/**
 * Values of the agent's DNS settings that more than one place reads: recursor addresses (config
 * files, the --recursor flag, the forwarder), the DNS domain and service_ttl keys.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Check } from './schema.js';

export interface RecursorAddress {
  host: string;
  port: number;
}

/**
 * `1.2.3.4`, `1.2.3.4:5353`, `::1` or `[::1]:5353`; the port defaults to 53. Host names are
 * refused: resolving them would need the DNS being configured.
 */
export function parseRecursorAddress(text: string): RecursorAddress {
  const bad = (): Error =>
    new Error(
      `invalid recursor ${JSON.stringify(text)}: use an IP address with an optional port, such as "10.0.0.2", "10.0.0.2:53" or "[fd00::2]:53"`,
    );
  let host = text;
  let port = 53;
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  const v4 = /^([\d.]+):(\d{1,5})$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    if (!isIPv6(host)) throw bad();
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (v4) {
    host = v4[1]!;
    port = Number(v4[2]);
  }
  if (!isIPv4(host) && !isIPv6(host)) throw bad();
  if (port < 1 || port > 65535) throw bad();
  return { host, port };
}

export const recursorAddress: Check<string> = (v) => {
  try {
    parseRecursorAddress(v);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

const LABEL_RE = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** A DNS domain such as `consul` or `mesh.example.` (one trailing dot allowed). */
export const dnsDomain: Check<string> = (v) => {
  const name = v.endsWith('.') ? v.slice(0, -1) : v;
  const labels = name.split('.');
  if (name !== '' && name.length <= 253 && labels.every((l) => LABEL_RE.test(l))) return undefined;
  return `invalid domain ${JSON.stringify(v)}: use DNS labels (letters, digits, "-", "_") separated by dots, such as "consul"`;
};

/** A service_ttl key: a service name, a prefix ending in `*`, or `*` alone. */
export const serviceTtlKey: Check<string> = (v) =>
  /^[A-Za-z0-9._-]*\*?$/.test(v) && v !== ''
    ? undefined
    : `invalid service_ttl key ${JSON.stringify(v)}: use a service name, a prefix ending in "*", or "*"`;
