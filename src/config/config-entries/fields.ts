/** Reading fields: one input object re-keyed to canonical names, with typed readers that
 * throw a 400 MeshError naming the field. */
import { isObject } from '../../api/normalize.js';
import { parseDuration } from '../../core/duration.js';
import { badRequest, type MeshError } from '../../core/errors.js';
import { closest, normalizeKey } from '../../core/suggest.js';

export type Obj = Record<string, unknown>;

export const MAX_UINT32 = 4_294_967_295;
export const MAX_META_PAIRS = 64;

export const fieldPath = (path: string, key: string): string => (path ? `${path}.${key}` : key);
export const keyPath = (path: string, key: string): string => `${path}[${JSON.stringify(key)}]`;
export const indexPath = (path: string, i: number): string => `${path}[${i}]`;

export function err(field: string, message: string): MeshError {
  return badRequest(field ? `${field}: ${message}` : message, field || undefined);
}

export const quoteList = (xs: readonly string[]): string => {
  const q = xs.map((x) => JSON.stringify(x));
  return q.length <= 1 ? q.join('') : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
};

/** Go's zero values: what an unsupported field may hold without being "set". */
export function isUnset(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    v === '' ||
    v === false ||
    v === 0 ||
    (Array.isArray(v) && v.length === 0) ||
    (isObject(v) && Object.keys(v).length === 0)
  );
}

/** Drops undefined members, so outputs hold only what is set (Consul's omitempty). */
export function prune<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/** A user-keyed map; fromEntries makes even "__proto__" an ordinary own key. */
export function userMap<V>(pairs: [string, V][]): Record<string, V> {
  return Object.fromEntries(pairs) as Record<string, V>;
}

export interface Shape {
  fields: readonly string[];
  /** Consul fields Trellis refuses when set, with the reason. */
  unsupported?: Readonly<Record<string, string>>;
  /** Read-only fields clients echo back; dropped. */
  readOnly?: readonly string[];
  /** Enterprise tenancy (Namespace, Partition): accepted when empty or "default". */
  tenancy?: boolean;
}

export const ENVOY_ONLY = 'it configures Envoy, and Trellis proxies are not Envoy';
export const NO_PEERING = 'cluster peering needs mesh gateways';
export const ENTERPRISE = 'it is a Consul Enterprise feature';

/** One object of the input, re-keyed to canonical field names, with typed readers. */
export class Fields {
  private constructor(
    private readonly o: Obj,
    readonly path: string,
  ) {}

  static of(raw: unknown, path: string, shape: Shape): Fields {
    if (!isObject(raw)) throw err(path, path ? 'must be an object' : 'must be a JSON object');
    const known = new Map(shape.fields.map((f) => [normalizeKey(f), f]));
    const unsupported = new Map(
      Object.entries(shape.unsupported ?? {}).map(([f, why]) => [normalizeKey(f), [f, why]]),
    );
    const readOnly = new Set((shape.readOnly ?? []).map(normalizeKey));
    const out: Obj = {};
    const spelled = new Map<string, string>();
    for (const [k, v] of Object.entries(raw)) {
      const nk = normalizeKey(k);
      const canonical = known.get(nk);
      if (canonical !== undefined) {
        const prev = spelled.get(canonical);
        if (prev !== undefined)
          throw err(fieldPath(path, canonical), `set twice, as "${prev}" and as "${k}"`);
        spelled.set(canonical, k);
        out[canonical] = v;
        continue;
      }
      const refused = unsupported.get(nk);
      if (refused) {
        if (!isUnset(v))
          throw err(fieldPath(path, refused[0]!), `not supported by Trellis (${refused[1]})`);
        continue;
      }
      if (shape.tenancy && (nk === 'namespace' || nk === 'partition')) {
        const what = nk === 'namespace' ? 'Namespace' : 'Partition';
        if (v !== undefined && v !== null && v !== '' && v !== 'default')
          throw err(
            fieldPath(path, what),
            `Trellis has only the "default" ${what.toLowerCase()}, not ${JSON.stringify(v)}`,
          );
        continue;
      }
      if (readOnly.has(nk)) continue;
      const hint = closest(k, shape.fields);
      throw err(fieldPath(path, k), `unknown field${hint ? `; did you mean "${hint}"?` : ''}`);
    }
    return new Fields(out, path);
  }

