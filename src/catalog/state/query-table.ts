/**
 * Prepared queries in the state machine. A query is stored with the SHA-256 of the token it
 * captured (as ACL tokens are), never the secret, so neither the log nor a snapshot holds one.
 *
 * Lookup for execution follows Consul: the ID, then a static query's exact name, then the
 * template with the longest Name that prefixes the asked name (static queries win over
 * templates). Names are unique among named queries; at most one catch-all template ("").
 */
import type { PreparedQueryService, PreparedQueryTemplate } from '../../api/index.js';
import { K } from './index-table.js';
import type { ChangeSet } from './watch.js';

export interface StoredQuery {
  ID: string;
  Name: string;
  Session: string;
  /** SHA-256 (hex) of the captured token's secret; '' when none was captured. */
  TokenHash: string;
  Template: PreparedQueryTemplate;
  Service: PreparedQueryService;
  DNS: { TTL: string };
  CreateIndex: number;
  ModifyIndex: number;
}

export type QuerySpec = Omit<StoredQuery, 'CreateIndex' | 'ModifyIndex'>;

export interface QuerySetCommand {
  type: 'query-set';
  query: QuerySpec;
  /** True for POST /v1/query (the ID must be new); false for PUT /v1/query/:id. */
  create: boolean;
}

export interface QueryDeleteCommand {
  type: 'query-delete';
  id: string;
}

export type QueryCommand = QuerySetCommand | QueryDeleteCommand;

type Result = { ok: true; value: unknown } | { ok: false; error: string; status: number };
const fail = (error: string, status = 400): Result => ({ ok: false, error, status });

export const isTemplate = (q: { Template: PreparedQueryTemplate }): boolean =>
  q.Template.Type !== '';

export class QueryTable {
  readonly #byId = new Map<string, StoredQuery>();

  get(id: string): StoredQuery | undefined {
    return this.#byId.get(id);
  }

  /** Every query, oldest first. */
  list(): StoredQuery[] {
    return [...this.#byId.values()].sort((a, b) => a.CreateIndex - b.CreateIndex);
  }

  /** The query an execute or explain of `idOrName` runs, as Consul resolves it. */
  resolve(idOrName: string): StoredQuery | undefined {
    const byId = this.#byId.get(idOrName);
    if (byId) return byId;
    let best: StoredQuery | undefined;
    for (const q of this.#byId.values()) {
      if (!isTemplate(q)) {
        if (q.Name !== '' && q.Name === idOrName) return q;
        continue;
      }
      if (!idOrName.startsWith(q.Name)) continue;
      if (!best || q.Name.length > best.Name.length) best = q;
    }
    return best;
  }

  validate(cmd: QueryCommand, sessionExists: (id: string) => boolean): Result | undefined {
    if (cmd.type === 'query-delete') {
      if (!this.#byId.has(cmd.id))
        return fail(`Cannot delete non-existent prepared query: '${cmd.id}'`, 404);
      return undefined;
    }
    const q = cmd.query;
    const existing = this.#byId.get(q.ID);
    if (cmd.create && existing) return fail(`Prepared query ID "${q.ID}" already exists`, 409);
    if (!cmd.create && !existing)
      return fail(`Cannot modify non-existent prepared query: '${q.ID}'`, 404);
    if (q.Session && !sessionExists(q.Session))
      return fail(`Session: invalid session "${q.Session}"`);
    if (this.#byId.has(q.Name) && q.Name !== q.ID)
      return fail(`Name: "${q.Name}" is the ID of another prepared query`);
    for (const other of this.#byId.values()) {
      if (other.ID === q.ID) continue;
      if (q.Name !== '' && other.Name === q.Name)
        return fail(`Name: "${q.Name}" is already used by prepared query ${other.ID}`, 409);
      if (q.Name === '' && isTemplate(q) && other.Name === '' && isTemplate(other))
        return fail(`Template: a catch-all template (empty Name) already exists: ${other.ID}`, 409);
    }
    return undefined;
  }

  apply(
    cmd: QueryCommand,
    index: number,
    change: ChangeSet,
    sessionExists: (id: string) => boolean,
  ): Result {
    const bad = this.validate(cmd, sessionExists);
    if (bad) return bad;
    change.keys.add(K.queries);
    if (cmd.type === 'query-delete') {
      this.#byId.delete(cmd.id);
      return { ok: true, value: true };
    }
    const old = this.#byId.get(cmd.query.ID);
    this.#byId.set(cmd.query.ID, {
      ...cmd.query,
      CreateIndex: old?.CreateIndex ?? index,
      ModifyIndex: index,
    });
    return { ok: true, value: { ID: cmd.query.ID } };
  }

  /** A session ended: the queries bound to it go with it (Consul's Session field). */
  dropSession(session: string, change: ChangeSet): void {
    for (const q of [...this.#byId.values()]) {
      if (q.Session !== session) continue;
      this.#byId.delete(q.ID);
      change.keys.add(K.queries);
    }
  }

  toJSON(): StoredQuery[] {
    return this.list();
  }

  static from(rows: StoredQuery[] | undefined): QueryTable {
    const t = new QueryTable();
    for (const r of rows ?? []) t.#byId.set(r.ID, r);
    return t;
  }
}
