/**
 * Flag values the acl commands check themselves, as usage errors (exit 2).
 */
import { parseDuration } from '../../../core/index.js';
import { UsageError } from '../../exit.js';

/** A repeatable string flag as yargs hands it over: absent, once, or several times. */
export function many(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  return typeof value === 'string' ? [value] : [...value];
}

/** A positive Go duration ("15m", "1h30m"); undefined passes. */
export function durationFlag(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) {
    throw new UsageError(
      `--${flag} must be a positive duration such as "15m" or "24h", got "${value}"`,
    );
  }
  return value.trim();
}
