/**
 * A small declarative schema: what keys a config object may hold, their types, which are
 * required, their aliases and extra checks. `decode` (decode.ts) applies a schema to a parsed
 * file and reports every problem with its position. Other parts of Trellis (agent settings, ACL
 * rules, config entries) define their own schemas with these builders.
 */

/** Returns an error message, or undefined when the value is fine. */
export type Check<T> = (value: T) => string | undefined;

/** How a value is read; each kind may carry an extra `check` run on the decoded value. */
export type FieldType =
  | { kind: 'string'; check?: Check<string> }
  /** Integers; numeric strings are accepted too, as Consul's weak decoding does. */
  | { kind: 'int'; check?: Check<number> }
  | { kind: 'bool'; check?: Check<boolean> }
  /** A Go duration string ("10s"); decoded values stay strings. */
  | { kind: 'duration'; check?: Check<string> }
  | { kind: 'list'; of: FieldType; check?: Check<unknown[]> }
  /** User-chosen keys (meta, headers) mapping to values of one type; keys are kept as written. */
  | { kind: 'map'; of: FieldType; checkKey?: Check<string>; maxPairs?: number }
  /** One nested object, written as a block `k { }` or a value `k = { }`. */
  | { kind: 'object'; schema: Schema }
  /** A repeatable block: several `k { }` blocks, or a list of objects. Decodes to an array. */
  | { kind: 'block'; schema: Schema }
  /** Any value, handed on as plain data without checks (proxy `config`). */
  | { kind: 'opaque' };

export interface FieldSpec {
  /** The canonical (snake_case) key. Keys match case-insensitively, ignoring underscores. */
  name: string;
  type: FieldType;
  /** The property name in the decoded output; defaults to `name`. */
  out?: string;
  required?: boolean;
  /** Other accepted spellings (`check_id` for `id`). */
  aliases?: readonly string[];
}

/** What an object-level check sees: the decoded values of one object and where they were. */
export interface ObjectView {
  /** Path of the object, as used in messages (`service.check`). */
  readonly path: string;
  /** True when the key was written (even if its value was invalid). */
  has(name: string): boolean;
  /** The decoded value, or undefined when absent or invalid. */
  get(name: string): unknown;
  /** Reports at the field's key when `name` is given and present, else at the object. */
  error(message: string, name?: string): void;
}

export interface Schema {
  fields: readonly FieldSpec[];
  /** Cross-field rules, run after the fields have been decoded. */
  check?: (view: ObjectView) => void;
}

export function schema(fields: readonly FieldSpec[], check?: Schema['check']): Schema {
  return check ? { fields, check } : { fields };
}

export function field(
  name: string,
  type: FieldType,
  opts: Omit<FieldSpec, 'name' | 'type'> = {},
): FieldSpec {
  return { name, type, ...opts };
}

export const t = {
  string: (check?: Check<string>): FieldType => ({ kind: 'string', check }),
  int: (check?: Check<number>): FieldType => ({ kind: 'int', check }),
  bool: (): FieldType => ({ kind: 'bool' }),
  duration: (check?: Check<string>): FieldType => ({ kind: 'duration', check }),
  listOf: (of: FieldType, check?: Check<unknown[]>): FieldType => ({ kind: 'list', of, check }),
  mapOf: (of: FieldType, checkKey?: Check<string>): FieldType => ({ kind: 'map', of, checkKey }),
  mapOfString: (
    checkValue?: Check<string>,
    checkKey?: Check<string>,
    maxPairs?: number,
  ): FieldType => ({
    kind: 'map',
    of: { kind: 'string', check: checkValue },
    checkKey,
    ...(maxPairs !== undefined ? { maxPairs } : {}),
  }),
  object: (s: Schema): FieldType => ({ kind: 'object', schema: s }),
  block: (s: Schema): FieldType => ({ kind: 'block', schema: s }),
  opaque: (): FieldType => ({ kind: 'opaque' }),
};
