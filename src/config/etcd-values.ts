/**
 * Values of the etcd settings (`--etcd-endpoints`, `etcd { endpoints, prefix }`), checked the
 * same way whether they come from a flag or a config file.
 */
import type { Check } from './schema.js';

/** An etcd client URL: http(s)://host:port with nothing after the port. */
export const etcdEndpoint: Check<string> = (v) => {
  const bad = `invalid etcd endpoint ${JSON.stringify(v)}: use a client URL such as "https://10.0.0.5:2379"`;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return bad;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return bad;
  if (!/^[a-z]+:\/\/[^/?#@]+:\d{1,5}\/?$/i.test(v)) return bad;
  return undefined;
};

/** The key prefix: starts with "/", no trailing "/", printable and without spaces. */
export const etcdPrefix: Check<string> = (v) =>
  /^(\/[A-Za-z0-9._-]+)+$/.test(v)
    ? undefined
    : `invalid etcd prefix ${JSON.stringify(v)}: use a path such as "/trellis" (letters, digits, ".", "_", "-"; no trailing "/")`;

export const STORES = ['embedded', 'etcd'] as const;
export type StoreKind = (typeof STORES)[number];
