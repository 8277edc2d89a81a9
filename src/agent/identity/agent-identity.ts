/**
 * A joined agent's own identity: its agent token, its certificate (spiffe://<td>/agent/client/
 * dc/<dc>/id/<node>) and key, and the CA roots it trusts servers by. All of it lives in
 * <data-dir>/identity.json (0600), so reboots and server restarts change nothing; the join token
 * is used once and never needed again.
 *
 * Joining (`trellis agent --join-token T --ca-fingerprint F`):
 *   1. ask a server for its roots without trusting it yet, and accept them only if one root's
 *      SHA-256 fingerprint is the pinned F (the operator copied F from a trusted place)
 *   2. from then on talk TLS verified against those roots, to server.<dc>.consul
 *   3. send the join token with a CSR (the key stays here); get back an agent token and cert
 *
 * The certificate is renewed at a random point between 60% and 90% of its life, with backoff on
 * failure. Renewal authenticates with the certificate or, if it has expired (the host was off
 * for longer than its lifetime), with the agent token, so a joined host never has to re-join.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CARoots } from '../../api/index.js';
import {
  isPlainHttpAnswer,
  UndiciAgent,
  type TlsOptions,
  type TrellisClient,
} from '../../client/index.js';
import { jitter, MeshError, type Clock, type Random, makeDirs } from '../../core/index.js';
import { createCsr, fingerprintMatches } from '../../pki/index.js';
import { agentSpiffeId } from '../../policy/index.js';

export interface IdentityFile {
  node: string;
  datacenter: string;
  trustDomain: string;
  token: string;
  tokenAccessor: string;
  certPem: string;
  keyPem: string;
  rootsPem: string;
  validAfter: string;
  validBefore: string;
}

interface JoinAnswer {
  AgentToken: string;
  AgentTokenAccessor: string;
  Cert: { CertPEM: string; ValidAfter: string; ValidBefore: string };
  Roots: string;
  TrustDomain: string;
  Datacenter: string;
}

export interface JoinOptions {
  servers: string[];
  joinToken: string;
  caFingerprint: string;
  node: string;
  datacenter: string;
  dataDir: string;
}

type Log = { info(o: object, m: string): void; warn(o: object, m: string): void };

export function joinError(message: string): MeshError {
  return new MeshError('MESH_ERR_JOIN', 'user', message);
}

const fileOf = (dataDir: string): string => join(dataDir, 'identity.json');

export class AgentIdentity {
  #f: IdentityFile;
  readonly #dataDir: string;
  #timer: ReturnType<Clock['setTimeout']> | undefined;
  #failures = 0;
  #stopped = false;

  private constructor(f: IdentityFile, dataDir: string) {
    this.#f = f;
    this.#dataDir = dataDir;
  }

  get token(): string {
    return this.#f.token;
  }

  get file(): Readonly<IdentityFile> {
    return this.#f;
  }

  /** The saved identity, if this host has joined before. */
  static load(dataDir: string): AgentIdentity | undefined {
    let text: string;
    try {
      text = readFileSync(fileOf(dataDir), 'utf8');
    } catch {
      return undefined;
    }
    let f: IdentityFile;
    try {
      f = JSON.parse(text) as IdentityFile;
    } catch {
      throw joinError(`${fileOf(dataDir)} is damaged; restore it or delete it and join again`);
    }
    return new AgentIdentity(f, dataDir);
  }

  static async join(o: JoinOptions): Promise<AgentIdentity> {
    const errors: string[] = [];
    for (const server of o.servers) {
      try {
        return await joinVia(server, o);
      } catch (err) {
        if (err instanceof MeshError && err.code === 'MESH_ERR_JOIN') throw err;
        errors.push(`${server}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    throw joinError(`could not reach any server to join: ${errors.join('; ')}`);
  }

  /** Client TLS settings that always use the current certificate and roots. */
  tls(): TlsOptions {
    return {
      serverName: `server.${this.#f.datacenter}.consul`,
      current: () => ({ ca: this.#f.rootsPem, cert: this.#f.certPem, key: this.#f.keyPem }),
    };
  }

  /** The roots changed (rotation): trust exactly the new bundle from now on. */
  setRoots(roots: CARoots): void {
    const pem = roots.Roots.map((r) => r.RootCert).join('');
    if (!pem || pem === this.#f.rootsPem) return;
    this.#f = { ...this.#f, rootsPem: pem };
    this.#save();
  }

  start(client: TrellisClient, clock: Clock, random: Random, log: Log): void {
    this.#schedule(client, clock, random, log);
  }

  stop(clock: Clock): void {
    this.#stopped = true;
    if (this.#timer) clock.clearTimeout(this.#timer);
  }

  #schedule(client: TrellisClient, clock: Clock, random: Random, log: Log, delayMs?: number): void {
    if (this.#stopped) return;
    const after = Date.parse(this.#f.validAfter);
    const life = Date.parse(this.#f.validBefore) - after;
    const at = after + life * (0.6 + 0.3 * random.next());
    const ms = delayMs ?? Math.max(0, at - clock.now());
    this.#timer = clock.setTimeout(
      () => void this.#renew(client, clock, random, log),
      Math.min(ms, 2 ** 31 - 1),
    );
  }

  async #renew(client: TrellisClient, clock: Clock, random: Random, log: Log): Promise<void> {
    try {
      await this.renewNow(client);
      this.#failures = 0;
      log.info({ validBefore: this.#f.validBefore }, 'agent certificate renewed');
      this.#schedule(client, clock, random, log);
    } catch (err) {
      this.#failures++;
      const base = Math.min(60_000, 1000 * 2 ** Math.min(this.#failures - 1, 6));
      const delay = base / 2 + jitter(random, base / 2);
      log.warn({ err: String(err), retryInMs: delay }, 'agent certificate renewal failed');
      this.#schedule(client, clock, random, log, delay);
    }
  }

  async renewNow(client: TrellisClient): Promise<void> {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const csr = createCsr(
      privateKey,
      agentSpiffeId(this.#f.trustDomain, this.#f.datacenter, this.#f.node),
    );
    const r = await client.request<{
      CertPEM: string;
      ValidAfter: string;
      ValidBefore: string;
      Roots: string;
    }>({
      method: 'PUT',
      path: '/v1/internal/trellis/connect/sign-agent',
      body: { Node: this.#f.node, CSR: csr },
      headers: { 'x-consul-token': this.#f.token },
    });
    const b = r.body as { CertPEM: string; ValidAfter: string; ValidBefore: string; Roots: string };
    this.#f = {
      ...this.#f,
      certPem: b.CertPEM,
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      validAfter: b.ValidAfter,
      validBefore: b.ValidBefore,
      ...(b.Roots ? { rootsPem: b.Roots } : {}),
    };
    this.#save();
  }

  #save(): void {
    save(this.#dataDir, this.#f);
  }
}

function save(dataDir: string, f: IdentityFile): void {
  makeDirs(dataDir, 0o700);
  const path = fileOf(dataDir);
  writeFileSync(`${path}.tmp`, JSON.stringify(f), { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

function originOf(server: string): string {
  return /^https?:\/\//.test(server) ? server.replace(/\/+$/, '') : `https://${server}`;
}

async function joinVia(server: string, o: JoinOptions): Promise<AgentIdentity> {
  const origin = originOf(server);
  if (!origin.startsWith('https://'))
    throw joinError(`joining needs the server's HTTPS address (port 8501), not ${server}`);
  // 1. The roots, from a server not yet trusted: only the pinned fingerprint makes them count.
  const probe = new UndiciAgent({ connect: { rejectUnauthorized: false, timeout: 10_000 } });
  let roots: CARoots;
  try {
    const r = await probe.request({ origin, path: '/v1/connect/ca/roots', method: 'GET' });
    if (r.statusCode !== 200) throw new Error(`roots answered ${r.statusCode}`);
    roots = (await r.body.json()) as CARoots;
  } catch (err) {
    if (!isPlainHttpAnswer(err)) throw err;
    throw new Error(
      "it answered in plain HTTP, not HTTPS: joining needs the server's HTTPS address (its --https-bind, port 8501 by default)",
      { cause: err },
    );
  } finally {
    await probe.close();
  }
  const pinned = roots.Roots.find((x) => fingerprintMatches(x.RootCert, o.caFingerprint));
  if (!pinned)
    throw joinError(
      `the server at ${server} does not hold the CA with fingerprint ${o.caFingerprint}; refusing to join (a wrong address, or someone in the middle)`,
    );
  // 2. Everything else over TLS verified against the pinned root alone: anything else that
  //    unverified answer listed could be an impostor's.
  const verified = new UndiciAgent({
    connect: { ca: pinned.RootCert, servername: `server.${o.datacenter}.consul`, timeout: 10_000 },
  });
  try {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const csr = createCsr(privateKey, agentSpiffeId(roots.TrustDomain, o.datacenter, o.node));
    const r = await verified.request({
      origin,
      path: '/v1/internal/trellis/join',
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ JoinToken: o.joinToken, Node: o.node, CSR: csr }),
    });
    const text = await r.body.text();
    if (r.statusCode === 403 || r.statusCode === 400)
      throw joinError(`the server refused to join: ${text}`);
    if (r.statusCode !== 200) throw new Error(`join answered ${r.statusCode}: ${text}`);
    const a = JSON.parse(text) as JoinAnswer;
    if (a.Datacenter !== o.datacenter)
      throw joinError(`the server is in datacenter "${a.Datacenter}", not "${o.datacenter}"`);
    const f: IdentityFile = {
      node: o.node,
      datacenter: o.datacenter,
      trustDomain: a.TrustDomain,
      token: a.AgentToken,
      tokenAccessor: a.AgentTokenAccessor,
      certPem: a.Cert.CertPEM,
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      rootsPem: a.Roots,
      validAfter: a.Cert.ValidAfter,
      validBefore: a.Cert.ValidBefore,
    };
    save(o.dataDir, f);
    return AgentIdentity.load(o.dataDir)!;
  } finally {
    await verified.close();
  }
}
