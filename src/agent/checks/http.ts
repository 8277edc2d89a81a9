/**
 * HTTP(S) checks: 2xx is passing, 429 warning, anything else (or no answer) critical. Like
 * Consul, redirects are followed unless DisableRedirects, and each run uses a fresh connection.
 */
import http from 'node:http';
import https from 'node:https';
import type { Clock } from '../../core/index.js';
import { describeError, systemClock } from '../../core/index.js';
import type { HealthStatus } from '../../api/index.js';
import type { CheckResult, CheckRunner, HttpCheckDef } from './types.js';
import { HeadBuffer, critical, outputMax, startDeadline } from './util.js';

const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Headers that must not follow a redirect to another host. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

interface Hop {
  url: URL;
  method: string;
  headers: http.OutgoingHttpHeaders;
  body: string | undefined;
}

interface Answer {
  code: number;
  reason: string;
  location?: string;
  body: string;
}

export function httpStatusFor(code: number): HealthStatus {
  if (code >= 200 && code < 300) return 'passing';
  if (code === 429) return 'warning';
  return 'critical';
}

export class HttpCheck implements CheckRunner<'http'> {
  readonly kind = 'http' as const;
  private readonly method: string;
  private readonly maxBody: number;

  constructor(
    private readonly def: HttpCheckDef,
    private readonly clock: Clock = systemClock,
  ) {
    this.method = (def.Method || 'GET').toUpperCase();
    this.maxBody = outputMax(def.OutputMaxSize);
  }

  async run(timeoutMs: number, signal?: AbortSignal): Promise<CheckResult> {
    const label = `HTTP ${this.method} ${this.def.HTTP}`;
    const deadline = startDeadline(this.clock, timeoutMs, signal);
    try {
      const a = await this.follow(deadline.signal);
      return {
        status: httpStatusFor(a.code),
        output: `${label}: ${a.code} ${a.reason} Output: ${a.body}`,
      };
    } catch (err) {
      return critical(`${label}: ${deadline.reason() ?? describeError(err)}`);
    } finally {
      deadline.dispose();
    }
  }

  private async follow(signal: AbortSignal): Promise<Answer> {
    let hop: Hop = {
      url: new URL(this.def.HTTP),
      method: this.method,
      headers: this.headers(),
      body: this.def.Body || undefined,
    };
    for (let redirects = 0; ; redirects++) {
      const answer = await this.request(hop, signal);
      if (this.def.DisableRedirects || !REDIRECTS.has(answer.code) || !answer.location) {
        return answer;
      }
      if (redirects >= MAX_REDIRECTS) throw new Error(`stopped after ${MAX_REDIRECTS} redirects`);
      hop = redirect(hop, answer.code, answer.location);
    }
  }

  private headers(): http.OutgoingHttpHeaders {
    const out: http.OutgoingHttpHeaders = {};
    for (const [name, values] of Object.entries(this.def.Header ?? {})) {
      out[name.toLowerCase()] = values.length === 1 ? values[0] : values;
    }
    out['user-agent'] ??= 'Trellis Health Check';
    out['accept'] ??= 'text/plain, text/*, */*';
    if (this.def.Body) out['content-length'] = Buffer.byteLength(this.def.Body);
    return out;
  }

  private request(hop: Hop, signal: AbortSignal): Promise<Answer> {
    const secure = hop.url.protocol === 'https:';
    const options: https.RequestOptions = {
      method: hop.method,
      headers: hop.headers,
      signal,
      agent: false, // one connection per run, closed afterwards
    };
    if (secure) {
      options.rejectUnauthorized = !this.def.TLSSkipVerify;
      if (this.def.TLSServerName) options.servername = this.def.TLSServerName;
    }
    return new Promise<Answer>((resolve, reject) => {
      const req = (secure ? https : http).request(hop.url, options, (res) => {
        const code = res.statusCode ?? 0;
        const reason = res.statusMessage || http.STATUS_CODES[code] || '';
        const location = res.headers.location;
        if (!this.def.DisableRedirects && REDIRECTS.has(code) && location) {
          res.destroy();
          resolve({ code, reason, location, body: '' });
          return;
        }
        const body = new HeadBuffer(this.maxBody);
        let done = false;
        const finish = (): void => {
          if (done) return;
          done = true;
          resolve({ code, reason, body: body.toString() });
        };
        res.on('data', (chunk: Buffer) => {
          if (!body.push(chunk)) {
            finish();
            res.destroy(); // enough read: never buffer more than OutputMaxSize
          }
        });
        res.on('end', finish);
        res.on('error', (err) => (done ? undefined : reject(err)));
      });
      req.on('error', reject);
      req.end(hop.body);
    });
  }
}

/** The next hop after a redirect, following the rules browsers and Go's client share. */
function redirect(prev: Hop, code: number, location: string): Hop {
  const url = new URL(location, prev.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`refusing to follow a redirect to ${url.protocol}`);
  }
  const headers = { ...prev.headers };
  if (url.host !== prev.url.host) for (const h of CREDENTIAL_HEADERS) delete headers[h];
  let { method, body } = prev;
  if (code === 301 || code === 302 || code === 303) {
    // these turn the request into a GET without a body; 307 and 308 replay it as it was
    if (method !== 'HEAD') method = 'GET';
    body = undefined;
    delete headers['content-length'];
  }
  return { url, method, headers, body };
}
