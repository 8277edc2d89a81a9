/** Certificate times carry whole seconds; keep ours that way so reported times match the DER. */

export const CLOCK_SKEW_MS = 60_000;

export function floorToSecond(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** RFC 3339 without fractional seconds ("2026-01-02T03:04:05Z"), as Consul's JSON has it. */
export function isoSeconds(d: Date): string {
  return floorToSecond(d).toISOString().replace('.000Z', 'Z');
}

export function minDate(...dates: Date[]): Date {
  return new Date(Math.min(...dates.map((d) => d.getTime())));
}
