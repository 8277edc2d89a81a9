/**
 * The catalog's state machine: in-memory tables that change only through `apply(command, index)`.
 *
 *   command --apply--> tables mutate, every touched row gets ModifyIndex = index
 *                  \-> IndexTable remembers index per watch key, WatchHub wakes blocked reads
 *
 * apply is deterministic (no clocks, no randomness: commands carry them), so replaying the
 * write-ahead log rebuilds the same state. Validation that needs the current state happens here
 * before any mutation, so a rejected command changes nothing.
 */
import type { CoordinateEntry, HealthCheck, KVPair, Node, Session } from '../../api/index.js';
import { CatalogTable, type ServiceRow } from './catalog-table.js';
import type {
  CheckStatusCommand,
  Command,
  DeregisterCommand,
  KVDeleteCommand,
  KVSetCommand,
  RegisterCommand,
  SessionCreateCommand,
  TxnCommand,
  TxnKVOp,
  VipRangeCommand,
} from './commands.js';
import { applyAcl, validateAcl, type AclCommand } from './acl-commands.js';
import { AclTable, type AclTableState } from './acl-table.js';
import { CaTable, type CaCommand, type CaTableState } from './ca-table.js';
import { applyConfig, isConfigCommand, validateConfig } from './config-commands.js';
import { ConfigTable, type ConfigTableState } from './config-table.js';
import { CoordinateTable } from './coordinate-table.js';
import { EventTable, type EventTableState } from './event-table.js';
import { QueryTable, type StoredQuery } from './query-table.js';
import { IndexTable, K } from './index-table.js';
import { KVTable } from './kv-table.js';
import { WatchHub, type ChangeSet } from './watch.js';
import { VipTable, type VipTableState } from './vip-table.js';

/** What a command returned: a value for the client, or a user error (nothing was changed). */
export type ApplyResult =
  { ok: true; value: unknown } | { ok: false; error: string; status: number };

export interface TxnResult {
  Results: { KV: KVPair }[] | null;
  Errors: { OpIndex: number; What: string }[] | null;
}

const ok = (value: unknown): ApplyResult => ({ ok: true, value });
const fail = (error: string, status = 400): ApplyResult => ({ ok: false, error, status });

export class StateStore {
  catalog = new CatalogTable();
  kv = new KVTable();
  acl = new AclTable();
  ca = new CaTable();
  config = new ConfigTable();
  events = new EventTable();
  queries = new QueryTable();
  coordinates = new CoordinateTable();
  sessions = new Map<string, Session>();
  /** session id -> keys it holds locks on */
  locksBySession = new Map<string, Set<string>>();
  /** key -> time (ms) until which a lock cannot be re-acquired after its session was invalidated */
  lockDelays = new Map<string, number>();
  indexes = new IndexTable();
  readonly hub = new WatchHub();
  /**
   * Told when a session's TTL starts again (created or renewed: its TTL) and when the session
   * ends (undefined); the leader's session timers follow it (catalog/session-timers.ts).
   */
  onSessionTtl: ((id: string, ttl: string | undefined) => void) | undefined;
  lastIndex = 0;

  /**
   * The state-dependent checks of a command, without applying it. The API runs this before
   * logging a write, so an invalid request leaves no trace; apply runs it again because the
   * state may have moved in between.
   */
  validate(cmd: Command): ApplyResult | undefined {
    if (isAcl(cmd)) return validateAcl(this.acl, cmd);
    if (isCa(cmd)) return this.ca.validate(cmd);
    if (isConfigCommand(cmd)) return validateConfig(this.config, cmd);
    if (cmd.type === 'query-set' || cmd.type === 'query-delete')
      return this.queries.validate(cmd, (id) => this.sessions.has(id));
    if (cmd.type === 'coordinate-set') return this.#validateCoordinates(cmd.entries);
    if (cmd.type === 'register') {
      for (const c of cmd.checks) {
        if (
          c.ServiceID &&
          c.ServiceID !== cmd.service?.ID &&
          !this.catalog.getService(cmd.node.Node, c.ServiceID)
        ) {
          return fail(
            `Unknown service ID "${c.ServiceID}" for check "${c.CheckID}" on node "${cmd.node.Node}"`,
          );
        }
      }
    } else if (cmd.type === 'session-create') {
      const s = cmd.session;
      if (!this.catalog.nodes.has(s.Node))
        return fail(`Node: missing node registration "${s.Node}"`, 400);
      const ids = [
        ...(s.NodeChecks ?? []).map((id) => ['NodeChecks', id]),
        ...(s.ServiceChecks ?? []).map((c) => ['ServiceChecks', c.ID]),
      ];
      for (const [field, id] of ids) {
        const c = this.catalog.getCheck(s.Node, id!);
        if (!c) return fail(`${field}: missing check '${id}' registration`, 400);
        if (c.Status === 'critical')
          return fail(`${field}: check '${id}' is in critical state`, 400);
      }
    }
    return undefined;
  }

