/**
 * A monotonic clock that is the same across processes on this machine: process.hrtime.bigint()
 * reads CLOCK_MONOTONIC on Linux. A child reports raw nanoseconds; the parent turns them into
 * milliseconds on its own scale (relative to its first reading) with `monoMsOf`.
 */
const base = process.hrtime.bigint();

export function monoNs(): bigint {
  return process.hrtime.bigint();
}

/** Milliseconds since this process loaded the module. */
export function monoMs(): number {
  return Number(process.hrtime.bigint() - base) / 1e6;
}

/** A nanosecond reading (from any process on this machine) on this process's millisecond scale. */
export function monoMsOf(ns: bigint): number {
  return Number(ns - base) / 1e6;
}
