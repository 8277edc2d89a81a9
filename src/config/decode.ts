/**
 * Applies a Schema to a parsed file: checks every key and value, reports all problems at once
 * (each at the position of the offending key or value), and builds plain output objects keyed by
 * each field's `out` name. The output is meaningful only when no errors were reported.
 */
import { parseDuration } from '../core/index.js';
import { controlCharProblem } from '../api/text-rules.js';
import {
  describeNode,
  toPlain,
  type Entry,
  type ObjectNode,
  type Position,
  type ValueNode,
} from './ast.js';
import { Reporter, sortDiagnostics, type ConfigDiagnostic } from './diagnostics.js';
import type { FieldSpec, FieldType, ObjectView, Schema } from './schema.js';
import { closest, normalizeKey } from '../core/suggest.js';

export interface DecodeOptions {
  /** File name used in diagnostics. */
  file: string;
  /** Path prefix for messages when decoding a part of a larger document. */
  path?: string;
}

export interface DecodeResult<T> {
  value: T;
  errors: ConfigDiagnostic[];
  /** Where each decoded object was written (its block key, or its `{`), for later checks. */
  positions: WeakMap<object, Position>;
}

/**
 * Decodes `root` with `schema`. `T` is the caller's statement of what the schema produces; the
 * schema, not the compiler, guarantees it.
 */
export function decode<T = Record<string, unknown>>(
  root: ValueNode | undefined,
  s: Schema,
  opts: DecodeOptions,
): DecodeResult<T> {
  const reporter = new Reporter(opts.file);
  const decoder = new Decoder(reporter);
  const path = opts.path ?? '';
  let value: Record<string, unknown> = {};
  if (root?.kind === 'object') {
    value = decoder.object(root, s, path, root.pos);
  } else if (root) {
    reporter.error(
      root.pos,
      path,
      `expected an object at the top level, got ${describeNode(root)}`,
    );
  }
  return {
    value: value as T,
    errors: sortDiagnostics(reporter.diagnostics),
    positions: decoder.positions,
  };
}

/** Appends a key to a dotted path; keys that are not plain words are quoted. */
export function joinPath(path: string, key: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path ? `${path}.${key}` : key;
}

const INVALID = Symbol('invalid');
type Decoded = unknown;

function at(p: Position): string {
  return `${p.line}:${p.column}`;
}

/** The value an entry stands for: `a "x" "y" { }` is `a = { x = { y = { } } }`. */
function entryValue(e: Entry): ValueNode {
  if (e.labels.length === 0) return e.value;
  const [first, ...rest] = e.labels;
  const inner: Entry = {
    key: first!.value,
    keyPos: first!.pos,
    labels: rest,
    value: e.value,
    block: true,
  };
  return { kind: 'object', entries: [inner], pos: first!.pos };
}

interface Pair {
  key: string;
  keyPos: Position;
  value: ValueNode;
}

class Decoder {
  readonly positions = new WeakMap<object, Position>();

  constructor(private readonly reporter: Reporter) {}

