/**
 * The catalog's command log replicated through etcd, for several servers over one etcd cluster.
 *
 *   propose(cmd) -> txn "create <prefix>/log/<id> = JSON(cmd) if absent" (etcd commits it at
 *                   revision R, on a quorum of members)
 *   every server: one watch on <prefix>/log/ -> apply(cmd, R) in revision order
 *   the proposing server resolves when ITS watch has applied <id>: the result is the result of
 *   applying the command at its place in the one order every server sees.
 *
 * The index of an entry is its etcd revision, so indexes are comparable across servers and only
 * grow; they are not contiguous (other keys, snapshots and deletes use revisions too).
 *
 * Exactly once: a key is created once (the txn refuses a retried put of a committed key), and
 * a key's later puts, if anything made them, are ignored (version > 1). A put that failed with an
 * unclear outcome (etcd timed out after committing) is rejected to its client but still applied
 * once when the watch delivers it, like on every other server.
 *
 * Freshness (docs/ha.md, "Consistency"): every entry's txn also puts <prefix>/log-head, so that
 * key's mod revision is the newest entry's index. A `?consistent` read gets it (one linearizable
 * get) and waits until the watch has applied that index. The same get runs once a second as a
 * heartbeat: `lastContactMs` is the time since the send time of the newest get (or write) whose
 * index this server had applied, i.e. how old the state served from memory may be.
 *
 * Start: the stored snapshot and the log after it, read at one revision, then the watch from the
 * revision after. Every `snapshotEvery` applied entries a server stores a snapshot (only if etcd
 * does not hold a newer one) and deletes the log entries it covers. If etcd's own history was
 * compacted past what this server has applied while its watch was down, it re-reads the log; if
 * a snapshot has meanwhile covered entries it never applied, it cannot continue and reports a
 * fatal error (a restart loads that snapshot).
 */
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import {
  badRequest,
  deferred,
  describeError,
  storageError,
  type Clock,
  type Deferred,
} from '../../core/index.js';
import type { Command } from '../state/commands.js';
import type { CommandLog } from '../state/command-log.js';
import { prepareRestore } from '../state/restore.js';
import { serializeCapture, StateStore, type ApplyResult } from '../state/state-store.js';
import {
  connectEtcd,
  DEFAULT_ETCD_REQUEST_TIMEOUT_MS,
  type EtcdConnectionOptions,
} from './etcd-client.js';
import { etcdCause, etcdWriteError } from './etcd-errors.js';
import {
  deleteRestoreData,
  isRestoreCommand,
  loadRestoreData,
  storeRestoreData,
  type RestoreCommand,
} from './etcd-restore.js';
import {
  compactLog,
  readPicture,
  readSnapshotMeta,
  toEntries,
  writeSnapshot,
  type EtcdEntry,
} from './etcd-snapshots.js';
import { etcdKeys, type EtcdKeys } from './keys.js';
import type { Freshness } from '../http/freshness.js';

export interface EtcdLogLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface EtcdLogOptions {
  connection: EtcdConnectionOptions;
  clock: Clock;
  newId: () => string;
  log: EtcdLogLogger;
  /** Store a snapshot after this many applied entries (default 10,000). */
  snapshotEvery?: number;
  /** Called once when this server can no longer follow the log (it should exit). */
  onFatal?: (err: Error) => void;
  /** How often to confirm with etcd that the state is current, for LastContact (ms, 1 s). */
  contactEveryMs?: number;
}

/**
 * How long one attempt of a log put may take before it is sent again. etcd answers a proposal
 * that was lost in a leader change only after its request timeout (5 s + 2 election timeouts);
 * a new leader is usually in place within about a second, so a fresh attempt gets through sooner.
 */
const PUT_ATTEMPT_MS = 1_000;
/** Pause before the next attempt, so a leaderless etcd is not asked in a tight loop. */
const RETRY_PAUSE_MS = 100;

