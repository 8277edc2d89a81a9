/**
 * Exit codes and the one-line error report, decided in one place for every command:
 *   0 ok; 1 failure (unreachable, HTTP 5xx, refused write); 2 usage or config error.
 */
import { describeError, isMeshError } from '../core/index.js';
import { HttpStatusError } from '../client/index.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Bad command-line usage: the message is followed by a pointer to --help. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Bad input is a usage error (2): ours, or the server's 400/413 answer; the rest is 1. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT_USAGE;
  if (isMeshError(err) && err.kind === 'user') {
    if (!(err instanceof HttpStatusError)) return EXIT_USAGE;
    return err.status === 400 || err.status === 413 ? EXIT_USAGE : EXIT_FAILURE;
  }
  return EXIT_FAILURE;
}

/** The one line printed for an error, without a stack trace. */
export function errorLine(err: unknown): string {
  let text: string;
  if (err instanceof HttpStatusError) {
    text = `${err.method} ${err.path} failed with HTTP ${err.status}: ${err.message}`;
  } else {
    // A MeshError's code is for programs; people get its message.
    text = isMeshError(err) ? err.message : describeError(err);
  }
  return `Error: ${text.replace(/\s*\n\s*/g, ' ').trim()}`;
}