  object(node: ObjectNode, s: Schema, path: string, pos: Position): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.positions.set(out, pos);
    const lookup = new Map<string, FieldSpec>();
    for (const f of s.fields) {
      for (const name of [f.name, ...(f.aliases ?? [])]) lookup.set(normalizeKey(name), f);
    }
    const groups = new Map<FieldSpec, Entry[]>();
    for (const e of node.entries) {
      const f = lookup.get(normalizeKey(e.key));
      if (!f) {
        this.unknownKey(e, s, path);
      } else if (e.value.kind !== 'null') {
        // null means "not set", as in Consul's JSON.
        groups.set(f, [...(groups.get(f) ?? []), e]);
      }
    }
    for (const f of s.fields) {
      const entries = groups.get(f);
      if (!entries) {
        if (f.required) this.reporter.error(pos, joinPath(path, f.name), 'missing required key');
        continue;
      }
      const v = this.field(f, entries, path);
      if (v !== INVALID) out[f.out ?? f.name] = v;
    }
    if (s.check) s.check(this.view(s, groups, out, path, pos));
    return out;
  }

  private view(
    s: Schema,
    groups: Map<FieldSpec, Entry[]>,
    out: Record<string, unknown>,
    path: string,
    pos: Position,
  ): ObjectView {
    const spec = (name: string): FieldSpec | undefined => s.fields.find((f) => f.name === name);
    return {
      path,
      has: (name) => {
        const f = spec(name);
        return f !== undefined && groups.has(f);
      },
      get: (name) => {
        const f = spec(name);
        return f ? out[f.out ?? f.name] : undefined;
      },
      error: (message, name) => {
        if (name === undefined) return this.reporter.error(pos, path, message);
        const f = spec(name);
        const first = f ? groups.get(f)?.[0] : undefined;
        this.reporter.error(first?.keyPos ?? pos, joinPath(path, first?.key ?? name), message);
      },
    };
  }

  private unknownKey(e: Entry, s: Schema, path: string): void {
    const names = s.fields.flatMap((f) => [f.name, ...(f.aliases ?? [])]);
    const guess = closest(e.key, names);
    let hint = '';
    if (guess !== undefined) {
      // Answer in the user's style: PascalCase JSON gets the PascalCase name.
      const f = s.fields.find((x) => x.name === guess);
      const shown = f?.out && /^[A-Z]/.test(e.key) && /^[A-Z]/.test(f.out) ? f.out : guess;
      hint = `; did you mean ${JSON.stringify(shown)}?`;
    }
    this.reporter.error(e.keyPos, joinPath(path, e.key), `unknown key${hint}`);
  }

  private field(f: FieldSpec, entries: Entry[], parent: string): Decoded {
    const path = joinPath(parent, entries[0]!.key);
    if (f.type.kind === 'map') {
      const pairs = entries.flatMap((e) => this.mapPairs(e, path));
      return this.map(f.type, pairs, path);
    }
    if (f.type.kind === 'block') {
      const items: unknown[] = [];
      for (const e of entries) {
        if (!this.noLabels(e, path)) continue;
        const v = this.value(f.type, e.value, path, e.keyPos);
        if (Array.isArray(v)) items.push(...(v as unknown[]));
      }
      return items;
    }
    for (const dup of entries.slice(1)) {
      const msg = `duplicate key (first set at ${at(entries[0]!.keyPos)})`;
      this.reporter.error(dup.keyPos, joinPath(parent, dup.key), msg);
    }
    const e = entries[0]!;
    if (!this.noLabels(e, path)) return INVALID;
    return this.value(f.type, e.value, path, e.keyPos);
  }

  private noLabels(e: Entry, path: string): boolean {
    const label = e.labels[0];
    if (label)
      this.reporter.error(
        label.pos,
        path,
        `unexpected label ${JSON.stringify(label.value)}: this block takes no label`,
      );
    return !label;
  }

  /** The key/value pairs a map entry contributes: a labeled block, or an object's members. */
  private mapPairs(e: Entry, path: string): Pair[] {
    const label = e.labels[0];
    if (label) {
      return [
        {
          key: label.value,
          keyPos: label.pos,
          value: entryValue({ ...e, labels: e.labels.slice(1) }),
        },
      ];
    }
    if (e.value.kind !== 'object') {
      this.typeError(e.value, path, 'an object of key/value pairs');
      return [];
    }
    return e.value.entries.map((m) => ({ key: m.key, keyPos: m.keyPos, value: entryValue(m) }));
  }

  private map(type: Extract<FieldType, { kind: 'map' }>, pairs: Pair[], path: string): Decoded {
    const out: Record<string, unknown> = {};
    const seen = new Map<string, Position>();
    const max = type.maxPairs;
    if (max !== undefined && pairs.length > max)
      this.reporter.error(
        pairs[max]!.keyPos,
        path,
        `at most ${max} pairs are allowed (got ${pairs.length})`,
      );
    for (const p of pairs) {
      // A key with control characters is shown quoted, so a message never carries them raw.
      const keyPath = joinPath(path, controlCharProblem(p.key) ? JSON.stringify(p.key) : p.key);
      const first = seen.get(p.key);
      if (first) {
        this.reporter.error(p.keyPos, keyPath, `duplicate key (first set at ${at(first)})`);
        continue;
      }
      seen.set(p.key, p.keyPos);
      const keyProblem = type.checkKey?.(p.key);
      if (keyProblem) this.reporter.error(p.keyPos, keyPath, keyProblem);
      const v = this.value(type.of, p.value, keyPath, p.keyPos);
      if (v !== INVALID) out[p.key] = v;
    }
    return out;
  }

  /** `pos` is where the value's key was written: errors about a whole object point there. */
  private value(type: FieldType, node: ValueNode, path: string, pos: Position): Decoded {
    const v = this.rawValue(type, node, path, pos);
    if (v === INVALID || !('check' in type) || !type.check) return v;
    // A list whose bad items were dropped would fail its own check for the wrong reason.
    if (node.kind === 'list' && Array.isArray(v) && v.length !== node.items.length) return v;
    const problem = (type.check as (x: unknown) => string | undefined)(v);
    if (problem) {
      this.reporter.error(node.pos, path, problem);
      return INVALID;
    }
    return v;
  }

  private rawValue(type: FieldType, node: ValueNode, path: string, pos: Position): Decoded {
    switch (type.kind) {
      case 'string':
        if (node.kind === 'string') return node.value;
        // Consul's weak decoding: `version = 1` in meta is the string "1".
        if (node.kind === 'number') return node.raw;
        if (node.kind === 'bool') return String(node.value);
        return this.typeError(node, path, 'a string');
      case 'int':
        if (node.kind === 'number' && Number.isInteger(node.value)) return node.value;
        if (node.kind === 'string' && /^[+-]?\d+$/.test(node.value.trim()))
          return Number(node.value);
        return this.typeError(node, path, 'an integer');
      case 'bool':
        if (node.kind === 'bool') return node.value;
        if (node.kind === 'string' && (node.value === 'true' || node.value === 'false')) {
          return node.value === 'true';
        }
        return this.typeError(node, path, 'a boolean (true or false)');
      case 'duration':
        if (node.kind !== 'string')
          return this.typeError(node, path, 'a duration string such as "10s"');
        if (parseDuration(node.value) === undefined) {
          const msg = `invalid duration ${JSON.stringify(node.value)}: use Go syntax such as "10s", "1m30s" or "500ms"`;
          this.reporter.error(node.pos, path, msg);
          return INVALID;
        }
        return node.value;
      case 'list':
        if (node.kind !== 'list') return this.typeError(node, path, 'a list');
        return node.items
          .map((item, i) => this.value(type.of, item, `${path}[${i}]`, item.pos))
          .filter((v) => v !== INVALID);
      case 'map':
        if (node.kind !== 'object')
          return this.typeError(node, path, 'an object of key/value pairs');
        return this.map(
          type,
          node.entries.map((m) => ({ key: m.key, keyPos: m.keyPos, value: entryValue(m) })),
          path,
        );
      case 'object':
        if (node.kind !== 'object') return this.typeError(node, path, 'an object');
        return this.object(node, type.schema, path, pos);
      case 'block':
        if (node.kind === 'object') return [this.object(node, type.schema, path, pos)];
        if (node.kind !== 'list') return this.typeError(node, path, 'a block or a list of objects');
        return node.items.flatMap((item, i) => {
          const itemPath = `${path}[${i}]`;
          if (item.kind === 'object') return [this.object(item, type.schema, itemPath, item.pos)];
          this.typeError(item, itemPath, 'an object');
          return [];
        });
      case 'opaque':
        this.uniqueKeys(node, path);
        return toPlain(node);
    }
  }

  /** Opaque data gets no schema, but a key set twice would silently lose one value. */
  private uniqueKeys(node: ValueNode, path: string): void {
    if (node.kind === 'list')
      node.items.forEach((item, i) => this.uniqueKeys(item, `${path}[${i}]`));
    if (node.kind !== 'object') return;
    const seen = new Map<string, Position>();
    for (const e of node.entries) {
      const keyPath = [e.key, ...e.labels.map((l) => l.value)].reduce(joinPath, path);
      const first = seen.get(keyPath);
      if (first)
        this.reporter.error(e.keyPos, keyPath, `duplicate key (first set at ${at(first)})`);
      else seen.set(keyPath, e.keyPos);
      this.uniqueKeys(e.value, keyPath);
    }
  }

  private typeError(node: ValueNode, path: string, expected: string): typeof INVALID {
    this.reporter.error(node.pos, path, `expected ${expected}, got ${describeNode(node)}`);
    return INVALID;
  }
}
