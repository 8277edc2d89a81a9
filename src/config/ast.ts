/**
 * The syntax tree both parsers (HCL and JSON) produce. Every key and value carries the position
 * where it starts, so the decoder can point at the exact spot of each problem.
 */

/** A place in a file; line and column are 1-based, offset is 0-based (UTF-16 units). */
export interface Position {
  line: number;
  column: number;
  offset: number;
}

export interface StringNode {
  kind: 'string';
  value: string;
  pos: Position;
}

export interface NumberNode {
  kind: 'number';
  value: number;
  /** The number as written, so "8080" and "8.08e3" can be told apart in messages. */
  raw: string;
  pos: Position;
}

export interface BoolNode {
  kind: 'bool';
  value: boolean;
  pos: Position;
}

export interface NullNode {
  kind: 'null';
  pos: Position;
}

export interface ListNode {
  kind: 'list';
  items: ValueNode[];
  pos: Position;
}

/** An HCL body (file, block or `{ }` literal) or a JSON object. Keys may repeat. */
export interface ObjectNode {
  kind: 'object';
  entries: Entry[];
  pos: Position;
}

export type ValueNode = StringNode | NumberNode | BoolNode | NullNode | ListNode | ObjectNode;

/** A block label: the `"a/"` in `key_prefix "a/" { ... }`. */
export interface Label {
  value: string;
  pos: Position;
}

/** One `key = value` attribute, `key "label" { ... }` block or JSON member. */
export interface Entry {
  key: string;
  keyPos: Position;
  labels: Label[];
  value: ValueNode;
  /** True for HCL block syntax (`key { }`), false for `key = value` and JSON. */
  block: boolean;
}

/** A plain JavaScript value, as opaque settings (proxy config) are handed on. */
export type PlainValue = string | number | boolean | null | PlainValue[] | PlainObject;
export interface PlainObject {
  [key: string]: PlainValue;
}

/**
 * Converts a node to plain data. Labeled blocks nest as maps and blocks of one type merge, as
 * Consul's HCL decoding does: `a "x" {}` and `a "y" {}` give `{ a: { x: {}, y: {} } }`.
 */
export function toPlain(node: ValueNode): PlainValue {
  switch (node.kind) {
    case 'list':
      return node.items.map(toPlain);
    case 'object': {
      const out: PlainObject = {};
      for (const entry of node.entries) {
        let target = out;
        let key = entry.key;
        for (const label of entry.labels) {
          const existing = target[key];
          const next = isPlainObject(existing) ? existing : {};
          target[key] = next;
          target = next;
          key = label.value;
        }
        target[key] = toPlain(entry.value);
      }
      return out;
    }
    case 'null':
      return null;
    default:
      return node.value;
  }
}

function isPlainObject(v: PlainValue | undefined): v is PlainObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A short description of a value for messages: `string "abc"`, `number 80.5`, `a list`. */
export function describeNode(node: ValueNode): string {
  switch (node.kind) {
    case 'string':
      return `string ${JSON.stringify(truncate(node.value))}`;
    case 'number':
      return `number ${node.raw}`;
    case 'bool':
      return `bool ${String(node.value)}`;
    case 'null':
      return 'null';
    case 'list':
      return 'a list';
    case 'object':
      return 'an object';
  }
}

function truncate(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