/** Errors after which the same put may be sent again: etcd's or our deadline, no leader. */
function mayTryAgain(err: unknown): boolean {
  return /DEADLINE_EXCEEDED|deadline exceeded|request timed out|no leader|leader changed|UNAVAILABLE/i.test(
    describeError(err),
  );
}

export interface OpenedEtcdLog {
  state: StateStore;
  log: EtcdLog;
  /** The connection, shared with the CA key store; `log.close()` closes it. */
  client: Etcd3;
  /** Entries applied from the log after the snapshot at start. */
  replayed: number;
  snapshotIndex: number;
}

/** Connects, rebuilds the state from etcd and starts following the log. */
export async function openEtcdLog(opts: EtcdLogOptions): Promise<OpenedEtcdLog> {
  const client = connectEtcd(opts.connection);
  const keys = etcdKeys(opts.connection.prefix);
  const timeout = opts.connection.requestTimeoutMs ?? DEFAULT_ETCD_REQUEST_TIMEOUT_MS;
  const call = (): { deadline: number } => ({ deadline: opts.clock.now() + timeout });
  try {
    const loadStarted = opts.clock.now();
    const picture = await readPicture(client, keys, 0, call);
    const state = picture.snapshot
      ? StateStore.deserialize(picture.snapshot.data)
      : new StateStore();
    const log = new EtcdLog(client, keys, state, opts, call);
    for (const e of picture.entries) log.deliver(e);
    await log.settled();
    if (log.failure) throw log.failure;
    await log.follow(picture.revision);
    log.startHeartbeat(loadStarted);
    return {
      state,
      log,
      client,
      replayed: picture.entries.length,
      snapshotIndex: picture.snapshot?.index ?? 0,
    };
  } catch (err) {
    client.close();
    throw storageError(`could not load the catalog from etcd: ${etcdCause(err)}`, err);
  }
}

export class EtcdLog implements CommandLog, Freshness {
  readonly #client: Etcd3;
  readonly #keys: EtcdKeys;
  readonly #state: StateStore;
  readonly #opts: EtcdLogOptions;
  readonly #call: () => { deadline: number };
  readonly #snapshotEvery: number;
  /** Proposals of this server, by log key, until its watch applies them. */
  readonly #pending = new Map<string, Deferred<ApplyResult>>();
  #watcher: Watcher | null = null;
  /** Every log event up to this revision has been seen (applied or skipped). */
  #through = 0;
  #sinceSnapshot = 0;
  #snapshotting: Promise<void> | null = null;
  #closed = false;
  #failed: Error | null = null;
  /** The watch is down (logged once until it is back). */
  #watchLost = false;
  /** Reads waiting for the applied index to reach a revision. */
  #waiters: { revision: number; resolve: () => void }[] = [];
  /** Clock time at which the state was last known to be current (see lastContactMs). */
  #contactAt = 0;
  #heartbeat: ReturnType<Clock['setTimeout']> | undefined;
  /** Entries received, not yet applied: they wait while a restore loads its state. */
  readonly #backlog: EtcdEntry[] = [];
  #applyingRestore = false;
  #settledWaiters: (() => void)[] = [];
  readonly #restoredListeners: ((index: number) => void)[] = [];
  /** Restores applied whose chunks are still in etcd (deleted once a snapshot covers them). */
  #restoreChunks: { id: string; index: number }[] = [];

  constructor(
    client: Etcd3,
    keys: EtcdKeys,
    state: StateStore,
    opts: EtcdLogOptions,
    call: () => { deadline: number },
  ) {
    this.#client = client;
    this.#keys = keys;
    this.#state = state;
    this.#opts = opts;
    this.#call = call;
    this.#snapshotEvery = opts.snapshotEvery ?? 10_000;
  }

