/**
 * Checks on flag values yargs cannot express, reported as usage errors (exit 2).
 */
import { UsageError } from './exit.js';

/** A flag that must be a non-negative safe integer (indexes, flags); undefined passes. */
export function nonNegativeInt(value: number | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new UsageError(`--${flag} must be a non-negative integer`);
  }
  return value;
}