  apply(cmd: Command, index: number): ApplyResult {
    const change: ChangeSet = { keys: new Set(), kvKeys: new Set() };
    let result: ApplyResult;
    switch (cmd.type) {
      case 'register':
        result = this.#register(cmd, index, change);
        break;
      case 'deregister':
        result = this.#deregister(cmd, index, change);
        break;
      case 'check-status':
        result = this.#checkStatus(cmd, index, change);
        break;
      case 'kv-set':
        result = this.#kvSet(cmd, index, change);
        break;
      case 'kv-delete':
        result = this.#kvDelete(cmd, index, change);
        break;
      case 'txn':
        result = this.#txn(cmd, index, change);
        break;
      case 'session-create':
        result = this.#sessionCreate(cmd, index, change);
        break;
      case 'vip-range':
        result = this.#vipRange(cmd, change);
        break;
      case 'event-fire':
        result = ok(this.events.fire(cmd, change));
        break;
      case 'query-set':
      case 'query-delete':
        result = this.queries.apply(cmd, index, change, (id) => this.sessions.has(id));
        break;
      case 'coordinate-set':
        result = this.#validateCoordinates(cmd.entries) ?? ok(true);
        if (result.ok) this.coordinates.set(cmd.entries, change);
        break;
      case 'session-renew': {
        const s = this.sessions.get(cmd.id);
        result = s ? ok([s]) : fail(`Session id '${cmd.id}' not found`, 404);
        if (s) this.onSessionTtl?.(s.ID, s.TTL);
        break;
      }
      case 'session-destroy': {
        const existed = this.sessions.has(cmd.id);
        this.#invalidateSession(cmd.id, index, cmd.at, change);
        result = ok(existed);
        break;
      }
      default:
        if (isCa(cmd)) result = this.ca.apply(cmd, index, change);
        else if (isAcl(cmd)) result = applyAcl(this.acl, cmd, index, change);
        else if (isConfigCommand(cmd)) result = applyConfig(this.config, cmd, index, change);
        else result = fail(`unknown command ${(cmd as { type: string }).type}`, 500);
    }
    this.lastIndex = index;
    if (change.kvKeys.size > 0) change.keys.add(K.kv);
    if (change.keys.size > 0) {
      this.indexes.bump(change, index);
      this.hub.notify(change);
    }
    return result;
  }