  at(k: string): string {
    return fieldPath(this.path, k);
  }

  err(k: string, message: string): MeshError {
    return err(this.at(k), message);
  }

  has(k: string): boolean {
    return this.o[k] !== undefined && this.o[k] !== null;
  }

  raw(k: string): unknown {
    return this.o[k];
  }

  /** A string; "" counts as unset, as in Consul. */
  str(k: string): string | undefined {
    const v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw this.err(k, 'must be a string');
    return v === '' ? undefined : v;
  }

  oneOf<T extends string>(k: string, allowed: readonly T[], lowerCase = false): T | undefined {
    const v = this.str(k);
    if (v === undefined) return undefined;
    const s = lowerCase ? v.toLowerCase() : v;
    if (!(allowed as readonly string[]).includes(s))
      throw this.err(k, `must be ${quoteList(allowed)}, not ${JSON.stringify(v)}`);
    return s as T;
  }

  bool(k: string): boolean | undefined {
    const v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 'false') return v === 'true';
    throw this.err(k, 'must be true or false');
  }

  int(k: string, min = 0, max = MAX_UINT32): number | undefined {
    let v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) v = Number(v);
    if (typeof v !== 'number' || !Number.isInteger(v)) throw this.err(k, 'must be an integer');
    if (v < min || v > max)
      throw this.err(
        k,
        max === MAX_UINT32
          ? `must be ${min} or more, not ${v}`
          : `must be between ${min} and ${max}`,
      );
    return v;
  }

  num(k: string): number | undefined {
    let v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) v = Number(v);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.err(k, 'must be a number');
    return v;
  }

  /** A Go duration string, kept as written; Go's syntax has no negative form here. */
  duration(k: string): string | undefined {
    const v = this.str(k);
    if (v === undefined) return undefined;
    if (parseDuration(v) === undefined)
      throw this.err(k, `${JSON.stringify(v)} is not a duration (e.g. "10s", "1m30s", "500ms")`);
    return v;
  }

  /** A list; a single value stands for a list of one, as Consul's weak decoding allows. */
  list(k: string): unknown[] | undefined {
    const v = this.o[k];
    if (v === undefined || v === null) return undefined;
    return Array.isArray(v) ? v : [v];
  }

  strList(k: string): string[] | undefined {
    const items = this.list(k);
    if (!items) return undefined;
    return items.map((x, i) => {
      if (typeof x !== 'string') throw err(indexPath(this.at(k), i), 'must be a string');
      return x;
    });
  }

  obj(k: string, shape: Shape): Fields | undefined {
    return this.has(k) ? Fields.of(this.o[k], this.at(k), shape) : undefined;
  }

  /** Members of a user-keyed object (subsets, failover targets, headers). */
  entries(k: string): [string, unknown][] | undefined {
    const v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (!isObject(v)) throw this.err(k, 'must be an object');
    return Object.entries(v);
  }

  strMap(k: string, maxKey = 128, maxValue = 512, maxPairs = Infinity): Record<string, string> {
    const pairs = this.entries(k);
    if (!pairs) return {};
    if (pairs.length > maxPairs) throw this.err(k, `more than ${maxPairs} pairs`);
    const p = this.at(k);
    return userMap(
      pairs.map(([mk, mv]): [string, string] => {
        if (mk === '' || mk.length > maxKey)
          throw err(p, `key ${JSON.stringify(mk.slice(0, 40))} must be 1 to ${maxKey} characters`);
        // Weak decoding: `version = 1` is the string "1".
        if (typeof mv === 'number' || typeof mv === 'boolean') mv = String(mv);
        if (typeof mv !== 'string') throw err(keyPath(p, mk), 'must be a string');
        if (mv.length > maxValue)
          throw err(keyPath(p, mk), `value longer than ${maxValue} characters`);
        return [mk, mv];
      }),
    );
  }
}
