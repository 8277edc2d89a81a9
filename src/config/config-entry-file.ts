/**
 * One config entry written as a file, in HCL or JSON, as `consul config write` takes it:
 *
 *   Kind   = "service-splitter"
 *   Name   = "web"
 *   Splits = [ { Weight = 90, ServiceSubset = "v1" }, { Weight = 10, ServiceSubset = "v2" } ]
 *
 * The text becomes a plain value for normalizeConfigEntry, which does all the checking; its
 * error is mapped back through the field path to the place in the file, so problems read
 * `file:line:col: Splits[1].Weight: message`. As in Consul's HCL decoding, repeated blocks
 * (`Header { } Header { }`) make a list and labeled blocks (`Subsets "v1" { }`) make a map.
 */
import { isMeshError } from '../core/errors.js';
import { normalizeKey } from '../core/suggest.js';
import type { Entry, ObjectNode, Position, ValueNode } from './ast.js';
import { normalizeConfigEntry, type ConfigEntry } from './config-entries.js';
import { Reporter, sortDiagnostics, type ConfigDiagnostic } from './diagnostics.js';
import { parseConfigText } from './parse.js';

export interface ConfigEntryFileResult {
  /** Present only when there are no errors. */
  entry?: ConfigEntry;
  errors: ConfigDiagnostic[];
}

/** Where each part of the plain value was written. */
interface Loc {
  pos: Position;
  fields?: Map<string, { key: string; keyPos: Position; loc: Loc }>;
  items?: Loc[];
}

interface Converted {
  value: unknown;
  loc: Loc;
}

function at(p: Position): string {
  return `${p.line}:${p.column}`;
}

/** `key "a" "b" { body }` stands for `key = { a = { b = { body } } }`. */
function unlabel(e: Entry): Entry {
  if (e.labels.length === 0) return e;
  const [first, ...rest] = e.labels;
  const inner = unlabel({
    key: first!.value,
    keyPos: first!.pos,
    labels: rest,
    value: e.value,
    block: true,
  });
  return {
    key: e.key,
    keyPos: e.keyPos,
    labels: [],
    value: { kind: 'object', entries: [inner], pos: first!.pos },
    block: true,
  };
}

function convert(node: ValueNode, path: string, rep: Reporter): Converted {
  switch (node.kind) {
    case 'object':
      return convertObject(node, path, rep);
    case 'list': {
      const items = node.items.map((item, i) => convert(item, `${path}[${i}]`, rep));
      return {
        value: items.map((c) => c.value),
        loc: { pos: node.pos, items: items.map((c) => c.loc) },
      };
    }
    case 'null':
      return { value: null, loc: { pos: node.pos } };
    default:
      return { value: node.value, loc: { pos: node.pos } };
  }
}

function convertObject(node: ObjectNode, path: string, rep: Reporter): Converted {
  // Labeled blocks of one key merge into one map; plain blocks of one key gather into a list.
  const groups = new Map<string, Entry[]>();
  for (const raw of node.entries) {
    const e = unlabel(raw);
    const group = groups.get(e.key);
    if (!group) {
      groups.set(e.key, [e]);
      continue;
    }
    const first = group[0]!;
    if (raw.labels.length > 0 && first.value.kind === 'object' && e.value.kind === 'object') {
      const merged: ObjectNode = {
        kind: 'object',
        entries: [...first.value.entries, ...e.value.entries],
        pos: first.value.pos,
      };
      group[0] = { ...first, value: merged };
    } else if (first.block && e.block) {
      group.push(e);
    } else {
      const key = path ? `${path}.${e.key}` : e.key;
      rep.error(e.keyPos, key, `duplicate key (first set at ${at(first.keyPos)})`);
    }
  }
  const pairs: [string, unknown][] = [];
  const fields = new Map<string, { key: string; keyPos: Position; loc: Loc }>();
  for (const [key, group] of groups) {
    const childPath = path ? `${path}.${key}` : key;
    const first = group[0]!;
    let c: Converted;
    if (group.length === 1) c = convert(first.value, childPath, rep);
    else {
      const items = group.map((e, i) => convert(e.value, `${childPath}[${i}]`, rep));
      c = {
        value: items.map((x) => x.value),
        loc: { pos: first.keyPos, items: items.map((x) => x.loc) },
      };
    }
    pairs.push([key, c.value]);
    fields.set(key, { key, keyPos: first.keyPos, loc: c.loc });
  }
  // fromEntries keeps even a "__proto__" key an ordinary member.
  return { value: Object.fromEntries(pairs), loc: { pos: node.pos, fields } };
}