  /** Coordinates are kept only for nodes the catalog knows. */
  #validateCoordinates(entries: readonly CoordinateEntry[]): ApplyResult | undefined {
    for (const e of entries)
      if (!this.catalog.nodes.has(e.Node)) return fail(`Node: unknown node "${e.Node}"`, 404);
    return undefined;
  }

  // ---- catalog ------------------------------------------------------------------------------

  /** Re-homes the virtual IPs in another range; the value says what was kept and moved. */
  #vipRange(cmd: VipRangeCommand, change: ChangeSet): ApplyResult {
    let rebased;
    try {
      rebased = this.catalog.vips.rebase(cmd.range);
    } catch (err) {
      return fail((err as Error).message);
    }
    this.catalog.vips = rebased.table;
    change.keys.add(K.services);
    return ok(rebased.change);
  }

  /** The watch keys a service instance's reads depend on. */
  #touchService(row: ServiceRow, change: ChangeSet): void {
    change.keys.add(K.service(row.svc.Service));
    change.keys.add(K.node(row.node));
    const proxy = row.svc.Proxy?.DestinationServiceName;
    if (row.svc.Kind === 'connect-proxy' && proxy) change.keys.add(`connect:${proxy}`);
    if (row.svc.Connect?.Native) change.keys.add(`connect:${row.svc.Service}`);
  }

  /** A node-level change shows in every read of the node's services. */
  #touchNode(node: string, change: ChangeSet): void {
    change.keys.add(K.node(node));
    const byId = this.catalog.servicesByNode.get(node);
    if (byId) for (const row of byId.values()) this.#touchService(row, change);
  }

  #register(cmd: RegisterCommand, index: number, change: ChangeSet): ApplyResult {
    const nodeName = cmd.node.Node;
    const svc = cmd.service;
    // Validate everything before changing anything.
    for (const c of cmd.checks) {
      if (
        c.ServiceID &&
        c.ServiceID !== svc?.ID &&
        !this.catalog.getService(nodeName, c.ServiceID)
      ) {
        return fail(
          `Unknown service ID "${c.ServiceID}" for check "${c.CheckID}" on node "${nodeName}"`,
        );
      }
    }

    const existing = this.catalog.nodes.get(nodeName);
    if (!existing) {
      const node: Node = { ...cmd.node, CreateIndex: index, ModifyIndex: index };
      this.catalog.nodes.set(nodeName, node);
      change.keys.add(K.nodes);
      change.keys.add(K.node(nodeName));
    } else if (!cmd.skipNodeUpdate && !sameNode(existing, cmd.node)) {
      const node: Node = { ...cmd.node, CreateIndex: existing.CreateIndex, ModifyIndex: index };
      this.catalog.nodes.set(nodeName, node);
      change.keys.add(K.nodes);
      this.#touchNode(nodeName, change);
    }

    if (svc) {
      const old = this.catalog.getService(nodeName, svc.ID);
      if (!old || !sameJSON(stripIndexes(old.svc), svc)) {
        const row: ServiceRow = {
          node: nodeName,
          svc: { ...svc, CreateIndex: old?.svc.CreateIndex ?? index, ModifyIndex: index },
        };
        if (old) this.#touchService(old, change);
        this.catalog.putService(row);
        this.#touchService(row, change);
        change.keys.add(K.services);
        // Checks carry the service's name and tags; keep them in step.
        for (const c of this.catalog.serviceChecks(nodeName, svc.ID)) {
          if (c.ServiceName !== svc.Service || !sameJSON(c.ServiceTags, svc.Tags)) {
            this.catalog.putCheck({
              ...c,
              ServiceName: svc.Service,
              ServiceTags: svc.Tags,
              ModifyIndex: index,
            });
            change.keys.add(K.checks);
          }
        }
      }
    }

    for (const spec of cmd.checks) {
      const row = spec.ServiceID ? this.catalog.getService(nodeName, spec.ServiceID) : undefined;
      const old = this.catalog.getCheck(nodeName, spec.CheckID);
      const check: HealthCheck = {
        Node: nodeName,
        ...spec,
        ServiceName: row?.svc.Service ?? '',
        ServiceTags: row?.svc.Tags ?? [],
        ExposedPort: 0,
        CreateIndex: old?.CreateIndex ?? index,
        ModifyIndex: index,
      };
      if (old && sameJSON(stripIndexes(old), stripIndexes(check))) continue;
      if (old?.ServiceID && old.ServiceID !== spec.ServiceID) this.#touchCheckOwner(old, change);
      this.catalog.putCheck(check);
      this.#touchCheckOwner(check, change);
      if (check.Status === 'critical')
        this.#invalidateSessionsForCheck(check, index, cmd.at ?? 0, change);
    }
    return ok(true);
  }

  #touchCheckOwner(check: HealthCheck, change: ChangeSet): void {
    change.keys.add(K.checks);
    if (check.ServiceID) {
      const row = this.catalog.getService(check.Node, check.ServiceID);
      if (row) this.#touchService(row, change);
      change.keys.add(K.node(check.Node));
    } else {
      this.#touchNode(check.Node, change);
    }
  }

  #deregister(cmd: DeregisterCommand, index: number, change: ChangeSet): ApplyResult {
    const nodeName = cmd.node;
    if (!this.catalog.nodes.has(nodeName)) return ok(true);
    if (cmd.checkID !== undefined) {
      const old = this.catalog.deleteCheck(nodeName, cmd.checkID);
      if (old) {
        this.#touchCheckOwner(old, change);
        this.#invalidateSessionsForCheck(old, index, cmd.at ?? 0, change);
      }
      return ok(true);
    }
    if (cmd.serviceID !== undefined) {
      this.#deleteService(nodeName, cmd.serviceID, index, cmd.at ?? 0, change);
      return ok(true);
    }
    // The whole node: its services, its checks, its sessions.
    for (const id of [...(this.catalog.servicesByNode.get(nodeName)?.keys() ?? [])]) {
      this.#deleteService(nodeName, id, index, cmd.at ?? 0, change);
    }
    for (const c of this.catalog.nodeChecks(nodeName)) {
      this.catalog.deleteCheck(nodeName, c.CheckID);
      change.keys.add(K.checks);
    }
    for (const s of [...this.sessions.values()]) {
      if (s.Node === nodeName) this.#invalidateSession(s.ID, index, cmd.at ?? 0, change);
    }
    this.catalog.nodes.delete(nodeName);
    this.coordinates.dropNode(nodeName, change);
    change.keys.add(K.nodes);
    change.keys.add(K.node(nodeName));
    return ok(true);
  }

  #deleteService(node: string, id: string, index: number, at: number, change: ChangeSet): void {
    const row = this.catalog.getService(node, id);
    if (!row) return;
    for (const c of this.catalog.serviceChecks(node, id)) {
      this.catalog.deleteCheck(node, c.CheckID);
      change.keys.add(K.checks);
      this.#invalidateSessionsForCheck(c, index, at, change);
    }
    this.catalog.deleteService(node, id);
    this.#touchService(row, change);
    change.keys.add(K.services);
  }

  #checkStatus(cmd: CheckStatusCommand, index: number, change: ChangeSet): ApplyResult {
    const old = this.catalog.getCheck(cmd.node, cmd.checkID);
    if (!old) return fail(`Unknown check "${cmd.checkID}" on node "${cmd.node}"`, 404);
    if (old.Status === cmd.status && old.Output === cmd.output) return ok(true);
    const check: HealthCheck = {
      ...old,
      Status: cmd.status,
      Output: cmd.output,
      ModifyIndex: index,
    };
    this.catalog.putCheck(check);
    this.#touchCheckOwner(check, change);
    if (check.Status === 'critical')
      this.#invalidateSessionsForCheck(check, index, cmd.at ?? 0, change);
    return ok(true);
  }

  // ---- sessions -----------------------------------------------------------------------------

  #sessionCreate(cmd: SessionCreateCommand, index: number, change: ChangeSet): ApplyResult {
    const s = cmd.session;
    const invalid = this.validate(cmd);
    if (invalid) return invalid;
    if (this.sessions.has(s.ID)) return fail(`Session "${s.ID}" already exists`, 409);
    this.sessions.set(s.ID, { ...s, CreateIndex: index, ModifyIndex: index });
    this.onSessionTtl?.(s.ID, s.TTL);
    change.keys.add(K.sessions);
    change.keys.add(K.session(s.ID));
    change.keys.add(K.nodeSessions(s.Node));
    return ok({ ID: s.ID });
  }

  #invalidateSessionsForCheck(
    check: HealthCheck,
    index: number,
    at: number,
    change: ChangeSet,
  ): void {
    for (const s of [...this.sessions.values()]) {
      if (s.Node !== check.Node) continue;
      const byNode = (s.NodeChecks ?? []).includes(check.CheckID);
      const bySvc = (s.ServiceChecks ?? []).some((c) => c.ID === check.CheckID);
      if (byNode || bySvc) this.#invalidateSession(s.ID, index, at, change);
    }
  }

  /** Ends a session: its locks are released (or their keys deleted) and lock-delay starts. */
  #invalidateSession(id: string, index: number, at: number, change: ChangeSet): void {
    const s = this.sessions.get(id);
    if (!s) return;
    for (const key of this.locksBySession.get(id) ?? []) {
      const e = this.kv.get(key);
      if (!e || e.Session !== id) continue;
      if (s.Behavior === 'delete') {
        this.kv.delete(key, index);
      } else {
        const { Session: _held, ...rest } = e;
        this.kv.put({ ...rest, ModifyIndex: index });
      }
      change.kvKeys.add(key);
      const delayMs = s.LockDelay / 1e6;
      if (delayMs > 0 && at > 0) this.lockDelays.set(key, at + delayMs);
    }
    this.locksBySession.delete(id);
    this.sessions.delete(id);
    this.onSessionTtl?.(id, undefined);
    this.queries.dropSession(id, change);
    change.keys.add(K.sessions);
    change.keys.add(K.session(id));
    change.keys.add(K.nodeSessions(s.Node));
  }

  // ---- KV -----------------------------------------------------------------------------------

  #holdLock(session: string, key: string): void {
    let keys = this.locksBySession.get(session);
    if (!keys) this.locksBySession.set(session, (keys = new Set()));
    keys.add(key);
  }

  #dropLock(session: string | undefined, key: string): void {
    if (session) this.locksBySession.get(session)?.delete(key);
  }

  /** One KV write with Consul's cas/acquire/release rules; false when a condition fails. */
  #kvWrite(cmd: Omit<KVSetCommand, 'type'>, index: number, change: ChangeSet): ApplyResult {
    const existing = this.kv.get(cmd.key);
    if (cmd.cas !== undefined) {
      if (cmd.cas === 0 && existing) return ok(false);
      if (cmd.cas > 0 && (!existing || existing.ModifyIndex !== cmd.cas)) return ok(false);
    }
    let session = existing?.Session;
    let lockIndex = existing?.LockIndex ?? 0;
    if (cmd.acquire !== undefined) {
      if (!this.sessions.has(cmd.acquire)) return fail(`invalid session "${cmd.acquire}"`, 500);
      if (existing?.Session && existing.Session !== cmd.acquire) return ok(false);
      if (existing?.Session !== cmd.acquire) {
        const until = this.lockDelays.get(cmd.key);
        if (until !== undefined && until > cmd.at) return ok(false);
        lockIndex++;
      }
      session = cmd.acquire;
    } else if (cmd.release !== undefined) {
      if (!existing || existing.Session !== cmd.release) return ok(false);
      session = undefined;
    }
    const entry: KVPair = {
      Key: cmd.key,
      CreateIndex: existing?.CreateIndex ?? index,
      ModifyIndex: index,
      LockIndex: lockIndex,
      Flags: cmd.flags,
      Value: cmd.value,
    };
    if (session) entry.Session = session;
    if (existing?.Session && existing.Session !== session)
      this.#dropLock(existing.Session, cmd.key);
    if (session) this.#holdLock(session, cmd.key);
    this.kv.put(entry);
    change.kvKeys.add(cmd.key);
    return ok(true);
  }

  #kvSet(cmd: KVSetCommand, index: number, change: ChangeSet): ApplyResult {
    return this.#kvWrite(cmd, index, change);
  }

  #kvDelete(cmd: KVDeleteCommand, index: number, change: ChangeSet): ApplyResult {
    if (cmd.recurse) {
      for (const e of [...this.kv.withPrefix(cmd.key)]) {
        this.#dropLock(e.Session, e.Key);
        this.kv.delete(e.Key, index);
        change.kvKeys.add(e.Key);
      }
      return ok(true);
    }
    const existing = this.kv.get(cmd.key);
    if (cmd.cas !== undefined) {
      if (cmd.cas === 0 ? existing !== undefined : existing?.ModifyIndex !== cmd.cas)
        return ok(false);
    }
    if (existing) {
      this.#dropLock(existing.Session, existing.Key);
      this.kv.delete(cmd.key, index);
      change.kvKeys.add(cmd.key);
    }
    return ok(true);
  }

  /** A KV transaction: all operations apply, or (on the first failure) none do. */
  #txn(cmd: TxnCommand, index: number, change: ChangeSet): ApplyResult {
    const undo: { key: string; entry: KVPair | undefined; tomb: number | undefined }[] = [];
    const saved = new Set<string>();
    const save = (key: string): void => {
      if (saved.has(key)) return;
      saved.add(key);
      const e = this.kv.get(key);
      undo.push({ key, entry: e, tomb: this.kv.tombstones.get(key) });
    };
    const local: ChangeSet = { keys: new Set(), kvKeys: new Set() };
    const results: { KV: KVPair }[] = [];
    const errors: { OpIndex: number; What: string }[] = [];
    cmd.ops.forEach((op, i) => {
      if (errors.length > 0) return;
      const what = this.#txnOp(op, index, cmd.at, local, results, save);
      if (what) errors.push({ OpIndex: i, What: what });
    });
    if (errors.length > 0) {
      for (const u of undo.reverse()) {
        const cur = this.kv.get(u.key);
        this.#dropLock(cur?.Session, u.key);
        this.kv.restore(u.key, u.entry, u.tomb);
        if (u.entry?.Session) this.#holdLock(u.entry.Session, u.key);
      }
      const value: TxnResult = { Results: null, Errors: errors };
      return ok(value);
    }
    for (const k of local.kvKeys) change.kvKeys.add(k);
    const value: TxnResult = { Results: results, Errors: null };
    return ok(value);
  }

  /** Answers a transaction made only of read verbs, without a write. */
  readTxn(ops: TxnKVOp[]): TxnResult {
    const results: { KV: KVPair }[] = [];
    const scratch: ChangeSet = { keys: new Set(), kvKeys: new Set() };
    for (let i = 0; i < ops.length; i++) {
      const what = this.#txnOp(ops[i]!, this.lastIndex, 0, scratch, results, () => {});
      if (what) return { Results: null, Errors: [{ OpIndex: i, What: what }] };
    }
    return { Results: results, Errors: null };
  }

  /** Applies one transaction operation; returns an error text, or undefined on success. */
  #txnOp(
    op: TxnKVOp,
    index: number,
    at: number,
    change: ChangeSet,
    results: { KV: KVPair }[],
    save: (key: string) => void,
  ): string | undefined {
    const key = op.Key;
    const existing = this.kv.get(key);
    const writeResult = (): void => {
      const e = this.kv.get(key)!;
      results.push({ KV: { ...e, Value: null } });
    };
    const write = (extra: Partial<KVSetCommand>, failText: string): string | undefined => {
      save(key);
      const r = this.#kvWrite(
        { key, value: op.Value, flags: op.Flags, at, ...extra },
        index,
        change,
      );
      if (!r.ok) return r.error;
      if (r.value !== true) return failText;
      writeResult();
      return undefined;
    };
    switch (op.Verb) {
      case 'set':
        return write({}, `failed to set key "${key}"`);
      case 'cas':
        return write({ cas: op.Index }, `failed to set key "${key}", index is stale`);
      case 'lock':
        return write({ acquire: op.Session }, `failed to lock key "${key}", lock is already held`);
      case 'unlock':
        return write(
          { release: op.Session },
          `failed to unlock key "${key}", lock isn't held, or is held by another session`,
        );
      case 'get':
        if (!existing) return `key "${key}" doesn't exist`;
        results.push({ KV: existing });
        return undefined;
      case 'get-or-empty':
        if (existing) results.push({ KV: existing });
        return undefined;
      case 'get-tree':
        for (const e of this.kv.withPrefix(key)) results.push({ KV: e });
        return undefined;
      case 'check-index':
        if (!existing || existing.ModifyIndex !== op.Index)
          return `current modify index ${existing?.ModifyIndex ?? 0} != ${op.Index}`;
        results.push({ KV: { ...existing, Value: null } });
        return undefined;
      case 'check-session':
        if (!existing || existing.Session !== op.Session)
          return `key "${key}" is not locked by session "${op.Session}"`;
        results.push({ KV: { ...existing, Value: null } });
        return undefined;
      case 'check-not-exists':
        return existing ? `key "${key}" exists` : undefined;
      case 'delete':
        save(key);
        return this.#kvDelete({ type: 'kv-delete', key, recurse: false }, index, change).ok
          ? undefined
          : `failed to delete key "${key}"`;
      case 'delete-tree':
        for (const e of this.kv.withPrefix(key)) save(e.Key);
        this.#kvDelete({ type: 'kv-delete', key, recurse: true }, index, change);
        return undefined;
      case 'delete-cas': {
        save(key);
        const r = this.#kvDelete(
          { type: 'kv-delete', key, recurse: false, cas: op.Index },
          index,
          change,
        );
        return r.ok && r.value === true
          ? undefined
          : `failed to delete key "${key}", index is stale`;
      }
      default:
        return `unknown KV verb "${op.Verb}"`;
    }
  }

  // ---- snapshot -----------------------------------------------------------------------------

  /**
   * Captures the whole state at lastIndex. Cheap and synchronous: it copies references only.
   * That is safe because rows are never changed in place (every write stores a new object), so
   * the capture can be serialized later, in slices, while writes go on.
   */
  capture(): StateCapture {
    const services: ServiceRow[] = [];
    for (const byId of this.catalog.servicesByNode.values())
      for (const r of byId.values()) services.push(r);
    const checks: HealthCheck[] = [];
    for (const byId of this.catalog.checksByNode.values())
      for (const c of byId.values()) checks.push(c);
    return {
      v: 1,
      lastIndex: this.lastIndex,
      nodes: [...this.catalog.nodes.values()],
      services,
      checks,
      kv: [...this.kv.entries.values()],
      tombstones: [...this.kv.tombstones],
      sessions: [...this.sessions.values()],
      indexes: this.indexes.toJSON(),
      acl: this.acl.toJSON(),
      ca: this.ca.toJSON(),
      config: this.config.toJSON(),
      vips: this.catalog.vips.toJSON(),
      events: this.events.toJSON(),
      queries: this.queries.toJSON(),
      coordinates: this.coordinates.toJSON(),
    };
  }

  /**
   * Takes over every table of `next` (a restored snapshot, made by restore.ts at next.lastIndex)
   * and wakes every blocked read: anything may have changed. The hub stays, so waiters that
   * subscribe meanwhile are not lost.
   */
  replaceWith(next: StateStore): void {
    this.catalog = next.catalog;
    this.kv = next.kv;
    this.acl = next.acl;
    this.ca = next.ca;
    this.config = next.config;
    this.events = next.events;
    this.queries = next.queries;
    this.coordinates = next.coordinates;
    this.sessions = next.sessions;
    this.locksBySession = next.locksBySession;
    // Lock-delays are timers of this server, not state: a restored key starts without one.
    this.lockDelays = new Map();
    this.indexes = next.indexes;
    this.lastIndex = next.lastIndex;
    this.hub.notifyAll();
  }

  /** Serializes the whole state at once (tests, small states). */
  serialize(): Buffer {
    return Buffer.from(JSON.stringify(this.capture()));
  }

  static deserialize(data: Buffer): StateStore {
    return StateStore.fromSerialized(JSON.parse(data.toString('utf8')) as SerializedState);
  }

  static fromSerialized(s: SerializedState): StateStore {
    const st = new StateStore();
    st.lastIndex = s.lastIndex;
    for (const n of s.nodes) st.catalog.nodes.set(n.Node, n);
    // The snapshot's addresses first: replaying the services only counts their instances.
    st.catalog.vips = VipTable.from(s.vips);
    for (const r of s.services) st.catalog.putService(r);
    for (const c of s.checks) st.catalog.putCheck(c);
    for (const e of s.kv) {
      st.kv.put(e);
      if (e.Session) st.#holdLock(e.Session, e.Key);
    }
    for (const [k, i] of s.tombstones) st.kv.restore(k, undefined, i);
    for (const x of s.sessions) st.sessions.set(x.ID, x);
    st.indexes = IndexTable.from(s.indexes);
    st.acl = AclTable.from(s.acl);
    st.ca = CaTable.from(s.ca);
    st.config = ConfigTable.from(s.config);
    st.events = EventTable.from(s.events);
    st.queries = QueryTable.from(s.queries);
    st.coordinates = CoordinateTable.from(s.coordinates);
    return st;
  }
}