  propose(cmd: Command): Promise<ApplyResult> {
    if (this.#failed)
      return Promise.reject(
        storageError(`this server stopped following etcd: ${this.#failed.message}`),
      );
    if (this.#closed)
      return Promise.reject(storageError('The catalog is shutting down; the write was not made'));
    const key = `${this.#keys.logPrefix}${this.#opts.newId()}`;
    const result = deferred<ApplyResult>();
    this.#pending.set(key, result);
    const k = Buffer.from(key);
    const put = {
      compare: [
        { key: k, target: 'Create' as const, result: 'Equal' as const, create_revision: 0 },
      ],
      success: [
        { request_put: { key: k, value: Buffer.from(JSON.stringify(cmd)) } },
        // Same txn, same revision: the head's mod revision is the newest entry's index.
        { request_put: { key: Buffer.from(this.#keys.logHead), value: Buffer.alloc(0) } },
      ],
    };
    const until = this.#call().deadline;
    const attempt = (): void => {
      const sentAt = this.#opts.clock.now();
      this.#client.kv
        .txn(put, { deadline: Math.min(until, sentAt + PUT_ATTEMPT_MS) })
        .then((res) => {
          // Once this revision is applied, the state held everything etcd had when it was sent.
          const revision = Number(res.header.revision);
          void this.#whenApplied(revision)
            .then(() => this.settled())
            .then(() => this.#touch(sentAt));
        })
        .catch((err: unknown) => {
          if (!this.#pending.has(key)) return; // the watch applied it meanwhile
          // A proposal lost in an etcd leader change is only answered by etcd's own timeout
          // (about 7 s): try again sooner. The put creates the key only if absent, so an
          // attempt that did commit makes the next one a no-op, and the watch applies it once.
          if (mayTryAgain(err) && this.#opts.clock.now() < until && !this.#closed)
            return void this.#opts.clock.setTimeout(attempt, RETRY_PAUSE_MS);
          // Still pending: the watch has not applied it (if etcd committed it, it will, once).
          if (this.#pending.delete(key)) result.reject(etcdWriteError(err));
        });
    };
    attempt();
    return result.promise;
  }

  /** Why this server stopped following the log, if it did. */
  get failure(): Error | null {
    return this.#failed;
  }

  /** Queues an entry for applying in log order (at once, unless a restore is loading). */
  deliver(e: EtcdEntry): void {
    this.#backlog.push(e);
    if (!this.#applyingRestore) this.#pump();
  }

  /** Resolves once every delivered entry is applied (or this server stopped following). */
  settled(): Promise<void> {
    if (this.#backlog.length === 0 && !this.#applyingRestore) return Promise.resolve();
    if (this.#failed) return Promise.resolve();
    return new Promise((resolve) => this.#settledWaiters.push(resolve));
  }

  #pump(): void {
    while (this.#backlog.length > 0 && !this.#failed) {
      const e = this.#backlog.shift()!;
      const cmd = this.#parse(e);
      if (cmd === undefined) continue;
      if (isRestoreCommand(cmd)) {
        this.#applyingRestore = true;
        void this.#applyRestore(e, cmd).finally(() => {
          this.#applyingRestore = false;
          this.#pump();
        });
        return;
      }
      this.#applyCommand(e, cmd);
    }
    const waiters = this.#settledWaiters;
    this.#settledWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * A restore command: load the state it points at and swap it in at this entry's index. Entries
   * after it wait. etcd errors are retried; chunks that are gone stop this server (a restart
   * loads the stored snapshot that covers the restore).
   */
  async #applyRestore(e: EtcdEntry, cmd: RestoreCommand): Promise<void> {
    const waiting = this.#pending.get(e.key);
    this.#pending.delete(e.key);
    let data: Buffer | string | undefined;
    for (let attempt = 0; data === undefined; attempt++) {
      if (this.#closed) {
        waiting?.reject(storageError('The catalog shut down while applying the restore'));
        return;
      }
      try {
        data = await loadRestoreData(this.#client, this.#keys, cmd, this.#call);
      } catch (err) {
        this.#opts.log.warn(
          { err: etcdCause(err), attempt, index: e.index },
          'could not read the restored state from etcd; retrying',
        );
        await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
    if (typeof data === 'string') {
      waiting?.reject(storageError(data));
      this.#fail(new Error(`cannot apply the restore at index ${e.index}: ${data}`));
      return;
    }
    let next: StateStore;
    try {
      next = prepareRestore(this.#state, data, () => e.index);
    } catch (err) {
      // The proposer checked the state first, so this is not expected; every server skips it.
      this.#opts.log.error(
        { err: describeError(err), index: e.index },
        'a restored state in etcd cannot be loaded; skipped',
      );
      waiting?.resolve({ ok: false, error: describeError(err), status: 400 });
      return;
    }
    this.#state.replaceWith(next);
    this.#restoreChunks.push({ id: cmd.id, index: e.index });
    this.#sinceSnapshot = 0;
    this.#opts.log.info(
      { index: e.index, bytes: data.length },
      'catalog state restored from a snapshot',
    );
    waiting?.resolve({ ok: true, value: e.index });
    for (const l of this.#restoredListeners) l(e.index);
  }

  #parse(e: EtcdEntry): Command | RestoreCommand | undefined {
    try {
      return JSON.parse(e.value.toString()) as Command;
    } catch {
      // Every server skips the same entry, so states stay equal.
      this.#opts.log.warn({ key: e.key, index: e.index }, 'log entry in etcd is not JSON; skipped');
      this.#pending.get(e.key)?.reject(storageError('the log entry was unreadable'));
      this.#pending.delete(e.key);
      return undefined;
    }
  }

  /** Applies one command at its index; resolves the proposal waiting for it, if any. */
  #applyCommand(e: EtcdEntry, cmd: Command): void {
    const waiting = this.#pending.get(e.key);
    this.#pending.delete(e.key);
    try {
      const r = this.#state.apply(cmd, e.index);
      waiting?.resolve(r);
    } catch (err) {
      this.#opts.log.error(
        { err: describeError(err), index: e.index, type: cmd.type },
        'applying a command from etcd failed',
      );
      waiting?.reject(storageError(`Internal error applying write ${e.index}`, err));
    }
    this.#sinceSnapshot++;
    if (this.#sinceSnapshot >= this.#snapshotEvery && !this.#snapshotting && !this.#closed)
      void this.snapshotNow();
  }

  /** Starts the watch after `revision` (everything up to it is applied). */
  async follow(revision: number): Promise<void> {
    this.#advance(revision);
    const watcher = this.#client
      .watch()
      .prefix(this.#keys.logPrefix)
      .only('put')
      .startRevision(String(revision + 1))
      .watcher();
    this.#watcher = watcher;
    watcher.on('data', (res: IWatchResponse) => this.#onWatch(res));
    watcher.on('disconnected', (err: unknown) => {
      // The client resumes after the last response's header revision, which can be past events
      // not yet delivered; resume after what was really seen instead.
      watcher.request.start_revision = String(this.#through + 1);
      if (this.#closed || this.#watchLost) return;
      this.#watchLost = true;
      this.#opts.log.warn(
        { err: etcdCause(err), through: this.#through },
        'etcd watch lost; reconnecting (reads are served from memory meanwhile)',
      );
    });
    watcher.on('connected', () => {
      watcher.request.start_revision = String(this.#through + 1);
      if (!this.#watchLost) return;
      this.#watchLost = false;
      this.#opts.log.info({ through: this.#through }, 'etcd watch restored');
    });
    watcher.on('error', (err: unknown) => void this.#recover(err));
    await new Promise<void>((resolve, reject) => {
      watcher.once('connected', () => resolve());
      watcher.once('error', reject);
    });
  }

  #onWatch(res: IWatchResponse): void {
    const kvs: IKeyValue[] = res.events.filter((ev) => ev.type === 'Put').map((ev) => ev.kv);
    for (const e of toEntries(kvs)) {
      if (e.index <= this.#through) continue; // seen before a reconnect
      this.#through = e.index;
      this.deliver(e);
    }
    this.#advance(this.#through);
  }

  /** Everything up to `revision` is applied: wake the reads waiting for it. */
  #advance(revision: number): void {
    this.#through = Math.max(this.#through, revision);
    if (this.#waiters.length === 0) return;
    const ready = this.#waiters.filter((w) => w.revision <= this.#through);
    if (ready.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.revision > this.#through);
    for (const w of ready) w.resolve();
  }

  #whenApplied(revision: number): Promise<void> {
    if (revision <= this.#through) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ revision, resolve }));
  }

  #touch(at: number): void {
    if (at > this.#contactAt) this.#contactAt = at;
  }

  /**
   * Waits until this server has applied every entry etcd holds now: one linearizable get of the
   * log head, then the watch reaching its revision. Rejects (500 naming etcd) when etcd does not
   * answer, or the watch does not catch up, within the request timeout.
   */
  async catchUp(): Promise<void> {
    if (this.#failed)
      throw storageError(`this server stopped following etcd: ${this.#failed.message}`);
    const sentAt = this.#opts.clock.now();
    const timeout = this.#opts.connection.requestTimeoutMs ?? DEFAULT_ETCD_REQUEST_TIMEOUT_MS;
    let head: number;
    try {
      const r = await this.#client.kv.range({ key: Buffer.from(this.#keys.logHead) }, this.#call());
      head = r.kvs[0] ? Number(r.kvs[0].mod_revision) : 0;
    } catch (err) {
      throw storageError(
        `could not confirm the latest index with etcd (a consistent read needs a quorum of etcd's members): ${etcdCause(err)}`,
        err,
      );
    }
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = this.#opts.clock.setTimeout(() => resolve('late'), timeout);
    });
    // Delivered is not yet applied while a restore loads its state: wait for both.
    const applied = this.#whenApplied(head).then(() => this.settled());
    const outcome = await Promise.race([applied, late]);
    if (timer) this.#opts.clock.clearTimeout(timer);
    if (outcome === 'late')
      throw storageError(
        `this server's etcd watch did not reach index ${head} within ${timeout} ms (applied: ${this.#through})`,
      );
    this.#touch(sentAt);
  }

  /** Milliseconds since the state was last confirmed current with etcd. */
  lastContactMs(): number {
    return Math.max(0, this.#opts.clock.now() - this.#contactAt);
  }

  /** Confirms freshness every `contactEveryMs` so LastContact stays small while etcd is up. */
  startHeartbeat(loadedAt: number): void {
    this.#touch(loadedAt);
    const every = this.#opts.contactEveryMs ?? 1_000;
    const tick = (): void => {
      this.#heartbeat = this.#opts.clock.setTimeout(() => {
        if (this.#closed) return;
        this.catchUp()
          .catch(() => undefined) // LastContact grows; the watch's own logs say why
          .finally(() => {
            if (!this.#closed) tick();
          });
      }, every);
      this.#heartbeat.unref?.();
    };
    tick();
  }

  /**
   * The watch was cancelled (etcd compacted its history past where it would resume): read the
   * log again from etcd at one revision and continue from there.
   */
  async #recover(cause: unknown): Promise<void> {
    if (this.#closed) return;
    this.#opts.log.warn({ err: describeError(cause) }, 'etcd watch cancelled; re-reading the log');
    await this.#watcher?.cancel().catch(() => undefined);
    this.#watcher = null;
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        const applied = this.#through;
        const picture = await readPicture(this.#client, this.#keys, applied, this.#call);
        if (picture.snapshot && picture.snapshot.index > applied) {
          this.#fail(
            new Error(
              `entries after index ${applied} were compacted away in etcd before this server applied them; restart it to load the snapshot at index ${picture.snapshot.index}`,
            ),
          );
          return;
        }
        for (const e of picture.entries) if (e.index > this.#through) this.deliver(e);
        await this.follow(picture.revision);
        return;
      } catch (err) {
        this.#opts.log.warn(
          { err: etcdCause(err), attempt },
          'could not re-read the log from etcd',
        );
        await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = err;
    this.#opts.log.error(
      { err: err.message },
      'this server can no longer follow the catalog in etcd',
    );
    for (const [key, p] of this.#pending) {
      this.#pending.delete(key);
      p.reject(storageError(`this server stopped following etcd: ${err.message}`));
    }
    this.#opts.onFatal?.(err);
  }

  /**
   * Writes a snapshot unless another server stored a recent one; `force` writes it anyway (after
   * a restore, so that its chunks can go).
   */
  snapshotNow(force = false): Promise<void> {
    if (this.#snapshotting) return this.#snapshotting;
    this.#sinceSnapshot = 0;
    const capture = this.#state.capture();
    const yieldNow = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    this.#snapshotting = (async () => {
      // Several servers reach their count at about the same time: skip if one already stored
      // a recent snapshot.
      const stored = await readSnapshotMeta(this.#client, this.#keys, this.#call);
      if (!force && stored && stored.index > capture.lastIndex - this.#snapshotEvery / 2) return;
      const data = await serializeCapture(capture, yieldNow);
      const snap = { index: capture.lastIndex, data };
      const written = await writeSnapshot(
        this.#client,
        this.#keys,
        snap,
        this.#opts.newId(),
        this.#call,
      );
      if (!written) return;
      const removed = await compactLog(this.#client, this.#keys, snap.index, this.#call);
      const covered = this.#restoreChunks.filter((r) => r.index <= snap.index);
      for (const r of covered) await deleteRestoreData(this.#client, this.#keys, r.id, this.#call);
      this.#restoreChunks = this.#restoreChunks.filter((r) => r.index > snap.index);
      this.#opts.log.info(
        { index: snap.index, bytes: data.length, removed },
        'snapshot stored in etcd; log compacted',
      );
    })()
      .catch((err: unknown) =>
        this.#opts.log.warn(
          { err: etcdCause(err) },
          'snapshot to etcd failed; the log keeps every write',
        ),
      )
      .finally(() => {
        this.#snapshotting = null;
      });
    return this.#snapshotting;
  }

  /**
   * Checks the state, puts it in etcd and appends the restore command; resolves with the index
   * (revision) every server applies it at, after storing a snapshot that covers it.
   */
  async restore(data: Buffer): Promise<number> {
    if (this.#failed)
      throw storageError(`this server stopped following etcd: ${this.#failed.message}`);
    if (this.#closed) throw storageError('The catalog is shutting down; the restore was not made');
    // Refuses a state that cannot be loaded before anything is written.
    prepareRestore(this.#state, data, () => this.#state.lastIndex + 1);
    let cmd: RestoreCommand;
    try {
      cmd = await storeRestoreData(this.#client, this.#keys, this.#opts.newId(), data, this.#call);
    } catch (err) {
      throw etcdWriteError(err);
    }
    const r = await this.propose(cmd as unknown as Command);
    if (!r.ok) throw r.status < 500 ? badRequest(r.error, 'state') : storageError(r.error);
    const index = r.value as number;
    if (this.#snapshotting) await this.#snapshotting;
    await this.snapshotNow(true);
    return index;
  }

  onRestored(listener: (index: number) => void): void {
    this.#restoredListeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#heartbeat) this.#opts.clock.clearTimeout(this.#heartbeat);
    // Writes already sent get their answer before the watch stops, for as long as a request
    // may take; any still unconfirmed then are refused (etcd applies them if it took them).
    const timeout = this.#opts.connection.requestTimeoutMs ?? DEFAULT_ETCD_REQUEST_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#pending.values()].map((p) => p.promise)),
      new Promise((r) => (timer = setTimeout(r, timeout))),
    ]);
    clearTimeout(timer);
    for (const [key, p] of this.#pending) {
      this.#pending.delete(key);
      p.reject(storageError('The catalog shut down before etcd confirmed the write'));
    }
    if (this.#snapshotting) await this.#snapshotting;
    await this.#watcher?.cancel().catch(() => undefined);
    this.#client.close();
  }
}
