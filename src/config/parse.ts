/**
 * One entry point for both syntaxes: picks HCL or JSON by file extension, or by content when the
 * name says nothing (text piped to the CLI).
 */
import type { ValueNode } from './ast.js';
import type { ParseError } from './diagnostics.js';
import { parseHcl } from './hcl.js';
import { parseJson } from './json.js';

export type ConfigFormat = 'hcl' | 'json';

export interface ParseResult {
  /** Undefined only when a JSON document could not be read at all. */
  root: ValueNode | undefined;
  format: ConfigFormat;
  errors: ParseError[];
}

/** The format a file name implies, or what the text looks like: JSON documents open with `{`. */
export function detectFormat(text: string, fileName: string): ConfigFormat {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.hcl')) return 'hcl';
  return /^\uFEFF?\s*[{[]/.test(text) ? 'json' : 'hcl';
}

export function parseConfigText(
  text: string,
  fileName: string,
  format?: ConfigFormat,
): ParseResult {
  const fmt = format ?? detectFormat(text, fileName);
  const { root, errors } = fmt === 'json' ? parseJson(text, fileName) : parseHcl(text, fileName);
  return { root, format: fmt, errors };
}