export type StateCapture = SerializedState;

/**
 * Serializes a capture to the same bytes as JSON.stringify, a slice of rows at a time, yielding
 * to the event loop between slices so a large snapshot does not stall requests.
 */
export async function serializeCapture(
  c: StateCapture,
  yieldNow: () => Promise<void>,
  slice = 2000,
): Promise<Buffer> {
  // Bytes are made per slice, so no single step converts the whole snapshot at once.
  const parts: Buffer[] = [Buffer.from(`{"v":${c.v},"lastIndex":${c.lastIndex}`)];
  for (const key of [
    'nodes',
    'services',
    'checks',
    'kv',
    'tombstones',
    'sessions',
    'indexes',
  ] as const) {
    const rows: readonly unknown[] = c[key];
    parts.push(Buffer.from(`,"${key}":[`));
    for (let i = 0; i < rows.length; i += slice) {
      const chunk = rows.slice(i, i + slice).map((r) => JSON.stringify(r));
      parts.push(Buffer.from((i > 0 ? ',' : '') + chunk.join(',')));
      if (i + slice < rows.length) await yieldNow();
    }
    parts.push(Buffer.from(']'));
  }
  // Small tables go in one piece.
  parts.push(Buffer.from(`,"acl":${JSON.stringify(c.acl)}`));
  parts.push(Buffer.from(`,"ca":${JSON.stringify(c.ca)}`));
  parts.push(Buffer.from(`,"config":${JSON.stringify(c.config)}`));
  if (c.vips) parts.push(Buffer.from(`,"vips":${JSON.stringify(c.vips)}`));
  if (c.events) parts.push(Buffer.from(`,"events":${JSON.stringify(c.events)}`));
  if (c.queries) parts.push(Buffer.from(`,"queries":${JSON.stringify(c.queries)}`));
  if (c.coordinates) parts.push(Buffer.from(`,"coordinates":${JSON.stringify(c.coordinates)}`));
  parts.push(Buffer.from('}'));
  return Buffer.concat(parts);
}

