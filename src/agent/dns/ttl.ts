/**
 * Consul's `dns_config.service_ttl` lookup: an exact service name wins, then the longest
 * `prefix*` key, then `*`; no match means the default TTL.
 */
export function serviceTtlFor(
  ttls: Readonly<Record<string, number>> | undefined,
  service: string,
  fallback: number,
): number {
  if (!ttls) return fallback;
  const name = service.toLowerCase();
  let best: { length: number; ttl: number } | undefined;
  for (const [key, ttl] of Object.entries(ttls)) {
    const k = key.toLowerCase();
    if (!k.endsWith('*')) {
      if (k === name) return ttl;
      continue;
    }
    const prefix = k.slice(0, -1);
    if (name.startsWith(prefix) && (!best || prefix.length > best.length))
      best = { length: prefix.length, ttl };
  }
  return best?.ttl ?? fallback;
}