type Segment = { field: string } | { mapKey: string } | { index: number };

/** Splits `Routes[0].Match.HTTP`, `Subsets["v1"].Filter` into segments. */
function parsePath(path: string): Segment[] {
  const out: Segment[] = [];
  const re = /\.?([^.[\]"]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(path)) !== null && m[0] !== '') {
    if (m[1] !== undefined) out.push({ field: m[1] });
    else if (m[2] !== undefined) out.push({ index: Number(m[2]) });
    else out.push({ mapKey: JSON.parse(m[3]!) as string });
  }
  return out;
}

const segmentText = (s: Segment): string =>
  'index' in s ? `[${s.index}]` : 'mapKey' in s ? `[${JSON.stringify(s.mapKey)}]` : `.${s.field}`;

/**
 * The position of the field at `path`: a key where it was written, a list item at its start.
 * A path that goes past what the file holds (a missing field) stops at the deepest part that
 * is there. The returned key uses the file's own spelling (`protocol`, not `Protocol`).
 */
function locate(root: Loc, path: string): { pos: Position; key: string } {
  let cur = root;
  let pos = root.pos;
  let key = '';
  const segments = parsePath(path);
  let i = 0;
  for (; i < segments.length; i++) {
    const s = segments[i]!;
    if ('index' in s) {
      if (cur.items) {
        const item = cur.items[s.index];
        if (!item) break;
        cur = item;
        pos = item.pos;
      } else if (s.index !== 0) break; // a single block stands for a list of one
      key += segmentText(s);
      continue;
    }
    const want = 'field' in s ? s.field : s.mapKey;
    const found =
      cur.fields?.get(want) ??
      ('field' in s
        ? [...(cur.fields?.values() ?? [])].find((f) => normalizeKey(f.key) === normalizeKey(want))
        : undefined);
    if (!found) break;
    cur = found.loc;
    pos = found.keyPos;
    key += 'field' in s ? `.${found.key}` : `[${JSON.stringify(found.key)}]`;
  }
  key += segments.slice(i).map(segmentText).join('');
  return { pos, key: key.replace(/^\./, '') };
}

/**
 * Parses and validates one config entry file. `fileName` picks the syntax (.json, .hcl, else by
 * content) and names the file in diagnostics.
 */
export function parseConfigEntryFile(text: string, fileName: string): ConfigEntryFileResult {
  const parsed = parseConfigText(text, fileName);
  if (parsed.errors.length > 0 || !parsed.root) return { errors: parsed.errors };
  const rep = new Reporter(fileName);
  if (parsed.root.kind !== 'object') {
    rep.error(parsed.root.pos, '', 'a config entry file holds one object with Kind and Name');
    return { errors: rep.diagnostics };
  }
  const { value, loc } = convert(parsed.root, '', rep);
  if (rep.diagnostics.length > 0) return { errors: sortDiagnostics(rep.diagnostics) };
  try {
    return { entry: normalizeConfigEntry(value), errors: [] };
  } catch (err) {
    if (!isMeshError(err)) throw err;
    const field = err.field ?? '';
    const { pos, key } = locate(loc, field);
    const prefix = `${field}: `;
    const message =
      field && err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    rep.error(pos, key, message);
    return { errors: rep.diagnostics };
  }
}
