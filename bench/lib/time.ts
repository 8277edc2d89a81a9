/** Monotonic time in milliseconds and a sleep. */
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';

export const now = (): number => performance.now();

export function sleep(msValue: number): Promise<void> {
  return delay(msValue);
}

/** Polls `ready` every `everyMs` until it is true or `timeoutMs` passes; returns whether it was. */
export async function waitFor(
  ready: () => boolean,
  timeoutMs: number,
  everyMs = 20,
): Promise<boolean> {
  const until = now() + timeoutMs;
  while (!ready()) {
    if (now() > until) return false;
    await sleep(everyMs);
  }
  return true;
}
