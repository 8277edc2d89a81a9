/**
 * The certificate a server presents on its HTTPS API: issued by the mesh CA to the server
 * identity (spiffe://<td>/agent/server/dc/<dc>, DNS server.<dc>.consul and localhost, its IPs),
 * so agents verify servers with the same roots they verify each other with. Renewed at 60-90%
 * of its lifetime and whenever the roots change; the TLS server swaps contexts without
 * dropping connections.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import type { Clock, Random } from '../../core/index.js';
import { createCsr } from '../../pki/index.js';
import { K } from '../state/index-table.js';
import type { StateStore } from '../state/state-store.js';
import type { CertificateAuthority } from './authority.js';

export interface ServerTlsOptions {
  ca: CertificateAuthority;
  state: StateStore;
  clock: Clock;
  random: Random;
  datacenter: string;
  /** Addresses the certificate names (IPs and DNS names). */
  ipAddresses: string[];
  dnsNames: string[];
  log: { info(o: object, m: string): void; error(o: object, m: string): void };
}

export class ServerTls {
  readonly #o: ServerTlsOptions;
  #current: SecureContextOptions | undefined;
  #timer: ReturnType<Clock['setTimeout']> | undefined;
  #unsubscribe: (() => void) | undefined;
  #listeners: ((o: SecureContextOptions) => void)[] = [];
  #stopped = false;

  constructor(opts: ServerTlsOptions) {
    this.#o = opts;
  }

  /** Issues the first certificate (before the HTTPS listener is made). */
  async init(): Promise<void> {
    this.#current ??= await this.#issue();
  }

  /** Key, certificate chain and the roots that client certificates must chain to. */
  options(): SecureContextOptions {
    if (!this.#current) throw new Error('ServerTls.init() must run before options()');
    return this.#current;
  }

  onChange(fn: (o: SecureContextOptions) => void): void {
    this.#listeners.push(fn);
  }

  start(): void {
    this.#watchRoots();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    this.#unsubscribe?.();
  }

  #watchRoots(): void {
    if (this.#stopped) return;
    this.#unsubscribe = this.#o.state.hub.subscribe({ keys: [K.caRoots] }, () => {
      void this.#renew('the CA roots changed');
      this.#watchRoots();
    });
  }

  async #renew(why: string): Promise<void> {
    if (this.#stopped) return;
    try {
      this.#current = await this.#issue();
      for (const fn of this.#listeners) fn(this.#current);
      this.#o.log.info({ why }, 'server TLS certificate renewed');
    } catch (err) {
      this.#o.log.error(
        { err: String(err) },
        'cannot renew the server TLS certificate; retrying in 30s',
      );
      this.#schedule(30_000);
    }
  }

  async #issue(): Promise<SecureContextOptions> {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const td = this.#o.state.ca.trustDomain;
    const csr = createCsr(privateKey, `spiffe://${td}/agent/server/dc/${this.#o.datacenter}`, {
      dnsNames: this.#o.dnsNames,
      ipAddresses: this.#o.ipAddresses,
    });
    const issued = await this.#o.ca.signServer(csr, this.#o.dnsNames, this.#o.ipAddresses);
    const after = Date.parse(issued.ValidAfter);
    const life = Date.parse(issued.ValidBefore) - after;
    const at = after + life * (0.6 + 0.3 * this.#o.random.next());
    this.#schedule(Math.max(1000, at - this.#o.clock.now()));
    return {
      key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      cert: issued.CertPEM,
      ca: this.#o.ca.rootsPem(),
    };
  }

  #schedule(ms: number): void {
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#timer = this.#o.clock.setTimeout(
      () => void this.#renew('renewal time reached'),
      Math.min(ms, 2 ** 31 - 1),
    );
  }
}
