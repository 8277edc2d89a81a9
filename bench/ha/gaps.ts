/**
 * What a client's stream of writes says about one failover: from the kill (`from`) to the end
 * of the round (`to`), the first successful write sent after the kill, the longest time
 * between successful answers (counting from the kill, and to the end of the window), and the
 * failures. Times are monotonic milliseconds.
 */

export interface OkWrite {
  sent: number;
  at: number;
}

export interface FailedWrite {
  at: number;
  why: string;
}

export interface ClientWindow {
  /** Kill to the answer of the first successful write sent after it; NaN when there was none. */
  firstOkMs: number;
  longestGapMs: number;
  errors: number;
  /** A few distinct failure messages. */
  errorSamples: string[];
}

export function clientWindow(
  oks: readonly OkWrite[],
  failures: readonly FailedWrite[],
  from: number,
  to: number,
): ClientWindow {
  const inside = oks.filter((o) => o.at > from && o.at <= to).sort((x, y) => x.at - y.at);
  let prev = from;
  let longest = 0;
  for (const o of inside) {
    longest = Math.max(longest, o.at - prev);
    prev = o.at;
  }
  longest = Math.max(longest, to - prev);
  // A write answered just after the kill may have been served by the killed server before it
  // died: the first write that counts is one sent after the kill.
  const first = inside.find((o) => o.sent >= from);
  const failed = failures.filter((f) => f.at > from && f.at <= to);
  return {
    firstOkMs: first ? first.at - from : Number.NaN,
    longestGapMs: longest,
    errors: failed.length,
    errorSamples: [...new Set(failed.map((f) => f.why))].slice(0, 3),
  };
}
