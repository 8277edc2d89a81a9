/** How long a drain waits by default (the drain endpoint, `trellis agent drain`, SIGTERM). */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/** How long the catalog change is given to reach callers before listeners close. */
export const DEFAULT_DRAIN_GRACE_MS = 2_000;