export interface SerializedState {
  v: number;
  lastIndex: number;
  nodes: Node[];
  services: ServiceRow[];
  checks: HealthCheck[];
  kv: KVPair[];
  tombstones: [string, number][];
  sessions: Session[];
  indexes: [string, number][];
  /** Absent in snapshots written before ACLs existed. */
  acl?: AclTableState;
  ca?: CaTableState;
  /** Absent in snapshots written before config entries existed. */
  config?: ConfigTableState;
  /** Absent in snapshots written before virtual IPs existed (they are then re-assigned). */
  vips?: VipTableState;
  /** The following are absent in snapshots written before they existed. */
  events?: EventTableState;
  queries?: StoredQuery[];
  coordinates?: CoordinateEntry[];
}

function isCa(cmd: Command): cmd is CaCommand {
  return cmd.type.startsWith('ca-');
}

function isAcl(cmd: Command): cmd is AclCommand {
  return cmd.type.startsWith('acl-');
}

function sameNode(a: Node, b: Omit<Node, 'CreateIndex' | 'ModifyIndex'>): boolean {
  return (
    a.ID === b.ID &&
    a.Address === b.Address &&
    a.Datacenter === b.Datacenter &&
    sameJSON(a.TaggedAddresses, b.TaggedAddresses) &&
    sameJSON(a.Meta, b.Meta)
  );
}

function stripIndexes<T extends { CreateIndex?: number; ModifyIndex?: number }>(
  o: T,
): Omit<T, 'CreateIndex' | 'ModifyIndex'> {
  const { CreateIndex: _c, ModifyIndex: _m, ...rest } = o;
  return rest;
}

function sameJSON(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
