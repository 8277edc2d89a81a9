import { randomUUID } from 'node:crypto';

/** A random UUID (session ids, node ids). */
export function newId(): string {
  return randomUUID();
}
