/**
 * Defaults the `trellis` entry point shows in --help before it loads a daemon's code (each
 * daemon is imported only when it runs, so an agent does not carry the server's modules).
 */
import { availableParallelism } from 'node:os';

/** `proxy_workers` unset: one worker per core, at most 8. */
export function defaultProxyWorkers(): number {
  return Math.min(8, availableParallelism());
}

/** Where `trellis proxy` listens for its agent, and where the agent looks for it. */
export const DEFAULT_DATA_PLANE_SOCKET = '/run/trellis/data-plane.sock';
