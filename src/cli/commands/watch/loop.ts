/**
 * The shared body of the watch commands: print the current value, then every change, until
 * the user interrupts. Failing before the first value ends the command (the address or
 * query is likely wrong); later failures are reported and retried with backoff.
 */
import { formatDuration } from '../../../core/index.js';
import type { WatchFetch } from '../../../client/index.js';
import type { CommandEnv } from '../../context.js';
import { EXIT_OK, errorLine } from '../../exit.js';
import { formatJsonLine } from '../../output.js';

export interface WatchOutput<T> {
  /**
   * The value is a batch of new items (events), not a whole new state: text is printed as it
   * is, with no separator, and JSON as one line per item.
   */
  items: (value: T) => unknown[];
}

export async function runWatch<T>(
  env: CommandEnv,
  fetch: WatchFetch<T>,
  render: (value: T) => string,
  stream?: WatchOutput<T>,
): Promise<number> {
  const stop = new AbortController();
  const onInterrupt = () => stop.abort();
  env.signal.addEventListener('abort', onInterrupt, { once: true });
  if (env.signal.aborted) stop.abort();
  let shown = 0;
  let firstError: unknown;
  try {
    await env.client.watch(
      fetch,
      (value) => {
        if (stream) {
          if (env.format === 'json')
            for (const item of stream.items(value)) env.io.stdout(formatJsonLine(item));
          else env.io.stdout(render(value));
        } else if (env.format === 'json') {
          env.io.stdout(formatJsonLine(value));
        } else {
          // A blank line between tables keeps successive values apart.
          env.io.stdout((shown > 0 ? '\n' : '') + render(value));
        }
        shown++;
      },
      {
        signal: stop.signal,
        onError: (err, delayMs) => {
          if (shown === 0) {
            firstError = err;
            stop.abort();
            return;
          }
          env.io.stderr(`${errorLine(err)} (retrying in ${formatDuration(delayMs)})\n`);
        },
      },
    );
  } finally {
    env.signal.removeEventListener('abort', onInterrupt);
  }
  if (firstError !== undefined) throw firstError;
  return EXIT_OK;
}
